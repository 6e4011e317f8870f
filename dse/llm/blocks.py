"""One transformer block of an architecture as the ONNX graph Brevitas exports for it, with
symbolic weights, lowered by dse's own lowering.

The weight matrices are never materialized: they are named in the graph with their shape and
quantized type, and handed to the lowering as constants without values (the lowering then
derives bit widths from the data types, as FINN does for weights it cannot see). Only small
constants are real: quantizer scales, norm parameters, rotary tables of one block. So the
config path and the QONNX path share every lowering rule, and a Llama-2-70B block costs as
little to build as a tiny one.

The graph follows the exporters' patterns (dynamo: one quantizer per distinct Linear input;
Brevitas ``layerwise_quantize`` defaults: every Linear has a quantized input and weights,
norms, softmax and residuals stay float). Masks are not written as tensors: the causal mask
(decoders), ALiBi (BLOOM) and T5's relative position bias are set on the attention layers
after lowering (``finish_attention``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from dse.ir.lowering.core import Const
from dse.llm.config import Arch, QuantSpec
from dse.llm.rotation import positions
from dse.models.minifloat_type import parse as parse_minifloat

QONNX = "qonnx.custom_op.general"


class BlockBuilder:
    """A small ONNX graph writer for the exporter patterns."""

    def __init__(self, quant: QuantSpec) -> None:
        self.q = quant
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.vinfo: dict[str, list[int]] = {}
        self.symbolic: dict[str, Const] = {}
        self.n = 0
        self.act_quant: dict[str, str] = {}  # tensor -> its quantized copy (dedup, dynamo)

    def name(self, op: str) -> str:
        self.n += 1
        return f"{op}_{self.n}"

    def const(self, value: Any, shape: list[int] | None = None) -> str:
        arr = np.asarray(value, dtype=np.float32)
        if shape is not None:
            arr = arr.reshape(shape)
        nm = self.name("c")
        self.inits.append(numpy_helper.from_array(arr, nm))
        self.vinfo[nm] = list(arr.shape)
        return nm

    def ints(self, value: list[int]) -> str:
        nm = self.name("i")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), nm))
        return nm

    def op(self, op: str, inputs: list[str], shape: list[int], domain: str = "",
           **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}",
                                           domain=domain, **attrs))
        self.vinfo[out] = list(shape)
        return out

    def quant(self, x: str, dt: str) -> str:
        """An activation quantizer (Brevitas Int8ActPerTensorFloat style; a FloatQuant as
        brevitas' OCP quantizers export it for a minifloat type)."""
        if x in self.act_quant:
            return self.act_quant[x]
        mf = parse_minifloat(dt)
        if mf is not None:
            out = self.op("FloatQuant", [x, self.const(0.02)] + [
                self.const(float(v)) for v in (mf.exponent_bits, mf.mantissa_bits, mf.bias,
                                               mf.max_value)],
                self.vinfo[x], domain=QONNX, has_inf=int(mf.convention == "ieee"),
                has_nan=int(mf.convention in ("fn", "ieee")), has_subnormal=1,
                saturation=1, rounding_mode="ROUND")
            self.act_quant[x] = out
            return out
        bits = int("".join(c for c in dt if c.isdigit()))
        signed = not dt.startswith("UINT")  # FLOAT16 runs as a 16-bit integer on an FPGA
        out = self.op("Quant", [x, self.const(0.02), self.const(0.0), self.const(float(bits))],
                      self.vinfo[x], domain=QONNX, signed=int(signed), narrow=0,
                      rounding_mode="ROUND")
        self.act_quant[x] = out
        return out

    def linear(self, x: str, n_in: int, n_out: int, bias: bool) -> str:
        """Quantized input x [.., n_in] @ symbolic int weights [n_in, n_out] (+ bias)."""
        xq = self.quant(x, self.q.acts)
        w = self.name("W")
        self.vinfo[w] = [n_in, n_out]
        wdt = "INT16" if self.q.weights.startswith("FLOAT") else self.q.weights
        self.symbolic[w] = Const(None, wdt, 0.01, None)
        shape = self.vinfo[x][:-1] + [n_out]
        y = self.op("MatMul", [xq, w], shape)
        if bias:  # a trained bias (non-uniform)
            y = self.op("Add", [y, self.const(np.linspace(-0.1, 0.1, n_out))], shape)
        return y

    def hadamard(self, x: str, n: int, size: int | None = None) -> str:
        """An online rotation of the last axis (n channels, transform length ``size``): the
        quantized activation times a symbolic Hadamard weight (dse.ir.lowering.hadamard)."""
        xq = self.quant(x, self.q.acts)
        w = self.name("H")
        m = size or n
        self.vinfo[w] = [n, n]
        self.symbolic[w] = Const(None, f"HADAMARD<{m}>", 1.0 / math.sqrt(m), None)
        return self.op("MatMul", [xq, w], self.vinfo[x])

    def layernorm(self, x: str, C: int, eps: float) -> str:
        return self.op("LayerNormalization",
                       [x, self.const(np.linspace(0.5, 1.5, C)),
                        self.const(np.linspace(-0.1, 0.1, C))],
                       self.vinfo[x], axis=-1, epsilon=eps)

    def rmsnorm(self, x: str, C: int, eps: float) -> str:
        shp = self.vinfo[x]
        p = self.op("Pow", [x, self.const(2.0)], shp)
        m = self.op("ReduceMean", [p, self.ints([-1])], shp[:-1] + [1], keepdims=1)
        a = self.op("Add", [m, self.const(eps)], shp[:-1] + [1])
        s = self.op("Sqrt", [a], shp[:-1] + [1])
        r = self.op("Reciprocal", [s], shp[:-1] + [1])
        y = self.op("Mul", [x, r], shp)
        return self.op("Mul", [y, self.const(np.linspace(0.5, 1.5, C))], shp)

    def norm(self, arch: Arch, x: str) -> str:
        return (self.rmsnorm if arch.norm == "rms" else self.layernorm)(x, arch.hidden, arch.eps)

    def heads(self, x: str, T: int, h: int, d: int) -> str:
        r = self.op("Reshape", [x, self.ints([1, T, h, d])], [1, T, h, d])
        return self.op("Transpose", [r], [1, h, T, d], perm=[0, 2, 1, 3])

    def merge(self, x: str, T: int, h: int, d: int) -> str:
        t = self.op("Transpose", [x], [1, T, h, d], perm=[0, 2, 1, 3])
        return self.op("Reshape", [t, self.ints([1, T, h * d])], [1, T, h * d])

    def rotary(self, x: str, T: int, h: int, d: int) -> str:
        shp = [1, h, T, d]
        pos = np.arange(T)[:, None] / (10000.0 ** (np.arange(0, d, 2) / d))[None]
        cos = np.concatenate([np.cos(pos)] * 2, axis=-1).reshape(1, 1, T, d)
        sin = np.concatenate([np.sin(pos)] * 2, axis=-1).reshape(1, 1, T, d)
        a = self.op("Mul", [x, self.const(cos)], shp)
        half = [1, h, T, d // 2]
        x1 = self.op("Slice", [x, self.ints([0]), self.ints([d // 2]), self.ints([-1]),
                               self.ints([1])], half)
        x2 = self.op("Slice", [x, self.ints([d // 2]), self.ints([d]), self.ints([-1]),
                               self.ints([1])], half)
        n = self.op("Neg", [x2], half)
        c = self.op("Concat", [n, x1], shp, axis=-1)
        b = self.op("Mul", [c, self.const(sin)], shp)
        return self.op("Add", [a, b], shp)

    def attention(self, q: str, k: str, v: str, Tq: int, Tk: int, h: int, d: int,
                  scale: float) -> str:
        kt = self.op("Transpose", [k], self.vinfo[k][:2] + [d, Tk], perm=[0, 1, 3, 2])
        s = self.op("MatMul", [q, kt], [1, h, Tq, Tk])
        if scale != 1.0:
            s = self.op("Mul", [s, self.const(scale)], [1, h, Tq, Tk])
        p = self.op("Softmax", [s], [1, h, Tq, Tk], axis=-1)
        return self.op("MatMul", [p, v], [1, h, Tq, d])

    def model(self, inputs: list[tuple[str, list[int]]], outputs: list[str]) -> Any:
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, self.vinfo[o])
                for o in outputs]
        vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
              for n, s in self.vinfo.items() if n not in {i for i, _ in inputs}
              and n not in outputs]
        g = helper.make_graph(self.nodes, "block", ins, outs, self.inits, value_info=vi)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(QONNX, 1)])


def self_attention(b: BlockBuilder, arch: Arch, x: str, T: int) -> str:
    H, h, d, kv = arch.hidden, arch.heads, arch.head_dim, arch.kv_heads
    bias = arch.family in ("gpt2", "bloom", "bert")
    qkv_bias = bias or arch.family == "qwen2"  # Qwen2: biases on q/k/v only
    if arch.fused_qkv:
        qkv = b.linear(x, H, h * d + 2 * kv * d, bias)
        parts = [b.name("split") for _ in range(3)]
        b.nodes.append(helper.make_node("Split", [qkv, b.ints([h * d, kv * d, kv * d])], parts,
                                        name=f"Split_{b.n}", axis=-1))
        for p_, n_ in zip(parts, (h, kv, kv), strict=True):
            b.vinfo[p_] = [1, T, n_ * d]
        q, k, v = parts
    else:
        q, k, v = (b.linear(x, H, n_ * d, qkv_bias) for n_ in (h, kv, kv))
    q, k, v = b.heads(q, T, h, d), b.heads(k, T, kv, d), b.heads(v, T, kv, d)
    if arch.position == "rope":
        q, k = b.rotary(q, T, h, d), b.rotary(k, T, kv, d)
    if "qk" in positions(b.q.rotation):  # R3 (SpinQuant) / QuaRot's key-query Hadamard:
        # rotated, then quantized to the KV-cache type as the rotation is there for (V too)
        q, k = (b.quant(b.hadamard(t, d), b.q.kv) for t in (q, k))
        v = b.quant(v, b.q.kv)
    scale = 1.0 if arch.family == "t5" else 1.0 / math.sqrt(d)
    o = b.attention(q, k, v, T, T, h, d, scale)
    o = b.merge(o, T, h, d)
    if "heads" in positions(b.q.rotation):  # QuaRot: across the heads before W_o
        o = b.hadamard(o, h * d, size=h)
    return b.linear(o, h * d, H, bias)


def mlp(b: BlockBuilder, arch: Arch, x: str) -> str:
    H, F = arch.hidden, arch.intermediate
    bias = arch.family in ("gpt2", "bloom", "bert")
    if arch.gated_mlp:
        g = b.linear(x, H, F, bias)
        u = b.linear(x, H, F, bias)
        shp = b.vinfo[g]
        if arch.act == "gelu":  # Gemma: GELU(gate) * up
            a = b.op("Gelu", [g], shp)
        else:  # SwiGLU: SiLU(gate) * up
            a = b.op("Mul", [g, b.op("Sigmoid", [g], shp)], shp)
        m = b.op("Mul", [a, u], shp)
        if "down" in positions(b.q.rotation):  # R4: the down projection's input
            m = b.hadamard(m, F)
        return b.linear(m, F, H, bias)
    u = b.linear(x, H, F, bias)
    a = b.op({"gelu": "Gelu", "relu": "Relu", "silu": "Sigmoid"}[arch.act], [u], b.vinfo[u])
    if arch.act == "silu":
        a = b.op("Mul", [u, a], b.vinfo[u])
    if "down" in positions(b.q.rotation):
        a = b.hadamard(a, F)
    return b.linear(a, F, H, bias)


def decoder_block(arch: Arch, quant: QuantSpec, T: int) -> tuple[Any, dict[str, Const]]:
    """Pre-norm decoder (Llama, GPT-2, BLOOM) or post-norm encoder (BERT) block, T tokens."""
    b = BlockBuilder(quant)
    H = arch.hidden
    x = "x"
    b.vinfo[x] = [1, T, H]
    if arch.family == "bert":  # post-norm
        a = self_attention(b, arch, x, T)
        h1 = b.norm(arch, b.op("Add", [a, x], [1, T, H]))
        out = b.norm(arch, b.op("Add", [mlp(b, arch, h1), h1], [1, T, H]))
    else:
        a = self_attention(b, arch, b.norm(arch, x), T)
        h1 = b.op("Add", [x, a], [1, T, H])
        out = b.op("Add", [h1, mlp(b, arch, b.norm(arch, h1))], [1, T, H])
    return b.model([(x, [1, T, H])], [out]), b.symbolic


def t5_decoder_block(arch: Arch, quant: QuantSpec, T: int, S: int
                     ) -> tuple[Any, dict[str, Const]]:
    """T5 decoder block: causal self-attention, cross-attention to S encoder states, FFN."""
    b = BlockBuilder(quant)
    H, h, d = arch.hidden, arch.heads, arch.head_dim
    b.vinfo["x"], b.vinfo["enc"] = [1, T, H], [1, S, H]
    a = self_attention(b, arch, b.norm(arch, "x"), T)
    h1 = b.op("Add", ["x", a], [1, T, H])
    n = b.norm(arch, h1)
    q = b.heads(b.linear(n, H, h * d, False), T, h, d)
    k = b.heads(b.linear("enc", H, h * d, False), S, h, d)
    v = b.heads(b.linear("enc", H, h * d, False), S, h, d)
    o = b.linear(b.merge(b.attention(q, k, v, T, S, h, d, 1.0), T, h, d), h * d, H, False)
    h2 = b.op("Add", [h1, o], [1, T, H])
    out = b.op("Add", [h2, mlp(b, arch, b.norm(arch, h2))], [1, T, H])
    return b.model([("x", [1, T, H]), ("enc", [1, S, H])], [out]), b.symbolic


def lm_head(arch: Arch, quant: QuantSpec, T: int) -> tuple[Any, dict[str, Const]]:
    """The final norm and the vocabulary projection of a decoder (the logits of T tokens)."""
    b = BlockBuilder(quant)
    b.vinfo["x"] = [1, T, arch.hidden]
    out = b.linear(b.norm(arch, "x"), arch.hidden, arch.vocab, False)
    return b.model([("x", [1, T, arch.hidden])], [out]), b.symbolic
