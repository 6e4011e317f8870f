"""GPU and CPU stages in an LLM pipeline, and the link between any two devices.

A GPU/CPU stage runs its share of the network as kernels (``dse.devices`` roofline). In
decode it batches the tokens of every sequence in flight: one step reads the stage's weights
once for all of them (FINN's dataflow reads them once per token), so its time per token is
``step / sequences`` and a token waits a whole step.

Links, per pair of device kinds:

* FPGA - FPGA: ACCL+ over Coyote RDMA (measured curve, ``dse.specs.links``);
* anything with a GPU or CPU: host TCP through the NICs (ACCL's measured host-to-host TCP
  numbers: ~65 us for small messages, ~40 Gb/s at 4 MiB, ``hardware_facts.md`` §3.4);
* FPGA - GPU/CPU additionally stages through host memory: a DMA over the GPU's host link and
  the FPGA's (Coyote XDMA at ~12 GB/s, PCIe Gen3 x16 class), plus a fixed 10 us per copy.
"""

from __future__ import annotations

import math
from typing import Any

from dse.devices import Device, compute_precision, step_cost
from dse.llm.network import LLMNetwork
from dse.llm.stage import ZERO, Stage
from dse.models._common import bits
from dse.specs.board import BoardConfig
from dse.specs.links import message_time_s

TCP_H2H = ((512, 65e-6), (4 << 20, 65e-6 + (4 << 20) * 8 / 40e9))
SWITCH_S = 1e-6  # port-to-port latency of a 100 GbE switch (assumption, cut-through class)
FPGA_HOST_DMA_GBPS = 12.0  # boards without a host link in the catalog (host.pcie_gbps 0)
STAGING_S = 10e-6


def hop_s(net: LLMNetwork, a: Any, b: Any, topology: str = "chain") -> float:
    """Time to move one frame's activations (FLOAT32 residual stream) from ``a`` to ``b``:
    a direct cable in a chain, one switch traversal more in a switch topology."""
    nbytes = net.seq * net.arch.hidden * 4
    sw = SWITCH_S if topology == "switch" else 0.0
    fa, fb = isinstance(a, BoardConfig), isinstance(b, BoardConfig)
    if fa and fb:
        return message_time_s(nbytes) + sw
    t = message_time_s(nbytes, TCP_H2H)
    for x in (a, b):
        if isinstance(x, BoardConfig):  # host staging on the FPGA side
            gbps = x.board.host_pcie_gbps or FPGA_HOST_DMA_GBPS  # the board's own (catalog)
            t += nbytes / (gbps * 1e9) + STAGING_S
        elif x.kind == "gpu":  # GPU <-> host memory <-> NIC
            t += nbytes / (x.host_gbps * 1e9) + STAGING_S
    return t + sw


def _part_params(net: LLMNetwork, k: int, lead: bool, trail: bool, last: bool
                 ) -> tuple[float, int, float]:
    """(weights, attention layers, blocks) of a stage's share."""
    a = net.arch
    attn = a.hidden * a.heads * a.head_dim * 2 + a.hidden * a.kv_dim * 2
    mlp = a.hidden * a.intermediate * (3 if a.gated_mlp else 2)
    params = k * (attn + mlp) + (mlp if lead else 0) + (attn if trail else 0)
    if last and net.head is not None:
        params += a.hidden * a.vocab
    return params, k + (1 if trail else 0), k + 0.5 * (lead + trail) + (1 if last else 0)


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
    batch = sequences if decode else 1
    tokens = batch * net.seq
    ctx = net.context if decode else net.seq
    attn_ops = n_attn * 4 * a.heads * a.head_dim * ctx * tokens
    kv_read = n_attn * kv_tok * ctx * batch if decode else 0.0
    act = tokens * a.hidden * 2 * 12 * max(1.0, blocks)
    cost = step_cost(dev, params=params, weight_bits=wbits, tokens=tokens, attn_ops=attn_ops,
                     kv_bytes=kv_read, act_bytes=act, blocks=blocks,
                     precision=compute_precision(q.weights, q.acts))
    weight_bytes = int(math.ceil(params * wbits / 8))
    kv_bytes = int(n_attn * kv_tok * net.context * batch) if decode else 0
    if weight_bytes + kv_bytes + act > dev.memory_gib * 2**30:
        return None
    frame_s = cost.time_s / batch  # per token (decode) or per sequence
    prefill_s = None
    if decode:  # the prompt (net.context is the cache; the prompt is the prefill length)
        L = max(1, prompt)
        pre = step_cost(dev, params=params, weight_bits=wbits, tokens=L,
                        attn_ops=n_attn * 4 * a.heads * a.head_dim * L * L / 2,
                        kv_bytes=0.0, act_bytes=L * a.hidden * 2 * 12 * max(1.0, blocks),
                        blocks=blocks, precision=compute_precision(q.weights, q.acts))
        prefill_s = pre.time_s
    binding = f"{dev.kind.upper()} {cost.binding}"
    extras = tuple(x for x, on in (("mlp", lead), ("attn", trail),
                                   ("head", last and net.head is not None)) if on)
    return Stage(board=dev.name, index=-1, blocks=k, first_block=-1, style=dev.kind,
                 placement="device memory", point=ZERO, frame_s=frame_s,
                 latency_s=cost.time_s, compute_s=cost.compute_s / batch,
                 hbm_s=cost.memory_s / batch, hbm_bytes_per_frame=cost.bytes / batch,
                 weight_bytes=weight_bytes, kv_bytes=kv_bytes, hbm_channels=0,
                 binding=binding, resources={}, capacity={}, extras=extras,
                 mem_Bps=dev.memory_gbps * 1e9 * dev.efficiency.memory, kind=dev.kind,
                 price_per_hour=dev.price_per_hour, prefill_s=prefill_s)
