"""Hadamard rotations -> dse's ``Hadamard`` layer (a streaming fast Walsh-Hadamard transform,
``dse.models.hadamard``) instead of a dense n x n MVAU.

Two exporter forms are recognized:

* a MatMul by a constant Hadamard matrix: a square W whose entries all have one magnitude c and
  with W W^T = n c^2 I (an online rotation as QuaRot/SpinQuant apply it, exported as a matmul);
  the LLM block builder writes the same MatMul with a symbolic ``HADAMARD<m>`` weight (a
  Hadamard of transform length m, never materialized);
* a hand-written FWHT (butterfly stages of Reshape/Gather/Slice/Split, Add and Sub, then
  Concat/stack and Reshape): ``dse.ir.fwht.fold_fwht`` (run by ``prepare``) replaces it by
  one MatMul with the Hadamard matrix it computes, which the rule above lowers.

brevitas' ``RotatedModule`` did not export in our hands (brevitas 0.13.4), a hand-written
FWHT does; both paths are tested.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dse.ir.fwht import hadamard_scale
from dse.ir.lowering.core import Const, Lowering, Stream
from dse.models._common import prod

HADAMARD = "HADAMARD"  # symbolic weight type: HADAMARD<m> (transform length m)


def symbolic_size(c: Const) -> int | None:
    """The transform length of a symbolic ``HADAMARD<m>`` weight."""
    t = str(c.dtype or "")
    if t.startswith(HADAMARD + "<") and t.endswith(">"):
        return int(t[len(HADAMARD) + 1:-1])
    return None


def _out_type(in_type: str, n: int) -> str:
    from dse.models.minifloat import operand

    return f"INT{operand(in_type).integer_bits + math.ceil(math.log2(n))}"


def rotation(lw: Lowering, node: Any) -> tuple[int, int, float] | None:
    """(channels, transform length, scale c) when ``node`` (a MatMul) multiplies by c times a
    Hadamard matrix (constant, or the symbolic ``HADAMARD<m>`` of the LLM builder)."""
    if node.input[1] in lw.streams:
        return None
    c = lw.const(node.input[1])
    if c is None:
        return None
    size = symbolic_size(c)
    if size is not None:
        return int(lw.shape(node.input[1])[0]), size, float(c.scale)
    if c.value is None:
        return None
    scale = hadamard_scale(c.value)
    if scale is None:
        return None
    n = int(np.shape(c.value)[0])
    return n, n, scale


def emit_hadamard(lw: Lowering, node: Any, s: Stream, n: int, size: int, scale: float) -> None:
    nvec = list(s.shape[:-1]) or [1]
    out_dt = _out_type(s.dtype, size)
    attrs = {"NumChannels": n, "Size": size if size != n else 0, "PE": 1,
             "inputDataType": s.dtype, "outputDataType": out_dt, "numInputVectors": nvec}
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("Hadamard", attrs, [s.wire], node, out_dt, prod(shape))
    a = np.asarray(s.a, dtype=np.float64) * scale
    lw.put(node, lw.out_stream(idx, shape, out_dt, a=a, cl=True))
