"""Enumerate a layer's legal foldings, cost each once, drop dominated ones.

An option is dominated when another option is at least as fast and uses no more of any
resource (LUT, FF, BRAM18, URAM, DSP, external-memory bits). The solver only ever sees the
surviving options, as integer tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from dse.exceptions import DseError
from dse.models._common import LayerCost, normalize
from dse.models._common import dtype as qdtype
from dse.models.accumulator import acc_type, worst_case_range
from dse.models.mvau import HLS_MAX_WIDTH
from dse.models.registry import DEFAULT_FINN, default_impl, split_op_type


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldingOption:
    """One legal folding of one layer and FINN's estimate for it."""

    attrs: Mapping[str, Any]  # the folding attributes (FINN names) this option sets
    impl: str
    cost: LayerCost
    external_weight_bits: int = 0  # weights streamed from HBM/DDR instead of kept on chip

    @property
    def key(self) -> tuple:
        return (self.impl,) + tuple(sorted((k, str(v)) for k, v in self.attrs.items()))

    def vector(self) -> tuple[int, ...]:
        c = self.cost
        return (c.cycles, c.lut, c.ff, c.bram18, c.uram, c.dsp, self.external_weight_bits)


def _external_bits(op: str, a: Mapping[str, Any], weight_bits: int) -> int:
    return weight_bits if a.get("mem_mode") == "external" else 0


def _streamed_accumulator(op: str, a: dict[str, Any]) -> None:
    """FINN sizes the accumulator of an MVAU/VVAU whose weights stream from memory
    (mem_mode external) from the weight type's worst case, not from the values
    (minimize_accumulator_width): the wider of the lowered type and that bound, in place."""
    idt, wdt, adt = (str(a.get(k, "")) for k in ("inputDataType", "weightDataType",
                                                  "accDataType"))
    if not adt or "FLOAT" in idt + wdt + adt or int(a.get("noActivation", 0)):
        return  # (a layer without activation would pass the wider type on: left as lowered)
    mw = int(a["MW"]) if op == "MVAU" else int(np.prod(a["Kernel"]))
    worst = acc_type(*worst_case_range(mw, wdt, idt))
    if qdtype(worst).bitwidth() > qdtype(adt).bitwidth():
        a["accDataType"] = worst


def _frozen(v: Any) -> Any:
    """``v`` as a hashable value that equals another's exactly when the values are equal, for
    the cache key; TypeError for a value of another kind."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return (type(v).__name__, v)  # 1, 1.0 and True are one key in a dict, not here
    if isinstance(v, np.generic):
        return _frozen(v.item())
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, Mapping):
        return ("map", tuple(sorted((str(k), _frozen(x)) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_frozen(x) for x in v))
    raise TypeError(f"no cache key for {type(v).__name__}")


#: enumerate_options' answers in this process, by its arguments: the cost models are pure
#: functions of them, and an exploration asks the same layers on every trial (about 60 % of
#: building a problem)
_OPTIONS: dict[Any, tuple[FoldingOption, ...]] = {}
_OPTIONS_MAX = 4096


def enumerate_options(
    op_type: str,
    attrs: Mapping[str, Any],
    *,
    impl: str | None = None,
    part: str | None = None,
    weight_bits: int = 0,
    allow_external: bool = True,
    fixed: Iterable[str] = (),
) -> list[FoldingOption]:
    """Every legal folding of a layer (FINN's divisor rules and width limits), costed.

    ``impl`` fixes the HLS/RTL variant (default: FINN's SpecializeLayers choice). Attributes
    named in ``fixed`` keep the layer's current value. Options FINN would reject raise
    inside the cost model and are skipped. The answers are kept per process (the options are
    immutable; each call gets its own list).
    """
    fixed = tuple(sorted(set(fixed)))
    try:
        key: Any = _frozen((op_type, attrs, impl, part, weight_bits, allow_external, fixed))
    except TypeError:
        key = None
    if key is not None and key in _OPTIONS:
        return list(_OPTIONS[key])
    out = _enumerate_options(op_type, attrs, impl=impl, part=part, weight_bits=weight_bits,
                             allow_external=allow_external, fixed=fixed)
    if key is not None:
        if len(_OPTIONS) >= _OPTIONS_MAX:
            _OPTIONS.pop(next(iter(_OPTIONS)))  # the oldest
        _OPTIONS[key] = tuple(out)
    return out


def _enumerate_options(op_type: str, attrs: Mapping[str, Any], *, impl: str | None,
                       part: str | None, weight_bits: int, allow_external: bool,
                       fixed: Iterable[str]) -> list[FoldingOption]:
    model, given_impl = split_op_type(op_type)
    base = dict(attrs)
    a0 = normalize(model.name, base, model.schema)
    impl = impl or given_impl or default_impl(model.name, a0, part)
    fixed = set(fixed)
    raw: Iterable[dict[str, Any]]
    if model.options is None:
        raw = [{}]
    else:
        raw = model.options(a0, impl)
    out: list[FoldingOption] = []
    seen: set[tuple] = set()
    for choice in raw:
        choice = {k: v for k, v in choice.items() if k not in fixed}
        if not allow_external and choice.get("mem_mode") == "external":
            continue
        a = dict(base)
        a.update(choice)
        if (model.name in ("MVAU", "VVAU") and a.get("mem_mode") == "external"
                and base.get("mem_mode") != "external"):
            _streamed_accumulator(model.name, a)
        try:
            cost = model.estimate(normalize(model.name, a, model.schema), impl, part, DEFAULT_FINN)
        except DseError:
            continue
        if impl == "hls" and max(cost.instream_widths + cost.outstream_widths) > HLS_MAX_WIDTH:
            continue  # HLS codegen asserts stream widths <= AP_INT_MAX_W
        opt = FoldingOption(attrs=MappingProxyType(dict(sorted(choice.items()))), impl=impl,
                            cost=cost,
                            external_weight_bits=_external_bits(model.name, a, weight_bits))
        if opt.key in seen:
            continue
        seen.add(opt.key)
        out.append(opt)
    return out


def prune_dominated(options: list[FoldingOption],
                    extra: list[tuple[int, ...]] | None = None) -> list[FoldingOption]:
    """Keep the Pareto set over (cycles, LUT, FF, BRAM18, URAM, DSP, external bits), plus the
    ``extra`` per-option values (e.g. the same option's costs on another part).

    Ties (identical vectors) keep the first option in enumeration order, so the result is
    deterministic. Returned in ascending cycles.
    """
    if len(options) <= 1:
        return list(options)
    vecs = np.array([o.vector() + (tuple(extra[i]) if extra else ())
                     for i, o in enumerate(options)], dtype=np.int64)
    order = np.lexsort(vecs.T[::-1])  # by cycles, then resources
    kept: list[int] = []
    kept_vecs = np.empty((0, vecs.shape[1]), dtype=np.int64)
    for i in order:
        v = vecs[i]
        if len(kept):
            dominated = np.all(kept_vecs <= v, axis=1)
            if dominated.any():
                continue
        kept.append(int(i))
        kept_vecs = np.vstack([kept_vecs, v])
    return [options[i] for i in kept]

