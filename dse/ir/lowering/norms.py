"""Normalizations and float activations of transformers.

LayerNormalization -> finn-plus LayerNorm; RMSNorm as exporters write it (Pow 2 -> ReduceMean
-> Add eps -> Sqrt -> Div 1/x or Reciprocal -> Mul x) -> LayerNorm too, with dse's ``rms``
attribute (finn-plus's kernel subtracts the mean; the cost is the same structure). The
affine part (gamma, beta) stays pending on the stream, so the next quantizer absorbs it into
its thresholds as FINN's streamlining does, or it becomes ElementwiseMul/Add.
Gelu, Sigmoid, Tanh, Erf and x * Sigmoid(x) (SiLU) -> PWPolyF.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.exceptions import NodeNotMappable
from dse.ir.lowering.core import Lowering, attr, is_value, rule, vec_channels
from dse.models._common import prod


def norm_layer(lw: Lowering, node: Any, x_input: int, sources: list[str], eps: float,
               rms: bool, gamma: Any = 1.0, beta: Any = 0.0) -> Any:
    s = lw.flush(lw.stream_in(node, x_input), node, to_hw=True, force=True)
    shape = s.shape
    attrs = {"SIMD": 1, "ifm_dim": list(shape) if s.cl or len(shape) != 4 else
             [shape[0], shape[2], shape[3], shape[1]], "epsilon": eps,
             "inputDataType": s.dtype, "outputDataType": "FLOAT32"}
    if rms:
        attrs["rms"] = 1
    idx = lw.add_layer("LayerNorm", attrs, [s.wire], node, "FLOAT32", prod(shape))
    lw.layers[idx]["source_nodes"] = sources
    pending = not (is_value(gamma, 1.0) and is_value(beta, 0.0))
    out = lw.out_stream(idx, shape, "FLOAT32", a=np.asarray(gamma, dtype=np.float64),
                        b=np.asarray(beta, dtype=np.float64), pending=pending, cl=True)
    return out


@rule('LayerNormalization')
def lower_layernorm(lw: Lowering, node: Any) -> None:
    rank = len(lw.shape(node.input[0]))
    if int(attr(node, "axis", -1)) % rank != rank - 1:
        lw.unsupported_node(node, "normalization over more than the last axis (finn-plus's "
                            "LayerNorm normalizes the last one)")
        return
    g = lw.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    b = lw.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    out = norm_layer(lw, node, 0, [node.name], float(attr(node, "epsilon", 1e-5)), False,
                     1.0 if g is None else g.value, 0.0 if b is None else b.value)
    lw.put(node, out)


def _scalar(lw: Lowering, t: str) -> float | None:
    c = lw.const(t)
    if c is None or c.value is None or np.asarray(c.value).size != 1:
        return None
    return float(np.asarray(c.value).reshape(-1)[0])


def match_rmsnorm(lw: Lowering, pow_node: Any) -> tuple[list[Any], float, Any] | None:
    """Pow(x, 2) -> ReduceMean(last) -> Add(eps) -> Sqrt -> 1/. -> Mul(x, .): the nodes, eps and
    the final Mul; None when the chain is anything else."""
    x = pow_node.input[0]
    if _scalar(lw, pow_node.input[1]) != 2.0:
        return None
    rm = lw.only_user(pow_node.output[0], ("ReduceMean",))
    if rm is None:
        return None
    rank = len(lw.shape(x))
    axes = attr(rm, "axes")
    if axes is None and len(rm.input) > 1 and rm.input[1]:
        c = lw.const(rm.input[1])
        axes = None if c is None else [int(v) for v in np.asarray(c.value).reshape(-1)]
    if axes is None or [a % rank for a in axes] != [rank - 1]:
        return None
    add = lw.only_user(rm.output[0], ("Add",))
    if add is None:
        return None
    eps = _scalar(lw, add.input[1] if add.input[0] == rm.output[0] else add.input[0])
    sq = lw.only_user(add.output[0], ("Sqrt",))
    if eps is None or sq is None:
        return None
    inv = lw.only_user(sq.output[0], ("Div", "Reciprocal"))
    if inv is None or (inv.op_type == "Div" and (inv.input[1] != sq.output[0]
                                                 or _scalar(lw, inv.input[0]) != 1.0)):
        return None
    mul = lw.only_user(inv.output[0], ("Mul",))
    if mul is None or x not in mul.input:
        return None
    return [pow_node, rm, add, sq, inv, mul], eps, mul


GELU_CUBIC = 0.044715  # the tanh approximation of GELU (Hendrycks & Gimpel, 2016)
SQRT_2_OVER_PI = 0.7978845608


def _other(node: Any, t: str) -> str:
    rest = [i for i in node.input if i != t]
    return rest[0] if rest else t


def match_tanh_gelu(lw: Lowering, pow_node: Any) -> tuple[str, list[Any]] | None:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as GPT-2's gelu_new and torch's
    gelu(approximate='tanh') export it, starting at Pow(x, 3): (x, the nodes, output last)."""
    x = pow_node.input[0]
    if _scalar(lw, pow_node.input[1]) != 3.0:
        return None
    chain = [pow_node]
    t = pow_node.output[0]
    for op, const in (("Mul", GELU_CUBIC), ("Add", None), ("Mul", SQRT_2_OVER_PI),
                      ("Tanh", None), ("Add", 1.0)):
        u = lw.only_user(t, (op,))
        if u is None:
            return None
        c = _scalar(lw, _other(u, t)) if const is not None else None
        if const is not None and (c is None or abs(c - const) > 1e-4 * const):
            return None
        if op == "Add" and const is None and _other(u, t) != x:
            return None
        chain.append(u)
        t = u.output[0]
    mul = lw.only_user(t, ("Mul",))
    if mul is None:
        return None
    half = lw.ix.producer(_other(mul, t))
    if half is not None and half.op_type == "Mul" and x in half.input \
            and _scalar(lw, _other(half, x)) == 0.5:
        return x, [half, *chain, mul]  # (0.5 x) * (1 + tanh(..))
    if _other(mul, t) == x:  # x * (1 + tanh(..)) * 0.5
        last = lw.only_user(mul.output[0], ("Mul",))
        if last is not None and _scalar(lw, _other(last, mul.output[0])) == 0.5:
            return x, [*chain, mul, last]
    return None


@rule('Pow')
def lower_pow(lw: Lowering, node: Any) -> None:
    g = match_tanh_gelu(lw, node)
    if g is not None and g[0] in lw.streams:
        x, nodes = g
        lw.claimed.update(n.name for n in nodes if n is not node)
        pwpolyf(lw, node, "gelu", out_node=nodes[-1], sources=[n.name for n in nodes], x=x)
        return
    m = match_rmsnorm(lw, node)
    if m is None:
        lw.unsupported_node(node, "Pow outside an RMSNorm (x * 1/sqrt(mean(x^2) + eps)) or a "
                            "tanh GELU (x + 0.044715 x^3)")
        return
    nodes, eps, mul = m
    lw.claimed.update(n.name for n in nodes[1:])
    out = norm_layer(lw, node, 0, [n.name for n in nodes], eps, True)
    lw.put(mul, out)


# -- activations ----------------------------------------------------------------------------

def pwpolyf(lw: Lowering, node: Any, func: str, out_node: Any | None = None,
            sources: list[str] | None = None, x: str | None = None) -> None:
    """``x``: the activation the function applies to, when it is not ``node``'s input (the
    GELU pattern starts before its Erf)."""
    if x is None:
        s = lw.stream_in(node)
    else:
        got = lw.streams.get(x)
        if got is None:
            raise NodeNotMappable(f"input {x!r} is not an activation stream")
        s = got
    s = lw.flush(s, node, to_hw=True, force=True)
    if not s.dtype.startswith("FLOAT"):
        lw.unsupported_node(node, f"{node.op_type} on an integer stream (finn-plus's PWPolyF "
                            "takes FLOAT32; quantized activations should be thresholds)")
        return
    nvec, C = vec_channels(s)
    attrs = {"func": func, "K": 3, "PE": 1, "NumChannels": C, "numInputVectors": nvec,
             "degree": 2, "inputDataType": "FLOAT32", "outputDataType": "FLOAT32"}
    idx = lw.add_layer("PWPolyF", attrs, [s.wire], node, "FLOAT32", prod(s.shape))
    if sources:
        lw.layers[idx]["source_nodes"] = sources
    lw.put(out_node or node, lw.out_stream(idx, s.shape, "FLOAT32", cl=s.cl))


@rule('Gelu')
def lower_gelu(lw: Lowering, node: Any) -> None:
    pwpolyf(lw, node, "gelu")


@rule('Tanh')
def lower_tanh(lw: Lowering, node: Any) -> None:
    pwpolyf(lw, node, "tanh")


def match_erf_gelu(lw: Lowering, erf: Any) -> tuple[str, list[Any]] | None:
    """x / sqrt(2) -> Erf -> + 1 -> * 0.5 -> * x (GELU as torch writes it): (x, the nodes)."""
    div = lw.ix.producer(erf.input[0])
    if div is None or div.op_type not in ("Div", "Mul"):
        return None
    k = 1.4142135 if div.op_type == "Div" else 1 / 1.4142135
    d = _scalar(lw, div.input[1])
    if d is None or abs(d - k) > 1e-3:
        return None
    x = div.input[0]
    add = lw.only_user(erf.output[0], ("Add",))
    if add is None or _scalar(lw, [i for i in add.input if i != erf.output[0]][0]) != 1.0:
        return None
    half = lw.only_user(add.output[0], ("Mul",))
    if half is None:
        return None
    other = [i for i in half.input if i != add.output[0]][0]
    mul_x = None
    if _scalar(lw, other) == 0.5:
        mul_x = lw.only_user(half.output[0], ("Mul",))
        nodes = [div, erf, add, half, mul_x]
    elif other == x:  # (x * (1 + erf)) * 0.5
        mul_x = lw.only_user(half.output[0], ("Mul",))
        nodes = [div, erf, add, half, mul_x]
        if mul_x is None or _scalar(lw, [i for i in mul_x.input if i != half.output[0]][0]) \
                != 0.5:
            return None
        return x, nodes
    if mul_x is None or x not in mul_x.input:
        return None
    return x, nodes


@rule('Erf')
def lower_erf(lw: Lowering, node: Any) -> None:
    m = match_erf_gelu(lw, node)
    if m is None or m[0] not in lw.streams:
        lw.unsupported_node(node, "Erf outside GELU (finn-plus maps x/sqrt(2) -> Erf -> +1 "
                            "-> *0.5 -> *x to PWPolyF gelu)")
        return
    x, nodes = m
    lw.claimed.update(n.name for n in nodes[2:])
    pwpolyf(lw, node, "gelu", out_node=nodes[-1], sources=[n.name for n in nodes], x=x)


@rule('Sigmoid')
def lower_sigmoid(lw: Lowering, node: Any) -> None:
    mul = lw.only_user(node.output[0], ("Mul",))
    if mul is not None and node.input[0] in mul.input:  # SiLU: x * sigmoid(x)
        lw.claimed.add(mul.name)
        pwpolyf(lw, node, "silu", out_node=mul, sources=[node.name, mul.name])
        return
    pwpolyf(lw, node, "sigmoid")
