"""Explicit registry of FINN op cost models, keyed by generic op type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.exceptions import UnknownOpError
from dse.models import (
    eltwise,
    flow_ops,
    hadamard,
    infra,
    minifloat,
    misc,
    mvau,
    padding,
    pool,
    swg,
    thresholding,
    transformer,
    vvau,
)
from dse.models._common import Attrs, LayerCost, OpModel, normalize, part_family

_MODELS: dict[str, OpModel] = {}


def _register(*models: OpModel) -> None:
    for m in models:
        if m.name in _MODELS:
            raise RuntimeError(f"duplicate cost model {m.name}")
        _MODELS[m.name] = m


_register(
    minifloat.with_minifloat(mvau.MODEL),  # minifloat operands: dse's model (minifloat.py)
    minifloat.with_minifloat(vvau.MODEL),
    swg.MODEL,
    *thresholding.MODELS,
    *pool.MODELS,
    *padding.MODELS,
    *eltwise.MODELS,
    *infra.MODELS,
    *misc.MODELS,
    *transformer.MODELS,
    *flow_ops.MODELS,
    hadamard.MODEL,  # dse's own (rotations; dse/models/hadamard.py)
)

# the FINN line whose estimates to reproduce: finn-plus 1.6.1 (what ``dse emit`` builds with,
# the default), FINN main, and FINN's dev branch (shared/reference/finn_estimates/dev)
FINN_VERSIONS = ("plus", "main", "dev")
DEFAULT_FINN = "plus"


def known_op_types() -> list[str]:
    """Every accepted op type: generic names and their ``_hls``/``_rtl`` specializations."""
    out = []
    for name, m in sorted(_MODELS.items()):
        out.append(name)
        out.extend(f"{name}_{impl}" for impl in m.impls)
    return out


def split_op_type(op_type: str) -> tuple[OpModel, str | None]:
    """``'MVAU_hls'`` -> (MVAU model, 'hls'); ``'MVAU'`` -> (MVAU model, None)."""
    for suffix in ("_hls", "_rtl"):
        if op_type.endswith(suffix) and op_type[: -len(suffix)] in _MODELS:
            model = _MODELS[op_type[: -len(suffix)]]
            impl = suffix[1:]
            if impl not in model.impls:
                raise UnknownOpError(
                    f"{op_type}: FINN has no {impl.upper()} variant of {model.name}; "
                    f"use {', '.join(f'{model.name}_{i}' for i in model.impls)}"
                )
            return model, impl
    if op_type in _MODELS:
        return _MODELS[op_type], None
    raise UnknownOpError(
        f"no cost model for op type {op_type!r}; known op types: {', '.join(known_op_types())}"
    )


def get_model(op_type: str) -> OpModel:
    return split_op_type(op_type)[0]


def normalize_attrs(op_type: str, attrs: Mapping[str, Any]) -> Attrs:
    model, _ = split_op_type(op_type)
    return normalize(op_type, attrs, model.schema)


def default_impl(op_type: str, attrs: Attrs, part: str | None) -> str:
    model, impl = split_op_type(op_type)
    if impl:
        return impl
    if minifloat.applies(model.name, attrs):
        return "hls"  # dse's own minifloat MVAU/VVAU (FINN has none; no RTL variant)
    if model.name == "MVAU":
        return mvau.default_impl(attrs, part)
    if model.name == "VVAU":
        return vvau.default_impl(attrs, part)
    # FINN's SpecializeLayers prefers RTL wherever an RTL variant exists (SWG, FMPadding,
    # Thresholding, FIFO); the DWC choice depends on widths and is made in infra.
    if model.name == "StreamingDataWidthConverter":
        return infra.dwc_default_impl(attrs)
    versal = part_family(part) == "versal"
    if model.name.startswith("Elementwise") and "rtl" in model.impls:
        # finn-plus 1.6.1 SpecializeLayers: the RTL element-wise cores use DSP58 (Versal only)
        # and take float/float or int/float operands; int/int stays HLS
        types = [str(attrs.get(k, "")) for k in ("lhs_dtype", "rhs_dtype")]
        return "rtl" if versal and any(t == "FLOAT32" for t in types) else "hls"
    if model.name == "LayerNorm":  # RTL LayerNorm: FLOAT32 input, DSP58 (Versal)
        return "rtl" if versal and attrs.get("inputDataType") == "FLOAT32" else "hls"
    if model.name == "HWSoftmax":  # RTL softmax: DSPFP32 (Versal)
        return "rtl" if versal else "hls"
    if model.name == "Requant":  # RTL Requant: integer input, full range
        narrow = int(attrs.get("narrow", 0) or 0)
        return "rtl" if not str(attrs.get("inputDataType", "")).startswith("FLOAT") \
            and narrow == 0 else "hls"
    return "rtl" if "rtl" in model.impls else model.impls[0]


def estimate(
    op_type: str,
    attrs: Mapping[str, Any],
    part: str | None = None,
    *,
    finn: str = DEFAULT_FINN,
) -> LayerCost:
    """FINN's estimates for one layer.

    ``op_type`` is a FINN op type, generic (``MVAU``) or specialized (``MVAU_hls``); a generic
    type is specialized the way FINN's SpecializeLayers would. ``attrs`` uses FINN's attribute
    names and value formats (data types by name, lists as lists or JSON strings); missing
    attributes take FINN's defaults. ``part`` is an FPGA part name (only the DSP count of
    MVAU_rtl depends on it; default: an UltraScale+ part). ``finn`` selects the FINN line whose
    estimates to reproduce: ``"plus"`` (finn-plus 1.6.1, the default: the flow ``dse emit``
    drives), ``"main"`` (FINN main) or ``"dev"`` (FINN's dev branch). finn-plus differs from
    main for StreamingFIFO (as dev), MVAU (tiling ``TH``), Lookup (``ram_style``),
    Thresholding_hls (threshold words of PE x threshold bits x steps; ``ram_style`` ultra) and
    the Elementwise ops (constant memories by ``mem_mode``/``ram_style``; dev/main: streams
    only).
    """
    if finn not in FINN_VERSIONS:
        raise UnknownOpError(f"finn={finn!r}: choose one of {', '.join(FINN_VERSIONS)}")
    model, _ = split_op_type(op_type)
    a = normalize(op_type, attrs, model.schema)
    impl = default_impl(op_type, a, part)
    return model.estimate(a, impl, part, finn)
