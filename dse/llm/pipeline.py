"""LLM pipelines over a chain of FPGA boards: split, per-board build, folding, metrics.

The network is a sequence of identical blocks (``dse.llm.network``). A board takes ``k``
consecutive blocks and builds them one of two ways:

* **spatial**: every block its own hardware (k copies share the board's resources), all k
  blocks pipelined: one frame per block II;
* **rolled** (FINN's FINNLoop / multi-layer offload): one block's hardware iterated k times
  with its weights streamed from HBM on every iteration. finn-plus's FINNLoop cycle model is
  ``body latency + (k - 1) * body II + 40 * k``; with several sequences in flight dse charges
  the throughput form ``k * (II + 40)`` per frame (FINN's form charges the body latency once
  per frame, which is pessimistic when frames of other sequences fill the loop, and optimistic
  for a lone sequence, whose iterations cannot overlap: the latency dse reports for one
  sequence is ``k * (body latency + 40)``).

For each board, k, build and weight placement (on chip / HBM) dse sweeps the block's II over
every value a layer's folding can take, picks per layer the cheapest folding meeting it, and
keeps the fastest feasible one: resources (k copies for spatial) within the board's caps, HBM
capacity for weights and every sequence's KV cache, HBM pseudo-channels for every external
stream at its rate (``dse.specs.memory``). A dynamic program over contiguous splits then
minimizes the slowest stage, so the split is optimal for these per-board curves.

Per frame (one token in decode, one sequence of L tokens otherwise), a stage takes
``max(compute, HBM bytes / (HBM bandwidth x efficiency))``; each hop between boards adds the
measured ACCL+ message time (``dse.specs.links``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dse.exceptions import InfeasibleError
from dse.ir.graph import LayerGraph
from dse.llm.network import LLMNetwork
from dse.models.candidates import FoldingOption, enumerate_options
from dse.specs.board import BoardConfig
from dse.specs.links import message_time_s
from dse.specs.memory import DEFAULT_EFFICIENCY, StreamDemand, allocate

LOOP_OVERHEAD = 40  # cycles per FINNLoop iteration (finn-plus finn_loop.py get_exp_cycles)
RES = ("lut", "ff", "bram18", "uram", "dsp")
HBM_PORTS_RESERVED = 2  # AXI ports the shell keeps (host DMA, network stack buffers)


@dataclass(frozen=True)
class BlockPoint:
    """One block at one II: its resources and external streams."""

    ii: int
    latency: int  # fill cycles along the longest path (first input to first output)
    res: dict[str, int]
    ext_streams: tuple[tuple[str, int, int], ...]  # (layer, weight bits, bits per frame)
    folding: tuple[tuple[str, dict[str, Any], str], ...]  # (layer, attrs, impl)
    bottleneck: str


@dataclass(frozen=True)
class Stage:
    board: str
    index: int
    blocks: int
    first_block: int
    style: str  # spatial | rolled
    placement: str  # onchip | hbm
    point: BlockPoint
    frame_s: float
    latency_s: float
    compute_s: float
    hbm_s: float
    hbm_bytes_per_frame: float
    weight_bytes: int
    kv_bytes: int
    hbm_channels: int
    binding: str
    resources: dict[str, int]
    capacity: dict[str, int]


@dataclass(frozen=True)
class LLMPlan:
    network: LLMNetwork
    stages: tuple[Stage, ...]
    sequences: int
    clock_mhz: float
    efficiency: float
    metrics: dict[str, Any] = field(default_factory=dict)


def _block_options(block: LayerGraph, part: str, placement: str
                   ) -> list[list[FoldingOption]]:
    out = []
    for l in block.layers:
        opts = enumerate_options(l.specialized_op_type, l.finn_attrs(), part=part,
                                 weight_bits=l.weight_bits, allow_external=True)
        if l.op_type == "Thresholding" and l.impl is None:
            # FINN picks the RTL thresholds, whose memory for a wide float quantizer is LUTs;
            # preferred_impl_style=hls (a FINN node attribute) puts them in BRAM instead
            opts += enumerate_options(f"{l.op_type}_hls", l.finn_attrs(), part=part)
        if l.weight_bits and l.op_type == "MVAU" and l.attrs.get("mem_mode") != "dynamic":
            want_ext = placement == "hbm"
            keep = [o for o in opts if bool(o.external_weight_bits) == want_ext]
            opts = keep or opts
        if not opts:
            raise InfeasibleError(f"layer {l.name} ({l.op_type}): no legal folding")
        out.append(sorted(opts, key=lambda o: o.cost.cycles))
    return out


def fill_cycles(layer: Any, cost: Any) -> int:
    """Cycles from a layer's first input to its first output (it streams after that): an
    MVAU needs one pass over its input vector (MW/SIMD), a norm or softmax one row, attention
    its K/V (one head), a Shuffle its reorder window; element-wise ops a word."""
    op = layer.op_type
    words = max(1, sum(cost.output_words) or 1)
    if op == "MVAU":
        return max(1, cost.cycles // max(1, words))
    if op in ("LayerNorm", "HWSoftmax"):  # a row before the first output (two passes)
        rows = max(1, math.prod(int(d) for d in layer.attrs["ifm_dim"][:-1]))
        row_words = max(1, words // rows)
        return 2 * row_words + max(0, cost.cycles - words)
    if op == "ScaledDotProductAttention":
        return max(1, cost.cycles // max(1, int(layer.attrs["Heads"])))
    if op == "Shuffle":
        return max(1, cost.cycles - cost.input_words[0]) if cost.input_words else 1
    return max(1, cost.cycles // words)


def _latency(block: LayerGraph, fills: dict[str, int]) -> int:
    """Fill cycles along the block's longest path (the frame streams behind them)."""
    best: dict[str, int] = {}
    for l in block.layers:  # layers are in topological order
        preds = [e.src for e in block.in_edges(l.name) if e.src]
        best[l.name] = fills[l.name] + max((best[p] for p in preds), default=0)
    return max(best.values(), default=0)


def block_curve(block: LayerGraph, part: str, placement: str, cap: dict[str, int],
                nvec: dict[str, int]) -> list[BlockPoint]:
    """The block's cheapest folding at every II a folding can give (fastest first)."""
    opts = _block_options(block, part, placement)
    norm = {d: max(1, cap.get(d, 1)) for d in RES}
    iis = sorted({o.cost.cycles for os_ in opts for o in os_ if o.cost.cycles >= max(
        os_[0].cost.cycles for os_ in opts)})
    if len(iis) > 400:  # keep the sweep cheap: every value near the fast end, then geometric
        keep = set(iis[:150])
        step = (len(iis) - 150) / 250
        keep |= {iis[150 + int(i * step)] for i in range(250)}
        iis = sorted(keep)
    points = []
    for ii in iis:
        res = dict.fromkeys(RES, 0)
        streams = []
        folding = []
        fills = {}
        worst = ("", 0)
        for l, os_ in zip(block.layers, opts):
            fit = [o for o in os_ if o.cost.cycles <= ii]
            o = min(fit, key=lambda o: sum(getattr(o.cost, d) / norm[d] for d in RES))
            for d in RES:
                res[d] += getattr(o.cost, d)
            if o.external_weight_bits:
                streams.append((l.name, o.external_weight_bits,
                                o.external_weight_bits * nvec[l.name]))
            folding.append((l.name, dict(o.attrs), o.impl))
            fills[l.name] = fill_cycles(l, o.cost)
            if o.cost.cycles > worst[1]:
                worst = (l.name, o.cost.cycles)
        points.append(BlockPoint(ii, _latency(block, fills), res, tuple(streams),
                                 tuple(folding), worst[0]))
    return points


def _nvec(block: LayerGraph) -> dict[str, int]:
    out = {}
    for l in block.layers:
        v = l.attrs.get("numInputVectors")
        out[l.name] = math.prod(v) if v else 1
    return out


class StageModel:
    """Per-board stage evaluation for one network, cached per (board type, k)."""

    def __init__(self, net: LLMNetwork, sequences: int, efficiency: float) -> None:
        self.net = net
        self.S = sequences
        self.eff = efficiency
        self.block = net.stacks[0].block
        self.nvec = _nvec(self.block)
        self.curves: dict[tuple[str, str], list[BlockPoint]] = {}
        self.cache: dict[tuple[str, int], Stage | None] = {}

    def curve(self, cfg: BoardConfig, placement: str, multi: bool) -> list[BlockPoint]:
        key = (cfg.board.name, placement)
        if key not in self.curves:
            cap = cfg.capacity(multi).as_dict()
            self.curves[key] = block_curve(self.block, cfg.board.part, placement, cap,
                                           self.nvec)
        return self.curves[key]

    def stage(self, cfg: BoardConfig, k: int, multi: bool) -> Stage | None:
        key = (cfg.board.name, k)
        if key in self.cache:
            return self.cache[key]
        best = None
        for style in ("spatial", "rolled"):
            for placement in ("onchip", "hbm"):
                if style == "rolled" and placement == "onchip" and k > 1:
                    continue  # iterating one block over k layers streams their weights
                s = self._evaluate(cfg, k, style, placement, multi)
                if s is not None and (best is None or s.frame_s < best.frame_s * (1 - 1e-9)):
                    best = s
        self.cache[key] = best
        return best

    def _evaluate(self, cfg: BoardConfig, k: int, style: str, placement: str,
                  multi: bool) -> Stage | None:
        b = cfg.board
        cap = cfg.capacity(multi).as_dict()
        f = cfg.clock_mhz * 1e6
        copies = k if style == "spatial" else 1
        kv_bits_tok = self.net.kv_bits_per_token(self.block)
        kv_cache_bytes = self.net.kv_cache_bits(self.block) // 8
        hbm_bytes = int(b.external_memory_gib * 2**30)
        hbm_Bps = b.external_memory_gbps * 1e9 * self.eff
        n_ch = max(1, b.hbm_channels or round(b.ddr_bandwidth_gbps / 19.25) if hbm_bytes else 0)
        ports = max(0, (b.hbm_channels or n_ch) - HBM_PORTS_RESERVED)
        for p in self.curve(cfg, placement, multi):
            if any(p.res[d] * copies > cap.get(d, 0) for d in RES):
                continue
            ext_w_bits = sum(s[1] for s in p.ext_streams)
            ext_bpf = sum(s[2] for s in p.ext_streams)
            if (ext_bpf or kv_bits_tok) and not hbm_bytes:
                continue
            weight_bytes = k * ext_w_bits // 8
            kv_bytes = k * kv_cache_bytes * self.S
            if weight_bytes + kv_bytes > hbm_bytes:
                continue
            if style == "spatial":  # k blocks stream into each other
                compute_cycles = p.ii
                lat_cycles = k * p.latency + p.ii
            else:  # each iteration's layers are busy for a block II
                compute_cycles = k * (p.ii + LOOP_OVERHEAD)
                lat_cycles = k * (max(p.ii, p.latency) + LOOP_OVERHEAD) + p.latency
            compute_s = compute_cycles / f
            bytes_frame = k * (ext_bpf + kv_bits_tok) / 8
            hbm_s = bytes_frame / hbm_Bps if bytes_frame else 0.0
            # HBM pseudo-channels: one stream per external layer (per copy) and per KV cache
            n_streams = copies * len(p.ext_streams) + (copies if kv_bits_tok else 0)
            if n_streams > ports:
                continue
            cmap = None
            for slack in (1.0, 1.01, 1.03, 1.06, 1.1):  # channel packing is not fluid
                frame_s = max(compute_s, hbm_s * slack)
                demands = []
                for c in range(copies):
                    per = 1 if style == "spatial" else k
                    for name, wbits, bpf in p.ext_streams:
                        demands.append(StreamDemand(f"{c}.{name}", per * bpf / 8 / frame_s,
                                                    per * wbits // 8))
                    if kv_bits_tok:
                        demands.append(StreamDemand(f"{c}.kv", per * kv_bits_tok / 8 / frame_s,
                                                    per * kv_cache_bytes * self.S))
                if not demands:
                    break
                try:
                    cmap = allocate(demands, b.hbm_channels or n_ch,
                                    (b.hbm_channel_gbps or b.external_memory_gbps / n_ch) * 1e9,
                                    int(hbm_bytes / (b.hbm_channels or n_ch)),
                                    efficiency=self.eff)
                    break
                except InfeasibleError:
                    continue
            if demands and cmap is None:
                continue
            hbm_s = max(hbm_s, frame_s if frame_s > compute_s else 0.0)
            latency_s = max(lat_cycles / f, hbm_s)
            binding = ("HBM bandwidth" if hbm_s >= compute_s else
                       f"compute ({p.bottleneck}, II {p.ii} cycles)")
            res = {d: p.res[d] * copies for d in RES}
            return Stage(board=b.name, index=-1, blocks=k, first_block=-1, style=style,
                         placement=placement, point=p, frame_s=frame_s, latency_s=latency_s,
                         compute_s=compute_s, hbm_s=hbm_s, hbm_bytes_per_frame=bytes_frame,
                         weight_bytes=weight_bytes, kv_bytes=kv_bytes,
                         hbm_channels=len({s.channel for v in (cmap.shares.values() if cmap
                                                               else []) for s in v}),
                         binding=binding, resources=res,
                         capacity={d: cap.get(d, 0) for d in RES})
        return None


def link_s(net: LLMNetwork) -> float:
    """One frame's activations between two boards (FLOAT32 residual stream)."""
    return message_time_s(net.seq * net.arch.hidden * 4)


def optimize_llm(net: LLMNetwork, boards: list[BoardConfig], *, sequences: int = 1,
                 efficiency: float = DEFAULT_EFFICIENCY) -> LLMPlan:
    """The best contiguous split of the blocks over (a prefix of) the board chain."""
    if sequences < 1:
        raise InfeasibleError("--sequences must be at least 1")
    model = StageModel(net, sequences, efficiency)
    N, B = net.n_blocks, len(boards)
    multi = B > 1
    INF = float("inf")
    # dp[b][n] = (slowest stage, sum of latencies) placing the first n blocks on boards < b
    dp = [[(INF, INF)] * (N + 1) for _ in range(B + 1)]
    back: list[list[int]] = [[-1] * (N + 1) for _ in range(B + 1)]
    dp[0][0] = (0.0, 0.0)
    hop = link_s(net)
    for b in range(B):
        for n in range(N + 1):
            cur = dp[b][n]
            if cur[0] == INF:
                continue
            if cur < dp[b + 1][n]:  # board b unused from here on
                pass
            for k in range(1, N - n + 1):
                st = model.stage(boards[b], k, multi)
                if st is None:
                    break  # more blocks fit no better (resources/HBM only grow with k)
                worst = max(cur[0], st.frame_s, hop if b else 0.0)
                lat = cur[1] + st.latency_s + (hop if b else 0.0)
                if (worst, lat) < dp[b + 1][n + k]:
                    dp[b + 1][n + k] = (worst, lat)
                    back[b + 1][n + k] = k
    best_b = min((b for b in range(1, B + 1) if dp[b][N][0] < INF),
                 key=lambda b: (dp[b][N][0], b), default=None)
    if best_b is None:
        raise InfeasibleError(_why_infeasible(net, boards, model, multi))
    stages = []
    n = N
    for b in range(best_b, 0, -1):
        k = back[b][n]
        st = model.stage(boards[b - 1], k, multi)
        stages.append(_placed(st, b - 1, n - k))
        n -= k
    stages.reverse()
    plan = LLMPlan(network=net, stages=tuple(stages), sequences=sequences,
                   clock_mhz=boards[0].clock_mhz, efficiency=efficiency)
    return _with_metrics(plan, boards, hop)


def _placed(st: Stage, index: int, first: int) -> Stage:
    from dataclasses import replace

    return replace(st, index=index, first_block=first)


def _why_infeasible(net: LLMNetwork, boards: list[BoardConfig], model: StageModel,
                    multi: bool) -> str:
    weights = net.n_blocks * net.block_weight_bits(model.block) / 8
    kv = net.n_blocks * net.kv_cache_bits(model.block) / 8 * model.S
    hbm = sum(b.board.external_memory_gib * 2**30 for b in boards)
    if weights + kv > hbm:
        return (f"{net.arch.name} needs {weights / 1e9:.1f} GB of weights"
                + (f" + {kv / 1e9:.1f} GB of KV cache for {model.S} sequence(s)" if kv else "")
                + f" but the {len(boards)} board(s) have {hbm / 1e9:.1f} GB of HBM/DDR; "
                f"use at least {math.ceil((weights + kv) / (hbm / len(boards)))} boards")
    if model.stage(boards[0], 1, multi) is None:
        return (f"one {net.arch.name} block does not fit a {boards[0].board.name} at any "
                "folding (resources or HBM channels); use a larger board")
    return (f"{net.arch.name}: its {net.n_blocks} blocks do not fit the {len(boards)} "
            "board(s); add boards")


def _with_metrics(plan: LLMPlan, boards: list[BoardConfig], hop: float) -> LLMPlan:
    from dataclasses import replace

    net, S = plan.network, plan.sequences
    st = plan.stages
    slow = max(st, key=lambda s: s.frame_s)
    n_hops = len(st) - 1
    frame_s = max(max(s.frame_s for s in st), hop if n_hops else 0.0)
    latency_s = sum(s.latency_s for s in st) + n_hops * hop
    throughput = 1.0 / frame_s
    used = boards[: len(st)]
    hbm_Bps = sum(b.board.external_memory_gbps for b in used) * 1e9 * plan.efficiency
    bytes_frame = sum(s.hbm_bytes_per_frame for s in st)
    binding = slow.binding if slow.frame_s >= hop or not n_hops else "link"
    m: dict[str, Any] = {"boards_used": len(st), "mode": net.mode, "sequences": S,
                         "latency_s": latency_s, "binding": binding,
                         "bottleneck_board": slow.index}
    if net.mode == "decode":
        per_seq = 1.0 / latency_s
        agg = min(S * per_seq, throughput)
        bound = hbm_Bps / bytes_frame if bytes_frame else float("inf")
        if S * per_seq < throughput:
            binding = f"sequences in flight ({S}) x latency per token"
        m.update(tokens_per_s_per_sequence=per_seq, tokens_per_s=agg,
                 latency_per_token_s=latency_s, pipeline_tokens_per_s=throughput,
                 bound_tokens_per_s=bound, bound="aggregate HBM bandwidth / (weight + KV "
                 "bytes per token)", ratio_to_bound=agg / bound if bound else 0.0,
                 binding=binding,
                 kv_bytes_per_sequence=net.n_blocks * net.kv_cache_bits(
                     net.stacks[0].block) // 8)
        # sequences the KV cache room allows (HBM left after weights)
        free = sum(b.board.external_memory_gib * 2**30 for b in used) - sum(
            s.weight_bytes for s in st)
        per = m["kv_bytes_per_sequence"]
        m["max_sequences_by_kv_capacity"] = int(free // per) if per else None
    else:
        m.update(frames_per_s=throughput, sequences_per_s=throughput,
                 tokens_per_s=throughput * net.seq, latency_s=latency_s)
        if bytes_frame:
            bound = hbm_Bps / bytes_frame
            m.update(bound_frames_per_s=bound, bound="aggregate HBM bandwidth / bytes per "
                     "frame", ratio_to_bound=throughput / bound)
        else:
            m.update(bound="compute (all weights on chip)")
    return replace(plan, metrics=m)


def plan_dict(plan: LLMPlan) -> dict[str, Any]:
    net = plan.network
    return {
        "schema": "dse-llm-plan/1",
        "model": {"name": net.arch.name, "family": net.arch.family, "params": net.arch.params(),
                  "mode": net.mode, "seq": net.seq, "context": net.context,
                  "weights": net.quant.weights, "acts": net.quant.acts, "kv": net.quant.kv,
                  "blocks": net.n_blocks, "block_layers": len(net.stacks[0].block.layers)},
        "clock_mhz": plan.clock_mhz,
        "hbm_efficiency": plan.efficiency,
        "stages": [{
            "board": s.board, "index": s.index, "blocks": [s.first_block,
                                                           s.first_block + s.blocks - 1],
            "style": s.style, "weights": s.placement, "block_ii_cycles": s.point.ii,
            "frame_s": s.frame_s, "latency_s": s.latency_s, "compute_s": s.compute_s,
            "hbm_s": s.hbm_s, "hbm_bytes_per_frame": s.hbm_bytes_per_frame,
            "weight_bytes": s.weight_bytes, "kv_bytes": s.kv_bytes,
            "hbm_channels": s.hbm_channels, "binding": s.binding, "resources": s.resources,
            "capacity": s.capacity,
            "folding": [{"layer": n, "impl": i, **a} for n, a, i in s.point.folding],
        } for s in plan.stages],
        "metrics": plan.metrics,
    }
