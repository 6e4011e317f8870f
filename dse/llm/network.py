"""Layer graphs of LLMs from their architecture: one block lowered once, repeated.

Modes:

* ``encoder``: one frame = one sequence of ``seq`` tokens (BERT, the T5 encoder);
* ``prefill``: a decoder over ``seq`` prompt tokens (causal);
* ``decode``: one token per step; attention reads ``context`` cached keys and values from
  HBM (``KVCache=hbm``) and writes one new entry per layer.

The attention layers get what the lowering cannot see in a mask-free graph: ``mask_mode``
causal for decoders, ALiBi (BLOOM) and T5's per-head relative position bias as a stored
per-head bias (``MaskHeads``), and for decode the cache length (``KVLen``), the K/V heads
(``KVHeads``, grouped-query attention) and ``KVCache``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dse.exceptions import SpecError
from dse.ir.graph import Edge, Layer, LayerGraph
from dse.ir.lowering import Lowering
from dse.llm.blocks import decoder_block, lm_head, t5_decoder_block
from dse.llm.config import Arch, QuantSpec
from dse.llm.rotation import expanded
from dse.models._common import bits

MODES = ("encoder", "prefill", "decode")


def lower_block(model: Any, symbolic: dict, name: str, minimize: bool = True) -> LayerGraph:
    lw = Lowering(model, name=name, input_dtype=None, minimize_bit_width=minimize,
                  symbolic=symbolic)
    return lw.run(f"<{name}>", "")


def finish_attention(g: LayerGraph, arch: Arch, mode: str, context: int,
                     cross: bool = False) -> LayerGraph:
    """Set on the attention layers what the architecture says and the graph does not."""
    layers = []
    n_attn = 0
    for lyr in g.layers:
        if lyr.op_type == "ScaledDotProductAttention":
            is_cross = cross and n_attn == 1
            n_attn += 1
            a: dict[str, Any] = {}
            if arch.causal and not is_cross and mode != "encoder":
                a["mask_mode"] = "causal"
            if arch.position in ("alibi", "relative") and not is_cross:
                # BLOOM's ALiBi slopes and T5's bucketed bias differ per head: a stored bias
                a.update(mask_mode="const", MType="FLOAT32", MaskHeads=arch.heads)
            if arch.kv_heads != arch.heads:
                a["KVHeads"] = arch.kv_heads
            if mode == "decode" and not is_cross:
                a.update(KVLen=context, KVCache="hbm",
                         SeqFold=context if lyr.attrs["SeqFold"] == lyr.attrs["KVLen"] else
                         lyr.attrs["SeqFold"])
            layers.append(lyr.with_attrs(**a) if a else lyr)
        else:
            layers.append(lyr)
    return LayerGraph(name=g.name, layers=tuple(layers), edges=g.edges,
                      host_nodes=g.host_nodes, source_path=g.source_path,
                      source_sha256=g.source_sha256, notes=g.notes,
                      minimized_bit_width=g.minimized_bit_width)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stack:
    """``count`` identical blocks in a row."""

    name: str
    block: LayerGraph
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMNetwork:
    arch: Arch
    quant: QuantSpec
    mode: str
    seq: int  # tokens per frame (1 in decode)
    context: int  # cached tokens attention reads in decode
    stacks: tuple[Stack, ...]
    head: LayerGraph | None = None  # final norm + vocabulary projection (decoders)
    build_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def n_blocks(self) -> int:
        return sum(s.count for s in self.stacks)

    def blocks(self) -> list[tuple[str, LayerGraph]]:
        """Every block in pipeline order, (name, graph)."""
        out: list[tuple[str, LayerGraph]] = []
        for s in self.stacks:
            out.extend((f"{s.name}{i}", s.block) for i in range(s.count))
        return out

    @property
    def frame_bytes(self) -> int:
        """One frame's activations between two stages: the FLOAT32 residual stream."""
        return self.seq * self.arch.hidden * 4

    def block_weight_bits(self, block: LayerGraph) -> int:
        return sum(lyr.weight_bits for lyr in block.layers)

    def kv_bits_per_token(self, block: LayerGraph) -> int:
        """KV-cache bits one block reads (whole cache) and writes (one entry) per token."""
        if self.mode != "decode":
            return 0
        per = 2 * self.arch.kv_dim * bits(self.quant.kv)
        n_self = sum(1 for lyr in block.layers if lyr.op_type == "ScaledDotProductAttention"
                     and lyr.attrs.get("KVCache") == "hbm")
        return n_self * per * (self.context + 1)

    def kv_cache_bits(self, block: LayerGraph) -> int:
        """KV-cache capacity one block needs per sequence."""
        if self.mode == "decode":
            n_self = sum(1 for lyr in block.layers if lyr.attrs.get("KVCache") == "hbm")
            return n_self * 2 * self.arch.kv_dim * bits(self.quant.kv) * self.context
        return 0

    def full_graph(self) -> LayerGraph:
        """All blocks chained into one layer graph (names ``<block>.<layer>``)."""
        layers: list[Layer] = []
        edges: list[Edge] = []
        prev_out: str | None = None
        for bname, g in self.blocks():
            rename = {lyr.name: f"{bname}.{lyr.name}" for lyr in g.layers}
            for lyr in g.layers:
                layers.append(Layer(name=rename[lyr.name], op_type=lyr.op_type, impl=lyr.impl,
                                    attrs=lyr.finn_attrs(),
                                    inputs=tuple(f"{bname}.{t}" for t in lyr.inputs),
                                    outputs=tuple(f"{bname}.{t}" for t in lyr.outputs),
                                    source_nodes=lyr.source_nodes, absorbed=lyr.absorbed))
            first = None
            for e in g.edges:
                src = rename.get(e.src) if e.src else prev_out
                if e.src is None and e.dst is not None and first is None:
                    first = rename[e.dst]
                dst = rename.get(e.dst) if e.dst else None
                if e.dst is None:
                    last = src
                    continue
                edges.append(Edge(tensor=f"{bname}.{e.tensor}", src=src, dst=dst,
                                  dtype=e.dtype, elems_per_frame=e.elems_per_frame))
            prev_out = last
        edges.append(Edge(tensor="out", src=prev_out, dst=None, dtype="FLOAT32",
                          elems_per_frame=self.seq * self.arch.hidden))
        return LayerGraph(name=self.arch.name, layers=tuple(layers), edges=tuple(edges),
                          host_nodes=(), source_path=f"<config {self.arch.name}>",
                          source_sha256="", notes=self.notes, minimized_bit_width=True)


def build_network(arch: Arch, quant: QuantSpec, mode: str = "decode", seq: int = 128,
                  context: int = 1024, minimize_bit_width: bool = True) -> LLMNetwork:
    """The LLM's layer graph for ``mode``; weights are never materialized."""
    if mode not in MODES:
        raise SpecError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "encoder" and arch.causal and not arch.encoder_decoder:
        raise SpecError(f"{arch.name} is a decoder ({arch.family}); use --mode prefill or "
                        "decode")
    if mode != "encoder" and not arch.causal:
        raise SpecError(f"{arch.name} is an encoder ({arch.family}); use --mode encoder")
    for what, v in (("--seq", seq), ("--context", context)):
        if not isinstance(v, int) or v < 1:
            raise SpecError(f"{what} {v!r}: must be a positive number of tokens")
    limit = max(arch.max_positions, 1)
    if mode != "decode" and seq > limit:
        raise SpecError(f"--seq {seq}: {arch.name} has {limit} positions")
    if mode == "decode" and context > limit:
        raise SpecError(f"--context {context}: {arch.name} has {limit} positions")
    from dse.schemas_llm import check_block_size

    check_block_size(arch.head_dim, seq if mode != "decode" else 1,
                     context if mode == "decode" else 1, f"{arch.name} ({mode})")
    t0 = time.perf_counter()
    arch = expanded(arch, quant.expand, quant.rotation)  # --expand / rotated sizes
    T = 1 if mode == "decode" else seq
    stacks = []
    if arch.encoder_decoder:
        if mode == "encoder":
            m, sym = decoder_block(_as_encoder(arch), quant, T)
            g = finish_attention(lower_block(m, sym, "enc", minimize_bit_width), arch, "encoder",
                                 context)
            stacks.append(Stack(name="enc", block=g, count=arch.layers))
        else:
            m, sym = t5_decoder_block(arch, quant, T, context if mode == "decode" else seq)
            g = finish_attention(lower_block(m, sym, "dec", minimize_bit_width), arch, mode,
                                 context, cross=True)
            stacks.append(Stack(name="dec", block=g, count=arch.decoder_layers))
    else:
        m, sym = decoder_block(arch, quant, T)
        g = finish_attention(lower_block(m, sym, "block", minimize_bit_width), arch, mode, context)
        stacks.append(Stack(name="block", block=g, count=arch.layers))
    head = None
    if mode != "encoder":  # the logits of the last position (every position in prefill)
        hm, hsym = lm_head(arch, quant, T)
        head = lower_block(hm, hsym, "head", minimize_bit_width)
    return LLMNetwork(arch=arch, quant=quant, mode=mode, seq=T, context=context,
                      stacks=tuple(stacks), head=head, build_s=time.perf_counter() - t0)


def _as_encoder(arch: Arch) -> Arch:
    return replace(arch, causal=False, family="t5")


def arch_dict(arch: Arch) -> dict[str, Any]:
    return asdict(arch)


def plan_network(model: Mapping[str, Any]) -> LLMNetwork | None:
    """The network an LLM plan was made for, rebuilt from its ``model`` record (the
    architecture after any expansion, the types, mode and sizes); None for a plan written
    before the record carried the architecture."""
    arch = model.get("arch")
    if not isinstance(arch, Mapping):
        return None
    try:
        a = Arch(**arch)
        q = QuantSpec(weights=str(model["weights"]), acts=str(model["acts"]),
                      kv=str(model["kv"]), group=int(model.get("group", 0)),
                      rotation=str(model.get("rotation", "none")))
        net = build_network(a, q, str(model["mode"]), seq=int(model["seq"]),
                            context=int(model["context"]))
    except (TypeError, KeyError, ValueError, SpecError):
        return None
    block = net.stacks[0].block
    return net if len(block.layers) == int(model.get("block_layers", -1)) else None


def plan_block(model: Mapping[str, Any]) -> LayerGraph | None:
    """The block graph an LLM plan was made for (``plan_network``)."""
    net = plan_network(model)
    return net.stacks[0].block if net else None
