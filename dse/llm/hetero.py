"""GPU and CPU stages in an LLM pipeline, and the link between any two devices.

A GPU/CPU stage runs its share of the network as kernels (``dse.devices`` roofline). In
every mode it batches the sequences in flight (``--sequences``): one step runs all of them
(in decode one token each, in prefill/encoder all their tokens) and reads the stage's
weights once for all of them (FINN's dataflow reads them once per token), so its time per
frame is ``step / sequences`` and a frame waits a whole step.

The link between any two devices is ``dse.chain.links.hop_s`` (one model for CNNs and LLMs).
"""

from __future__ import annotations

import math
from typing import Any

from dse.chain import links
from dse.devices import Device, compute_precision, step_cost
from dse.llm.network import LLMNetwork
from dse.llm.stage import ZERO, Stage
from dse.models._common import bits


def hop_s(net: LLMNetwork, a: Any, b: Any, topology: str = "chain") -> float:
    """Time to move one frame's activations from ``a`` to ``b`` (``dse.chain.links``)."""
    return links.hop_s(a, b, net.frame_bytes, topology=topology)


def _part_params(net: LLMNetwork, k: int, lead: bool, trail: bool, last: bool
                 ) -> tuple[float, int, float]:
    """(weights, attention layers, blocks) of a stage's share."""
    a = net.arch
    attn = a.hidden * a.heads * a.head_dim * 2 + a.hidden * a.kv_dim * 2
    mlp = a.hidden * a.intermediate * (3 if a.gated_mlp else 2)
    params = k * (attn + mlp) + (mlp if lead else 0) + (attn if trail else 0)
    head = last and net.head is not None  # encoders have no LM head
    if head:
        params += a.hidden * a.vocab
    return params, k + (1 if trail else 0), k + 0.5 * (lead + trail) + (1 if head else 0)


def device_stage(net: LLMNetwork, dev: Device, k: int, lead: bool, trail: bool, last: bool,
                 sequences: int, prompt: int = 128) -> Stage | None:
    """The stage of ``dev`` over ``k`` blocks (+ an MLP / attention half, + the LM head):
    None if its weights and KV caches do not fit the device's memory."""
    a, q = net.arch, net.quant
    params, n_attn, blocks = _part_params(net, k, lead, trail, last)
    if params == 0:
        return None
    wbits = bits(q.weights) * (1 + (16 / (q.group * bits(q.weights)) if q.group else 0))
    kv_tok = 2 * a.kv_dim * bits(q.kv) / 8  # bytes per token per attention layer
    decode = net.mode == "decode"
    batch = sequences  # every sequence in flight is one step's batch, in every mode
    tokens = batch * net.seq
    prec = compute_precision(q.weights, q.acts)
    attn_ops: float
    if decode:
        attn_ops = n_attn * 4 * a.heads * a.head_dim * net.context * tokens
    else:  # every token against every other (causal: half of them)
        attn_ops = n_attn * 4 * a.heads * a.head_dim * net.seq * tokens * (
            0.5 if a.causal else 1.0)
    kv_read = n_attn * kv_tok * net.context * batch if decode else 0.0
    act = tokens * a.hidden * 2 * 12 * max(1.0, blocks)
    cost = step_cost(dev, params=params, weight_bits=wbits, tokens=tokens, attn_ops=attn_ops,
                     kv_bytes=kv_read, act_bytes=act, blocks=blocks, precision=prec)
    weight_bytes = int(math.ceil(params * wbits / 8))
    kv_bytes = int(n_attn * kv_tok * net.context * batch) if decode else 0
    # resident activations: one block's live buffers for the step's tokens (act above is the
    # traffic over all blocks, which streams and is not held)
    live = tokens * (4 * a.hidden + 2 * a.intermediate) * 2
    if weight_bytes + kv_bytes + live > dev.memory_gib * 2**30:
        return None
    frame_s = cost.time_s / batch  # per token (decode) or per sequence
    prefill_s = None
    if decode:  # the prompt (net.context is the cache; the prompt is the prefill length)
        L = max(1, prompt)
        pre = step_cost(dev, params=params, weight_bits=wbits, tokens=L,
                        attn_ops=n_attn * 4 * a.heads * a.head_dim * L * L / 2,
                        kv_bytes=0.0, act_bytes=L * a.hidden * 2 * 12 * max(1.0, blocks),
                        blocks=blocks, precision=prec)
        prefill_s = pre.time_s
    binding = f"{dev.kind.upper()} {cost.binding}"
    extras = tuple(x for x, on in (("mlp", lead), ("attn", trail),
                                   ("head", last and net.head is not None)) if on)
    return Stage(board=dev.name, index=-1, blocks=k, first_block=-1, style=dev.kind,
                 placement="device memory", point=ZERO, frame_s=frame_s,
                 latency_s=cost.time_s, compute_s=cost.compute_s / batch,
                 hbm_s=cost.memory_s / batch, hbm_bytes_per_frame=cost.bytes / batch,
                 weight_bytes=weight_bytes, kv_bytes=kv_bytes, hbm_channels=0,
                 binding=binding, resources=None, capacity=None, extras=extras,
                 mem_Bps=dev.memory_gbps * 1e9 * dev.efficiency.memory, kind=dev.kind,
                 price_per_hour=dev.price_per_hour, prefill_s=prefill_s,
                 efficiency=dev.efficiency)
