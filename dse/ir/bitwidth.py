"""FINN's ``step_minimize_bit_width`` on dse's layers, from the network's own weight values.

What FINN (finn-plus 1.6.1) does, reproduced here (facts from its
``MVAU/VVAU.minimize_weight_bit_width`` and ``minimize_accumulator_width`` and qonnx's
``calculate_matvec_accumulator_range``):

* weights: the smallest type holding the integer weight values; a signed range [w_min, w_max]
  takes ``DataType.get_smallest_possible(w_min if |w_min| > w_max else -w_max - 1)``, so
  +-1 weights of a non-XNOR layer become INT2 (BIPOLAR weights on multi-bit activations);
* accumulator: the range of ``x . W`` over every input of the input type, per output column
  (``UINTp`` when it never goes negative, else ``INTp``); XNOR layers store 0/1 weights and
  count them as +-1;
* a layer without activation outputs its accumulator type, rounded up to whole bytes when
  nothing follows it in the graph;
* weights FINN can rewrite at run time or streams from memory (``mem_mode`` external /
  dynamic) use the data-type worst case instead of the values.
"""

from __future__ import annotations

import numpy as np

from dse.models._common import dtype as qdtype
from dse.models.accumulator import acc_type, matvec_range, worst_case_range
from dse.models.minifloat_type import is_minifloat

_STREAMED = ("external", "external_mem", "dynamic")


def weight_type(w_min: float, w_max: float) -> str:
    from qonnx.core.datatype import DataType

    if w_min < 0:
        v = w_min if abs(w_min) > w_max else -w_max - 1
    else:
        v = w_max
    return DataType.get_smallest_possible(v).name


def threshold_type(thresholds: np.ndarray, in_type: str) -> str | None:
    """The type FINN gives a Thresholding's thresholds on an integer input: rounded up and
    clipped to [min, max + 1] of the input (RoundAndClipThresholds), then the smallest type
    that holds them, signed when the input is (Thresholding.minimize_weight_bit_width).
    None when the values are not finite."""
    from qonnx.core.datatype import DataType

    t = np.asarray(thresholds, dtype=np.float64)
    if t.size == 0 or not np.all(np.isfinite(t)):
        return None
    it = qdtype(in_type)
    t = np.clip(np.ceil(t - 1e-9), float(it.min()), float(it.max()) + 1)
    lo, hi = float(t.min()), float(t.max())
    signed = bool(it.signed())
    if lo == hi == 0:
        return "INT2" if signed else "UINT1"
    if lo < 0:
        v = lo if abs(lo) > hi else -hi - 1
    else:
        v = -hi - 1 if signed else hi
    return DataType.get_smallest_possible(v).name


def minimize(attrs: dict, matrix: np.ndarray | None, *, in_key: str = "inputDataType") -> None:
    """Set ``weightDataType`` and ``accDataType`` (and the output type of a layer without
    activation) in ``attrs`` from the (MW, MH) integer weight ``matrix``."""
    in_type = str(attrs[in_key])
    if in_type.startswith("FLOAT"):
        return
    xnor = bool(attrs.get("binaryXnorMode", 0))
    if matrix is not None and (not np.all(np.isfinite(matrix))
                               or np.max(np.abs(matrix), initial=0) > 2.0**31):
        matrix = None  # no usable integer values: FINN's data-type bound applies
    streamed = attrs.get("mem_mode") in _STREAMED or matrix is None
    if streamed:
        mw = int(np.prod(matrix.shape[:-1])) if matrix is not None else int(attrs.get("MW", 1))
        lo, hi = worst_case_range(mw, str(attrs["weightDataType"]), in_type)
    else:
        w = np.asarray(matrix, dtype=np.float64)  # +-1 in XNOR mode, as FINN counts them
        stored = (w + 1) / 2 if xnor else w       # XNOR layers store the weights as 0/1
        if not is_minifloat(attrs["weightDataType"]):  # a minifloat stays one (its integers
            # in subnormal units are what the accumulator sums; dse.models.minifloat_type)
            attrs["weightDataType"] = weight_type(float(stored.min()), float(stored.max()))
        lo, hi = matvec_range(w, in_type)
    adt = acc_type(lo, hi)
    attrs["accDataType"] = adt
    if int(attrs.get("noActivation", 0)):
        attrs["outputDataType"] = adt


def byte_aligned(dtype: str) -> str:
    """FINN rounds the accumulator output of the graph's last layer up to whole bytes."""
    bits = qdtype(dtype).bitwidth()
    aligned = -(-bits // 8) * 8
    return dtype.replace(str(bits), str(aligned)) if aligned != bits else dtype
