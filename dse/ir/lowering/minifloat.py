"""qonnx ``FloatQuant`` (minifloat quantizers, as brevitas' OCP quantizers export them).

* On constant weights: the weights become the integers they exactly are in units of the
  format's smallest subnormal (``dse.models.minifloat_type``), typed with the minifloat, and
  the subnormal unit joins the weight scale (per tensor or per output channel), so that
  ``ints * scale`` is bit for bit qonnx's ``FloatQuant`` output (tested).
* On activations: a minifloat quantizer is a monotone staircase, so it is a multi-threshold
  function (one threshold halfway between neighbouring representable values), fused into the
  producing MVAU/VVAU or a standalone FINN ``Thresholding``, as integer quantizers are. FINN's
  Thresholding emits the *index* of the threshold crossed, not a minifloat bit pattern, so the
  stream carries codes that its minifloat consumer decodes per lane (code -> integer in
  subnormal units; costed in ``dse.models.minifloat``).

Facts used (verified on brevitas 0.13.4 / qonnx 1.0.0 exports): FloatQuant inputs are
(X, scale, exponent_bitwidth, mantissa_bitwidth, exponent_bias, max_val); attributes
has_inf, has_nan, has_subnormal, saturation, rounding_mode (qonnx
``custom_op/general/floatquant.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.exceptions import ModelLoadError
from dse.ir.lowering.core import Const, Lowering, attr, rule
from dse.ir.lowering.quantizers import threshold
from dse.models.minifloat_type import MinifloatType, from_float_quant


def _scalar(lw: Lowering, node: Any, i: int, what: str) -> float:
    c = lw.const(node.input[i]) if len(node.input) > i else None
    v = None if c is None or c.value is None else np.asarray(c.value, dtype=np.float64)
    if v is None or v.size != 1 or not np.isfinite(v.flat[0]):
        raise ModelLoadError(f"FloatQuant {node.name!r}: the {what} (input {i}) is not one "
                             "constant number; export with a fixed minifloat format")
    return float(v.flat[0])


def float_format(lw: Lowering, node: Any) -> MinifloatType:
    """The minifloat format of a FloatQuant node (a clear error for what dse cannot map)."""
    E, M = _scalar(lw, node, 2, "exponent bit width"), _scalar(lw, node, 3, "mantissa bit width")
    bias, max_val = _scalar(lw, node, 4, "exponent bias"), _scalar(lw, node, 5, "max_val")
    if E != round(E) or M != round(M) or not 1 <= E <= 8 or not 0 <= M <= 10:
        raise ModelLoadError(f"FloatQuant {node.name!r}: E{E:g}M{M:g} is not a minifloat dse "
                             "maps (integer E 1..8, M 0..10)")
    if str(attr(node, "rounding_mode", "ROUND")).upper() != "ROUND":
        raise ModelLoadError(f"FloatQuant {node.name!r}: rounding mode "
                             f"{attr(node, 'rounding_mode')!r}; dse maps round-to-nearest-even")
    try:
        return from_float_quant(int(E), int(M), bias, max_val, bool(attr(node, "has_inf", 0)),
                                bool(attr(node, "has_nan", 0)))
    except ValueError as e:
        raise ModelLoadError(f"FloatQuant {node.name!r}: {e}") from None


def decode_weights(x: np.ndarray, scale: Any, fmt: MinifloatType) -> np.ndarray:
    """The weights qonnx's FloatQuant produces, as integers in subnormal units."""
    from qonnx.custom_op.general.floatquant import float_quant

    x32 = np.asarray(x, dtype=np.float32)
    s32 = np.asarray(scale, dtype=np.float32)
    q = float_quant(x32, s32, fmt.exponent_bits, fmt.mantissa_bits, fmt.bias, True,
                    np.float32(fmt.max_value), rounding_mode="ROUND")
    with np.errstate(all="ignore"):
        ints = np.round(np.asarray(q, dtype=np.float64) / (s32.astype(np.float64) * fmt.unit))
    return ints


def level_thresholds(fmt: MinifloatType, scale: Any) -> list[np.ndarray]:
    """Thresholds on the quantizer's input value: halfway between neighbouring levels, one
    per step, each scalar or per channel (the scale's shape)."""
    lv = fmt.levels().astype(np.float64) * fmt.unit
    mids = (lv[:-1] + lv[1:]) / 2
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    return [m * s if s.size > 1 else np.asarray(m * s[0]) for m in mids]


@rule("FloatQuant")
def lower_floatquant(lw: Lowering, node: Any) -> None:
    fmt = float_format(lw, node)
    sc = lw.const(node.input[1])
    if sc is None or sc.value is None:
        raise ModelLoadError(f"FloatQuant {node.name!r}: the scale is not a constant")
    scale = np.asarray(sc.value, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise ModelLoadError(f"FloatQuant {node.name!r}: scales must be finite and positive")
    c0 = lw.const(node.input[0])
    if c0 is not None:  # weights
        ints = None if c0.value is None else decode_weights(c0.value, scale, fmt)
        lw.consts[node.output[0]] = Const(c0.value, fmt.name, scale * fmt.unit, ints)
        return
    s = lw.stream_in(node)
    steps = len(fmt.levels()) - 1
    lw.notes.append(f"{node.name}: minifloat {fmt.name} activations as {steps} thresholds "
                    "(codes, decoded per lane by the minifloat consumer)")
    threshold(lw, node, s, fmt.name, steps, 0, scale * fmt.unit,
              values=level_thresholds(fmt, scale))
