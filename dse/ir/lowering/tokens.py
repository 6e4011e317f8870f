"""Token-axis ops of vision and encoder transformers, as finn-plus's InferPad1DLayer and
InferSelectTokenLayer lower them: constant tokens concatenated around a token stream
(ViT's class token) -> ``Pad1D``; picking one token of a sequence (the class token into a
classifier or pooler) -> ``SelectToken``. Both need a (1, tokens, channels) stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.ir.lowering.core import Lowering, attr
from dse.models._common import prod


def _token_stream(lw: Lowering, t: str) -> bool:
    s = lw.streams.get(t)
    return s is not None and len(s.shape) == 3 and s.shape[0] == 1


def pad_tokens(lw: Lowering, node: Any) -> bool:
    """Concat([const tokens..., stream, const tokens...], axis=1) -> Pad1D; False when the
    Concat is not that."""
    ins = list(node.input)
    streams = [i for i, t in enumerate(ins) if t in lw.streams]
    if len(streams) != 1 or not _token_stream(lw, ins[streams[0]]):
        return False
    k = streams[0]
    rank = 3
    if int(attr(node, "axis", 1)) % rank != 1:
        return False
    C = lw.streams[ins[k]].shape[2]
    tokens: dict[int, int] = {}  # input index -> constant tokens it adds
    for i, t in enumerate(ins):
        if i == k:
            continue
        c = lw.const(t)
        if c is None or c.value is None:
            return False
        shape = np.shape(c.value)
        if len(shape) != 3 or shape[0] != 1 or shape[2] != C:
            return False
        tokens[i] = int(shape[1])
    left = sum(n for i, n in tokens.items() if i < k)
    right = sum(n for i, n in tokens.items() if i > k)
    s = lw.flush(lw.stream_in(node, k), node, to_hw=True, force=True)
    attrs = {"NumTokens": s.shape[1], "NumChannels": C, "PadLeft": left, "PadRight": right,
             "SIMD": 1, "inputDataType": s.dtype, "outputDataType": s.dtype}
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("Pad1D", attrs, [s.wire], node, s.dtype, prod(shape))
    lw.put(node, lw.out_stream(idx, shape, s.dtype, cl=True))
    return True


def select_token(lw: Lowering, node: Any, index: Any) -> bool:
    """Gather(stream, scalar index, axis=1) of a (1, T, C) stream -> SelectToken."""
    if not _token_stream(lw, node.input[0]) or np.ndim(index) != 0:
        return False
    if int(attr(node, "axis", 0)) % 3 != 1:
        return False
    s = lw.flush(lw.stream_in(node), node, to_hw=True)
    T, C = s.shape[1], s.shape[2]
    i = int(np.asarray(index))
    if not -T <= i < T:
        return False
    attrs = {"NumTokens": T, "NumChannels": C, "TokenIndex": i, "SIMD": 1,
             "inputDataType": s.dtype, "outputDataType": s.dtype}
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("SelectToken", attrs, [s.wire], node, s.dtype, prod(shape))
    lw.put(node, lw.out_stream(idx, shape, s.dtype, cl=True))
    return True
