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
measured ACCL+ message time (``dse.chain.links``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dse.chain.channels import channel_rule
from dse.chain.links import fpga_link
from dse.exceptions import InfeasibleError, InternalError
from dse.ir.graph import Edge, LayerGraph
from dse.llm.hetero import device_stage, hop_s
from dse.llm.network import LLMNetwork
from dse.llm.stage import RES, ZERO, BlockPoint, Stage
from dse.models.candidates import FoldingOption, enumerate_options
from dse.solver.slr import SLL_PER_BOUNDARY, bound_by_slrs, fits_one, pack, slr_capacities
from dse.specs.board import BoardConfig
from dse.specs.memory import DEFAULT_EFFICIENCY, StreamDemand, allocate

LOOP_OVERHEAD = 40  # cycles per FINNLoop iteration (finn-plus finn_loop.py get_exp_cycles)


@dataclass(frozen=True)
class LLMPlan:
    network: LLMNetwork
    stages: tuple[Stage, ...]
    sequences: int
    clock_mhz: float
    efficiency: float
    prompt: int = 128  # prompt tokens for the time to first token (decode)
    metrics: dict[str, Any] = field(default_factory=dict)


def board_capacity(cfg: BoardConfig, multi: bool) -> tuple[dict[str, int], list | None]:
    """(what a board's layers may use, its per-SLR capacities): the board's caps, bounded by
    the sum of its SLRs (dse.solver.slr), as the CNN solver books them."""
    slrs = slr_capacities(cfg, multi)
    return bound_by_slrs(cfg.capacity(multi).as_dict(), slrs), slrs


def _block_options(block: LayerGraph, part: str, placement: str, slrs: list | None = None
                   ) -> list[list[FoldingOption]]:
    out = []
    for lyr in block.layers:
        opts = enumerate_options(lyr.specialized_op_type, lyr.finn_attrs(), part=part,
                                 weight_bits=lyr.weight_bits, allow_external=True)
        if lyr.op_type == "Thresholding" and lyr.impl is None:
            # FINN picks the RTL thresholds, whose memory for a wide float quantizer is LUTs;
            # preferred_impl_style=hls (a FINN node attribute) puts them in BRAM instead
            opts += enumerate_options(f"{lyr.op_type}_hls", lyr.finn_attrs(), part=part)
        if lyr.weight_bits and lyr.op_type == "MVAU" and lyr.attrs.get("mem_mode") != "dynamic":
            want_ext = placement == "hbm"
            keep = [o for o in opts if bool(o.external_weight_bits) == want_ext]
            opts = keep or opts
        if slrs is not None:  # every layer sits in one SLR
            opts = [o for o in opts if fits_one({d: getattr(o.cost, d) for d in RES}, slrs)]
        if not opts:
            raise InfeasibleError(f"layer {lyr.name} ({lyr.op_type}): no legal folding fits one "
                                  "SLR of this board")
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
    for lyr in block.layers:  # layers are in topological order
        preds = [e.src for e in block.in_edges(lyr.name) if e.src]
        best[lyr.name] = fills[lyr.name] + max((best[p] for p in preds), default=0)
    return max(best.values(), default=0)


def block_curve(block: LayerGraph, part: str, placement: str, cap: dict[str, int],
                nvec: dict[str, int], slrs: list | None = None) -> list[BlockPoint]:
    """The block's cheapest folding at every II a folding can give (fastest first)."""
    opts = _block_options(block, part, placement, slrs)
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
        per_layer = []
        fills = {}
        worst = ("", 0)
        for lyr, os_ in zip(block.layers, opts, strict=True):
            fit = [o for o in os_ if o.cost.cycles <= ii]
            o = min(fit, key=lambda o: sum(getattr(o.cost, d) / norm[d] for d in RES))
            for d in RES:
                res[d] += getattr(o.cost, d)
            if o.external_weight_bits:
                streams.append((lyr.name, o.external_weight_bits,
                                o.external_weight_bits * nvec[lyr.name]))
            folding.append((lyr.name, dict(o.attrs), o.impl))
            per_layer.append((lyr.name, {d: getattr(o.cost, d) for d in RES},
                              max(o.cost.outstream_widths_padded or (0,))))
            fills[lyr.name] = fill_cycles(lyr, o.cost)
            if o.cost.cycles > worst[1]:
                worst = (lyr.name, o.cost.cycles)
        points.append(BlockPoint(ii=ii, latency=_latency(block, fills), res=res,
                                 ext_streams=tuple(streams), folding=tuple(folding),
                                 bottleneck=worst[0], layers=tuple(per_layer)))
    return points


def _nvec(block: LayerGraph) -> dict[str, int]:
    out = {}
    for lyr in block.layers:
        v = lyr.attrs.get("numInputVectors")
        out[lyr.name] = math.prod(v) if v else 1
    return out


def split_halves(block: LayerGraph) -> tuple[LayerGraph, LayerGraph]:
    """A block cut after its first residual add: (attention half, MLP half). One stream, the
    residual, crosses the cut."""
    names = [lyr.name for lyr in block.layers]
    cut = None
    for i, lyr in enumerate(block.layers):
        if lyr.op_type == "ElementwiseAdd" and any(e.src is None for e in block.in_edges(lyr.name)):
            cut = i + 1
            break
    if cut is None or cut >= len(names):
        raise InfeasibleError(f"{block.name}: no residual add to split the block at")
    return subgraph(block, names[:cut], "attn"), subgraph(block, names[cut:], "mlp")


def subgraph(g: LayerGraph, names: list[str], tag: str) -> LayerGraph:
    keep = set(names)
    edges = []
    for e in g.edges:
        src = e.src if e.src in keep else None
        dst = e.dst if e.dst in keep else None
        if src is None and dst is None:
            continue
        edges.append(Edge(tensor=e.tensor, src=src, dst=dst, dtype=e.dtype,
                          elems_per_frame=e.elems_per_frame))
    return LayerGraph(name=f"{g.name}.{tag}",
                      layers=tuple(lyr for lyr in g.layers if lyr.name in keep),
                      edges=tuple(edges), host_nodes=(), source_path=g.source_path,
                      source_sha256="", minimized_bit_width=g.minimized_bit_width)


class StageModel:
    """Per-board stage evaluation for one network, cached per (board type, shape)."""

    def __init__(self, net: LLMNetwork, sequences: int, efficiency: float) -> None:
        self.net = net
        self.S = sequences
        self.eff = efficiency
        self.block = net.stacks[0].block
        self.parts: dict[str, LayerGraph] = {"block": self.block}
        try:
            self.parts["attn"], self.parts["mlp"] = split_halves(self.block)
        except InfeasibleError:
            pass
        if net.head is not None:
            self.parts["head"] = net.head
        self.curves: dict[tuple[str, str, str], list[BlockPoint]] = {}
        self.cache: dict[tuple, Stage | None] = {}
        self.packs: dict[tuple, Any] = {}
        # per-group weight quantization: a 16-bit scale per group of input channels travels
        # with the weights (per-tensor and per-channel scales are negligible)
        q = net.quant
        self.scale_factor = 1.0 + (16 / (q.group * q.weight_bits) if q.group else 0.0)

    @property
    def halves(self) -> bool:
        return "attn" in self.parts

    def curve(self, cfg: BoardConfig, placement: str, multi: bool,
              which: str = "block") -> list[BlockPoint]:
        key = (cfg.board.name, placement, which)
        if key not in self.curves:
            cap, slrs = board_capacity(cfg, multi)
            g = self.parts[which]
            try:
                self.curves[key] = block_curve(g, cfg.board.part, placement, cap, _nvec(g),
                                               slrs)
            except InfeasibleError:  # some layer fits no SLR with this weight placement
                self.curves[key] = []
        return self.curves[key]

    def stage(self, cfg: BoardConfig, k: int, multi: bool, last: bool = False,
              lead: bool = False, trail: bool = False) -> Stage | None:
        """The fastest build of ``k`` whole blocks on this board, after an MLP half
        (``lead``) and before an attention half (``trail``) of the neighbouring blocks, with
        the LM head if ``last``."""
        extras = tuple(x for x, on in (("mlp", lead), ("attn", trail),
                                       ("head", last and "head" in self.parts)) if on)
        key = (cfg.board.name, k, extras)
        if key in self.cache:
            return self.cache[key]
        best = None
        for style in ("spatial", "rolled") if k else ("spatial",):
            for placement in ("onchip", "hbm"):
                if style == "rolled" and placement == "onchip" and k > 1:
                    continue  # iterating one block over k layers streams their weights
                s = self._evaluate(cfg, k, style, placement, multi, extras)
                if s is not None and (best is None or s.frame_s < best.frame_s * (1 - 1e-9)):
                    best = s
        self.cache[key] = best
        return best

    def _extras(self, cfg: BoardConfig, placement: str, multi: bool, extras: tuple[str, ...],
                room: dict[str, int], target: int, cap: dict[str, int]
                ) -> list[BlockPoint] | None:
        """A point per extra part: the cheapest that keeps pace with ``target`` cycles, else
        the fastest that fits the resources left."""
        norm = {d: max(1, cap.get(d, 1)) for d in RES}
        out = []
        room = dict(room)
        for x in extras:
            pts = [q for q in self.curve(cfg, placement, multi, x)
                   if all(q.res[d] <= room[d] for d in RES)]
            if not pts:
                return None
            paced = [q for q in pts if q.ii <= target]
            q = min(paced, key=lambda q: sum(q.res[d] / norm[d] for d in RES)) if paced \
                else pts[0]
            out.append(q)
            for d in RES:
                room[d] -= q.res[d]
        return out

    def _slr_pack(self, where: tuple, slrs: list, parts: list[tuple[str, BlockPoint]]
                  ) -> Any:
        """Every layer of the stage's parts (block copies, then extra parts, in chain order)
        in one SLR (dse.solver.slr.pack: per-SLR caps, mean rule, SLL wires)."""
        key = (where, tuple((tag, q.ii, len(q.layers)) for tag, q in parts))
        if key not in self.packs:
            layers, edges, prev = [], [], None
            for tag, q in parts:
                graph = self.parts["block" if tag.startswith("block") else tag]
                width = {n: w for n, _, w in q.layers}
                names = {n: f"{tag}.{n}" for n, _, _ in q.layers}
                layers += [(names[n], r) for n, r, _ in q.layers]
                edges += [(names[e.src], names[e.dst], width[e.src]) for e in graph.edges
                          if e.src in names and e.dst in names]
                if prev is not None and q.layers:
                    edges.append((prev[0], names[q.layers[0][0]], prev[1]))
                if q.layers:
                    prev = (names[q.layers[-1][0]], q.layers[-1][2])
            self.packs[key] = pack(layers, edges, slrs, time_limit=5.0)
        return self.packs[key]

    def _evaluate(self, cfg: BoardConfig, k: int, style: str, placement: str,
                  multi: bool, extras: tuple[str, ...] = ()) -> Stage | None:
        b = cfg.board
        cap, slrs = board_capacity(cfg, multi)
        f = cfg.clock_mhz * 1e6
        copies = k if style == "spatial" else 1
        kv_bits_tok = self.net.kv_bits_per_token(self.block)
        kv_cache_bytes = self.net.kv_cache_bits(self.block) // 8
        n_kv = k + (1 if "attn" in extras else 0)  # attention layers reading the cache
        hbm_bytes = int(b.external_memory_gib * 2**30)
        hbm_Bps = b.external_memory_gbps * 1e9 * self.eff
        rule = channel_rule(b, cfg.shell.name)  # one rule with the CNN formulation
        ports = rule.usable
        mains = self.curve(cfg, placement, multi) if k else [ZERO]
        for p in mains:
            main_res = {d: p.res[d] * copies for d in RES}
            if any(main_res[d] > cap.get(d, 0) for d in RES):
                continue
            if style == "spatial":  # k blocks stream into each other
                compute_cycles = p.ii
                lat_cycles = k * p.latency + p.ii
            else:  # each iteration's layers are busy for a block II
                compute_cycles = k * (p.ii + LOOP_OVERHEAD)
                lat_cycles = k * (max(p.ii, p.latency) + LOOP_OVERHEAD) + p.latency
            xs = self._extras(cfg, placement, multi, extras,
                              {d: cap.get(d, 0) - main_res[d] for d in RES},
                              compute_cycles or 10**18, cap) if extras else []
            if xs is None:
                continue
            res = {d: main_res[d] + sum(q.res[d] for q in xs) for d in RES}
            for q in xs:  # extra parts are pipelined with the blocks
                compute_cycles = max(compute_cycles, q.ii)
                lat_cycles += q.latency
            x_streams = [s for q in xs for s in q.ext_streams]
            if self.scale_factor != 1.0:
                f_ = self.scale_factor
                p = replace(p, ext_streams=tuple((n, int(w * f_), int(b_ * f_))
                                                 for n, w, b_ in p.ext_streams))
                x_streams = [(n, int(w * f_), int(b_ * f_)) for n, w, b_ in x_streams]
            per = 1 if style == "spatial" else k
            ext_w_bits = k * sum(s[1] for s in p.ext_streams) + sum(s[1] for s in x_streams)
            ext_bpf = k * sum(s[2] for s in p.ext_streams) + sum(s[2] for s in x_streams)
            if (ext_bpf or (kv_bits_tok and n_kv)) and not (hbm_bytes and hbm_Bps):
                continue
            weight_bytes = ext_w_bits // 8
            kv_bytes = n_kv * kv_cache_bytes * self.S
            if weight_bytes + kv_bytes > hbm_bytes:
                continue
            compute_s = compute_cycles / f
            bytes_frame = (ext_bpf + n_kv * kv_bits_tok) / 8
            hbm_s = bytes_frame / hbm_Bps if bytes_frame else 0.0
            # HBM pseudo-channels: one stream per external layer (per copy) and per KV cache
            n_streams = copies * (len(p.ext_streams) + (1 if kv_bits_tok else 0)) \
                + len(x_streams) + (1 if kv_bits_tok and "attn" in extras else 0)
            if n_streams > ports:
                continue
            cmap = None
            demands: list[StreamDemand] = []
            for slack in (1.0, 1.01, 1.03, 1.06, 1.1):  # channel packing is not fluid
                frame_s = max(compute_s, hbm_s * slack)
                demands = []
                for c in range(copies if k else 0):
                    for name, wbits, bpf in p.ext_streams:
                        demands.append(StreamDemand(f"{c}.{name}", per * bpf / 8 / frame_s,
                                                    per * wbits // 8))
                    if kv_bits_tok:
                        demands.append(StreamDemand(f"{c}.kv", per * kv_bits_tok / 8 / frame_s,
                                                    per * kv_cache_bytes * self.S))
                for j, (name, wbits, bpf) in enumerate(x_streams):
                    demands.append(StreamDemand(f"x{j}.{name}", bpf / 8 / frame_s, wbits // 8))
                if kv_bits_tok and "attn" in extras:
                    demands.append(StreamDemand("x.kv", kv_bits_tok / 8 / frame_s,
                                                kv_cache_bytes * self.S))
                if not demands:
                    break
                try:
                    cmap = allocate(demands, rule.data_channels,
                                    b.external_memory_gbps / rule.physical * 1e9,
                                    rule.channel_bytes, efficiency=self.eff,
                                    striped=rule.striped)
                    break
                except InfeasibleError:
                    continue
            if demands and cmap is None:
                continue
            placed = None
            slr_layers: tuple[tuple[str, dict[str, int], int], ...] = ()
            if slrs is not None:  # every layer in one SLR, each SLR within FINN's limits
                parts = [(f"block{c}", p) for c in range(copies if k else 0)]
                parts += [(x, q) for x, q in zip(extras, xs, strict=False)]
                placed = self._slr_pack((b.name, b.part, multi, placement), slrs, parts)
                if not placed.feasible:
                    continue
                slr_layers = tuple((f"{tag}.{n}", r, placed.slr_of[f"{tag}.{n}"])
                                   for tag, q in parts for n, r, _ in q.layers)
            hbm_s = max(hbm_s, frame_s if frame_s > compute_s else 0.0)
            latency_s = max(lat_cycles / f, hbm_s)
            slow = max([p] + xs, key=lambda q: q.ii)
            binding = ("HBM bandwidth" if hbm_s >= compute_s else
                       f"compute ({slow.bottleneck}, II {slow.ii} cycles)")
            return Stage(board=b.name, index=-1, blocks=k, first_block=-1, style=style,
                         placement=placement, point=p, frame_s=frame_s, latency_s=latency_s,
                         compute_s=compute_s, hbm_s=hbm_s, hbm_bytes_per_frame=bytes_frame,
                         weight_bytes=weight_bytes, kv_bytes=kv_bytes,
                         hbm_channels=len({s.channel for v in (cmap.shares.values() if cmap
                                                               else []) for s in v}),
                         binding=binding, resources=res,
                         capacity={d: cap.get(d, 0) for d in RES}, extras=extras,
                         hbm_map=cmap, mem_Bps=hbm_Bps, clock_mhz=cfg.clock_mhz,
                         price_per_hour=getattr(b, "price_per_hour", None), slrs=placed,
                         slr_layers=slr_layers)
        return None


def link_s(net: LLMNetwork) -> float:
    """One frame's activations between two Coyote boards with ACCL (``dse.chain.links``)."""
    return fpga_link(accl=True).arrival_s(net.frame_bytes)


def optimize_llm(net: LLMNetwork, boards: list[Any], *, sequences: int = 1,
                 efficiency: float = DEFAULT_EFFICIENCY, prompt: int = 128,
                 order: str = "given", topology: str = "chain") -> LLMPlan:
    """The best contiguous split of the network over (a prefix of) the chain ``boards``:
    FPGA boards (``BoardConfig``) and GPUs/CPUs (``dse.devices.Device``) in any mix. With
    ``order="auto"`` every distinct order of the chain is tried and the best kept."""
    if sequences < 1:
        raise InfeasibleError("--sequences must be at least 1")
    model = StageModel(net, sequences, efficiency)
    if order == "auto":
        names = [_name(x) for x in boards]
        distinct = math.factorial(len(names))
        for n in set(names):
            distinct //= math.factorial(names.count(n))
        perms: Iterable[Sequence[int]]
        if distinct <= 120:
            perms = itertools.permutations(range(len(boards)))
        else:  # too many: devices of one type stay together, the types in every order
            types = list(dict.fromkeys(names))
            perms = ([i for t in tp for i, n in enumerate(names) if n == t]
                     for tp in itertools.permutations(types))
        seen, best = set(), None
        for perm in perms:
            key = tuple(names[i] for i in perm)
            if key in seen:
                continue
            seen.add(key)
            try:
                plan = _optimize_chain(net, [boards[i] for i in perm], model, sequences,
                                       efficiency, prompt, topology)
            except InfeasibleError:
                continue
            k = (-plan.metrics["tokens_per_s"], plan.metrics["latency_s"])
            if best is None or k < best[0]:
                best = (k, plan)
        if best is None:
            return _optimize_chain(net, list(boards), model, sequences, efficiency, prompt,
                                   topology)
        p = best[1]
        return replace(p, metrics={**p.metrics, "orders_tried": len(seen)})
    return _optimize_chain(net, list(boards), model, sequences, efficiency, prompt, topology)


def _name(x: Any) -> str:
    return x.board.name if isinstance(x, BoardConfig) else x.name


def _optimize_chain(net: LLMNetwork, boards: list[Any], model: StageModel, sequences: int,
                    efficiency: float, prompt: int, topology: str = "chain") -> LLMPlan:
    N, B = net.n_blocks, len(boards)
    multi = sum(isinstance(x, BoardConfig) for x in boards) > 1
    INF = float("inf")
    # positions in half blocks (attention half, MLP half) when the block can be cut there
    U = 2 if model.halves else 1
    H = U * N
    # dp[b][h] = (slowest stage, sum of latencies) with the first h units on boards < b
    dp = [[(INF, INF)] * (H + 1) for _ in range(B + 1)]
    back: list[list[int]] = [[-1] * (H + 1) for _ in range(B + 1)]
    dp[0][0] = (0.0, 0.0)
    hops = [0.0] + [hop_s(net, boards[b - 1], boards[b], topology) for b in range(1, B)]

    def shape(h0: int, h1: int) -> tuple[int, bool, bool]:
        if U == 1:
            return h1 - h0, False, False
        lead, trail = h0 % 2 == 1, h1 % 2 == 1
        return (h1 - h0 - lead - trail) // 2, lead, trail

    def stage_at(b: int, h0: int, h1: int) -> Stage | None:
        k, lead, trail = shape(h0, h1)
        x = boards[b]
        if isinstance(x, BoardConfig):
            return model.stage(x, k, multi, last=h1 == H, lead=lead, trail=trail)
        return device_stage(net, x, k, lead, trail, h1 == H, sequences, prompt)

    for b in range(B):
        for h0 in range(H + 1):
            cur = dp[b][h0]
            if cur[0] == INF:
                continue
            misses = 0
            for h1 in range(h0 + 1, H + 1):
                st = stage_at(b, h0, h1)
                if st is None:
                    misses += 1
                    if misses > 2 * U + 1:
                        break  # more blocks fit no better (resources/HBM only grow)
                    continue
                misses = 0
                worst = max(cur[0], st.frame_s, hops[b])
                lat = cur[1] + st.latency_s + hops[b]
                if (worst, lat) < dp[b + 1][h1]:
                    dp[b + 1][h1] = (worst, lat)
                    back[b + 1][h1] = h0
    best_b = min((b for b in range(1, B + 1) if dp[b][H][0] < INF),
                 key=lambda b: (dp[b][H][0], b), default=None)
    if best_b is None:
        raise InfeasibleError(_why_infeasible(net, boards, model, multi))
    stages = []
    h1 = H
    for b in range(best_b, 0, -1):
        h0 = back[b][h1]
        st = stage_at(b - 1, h0, h1)
        if st is None:
            raise InternalError(f"stage {b - 1}: the DP kept blocks {h0}..{h1} it cannot build")
        stages.append(_placed(st, b - 1, h0 / U))
        h1 = h0
    stages.reverse()
    fpga = [x for x in boards if isinstance(x, BoardConfig)]
    plan = LLMPlan(network=net, stages=tuple(stages), sequences=sequences,
                   clock_mhz=fpga[0].clock_mhz if fpga else 0.0, efficiency=efficiency,
                   prompt=prompt)
    return _with_metrics(plan, boards, hops)


def _placed(st: Stage, index: int, first: float) -> Stage:
    """``first``: the stage's first block (x.5: it starts with that block's MLP half)."""
    return replace(st, index=index, first_block=first)


def _why_infeasible(net: LLMNetwork, boards: list[Any], model: StageModel,
                    multi: bool) -> str:
    weights = net.n_blocks * net.block_weight_bits(model.block) / 8
    kv = net.n_blocks * net.kv_cache_bits(model.block) / 8 * model.S
    mem = sum((b.board.external_memory_gib if isinstance(b, BoardConfig) else b.memory_gib)
              * 2**30 for b in boards)
    names = ", ".join(sorted({_name(b) for b in boards}))
    if weights + kv > mem:
        per = mem / len(boards)
        return (f"{net.arch.name} needs {weights / 1e9:.1f} GB of weights"
                + (f" + {kv / 1e9:.1f} GB of KV cache for {model.S} sequence(s)" if kv else "")
                + f" but the {len(boards)} device(s) ({names}) have {mem / 1e9:.1f} GB of "
                f"memory; use at least {math.ceil((weights + kv) / per)} of them")
    b0 = boards[0]
    if isinstance(b0, BoardConfig) and model.stage(b0, 1, multi) is None:
        b = b0.board
        mem_s = (f"{b.external_memory_gib:g} GiB of HBM/DDR at {b.external_memory_gbps:g} GB/s"
                 if b.external_memory_gbps else "no HBM/DDR to stream weights or a KV cache "
                 "from")
        return (f"one {net.arch.name} block does not fit a {b.name} at any folding: its "
                f"on-chip memory and logic are too small and it has {mem_s}; use an Alveo "
                "board such as U55C")
    return (f"{net.arch.name}: its {net.n_blocks} blocks do not fit the {len(boards)} "
            f"device(s) ({names}); add devices")


def _with_metrics(plan: LLMPlan, boards: list[Any], hops: list[float]) -> LLMPlan:
    net, S = plan.network, plan.sequences
    st = plan.stages
    slow = max(st, key=lambda s: s.frame_s)
    used_hops = hops[1:len(st)]
    frame_s = max(max(s.frame_s for s in st), max(used_hops, default=0.0))
    latency_s = sum(s.latency_s for s in st) + sum(used_hops)
    throughput = 1.0 / frame_s
    used = boards[: len(st)]
    hbm_Bps = sum(s.mem_Bps for s in st)
    bytes_frame = sum(s.hbm_bytes_per_frame for s in st)
    binding = slow.binding if slow.frame_s >= max(used_hops, default=0.0) else "link"
    m: dict[str, Any] = {"boards_used": len(st), "mode": net.mode, "sequences": S,
                         "latency_s": latency_s, "binding": binding,
                         "bottleneck_board": slow.index,
                         # the links between the stages (dse.chain.links), for the plan
                         "hops_s": list(used_hops),
                         "frame_bytes": net.frame_bytes}
    if net.mode == "decode":
        per_seq = 1.0 / latency_s
        agg = min(S * per_seq, throughput)
        bound = hbm_Bps / bytes_frame if bytes_frame else float("inf")
        if S * per_seq < throughput:
            binding = f"sequences in flight ({S}) x latency per token"
        # the prompt streams through the same hardware one token per frame, back to back
        # (causal attention only needs earlier tokens, which passed every layer before);
        # each prompt token is charged the full cache read (pessimistic for short prompts)
        # GPU/CPU stages run the prompt as one batched step; their sum is conservative
        # (no overlap between stages)
        m["prompt_tokens"] = plan.prompt
        if all(s.prefill_s is None for s in st):
            m["time_to_first_token_s"] = (plan.prompt - 1) * frame_s + latency_s
        else:
            m["time_to_first_token_s"] = sum(
                s.prefill_s if s.prefill_s is not None else
                (plan.prompt - 1) * s.frame_s + s.latency_s for s in st) + sum(used_hops)
        m.update(tokens_per_s_per_sequence=per_seq, tokens_per_s=agg,
                 latency_per_token_s=latency_s, pipeline_tokens_per_s=throughput,
                 bound_tokens_per_s=bound, bound="aggregate HBM bandwidth / (weight + KV "
                 "bytes per token)", ratio_to_bound=agg / bound if bound else 0.0,
                 binding=binding,
                 kv_bytes_per_sequence=net.n_blocks * net.kv_cache_bits(
                     net.stacks[0].block) // 8)
        # sequences the KV cache room allows (HBM left after weights)
        free = sum((b.board.external_memory_gib if isinstance(b, BoardConfig) else
                    b.memory_gib) * 2**30 for b in used) - sum(s.weight_bytes for s in st)
        per = m["kv_bytes_per_sequence"]
        m["max_sequences_by_kv_capacity"] = int(free // per) if per else None
    prices = [s.price_per_hour for s in st if s.price_per_hour is not None]
    if len(prices) == len(st):
        rate = m.get("tokens_per_s") if net.mode == "decode" else throughput * net.seq
        m["price_per_hour"] = sum(prices)
        m["cost_per_million_tokens"] = sum(prices) / 3600 / rate * 1e6 if rate else None
    if net.mode != "decode":
        m.update(frames_per_s=throughput, sequences_per_s=throughput,
                 tokens_per_s=throughput * net.seq, latency_s=latency_s)
        if bytes_frame:
            bound = hbm_Bps / bytes_frame
            m.update(bound_frames_per_s=bound, bound="aggregate HBM bandwidth / bytes per "
                     "frame", ratio_to_bound=throughput / bound)
        else:
            m.update(bound="compute (all weights on chip)")
    return replace(plan, metrics=m)


def _channel_table(m: Any) -> dict[str, Any] | None:
    if m is None:
        return None
    return {"channels": m.channels, "usable_gbps_per_channel": m.channel_bytes_per_s / 1e9,
            "bytes_per_channel": m.channel_bytes,
            "load": [{"channel": c, "gbps": r / 1e9, "bytes": b}
                     for c, (r, b) in enumerate(m.load()) if r or b],
            "streams": {n: [{"channel": sh.channel, "gbps": sh.bytes_per_s / 1e9,
                             "bytes": sh.bytes, "offset": sh.offset} for sh in parts]
                        for n, parts in sorted(m.shares.items())}}


def _block_range(s: Stage) -> str:
    """E.g. "4.5-8.5": the MLP half of block 4, blocks 5-7, the attention half of block 8."""
    first = s.first_block
    end = first + s.blocks + (0.5 if "mlp" in s.extras else 0) + (0.5 if "attn" in s.extras
                                                                   else 0)
    return f"{first:g}-{end:g}"


def _slr_table(s: Stage) -> dict[str, Any] | None:
    """Where each of the stage's layers sits (part.layer -> SLR), per-SLR use and SLL bits."""
    p = s.slrs
    if p is None:
        return None
    return {"feasible": p.feasible, "usage": p.usage, "sll_bits": p.sll,
            "sll_limit": SLL_PER_BOUNDARY,
            "layers": [{"layer": n, "slr": slr, "resources": r} for n, r, slr in s.slr_layers]}


def plan_dict(plan: LLMPlan) -> dict[str, Any]:
    net = plan.network
    return {
        "schema": "dse-llm-plan/1",
        "model": {"name": net.arch.name, "family": net.arch.family, "params": net.arch.params(),
                  "mode": net.mode, "seq": net.seq, "context": net.context,
                  "weights": net.quant.weights, "acts": net.quant.acts, "kv": net.quant.kv,
                  "group": net.quant.group,
                  "blocks": net.n_blocks, "block_layers": len(net.stacks[0].block.layers)},
        "clock_mhz": plan.clock_mhz,
        "hbm_efficiency": plan.efficiency,
        "stages": [{
            "board": s.board, "index": s.index,
            "blocks": _block_range(s),
            "parts": list(s.extras),
            "kind": s.kind, "price_per_hour": s.price_per_hour,
            "clock_mhz": s.clock_mhz or None,
            "style": s.style, "weights": s.placement, "block_ii_cycles": s.point.ii,
            "frame_s": s.frame_s, "latency_s": s.latency_s, "compute_s": s.compute_s,
            "hbm_s": s.hbm_s, "hbm_bytes_per_frame": s.hbm_bytes_per_frame,
            "weight_bytes": s.weight_bytes, "kv_bytes": s.kv_bytes,
            "hbm_channels": s.hbm_channels, "binding": s.binding, "resources": s.resources,
            "capacity": s.capacity,
            "hbm_pseudo_channels": _channel_table(s.hbm_map),
            "folding": [{"layer": n, "impl": i, **a} for n, a, i in s.point.folding],
            "slrs": _slr_table(s),
        } for s in plan.stages],
        "metrics": plan.metrics,
    }
