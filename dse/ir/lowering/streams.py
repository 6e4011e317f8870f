"""Other stream ops: Softmax -> HWSoftmax, TopK -> LabelSelect, Pad -> FMPadding,
Concat -> StreamingConcat.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.lowering.attention import scores_to_softmax
from dse.ir.lowering.core import (
    Lowering,
    Stream,
    attr,
    known,
    rule,
    vec_channels,
)
from dse.ir.lowering.tokens import pad_tokens, select_token
from dse.models._common import dtype as qdtype
from dse.models._common import prod
from dse.models.eltwise import smallest_covering


@rule('Softmax')
def lower_softmax(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node, keep_attn=True, keep_layout=True)
    if s.attn is not None:
        scores_to_softmax(lw, node, s)
        return
    s = lw.flush(s, node, to_hw=True, force=True)
    shape = lw.shape(node.output[0])
    attrs = {"NumChannels": shape[-1], "SIMD": 1, "ifm_dim": list(shape),
             "input_data_type": s.dtype, "output_data_type": "FLOAT32"}
    idx = lw.add_layer("HWSoftmax", attrs, [s.wire], node, "FLOAT32", prod(shape))
    lw.put(node, lw.out_stream(idx, shape, "FLOAT32", cl=s.cl))


@rule('TopK')
def lower_topk(lw: Lowering, node: Any) -> None:
    s = lw.flush(lw.stream_in(node), node)
    k = int(np.asarray(lw.need(node.input[1]).value).flat[0])
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
    pads = [int(x) for x in np.asarray(lw.need(node.input[1]).value).reshape(-1)]
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
    if len(node.input) == 1:  # torch.cat of one tensor (a KV-cache update): the stream itself
        lw.put(node, lw.stream_in(node, keep_layout=True, keep_attn=True))
        return
    if pad_tokens(lw, node):  # constant tokens around a token stream (ViT's class token)
        return
    ss = [lw.stream_in(node, i) for i in range(len(node.input))]
    same = all(np.shape(x.a) == np.shape(ss[0].a) and np.allclose(x.a, ss[0].a)
               and x.dtype == ss[0].dtype for x in ss)
    ss = [lw.flush(x, node, to_hw=True, force=not same) for x in ss]
    axis = int(attr(node, "axis", 1))
    rank = len(ss[0].shape)
    if axis % rank != (1 if rank == 4 and not any(x.cl for x in ss) else rank - 1):
        lw.unsupported_node(node, "concatenation along a non-channel axis")
        return
    chans = [vec_channels(x)[1] for x in ss]
    types = [x.dtype for x in ss]
    nvec, _ = vec_channels(ss[0])
    attrs = {"SIMD": 1, "ChannelsPerStream": chans, "inputDataTypes": types,
             "numInputVectors": nvec}
    ts = [qdtype(t) for t in types]
    out_dt = (types[0] if len(set(types)) == 1 else "FLOAT32" if any(
        t.startswith("FLOAT") for t in types) else
              smallest_covering(min(t.min() for t in ts), max(t.max() for t in ts)).name)
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("StreamingConcat", attrs, [x.wire for x in ss], node, out_dt,
                         prod(shape))
    lw.put(node, lw.out_stream(idx, shape, out_dt, cl=any(x.cl for x in ss), a=ss[0].a))


def _slice_params(lw: Lowering, node: Any, rank: int,
                  dim: int) -> tuple[int, int, int, int] | None:
    """(axis, start, end, step) of a one-axis Slice with constant bounds (clamped to
    ``dim``), or None."""
    def ints(i: int) -> list[int] | None:
        if len(node.input) <= i or not node.input[i]:
            return None
        c = lw.const(node.input[i])
        return None if c is None else [int(v) for v in np.asarray(c.value).reshape(-1)]

    starts, ends = ints(1), ints(2)
    axes = ints(3) or list(range(len(starts or [])))
    steps = ints(4) or [1] * len(axes)
    if starts is None or ends is None or len(starts) != 1 or steps[0] <= 0:
        return None
    st, en = starts[0], ends[0]
    st = max(0, min(dim, st + dim if st < 0 else st))
    en = max(0, min(dim, en + dim if en < 0 else en))
    return axes[0] % rank, st, en, steps[0]


def _slice_range(lw: Lowering, node: Any, rank: int, dim: int) -> tuple[int, int, int] | None:
    """(axis, start, end) of a step-1 Slice with constant bounds, or None."""
    r = _slice_params(lw, node, rank, dim)
    return None if r is None or r[3] != 1 else r[:3]


@rule('Slice')
def lower_slice(lw: Lowering, node: Any) -> None:
    """Slices of the channel axis that together partition it (e.g. rotate_half of rotary
    position embeddings) -> one StreamingSplit with an output per slice."""
    src = node.input[0]
    s = lw.stream_in(node)
    rank = len(s.shape)
    ch_axis = rank - 1 if (s.cl or rank != 4) else 1
    C = s.shape[ch_axis]
    siblings = []
    for u in lw.ix.users.get(src, []):
        if u.op_type != "Slice":
            continue
        r = _slice_range(lw, u, rank, C)
        if r is None or r[0] != ch_axis:
            continue
        siblings.append((r[1], r[2], u))
    siblings.sort(key=lambda x: x[0])
    cover = [0] + [en for _, en, _ in siblings]
    if not siblings or node not in [u for _, _, u in siblings] or cover[-1] != C or any(
            st != cover[i] for i, (st, _, _) in enumerate(siblings)):
        if not split_interleaved(lw, node, s, ch_axis):
            lw.unsupported_node(node, "Slice that is not part of a partition of the channel "
                                "axis (finn-plus's StreamingSplit splits a stream into "
                                "consecutive channel groups) nor its even/odd channels")
        return
    s = lw.flush(s, node, to_hw=True)
    nvec, _ = vec_channels(s)
    chans = [en - st for st, en, _ in siblings]
    attrs = {"SIMD": 1, "ChannelsPerStream": chans, "inputDataType": s.dtype,
             "numInputVectors": nvec}
    idx = lw.add_layer("StreamingSplit", attrs, [s.wire], node, s.dtype, prod(s.shape),
                       n_out=len(chans))
    lw.layers[idx]["source_nodes"] = [u.name for _, _, u in siblings]
    for k, (_, _, u) in enumerate(siblings):
        wire = lw.layers[idx]["outputs"][k]
        shape = lw.shape(u.output[0])
        lw.tensor_elems[wire] = prod(shape)
        lw.tensor_shape[wire] = tuple(shape)
        if s.cl:
            lw.tensor_cl.add(wire)
        lw.streams[u.output[0]] = Stream(wire=wire, producer=idx, dtype=s.dtype,
                                         shape=tuple(shape), cl=s.cl, a=s.a)
        if u is not node:
            lw.claimed.add(u.name)


def split_interleaved(lw: Lowering, node: Any, s: Stream, ch_axis: int) -> bool:
    """x[..., 0::2] and x[..., 1::2] of the innermost axis (GPT-J's rotate_every_two) -> one
    StreamingSplit of the stream viewed as (..., C/2, 2) with 1 channel per output: in stream
    order the even and odd channels alternate, so routing alternate elements is the even/odd
    permutation and the split at once (no reorder buffer, the mirror of the StreamingConcat
    that interleaves them again). False when ``node`` is not one of such a pair."""
    rank, C = len(s.shape), s.shape[ch_axis]
    if ch_axis != rank - 1 or C % 2:
        return False
    pair: dict[int, Any] = {}
    for u in lw.ix.users.get(node.input[0], []):
        r = _slice_params(lw, u, rank, C) if u.op_type == "Slice" else None
        if r is not None and r[0] == ch_axis and r[1] in (0, 1) and r[2:] == (C, 2):
            pair.setdefault(r[1], u)
    if len(pair) != 2 or node not in pair.values():
        return False
    s = lw.flush(s, node, to_hw=True)
    view = replace(s, shape=tuple(s.shape[:-1]) + (C // 2, 2), cl=True)
    nvec, _ = vec_channels(view)
    attrs = {"SIMD": 1, "ChannelsPerStream": [1, 1], "inputDataType": s.dtype,
             "numInputVectors": nvec}
    idx = lw.add_layer("StreamingSplit", attrs, [s.wire], node, s.dtype, prod(s.shape),
                       n_out=2)
    lw.layers[idx]["source_nodes"] = [pair[0].name, pair[1].name]
    for k in (0, 1):
        u, wire = pair[k], lw.layers[idx]["outputs"][k]
        shape = tuple(lw.shape(u.output[0]))
        lw.tensor_elems[wire] = prod(shape)
        lw.tensor_shape[wire] = shape
        lw.tensor_cl.add(wire)
        lw.streams[u.output[0]] = Stream(wire=wire, producer=idx, dtype=s.dtype, shape=shape,
                                         cl=True, a=s.a)
        if u is not node:
            lw.claimed.add(u.name)
    return True


@rule('Split')
def lower_split(lw: Lowering, node: Any) -> None:
    """Split of the channel axis (e.g. GPT-2's fused QKV projection) -> StreamingSplit."""
    s = lw.stream_in(node)
    rank = len(s.shape)
    ch_axis = rank - 1 if (s.cl or rank != 4) else 1
    if int(attr(node, "axis", 0)) % rank != ch_axis:
        lw.unsupported_node(node, "Split along a non-channel axis")
        return
    C = s.shape[ch_axis]
    sizes = attr(node, "split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        c = lw.const(node.input[1])
        sizes = None if c is None else [int(v) for v in np.asarray(c.value).reshape(-1)]
    if sizes is None:
        n = len(node.output)
        sizes = [C // n] * n if C % n == 0 else None
    if sizes is None or sum(sizes) != C:
        lw.unsupported_node(node, f"Split sizes {sizes} do not partition {C} channels")
        return
    s = lw.flush(s, node, to_hw=True)
    nvec, _ = vec_channels(s)
    attrs = {"SIMD": 1, "ChannelsPerStream": list(sizes), "inputDataType": s.dtype,
             "numInputVectors": nvec}
    idx = lw.add_layer("StreamingSplit", attrs, [s.wire], node, s.dtype, prod(s.shape),
                       n_out=len(sizes))
    for k, o in enumerate(node.output):
        wire = lw.layers[idx]["outputs"][k]
        shape = lw.shape(o)
        lw.tensor_elems[wire] = prod(shape)
        lw.tensor_shape[wire] = tuple(shape)
        if s.cl:
            lw.tensor_cl.add(wire)
        lw.streams[o] = Stream(wire=wire, producer=idx, dtype=s.dtype, shape=tuple(shape),
                               cl=s.cl, a=s.a)


@rule('Gather')
def lower_gather(lw: Lowering, node: Any) -> None:
    """Embedding tables (constant data, index stream) -> Lookup; picking the only entry of a
    unit axis (x[0] of a [1, ...] stream) only relabels the stream."""
    table = lw.const(node.input[0])
    idx_c = lw.const(node.input[1])
    if table is None and idx_c is not None and node.input[0] in lw.streams:
        s = lw.stream_in(node, keep_layout=True, keep_attn=True)
        axis = int(attr(node, "axis", 0)) % len(s.shape)
        if s.shape[axis] == 1 and np.asarray(idx_c.value).size == 1:
            lw.put(node, replace(s, shape=lw.shape(node.output[0])))
            return
        if select_token(lw, node, idx_c.value):
            return
        lw.unsupported_node(node, "Gather of a slice of an activation stream")
        return
    if table is None or node.input[1] not in lw.streams or int(attr(node, "axis", 0)) != 0:
        lw.unsupported_node(node, "Gather that is neither an embedding lookup nor a unit-axis "
                            "pick")
        return
    s = lw.stream_in(node, 1)
    tv = known(table.value, "the embedding table")
    vocab, dim = int(tv.shape[0]), int(np.prod(tv.shape[1:]))
    in_dt = s.dtype
    if in_dt.startswith("FLOAT") or in_dt.startswith("INT64") or in_dt == "":
        in_dt = f"UINT{max(1, int(np.ceil(np.log2(max(vocab, 2)))))}"
    emb_dt = table.dtype or "FLOAT32"
    attrs = {"NumEmbeddings": vocab, "EmbeddingDim": dim, "EmbeddingType": emb_dt,
             "InputType": in_dt, "InputShape": list(s.shape), "mem_mode": "internal_embedded"}
    shape = lw.shape(node.output[0])
    i = lw.add_layer("Lookup", attrs, [s.wire], node, emb_dt, prod(shape))
    scale = table.scale if table.dtype else 1.0
    lw.put(node, lw.out_stream(i, shape, emb_dt, a=np.asarray(scale, dtype=np.float64),
                               cl=True, from_quant=table.dtype is not None))
