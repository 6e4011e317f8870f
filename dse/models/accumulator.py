"""The integer ranges and types of a matrix-vector accumulator (qonnx's
``calculate_matvec_accumulator_range`` and FINN's ``minimize_accumulator_width`` rules): the
data-type rules the cost models and the IR's bit-width minimization share."""

from __future__ import annotations

import math

import numpy as np

from dse.models._common import dtype as qdtype


def matvec_range(w: np.ndarray, in_type: str) -> tuple[float, float]:
    """qonnx's calculate_matvec_accumulator_range for a (MW, MH) integer matrix."""
    t = qdtype(in_type)
    lo, hi = float(t.min()), float(t.max())
    pos = w > 0
    max_v = np.where(pos, w * hi, w * lo).sum(axis=0).max()
    min_v = np.where(pos, w * lo, w * hi).sum(axis=0).min()
    return float(min_v), float(max_v)


def acc_type(acc_min: float, acc_max: float) -> str:
    if acc_min >= 0:
        return f"UINT{math.ceil(math.log2(acc_max + 1))}"  # UINT0 for all-zero weights, as FINN
    return f"INT{math.ceil(math.log2(max(-acc_min, 1 + acc_max)) + 1)}"


def worst_case_range(mw: int, w_type: str, in_type: str) -> tuple[float, float]:
    wt = qdtype(w_type)
    lo = matvec_range(np.full((mw, 1), float(wt.min())), in_type)
    hi = matvec_range(np.full((mw, 1), float(wt.max())), in_type)
    return min(lo + hi), max(lo + hi)
