"""Layout ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose.

A stream's data order only changes at a Transpose. Reshapes and transposes are collected on
the stream as one pending Reshape -> Transpose -> Reshape and become finn-plus's ``Shuffle``
(head split and merge) or ``Reshape`` layer only when a reader needs the data, as finn-plus's
InferShuffle fuses them; trivial ones only relabel the stream. Attention reads its K input
through the pending layout (it takes K untransposed). The NCHW->NHWC transpose at the input
stays on the host.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.graph import HostNode
from dse.ir.lowering.core import (
    Lowering,
    Stream,
    attr,
    known,
    rule,
    squeezed,
    uniform,
)


def compose(s: Stream, node: Any, out_shape: tuple[int, ...],
            perm: list[int] | None) -> Stream | None:
    """Append a reshape (``perm`` None) or a transpose to the stream's pending layout."""
    if s.layout is None:
        src, t_in, p = s.shape, s.shape, tuple(range(len(s.shape)))
    else:
        src, t_in, p = s.layout
    if perm is None:
        if list(p) == sorted(p):  # reshape before any transpose: regroups the input
            t_in, p = tuple(out_shape), tuple(range(len(out_shape)))
        # a reshape after the transpose only changes the final shape
    else:
        if list(s.shape) != [t_in[i] for i in p]:
            return None  # a reshape came after the earlier transpose: two Shuffles
        p = tuple(p[i] for i in perm)
    if list(p) == sorted(p) and squeezed(src) == squeezed(out_shape):
        return replace(s, shape=tuple(out_shape), layout=None, layout_nodes=())
    layout = (tuple(src), tuple(t_in), tuple(p))
    return replace(s, shape=tuple(out_shape), layout=layout,
                   layout_nodes=s.layout_nodes + (node.name,), cl=True)


@rule('Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose')
def layout(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node, keep_layout=True)
    out_shape = lw.shape(node.output[0])
    perm = list(node_perm(node, len(s.shape))) if node.op_type == "Transpose" else None
    if s.layout is None and (moves_only_unit_axes(s.shape, perm) if perm is not None
                             else squeezed(s.shape) == squeezed(out_shape)):
        # the data order stays; a stream that is not NCHW keeps its channels innermost
        lw.put(node, replace(s, shape=out_shape, cl=s.cl or len(s.shape) != 4))
        return
    if perm is not None:
        if s.producer is None and s.layout is None and not s.cl and len(s.shape) == 4:
            # the NCHW -> NHWC transpose at the input stays on the host side in FINN
            lw.host.append(HostNode(name=node.name, op_type="Transpose",
                                    reason="layout change before the first HW layer"))
            lw.put(node, replace(s, shape=out_shape))
            return
    if s.pending and not (uniform(s.a) and uniform(s.b)):
        # per-channel float ops before a layout change are applied first (as FINN's
        # streamlining leaves them: an ElementwiseMul/Add in front of the Shuffle)
        s = lw.flush(s, node)
    s = lw.emit_deferred(s, node)
    if s.pending:  # scalars commute with any layout change
        s = replace(s, a=np.asarray(s.a).reshape(-1)[:1].reshape(()),
                    b=np.asarray(s.b).reshape(-1)[:1].reshape(()))
    out = compose(s, node, tuple(out_shape), perm)
    if out is None:  # transpose after reshape after transpose: two Shuffles
        s = lw.materialize_layout(s, node)
        out = compose(s, node, tuple(out_shape), perm)
    lw.put(node, known(out, "the layout after two Shuffles"))


def moves_only_unit_axes(shape: tuple[int, ...], perm: list[int]) -> bool:
    """A transpose that keeps the order of every axis longer than 1 leaves the data order."""
    big = [p for p in perm if shape[p] != 1]
    return big == sorted(big)


def node_perm(node: Any, rank: int) -> tuple[int, ...]:
    p = attr(node, "perm")
    return tuple(p) if p else tuple(reversed(range(rank)))
