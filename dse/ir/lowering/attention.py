"""Activation x activation MatMuls: attention.

Where the graph has the pattern Q @ K^T -> [scale] -> [mask: Add of a constant or Where]
-> Softmax -> [Quant] -> @ V (per head, any number of leading head/batch axes, casts
anywhere), it becomes finn-plus's fused ``ScaledDotProductAttention``: K is read untransposed
(the transpose is taken out of its pending Shuffle), scalar input scales fold into its
softmax dequantization, a causal mask is generated in hardware (``mask_mode`` causal), another
constant mask is stored (``const``). Any other activation x activation MatMul becomes an
MVAU with ``mem_mode`` dynamic when both inputs are integer, as finn-plus's
InferQuantizedMatrixVectorActivation does; with float inputs it is a clear error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.lowering.core import (
    HOOKS,
    Lowering,
    Stream,
    attr,
    bit_width,
    is_value,
    known,
    quant_type,
    rule,
    uniform,
)
from dse.ir.lowering.layout import compose
from dse.models._common import dtype as qdtype
from dse.models._common import prod
from dse.models.eltwise import smallest_covering

PASS_THROUGH = ("Cast", "Identity")
NEG_INF = -1e30


def _const_operand(lw: Lowering, node: Any, t: str) -> Any:
    others = [i for i in node.input if i != t]
    return lw.const(others[0]) if len(others) == 1 else None


def match_attention(lw: Lowering, qk: Any) -> dict[str, Any] | None:
    """The nodes between Q @ K^T and @ V, or None when the MatMul is not attention."""
    t = qk.output[0]
    while True:
        u = lw.only_user(t)
        if u is None:
            return None
        if u.op_type in PASS_THROUGH + ("Mul", "Div", "Add"):
            if u.op_type not in PASS_THROUGH and _const_operand(lw, u, t) is None:
                return None
        elif u.op_type == "Where":
            if lw.const(u.input[0]) is None:
                return None
        elif u.op_type == "Softmax":
            rank = len(lw.shape(t))
            if int(attr(u, "axis", -1)) % rank != rank - 1:
                return None
            softmax = u
            break
        else:
            return None
        t = u.output[0]
    t = softmax.output[0]
    quant = None
    while True:
        u = lw.only_user(t)
        if u is None:
            return None
        if u.op_type in PASS_THROUGH:
            t = u.output[0]
            continue
        if u.op_type == "Quant" and quant is None:
            quant = u
            t = u.output[0]
            continue
        if u.op_type == "MatMul" and u.input[0] == t:
            return {"softmax": softmax.name, "quant": quant, "av": u.name}
        return None


@rule("Where")
def lower_where(lw: Lowering, node: Any) -> None:
    """Where(mask, scores, -inf) or Where(mask, -inf, scores) inside attention: an additive
    mask on the scores (0 where the scores pass, the constant, -inf kept huge, elsewhere)."""
    cond = lw.const(node.input[0])
    for si, ci in ((1, 2), (2, 1)):
        if node.input[si] in lw.streams and lw.const(node.input[ci]) is not None:
            break
    else:
        lw.unsupported_node(node, "Where on activation streams outside attention masking")
        return
    keep_when = si == 1
    s = lw.stream_in(node, si, keep_layout=True, keep_attn=True)
    if cond is None or s.attn is None:
        lw.unsupported_node(node, "Where on an activation stream outside attention masking")
        return
    c = np.asarray(cond.value, dtype=bool)
    y = np.asarray(lw.need(node.input[ci]).value, dtype=np.float64)
    fill = np.where(np.isfinite(y), y, NEG_INF)
    mask = np.where(c, 0.0, fill) if keep_when else np.where(c, fill, 0.0)
    lw.put(node, replace(s, b=np.asarray(s.b, dtype=np.float64) + mask, pending=True))


def act_matmul(lw: Lowering, node: Any) -> None:
    """A MatMul of two activation streams (mvau's rule hands it over)."""
    a_in = lw.streams.get(node.input[0])
    if a_in is not None and a_in.attn is not None and a_in.attn.get("softmax_done"):
        emit_attention(lw, node, lw.stream_in(node, 0, keep_attn=True))
        return
    m = match_attention(lw, node)
    if m is not None:
        q = lw.stream_in(node, 0, keep_layout=True)
        k = lw.stream_in(node, 1, keep_layout=True)
        shape = lw.shape(node.output[0])
        lw.put(node, Stream(wire=node.output[0], producer=None, dtype="FLOAT32", shape=shape,
                            cl=True, attn={"q": q, "k": k, "qk": node.name, **m}))
        return
    dynamic_mvau(lw, node, lw.stream_in(node, 0), lw.stream_in(node, 1))


def scores_to_softmax(lw: Lowering, node: Any, s: Stream) -> None:
    """The Softmax of the pattern: scale and mask so far move into the attention; a quantizer
    of the attention weights becomes its softmax thresholds."""
    att = dict(known(s.attn, "the attention scores"))
    att.update(scale=s.a, mask=s.b, softmax_done=True)
    out = replace(s, attn=att, a=1.0, b=0.0, pending=False)
    lw.put(node, out)
    if att.get("quant") is not None:
        lw.claimed.add(att["quant"].name)
        lw.streams[att["quant"].output[0]] = out


def _scalar_scale(s: Stream) -> float | None:
    if uniform(s.a) and is_value(s.b, 0.0) and not s.nonlinear:
        return float(np.asarray(s.a, dtype=np.float64).reshape(-1)[0]) if np.size(s.a) else 1.0
    return None


def _k_untransposed(lw: Lowering, k: Stream, node: Any) -> Stream:
    rank = len(k.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    shape = tuple(k.shape[:-2]) + (k.shape[-1], k.shape[-2])
    out = compose(k, node, shape, perm)
    if out is None:
        out = compose(lw.materialize_layout(k, node), node, shape, perm)
    return known(out, "K transposed")


def mask_mode(mask: Any, ql: int, kv: int) -> tuple[str, str]:
    m = np.asarray(mask, dtype=np.float64)
    if not np.any(m):
        return "none", "INT0"
    full = np.broadcast_to(m, m.shape[:-2] + (ql, kv)) if m.ndim >= 2 else None
    if full is not None:
        rows = full.reshape(-1, ql, kv)
        causal = np.triu(np.ones((ql, kv), dtype=bool), k=1 + kv - ql)
        if all(np.all(r[causal] <= -1e4) and np.all(r[~causal] == 0) for r in rows):
            return "causal", "INT0"
    return "const", "FLOAT32"


def mask_heads(mask: Any, ql: int, kv: int) -> int:
    """How many distinct per-head masks a constant mask holds (T5's relative position bias
    differs per head; finn-plus's const mask is one (QLen, KVLen) matrix)."""
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim <= 2:
        return 1
    rows = np.broadcast_to(m, m.shape[:-2] + (ql, kv)).reshape(-1, ql, kv)
    return 1 if all(np.array_equal(r, rows[0]) for r in rows[1:]) else len(rows)


def emit_attention(lw: Lowering, node: Any, s: Stream) -> None:
    att = known(s.attn, "the attention scores")
    q, k = att["q"], _k_untransposed(lw, att["k"], node)
    v = lw.stream_in(node, 1)
    deq = 1.0
    parts = []
    for x in (q, k):
        sc = _scalar_scale(x)
        if sc is None:
            x = lw.flush(x, node, to_hw=True)
        else:
            deq *= sc
            x = lw.flush(replace(x, a=1.0, b=0.0, pending=False), node, to_hw=True)
        parts.append(x)
    q, k = parts
    out_scale = _scalar_scale(v)
    v = lw.flush(v if out_scale is None else replace(v, a=1.0, b=0.0, pending=False), node,
                 to_hw=True)
    out_scale = 1.0 if out_scale is None else out_scale
    scale = np.asarray(att["scale"], dtype=np.float64)
    if not uniform(scale):
        lw.unsupported_node(node, "attention scores scaled per element (finn-plus's attention "
                            "takes one softmax scale)")
        return
    deq *= float(scale.reshape(-1)[0]) if scale.size else 1.0
    ql, qk_dim = q.shape[-2], q.shape[-1]
    kv, vd = v.shape[-2], v.shape[-1]
    heads = prod(q.shape[:-2])
    kv_heads = prod(k.shape[:-2])
    if k.shape[-2:] != (kv, qk_dim) or prod(v.shape[:-2]) != kv_heads or heads % kv_heads:
        lw.unsupported_node(node, f"attention with Q {list(q.shape)}, K {list(k.shape)}, V "
                            f"{list(v.shape)} (K and V heads must divide the Q heads)")
        return
    mode, mtype = mask_mode(att["mask"], ql, kv)
    types = [x.dtype for x in (q, k, v)]
    floaty = any(t.startswith("FLOAT") for t in types)
    a_type, act_sm = "FLOAT32" if floaty else "UINT32", "none"
    sources = [att["qk"], att["softmax"], node.name]
    if att.get("quant") is not None:
        qn = att["quant"]
        bits = bit_width(lw, qn, 3)
        a_type = quant_type(bits, bool(attr(qn, "signed", 1)), bool(attr(qn, "narrow", 0)))[0]
        act_sm = "thresholds"
        scale_c = lw.const(qn.input[1])
        out_scale *= (float(np.asarray(scale_c.value).reshape(-1)[0]) if scale_c is not None
                      else 1.0)
        sources.append(qn.name)
    if floaty:
        o_type = "FLOAT32"
    else:
        tv, ta = qdtype(v.dtype), qdtype(a_type)
        hi = kv * max(abs(tv.min()), abs(tv.max())) * max(abs(ta.min()), abs(ta.max()))
        o_type = smallest_covering(-hi, hi).name
    qk_gcd = int(np.gcd(qk_dim, vd))
    attrs = {
        "QKDim": qk_dim, "QLen": ql, "VDim": vd, "KVLen": kv, "Heads": heads,
        "EmbFold": qk_gcd, "SeqFold": kv,  # folds = sequential iterations: start unfolded
        "QType": q.dtype, "KType": k.dtype, "VType": v.dtype, "MType": mtype,
        "AType": a_type, "OType": o_type, "AccASoftmax": "FLOAT32",
        "ActASoftmax": act_sm, "DequantSoftmax": deq, "mask_mode": mode,
    }
    if kv_heads != heads:  # grouped-query attention: K/V heads shared by groups of Q heads
        attrs["KVHeads"] = kv_heads
    n_masks = mask_heads(att["mask"], ql, kv) if mode == "const" else 1
    if n_masks > 1:  # dse extension: one stored mask per head (finn-plus stores one for all)
        attrs["MaskHeads"] = n_masks
    inputs = [q.wire, k.wire, v.wire]
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("ScaledDotProductAttention", attrs, inputs, node, o_type, prod(shape))
    lw.layers[idx]["source_nodes"] = sources
    lw.put(node, lw.out_stream(idx, shape, o_type, a=out_scale, pending=out_scale != 1.0,
                               cl=True))


def dynamic_mvau(lw: Lowering, node: Any, a: Stream, b: Stream) -> None:
    sa, sb = _scalar_scale(a), _scalar_scale(b)
    a = lw.flush(a if sa is None else replace(a, a=1.0, pending=False), node, to_hw=True)
    b = lw.flush(b if sb is None else replace(b, a=1.0, pending=False), node, to_hw=True)
    if a.dtype.startswith("FLOAT") or b.dtype.startswith("FLOAT"):
        lw.unsupported_node(node, "float activation x activation MatMul outside the attention "
                            "pattern (finn-plus maps it to an MVAU only when both inputs are "
                            "quantized: add Quant nodes on both)")
        return
    K, N = b.shape[-2], b.shape[-1]
    ta, tb = qdtype(a.dtype), qdtype(b.dtype)
    corners = [x * y for x in (ta.min(), ta.max()) for y in (tb.min(), tb.max())]
    acc = smallest_covering(K * min(corners), K * max(corners)).name
    attrs = {"MW": K, "MH": N, "PE": 1, "SIMD": 1, "inputDataType": a.dtype,
             "weightDataType": b.dtype, "outputDataType": acc, "accDataType": acc,
             "noActivation": 1, "binaryXnorMode": 0, "numInputVectors": list(a.shape[:-1]),
             "mem_mode": "dynamic", "ActVal": 0}
    shape = lw.shape(node.output[0])
    idx = lw.add_layer("MVAU", attrs, [a.wire, b.wire], node, acc, prod(shape))
    scale = (sa or 1.0) * (sb or 1.0)
    lw.put(node, lw.out_stream(idx, shape, acc, a=scale, pending=scale != 1.0, cl=True))


def materialize_scores(lw: Lowering, s: Stream, node: Any) -> Stream:
    """Attention scores read by a node outside the pattern (the pattern matcher only lets
    single-reader chains through, so this means an exporter shape it does not know)."""
    qk = known(s.attn, "the attention scores")["qk"]
    lw.unsupported_node(node, f"reads the attention scores of {qk!r} outside the "
                        "Q @ K^T -> scale/mask -> Softmax -> @ V pattern")
    return replace(s, attn=None)


HOOKS["attention"] = materialize_scores
