"""Other stream ops: Softmax -> HWSoftmax, TopK -> LabelSelect, Pad -> FMPadding,
Concat -> StreamingConcat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.ir.lowering.attention import scores_to_softmax
from dse.ir.lowering.core import (
    Lowering,
    attr,
    rule,
    vec_channels,
)
from dse.models._common import dtype as qdtype
from dse.models._common import prod
from dse.models.eltwise import smallest_covering


@rule('Softmax')
def lower_softmax(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node, keep_attn=True, keep_layout=True)
    if s.attn is not None:
        scores_to_softmax(lw, node, s)
        return
    s = lw.flush(s, node, to_hw=True)
    shape = lw.shape(node.output[0])
    attrs = {"NumChannels": shape[-1], "SIMD": 1, "ifm_dim": list(shape),
             "input_data_type": s.dtype, "output_data_type": "FLOAT32"}
    idx = lw.add_layer("HWSoftmax", attrs, [s.wire], node, "FLOAT32", prod(shape))
    lw.put(node, lw.out_stream(idx, shape, "FLOAT32", cl=s.cl))


@rule('TopK')
def lower_topk(lw: Lowering, node: Any) -> None:
    s = lw.flush(lw.stream_in(node), node)
    k = int(np.asarray(lw.const(node.input[1]).value).flat[0])
    nvec, C = vec_channels(s)
    attrs = {"Labels": C, "PE": 1, "K": k, "inputDataType": s.dtype, "numInputVectors": nvec}
    out_bits = max(8, -(-int(np.ceil(np.log2(max(C, 2)))) // 8) * 8)
    idx = lw.add_layer("LabelSelect", attrs, [s.wire], node, f"UINT{out_bits}", k)
    out = lw.out_stream(idx, lw.shape(node.output[-1]), f"UINT{out_bits}")
    for i in range(len(node.output)):
        lw.put(node, out, i)


@rule('Pad')
def lower_pad(lw: Lowering, node: Any) -> None:
    s = lw.flush(lw.stream_in(node), node)
    pads = [int(x) for x in np.asarray(lw.const(node.input[1]).value).reshape(-1)]
    if len(s.shape) != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        lw.unsupported_node(node, "padding other than spatial on NCHW")
        return
    _, C, H, W = s.shape
    attrs = {"ImgDim": [H, W], "Padding": [pads[2], pads[3], pads[6], pads[7]],
             "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype, "numInputVectors": 1}
    out_shape = lw.shape(node.output[0])
    idx = lw.add_layer("FMPadding", attrs, [s.wire], node, s.dtype, prod(out_shape))
    lw.put(node, lw.out_stream(idx, out_shape, s.dtype))


@rule('Concat')
def lower_concat(lw: Lowering, node: Any) -> None:
    ss = [lw.flush(lw.stream_in(node, i), node) for i in range(len(node.input))]
    axis = int(attr(node, "axis", 1))
    rank = len(ss[0].shape)
    if axis % rank != (1 if rank == 4 else rank - 1):
        lw.unsupported_node(node, "concatenation along a non-channel axis")
        return
    chans = [vec_channels(x)[1] for x in ss]
    types = [x.dtype for x in ss]
    nvec, _ = vec_channels(ss[0])
    attrs = {"SIMD": 1, "ChannelsPerStream": chans, "inputDataTypes": types,
             "numInputVectors": nvec}
    ts = [qdtype(t) for t in types]
    out_dt = (types[0] if len(set(types)) == 1 else
              smallest_covering(min(t.min() for t in ts), max(t.max() for t in ts)).name)
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("StreamingConcat", attrs, [x.wire for x in ss], node, out_dt,
                         prod(shape))
    lw.put(node, lw.out_stream(idx, shape, out_dt))
