"""Layout ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose. Trivial ones only relabel the
stream; a real reshape is finn-plus's Reshape layer; the NCHW->NHWC transpose at the input
stays on the host.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.graph import HostNode
from dse.ir.lowering.core import (
    Lowering,
    rule,
    squeezed,
    uniform,
)
from dse.models._common import prod


@rule('Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose')
def layout(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    out_shape = lw.shape(node.output[0])
    if squeezed(s.shape) == squeezed(out_shape):
        lw.put(node, replace(s, shape=out_shape))
        return
    if node.op_type == "Transpose":
        if s.producer is None:
            # the NCHW -> NHWC transpose at the input stays on the host side in FINN
            lw.host.append(HostNode(name=node.name, op_type="Transpose",
                                      reason="layout change before the first HW layer"))
            lw.put(node, replace(s, shape=out_shape))
            return
        lw.unsupported_node(node, "transpose of an activation stream")
        return
    if s.pending and not (uniform(s.a) and uniform(s.b)):
        lw.notes.append(f"{node.name}: per-channel float ops moved across a reshape")
    s = lw.emit_deferred(s, node)
    a = np.asarray(s.a).flat[0] if np.asarray(s.a).size else 1.0
    b = np.asarray(s.b).flat[0] if np.asarray(s.b).size else 0.0
    attrs = {"inp_shape": list(s.shape), "out_shape": list(out_shape), "dtype": s.dtype,
             "PE": 1}
    idx = lw.add_layer("Reshape", attrs, [s.wire], node, s.dtype, prod(out_shape))
    lw.put(node, lw.out_stream(idx, out_shape, s.dtype, a=a, b=b, pending=s.pending,
                                   nonlinear=s.nonlinear, host=False))
