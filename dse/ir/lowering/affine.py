"""Affine float ops folded into the stream's (scale, bias) map: Mul, Div, Sub, Add of a
constant, BatchNormalization, ReLU/Clip, Identity/Dropout; Add of two streams ->
ElementwiseAdd (with DuplicateStreams at the fork, inserted by the core).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.lowering.core import (
    Lowering,
    Stream,
    attr,
    hw_shape,
    rule,
    uniform,
)
from dse.models._common import dtype as qdtype
from dse.models._common import prod
from dse.models.eltwise import smallest_covering


def channel_const(lw: Lowering, value: Any, s: Stream) -> Any:
    """Broadcast a per-channel vector to the stream's logical layout."""
    v = np.asarray(value, dtype=np.float64)
    if v.size > 1 and len(s.shape) == 4 and v.ndim == 1:
        return v.reshape(1, -1, 1, 1)
    return v


def apply_affine(lw: Lowering, node: Any, s: Stream, mul: Any = 1.0, add: Any = 0.0) -> None:
    """value = mul * value + add, folded into the stream's pending (scale, bias)."""
    a = np.asarray(s.a, dtype=np.float64) * mul
    b = np.asarray(s.b, dtype=np.float64) * mul + add
    shp = lw.ix.shape(node.output[0])
    out = replace(s, a=a, b=b, pending=True,
                  shape=tuple(shp) if shp else s.shape)
    if lw.consumers.get(node.output[0], 0) > 1:
        out = replace(out, forked=True)
    lw.put(node, out)


def binary_const(lw: Lowering, node: Any) -> tuple[Stream, np.ndarray, bool] | None:
    """(stream, constant, constant-first) of a binary op with one constant operand. Pending
    layouts and attention scores stay pending: the constant applies after them."""
    c0, c1 = lw.const(node.input[0]), lw.const(node.input[1])
    if c1 is not None and node.input[0] in lw.streams:
        return (lw.stream_in(node, 0, keep_layout=True, keep_attn=True),
                np.asarray(c1.value, dtype=np.float64), False)
    if c0 is not None and node.input[1] in lw.streams:
        return (lw.stream_in(node, 1, keep_layout=True, keep_attn=True),
                np.asarray(c0.value, dtype=np.float64), True)
    return None


def two_streams(lw: Lowering, node: Any, op: str) -> None:
    """Element-wise op of two activation streams -> Elementwise{op} (both inputs streamed;
    forks get their DuplicateStreams from the core)."""
    s0, s1 = lw.stream_in(node, 0), lw.stream_in(node, 1)
    scale: Any = 1.0
    if op == "Mul" and uniform(s0.a) and uniform(s1.a) and not s0.pending and not s1.pending:
        scale = np.asarray(s0.a, dtype=np.float64) * np.asarray(s1.a, dtype=np.float64)
        s0, s1 = replace(s0, a=1.0), replace(s1, a=1.0)  # scales multiply past the product
    # a sum needs both operands on one scale: materialize them unless they already agree
    force = op == "Add" and not (np.shape(s0.a) == np.shape(s1.a)
                                 and np.allclose(s0.a, s1.a))
    s0 = lw.flush(s0, node, to_hw=True, force=force)
    s1 = lw.flush(s1, node, to_hw=True, force=force)
    t0, t1 = qdtype(s0.dtype), qdtype(s1.dtype)
    if s0.dtype.startswith("FLOAT") or s1.dtype.startswith("FLOAT"):
        out_dt = "FLOAT32"
    elif op == "Add":
        out_dt = smallest_covering(t0.min() + t1.min(), t0.max() + t1.max()).name
    else:  # Mul
        corners = [x * y for x in (t0.min(), t0.max()) for y in (t1.min(), t1.max())]
        out_dt = smallest_covering(min(corners), max(corners)).name
    shape = lw.shape(node.output[0])
    cl = s0.cl or s1.cl
    attrs = {
        "lhs_dtype": s0.dtype, "rhs_dtype": s1.dtype, "out_dtype": out_dt,
        "lhs_shape": hw_shape(replace(s0, cl=cl)), "rhs_shape": hw_shape(replace(s1, cl=cl)),
        "out_shape": hw_shape(replace(s0, shape=tuple(shape), cl=cl)),
        "lhs_style": "input", "rhs_style": "input", "PE": 1,
    }
    idx = lw.add_layer(f"Elementwise{op}", attrs, [s0.wire, s1.wire], node, out_dt,
                       prod(shape))
    a_out = scale if op == "Mul" else s0.a
    lw.put(node, lw.out_stream(idx, shape, out_dt, cl=cl, a=a_out))


@rule('Mul')
def lower_mul(lw: Lowering, node: Any) -> None:
    r = binary_const(lw, node)
    if r is None:
        two_streams(lw, node, "Mul")  # gated MLPs (SwiGLU), x * sigmoid(x)
        return
    s, c, _ = r
    apply_affine(lw, node, s, mul=c)


@rule('Neg')
def lower_neg(lw: Lowering, node: Any) -> None:
    apply_affine(lw, node, lw.stream_in(node, keep_layout=True, keep_attn=True), mul=-1.0)


@rule('Cast')
def lower_cast(lw: Lowering, node: Any) -> None:
    to = int(attr(node, "to", 1))
    if to not in (1, 10, 11):  # FLOAT, FLOAT16, DOUBLE: a float stays a float
        lw.unsupported_node(node, f"Cast to ONNX type {to} (only casts between float types "
                            "are identities FINN can drop)")
        return
    lw.put(node, lw.stream_in(node, keep_layout=True, keep_attn=True))


@rule('Div')
def lower_div(lw: Lowering, node: Any) -> None:
    r = binary_const(lw, node)
    if r is None or r[2]:
        lw.unsupported_node(node, "division by an activation stream")
        return
    apply_affine(lw, node, r[0], mul=1.0 / r[1])


@rule('Sub')
def lower_sub(lw: Lowering, node: Any) -> None:
    r = binary_const(lw, node)
    if r is None:
        lw.unsupported_node(node, "difference of two activation streams")
        return
    s, c, swapped = r
    if swapped:
        apply_affine(lw, node, s, mul=-1.0, add=c)
    else:
        apply_affine(lw, node, s, add=-c)


@rule('Add')
def lower_add(lw: Lowering, node: Any) -> None:
    if node.name in lw.offset_adds:  # already in the quantizer's ActVal
        lw.put(node, lw.stream_in(node))
        return
    r = binary_const(lw, node)
    if r is not None:
        apply_affine(lw, node, r[0], add=r[1])
        return
    two_streams(lw, node, "Add")


@rule('BatchNormalization')
def lower_batchnormalization(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    g, beta, mean, var = (np.asarray(lw.need(t).value, dtype=np.float64)
                          for t in node.input[1:5])
    eps = float(attr(node, "epsilon", 1e-5))
    k = g / np.sqrt(var + eps)
    apply_affine(lw, node, s, mul=channel_const(lw, k, s),
                      add=channel_const(lw, beta - mean * k, s))


@rule('Relu', 'Clip')
def lower_relu(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    lw.put(node, replace(s, pending=True, nonlinear=True))


@rule('Identity', 'Dropout')
def lower_identity(lw: Lowering, node: Any) -> None:
    lw.put(node, lw.stream_in(node, keep_layout=True, keep_attn=True))
