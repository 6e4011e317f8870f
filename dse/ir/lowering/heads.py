"""Grouped-query attention as exporters write ``repeat_kv``: the K/V stream of ``kvh`` heads
gets a unit axis (Unsqueeze), is broadcast to ``n_rep`` copies (Expand) and the two head axes
merge (Reshape) into ``kvh * n_rep`` heads. No data needs copying in hardware: finn-plus's
attention reads each K/V head for its group of Q heads, so the stream keeps its ``kvh`` heads
and the attention gets ``KVHeads`` (see ``attention.emit_attention``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.exceptions import NodeNotMappable
from dse.ir.lowering.core import Const, Lowering, attr, rule
from dse.ir.lowering.layout import compose
from dse.models._common import prod


def repeat_kv_reshape(lw: Lowering, node: Any, shape: tuple[int, ...]) -> Any:
    """The Reshape that merges the broadcast axis into the head axis, or None."""
    out = tuple(lw.shape(node.output[0]))
    rs = lw.only_user(node.output[0], ("Reshape",))
    if rs is None or len(out) < 4 or len(shape) != len(out):
        return None
    axis = [i for i, (a, b) in enumerate(zip(shape, out, strict=True)) if a != b]
    merged = tuple(lw.shape(rs.output[0]))
    if len(axis) != 1 or axis[0] != len(out) - 3 or shape[axis[0]] != 1:
        return None
    i = axis[0]
    if merged != out[:i - 1] + (out[i - 1] * out[i],) + out[i + 1:]:
        return None
    return rs


@rule('Expand')
def lower_expand(lw: Lowering, node: Any) -> None:
    c = lw.const(node.input[0])
    if c is not None:  # a constant broadcast, e.g. ViT's class token to the batch
        shape = lw.shape(node.output[0])
        value = None if c.value is None else np.broadcast_to(c.value, shape).copy()
        lw.consts[node.output[0]] = Const(value, c.dtype, c.scale)
        return
    s = lw.stream_in(node, keep_layout=True)
    shape = tuple(s.shape)
    rs = repeat_kv_reshape(lw, node, shape)
    if rs is None:
        raise NodeNotMappable("Expand that is not a repeat of attention heads (Unsqueeze -> "
                              "Expand of the new axis -> Reshape into the head axis); FINN has "
                              "no HW layer that broadcasts a stream")
    i = len(shape) - 3
    heads = shape[:i] + shape[i + 1:]  # the K/V heads as they are: (..., kvh, T, d)
    out = compose(s, node, heads, None)
    if out is None or prod(heads) != prod(shape):
        raise NodeNotMappable("Expand of attention heads after a layout dse cannot fold")
    lw.claimed.add(rs.name)
    lw.put(rs, out)
    # K is transposed for Q @ K^T right after: shape inference only knows the repeated heads
    tail = rs
    while (t := lw.only_user(tail.output[0], ("Transpose",))) is not None:
        perm = list(attr(t, "perm") or reversed(range(len(out.shape))))
        moved = compose(out, t, tuple(out.shape[p] for p in perm), perm)
        if moved is None:
            break
        out = moved
        lw.claimed.add(t.name)
        lw.put(t, out)
        tail = t
