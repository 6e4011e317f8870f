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
from dataclasses import dataclass, field, replace
from typing import Any

from dse.chain.channels import channel_rule
from dse.chain.links import fpga_link
from dse.exceptions import InfeasibleError
from dse.ir.graph import Edge, LayerGraph
from dse.llm.hetero import device_stage, hop_s
from dse.llm.network import LLMNetwork, arch_dict
from dse.llm.stage import RES, ZERO, BlockPoint, Stage
from dse.models.candidates import FoldingOption, enumerate_options
from dse.solver.slr import SLL_PER_BOUNDARY, bound_by_slrs, fits_one, pack, slr_capacities
from dse.specs import Resources
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


def board_capacity(cfg: BoardConfig, multi: bool) -> tuple[Resources, list | None]:
    """(what a board's layers may use, its per-SLR capacities): the board's caps, bounded by
    the sum of its SLRs (dse.solver.slr), as the CNN solver books them."""
    slrs = slr_capacities(cfg, multi)
    return bound_by_slrs(cfg.capacity(multi), slrs), slrs


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
            opts = [o for o in opts if fits_one(Resources.of(o.cost), slrs)]
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


def block_curve(block: LayerGraph, part: str, placement: str, cap: Resources,
                nvec: dict[str, int], slrs: list | None = None) -> list[BlockPoint]:
    """The block's cheapest folding at every II a folding can give (fastest first)."""
    opts = _block_options(block, part, placement, slrs)
    norm = {d: max(1, v) for d, v in cap.items(RES)}
    iis = sorted({o.cost.cycles for os_ in opts for o in os_ if o.cost.cycles >= max(
        os_[0].cost.cycles for os_ in opts)})
    if len(iis) > 400:  # keep the sweep cheap: every value near the fast end, then geometric
        keep = set(iis[:150])
        step = (len(iis) - 150) / 250
        keep |= {iis[150 + int(i * step)] for i in range(250)}
        iis = sorted(keep)
    points = []
    for ii in iis:
        res = Resources()
        streams = []
        folding = []
        per_layer = []
        fills = {}
        worst = ("", 0)
        for lyr, os_ in zip(block.layers, opts, strict=True):
            fit = [o for o in os_ if o.cost.cycles <= ii]
            o = min(fit, key=lambda o: sum(getattr(o.cost, d) / norm[d] for d in RES))
            res += Resources.of(o.cost)
            if o.external_weight_bits:
                streams.append((lyr.name, o.external_weight_bits,
                                o.external_weight_bits * nvec[lyr.name]))
            folding.append((lyr.name, dict(o.attrs), o.impl))
            per_layer.append((lyr.name, Resources.of(o.cost),
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


URAM_BITS = 4096 * 72  # one UltraRAM block (UG573)
BRAM18_BITS = 18 * 1024  # one 18 Kb block RAM


def weight_buffers(p: BlockPoint, cap: Resources, used: Resources) -> Resources:
    """On-chip memory of a FINNLoop body's weight buffers. finn-plus 1.6.1 builds a looped
    MVAU with mem_mode "external_mem" (rtl/matrixvectoractivation_rtl.py,
    adapt_for_loop_body): fetch_weights reads the iteration's weights over AXI-MM into
    local_weight_buffer, two banks of NF x SF words of PE x SIMD x W bits, i.e.
    2 x MH x MW x W bits (finn-rtllib/fetch_weights/local_weight_buffer.sv), and replays
    them N_REPS = prod(numInputVectors) / TH times, once per token of the frame
    (custom_op/fpgadataflow/hwcustomop.py, generate_hdl_fetch_weights), while the other bank
    fills with the next iteration's. The buffers take UltraRAM first, then BRAM18 (bit
    capacity; the word packing is not modelled)."""
    bits = sum(2 * w for _, w, _ in p.ext_streams)
    uram_free = max(0, cap.uram - used.uram)
    uram = min(uram_free, math.ceil(bits / URAM_BITS))
    rest = max(0, bits - uram * URAM_BITS)
    return Resources(uram=uram, bram18=math.ceil(rest / BRAM18_BITS))


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
        # one frame's residual stream (FLOAT32), which a FINNLoop iteration reads from and
        # writes to HBM
        self.act_bits = net.seq * net.arch.hidden * 32

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
                room: Resources, target: int, cap: Resources) -> list[BlockPoint] | None:
        """A point per extra part: the cheapest that keeps pace with ``target`` cycles, else
        the fastest that fits the resources left."""
        norm = {d: max(1, v) for d, v in cap.items(RES)}
        out = []
        for x in extras:
            pts = [q for q in self.curve(cfg, placement, multi, x) if q.res.fits(room, RES)]
            if not pts:
                return None
            paced = [q for q in pts if q.ii <= target]
            q = min(paced, key=lambda q: sum(v / norm[d] for d, v in q.res.items(RES))) \
                if paced else pts[0]
            out.append(q)
            room -= q.res
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
            main_res = p.res.times(copies)
            if style == "rolled" and p.ext_streams:  # FINNLoop's on-chip weight buffers
                main_res += weight_buffers(p, cap, main_res)
            if not main_res.fits(cap, RES):
                continue
            if style == "spatial":  # k blocks stream into each other
                compute_cycles = p.ii
                lat_cycles = k * p.latency + p.ii
            else:  # each iteration's layers are busy for a block II
                compute_cycles = k * (p.ii + LOOP_OVERHEAD)
                lat_cycles = k * (max(p.ii, p.latency) + LOOP_OVERHEAD) + p.latency
            xs = self._extras(cfg, placement, multi, extras, cap - main_res,
                              compute_cycles or 10**18, cap) if extras else []
            if xs is None:
                continue
            res = main_res + Resources.total(q.res for q in xs)
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
            if style == "rolled":  # each iteration fetches its weights once per frame, and
                # its input and output activations go through HBM (loop_control's m_axi_hbm)
                ext_bpf = k * (sum(s[1] for s in p.ext_streams) + 2 * self.act_bits)
            else:  # FINN's external weights: streamed once per input vector
                ext_bpf = k * sum(s[2] for s in p.ext_streams)
            ext_bpf += sum(s[2] for s in x_streams)
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
                        fetched = wbits if style == "rolled" else bpf
                        demands.append(StreamDemand(name=f"{c}.{name}",
                                                    bytes_per_s=per * fetched / 8 / frame_s,
                                                    bytes=per * wbits // 8))
                    if kv_bits_tok:
                        demands.append(StreamDemand(
                            name=f"{c}.kv", bytes_per_s=per * kv_bits_tok / 8 / frame_s,
                            bytes=per * kv_cache_bytes * self.S))
                for j, (name, wbits, bpf) in enumerate(x_streams):
                    demands.append(StreamDemand(name=f"x{j}.{name}", bytes_per_s=bpf / 8 / frame_s,
                                                bytes=wbits // 8))
                if kv_bits_tok and "attn" in extras:
                    demands.append(StreamDemand(name="x.kv", bytes_per_s=kv_bits_tok / 8 / frame_s,
                                                bytes=kv_cache_bytes * self.S))
                if style == "rolled":  # the loop's residual stream in and out, per iteration
                    demands.append(StreamDemand(name="loop.act",
                                                bytes_per_s=k * 2 * self.act_bits / 8 / frame_s,
                                                bytes=2 * self.act_bits // 8))
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
            slr_layers: tuple[tuple[str, Resources, int], ...] = ()
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
                         capacity=cap, extras=extras,
                         hbm_map=cmap, mem_Bps=hbm_Bps, clock_mhz=cfg.clock_mhz,
                         price_per_hour=getattr(b, "price_per_hour", None), slrs=placed,
                         slr_layers=slr_layers,
                         extra_points=tuple(zip(extras, xs, strict=False)))
        return None


def link_s(net: LLMNetwork) -> float:
    """One frame's activations between two Coyote boards with ACCL (``dse.chain.links``)."""
    return fpga_link(accl=True).arrival_s(net.frame_bytes)


def optimize_llm(net: LLMNetwork, boards: list[Any], *, sequences: int = 1,
                 efficiency: float = DEFAULT_EFFICIENCY, prompt: int = 128,
                 order: str = "given", topology: str = "chain",
                 max_latency_s: float | None = None, max_ttft_s: float | None = None
                 ) -> LLMPlan:
    """The best plan for ``net`` over the offered ``boards``: FPGA boards (``BoardConfig``)
    and GPUs/CPUs (``dse.devices.Device``) in any mix. It maximizes tokens/s (decode) or
    sequences/s at ``sequences`` in flight within the optional latency and time-to-first-
    token bounds (``dse.llm.search``), over every subset of the offered devices: every prefix
    of the given order, and with ``order="auto"`` of every distinct order
    (``dse.solver.order.name_orders``). Equal rates: the fewest devices win."""
    from dse.llm.search import Objective, better
    from dse.solver.order import grouped_orders, name_orders

    if sequences < 1:
        raise InfeasibleError("--sequences must be at least 1")
    model = StageModel(net, sequences, efficiency)
    goal = Objective(sequences=sequences, max_latency_s=max_latency_s, max_ttft_s=max_ttft_s)
    names = [_name(x) for x in boards]
    perms: list[tuple[int, ...]] = [tuple(range(len(boards)))]
    if order == "auto":
        perms = list(itertools.islice(name_orders(names), ORDER_LIMIT + 1))
        if len(perms) > ORDER_LIMIT:  # too many: devices of one type stay together
            perms = grouped_orders(names)
    best, best_chain = None, None
    by_count: list[float | None] = [None] * len(boards)
    for perm in perms:
        chain = [boards[i] for i in perm]
        res = _search_order(net, chain, model, goal, prompt, topology)
        if res is None:
            continue
        by_count = [max((x for x in (u, v) if x is not None), default=None)
                    for u, v in zip(by_count, res.rate_by_count, strict=True)]
        if better(res, best):
            best, best_chain = res, chain
    if best is None or best_chain is None:
        raise InfeasibleError(_why_infeasible(net, list(boards), model, goal))
    plan = _assemble(net, best_chain, best, model, sequences, efficiency, prompt, topology)
    left = _left_out(names, [s.board for s in plan.stages], by_count, best.rate,
                     "tokens/s" if net.mode == "decode" else "sequences/s")
    m = {**plan.metrics, "orders_tried": len(perms), "devices_offered": len(boards),
         "left_out": left, "max_latency_s": max_latency_s, "max_ttft_s": max_ttft_s,
         "best_rate_by_device_count": by_count}
    return replace(plan, metrics=m)


ORDER_LIMIT = 120  # distinct chain orders tried in full; beyond, device types stay together


def _name(x: Any) -> str:
    return x.board.name if isinstance(x, BoardConfig) else x.name


def _search_order(net: LLMNetwork, boards: list[Any], model: StageModel, goal: Any,
                  prompt: int, topology: str) -> Any:
    """The best plan over the prefixes of one device order (``dse.llm.search``)."""
    from dse.llm.search import search_chain

    multi = sum(isinstance(x, BoardConfig) for x in boards) > 1
    # positions in half blocks (attention half, MLP half) when the block can be cut there
    U = 2 if model.halves else 1
    H = U * net.n_blocks
    hops = [0.0] + [hop_s(net, boards[b - 1], boards[b], topology)
                    for b in range(1, len(boards))]
    P = max(1, prompt) if net.mode == "decode" else 1

    def stage_at(b: int, h0: int, h1: int) -> Stage | None:
        k, lead, trail = _shape(U, h0, h1)
        x = boards[b]
        if isinstance(x, BoardConfig):
            return model.stage(x, k, multi, last=h1 == H, lead=lead, trail=trail)
        return device_stage(net, x, k, lead, trail, h1 == H, model.S, prompt)

    return search_chain(H, len(boards), stage_at, hops, goal, P, max_misses=2 * U + 1)


def _shape(U: int, h0: int, h1: int) -> tuple[int, bool, bool]:
    """(whole blocks, leading MLP half, trailing attention half) of units h0 .. h1."""
    if U == 1:
        return h1 - h0, False, False
    lead, trail = h0 % 2 == 1, h1 % 2 == 1
    return (h1 - h0 - lead - trail) // 2, lead, trail


def _assemble(net: LLMNetwork, boards: list[Any], res: Any, model: StageModel,
              sequences: int, efficiency: float, prompt: int, topology: str) -> LLMPlan:

    U = 2 if model.halves else 1
    stages = tuple(_placed(st, b, h0 / U) for b, (st, h0) in enumerate(res.stages))
    hops = [0.0] + [hop_s(net, boards[b - 1], boards[b], topology)
                    for b in range(1, len(boards))]
    fpga = [x for x in boards if isinstance(x, BoardConfig)]
    plan = LLMPlan(network=net, stages=stages, sequences=sequences,
                   clock_mhz=fpga[0].clock_mhz if fpga else 0.0, efficiency=efficiency,
                   prompt=prompt)
    return _with_metrics(plan, boards, hops)


def _left_out(offered: list[str], used: list[str], by_count: list[float | None],
              rate: float, unit: str) -> list[dict[str, Any]]:
    """The offered devices the plan leaves out, each with why."""
    from collections import Counter

    rest = Counter(offered) - Counter(used)
    if not rest:
        return []
    n = len(used)
    more = [(c + 1, r) for c, r in enumerate(by_count) if c + 1 > n and r is not None]
    if more:
        c, r = max(more, key=lambda x: x[1])
        why = (f"the best plan with more devices ({c}) gives {r:,.1f} {unit}, not more than "
               f"{rate:,.1f} with {n}" if r < rate * (1 + 1e-9) else
               f"equal {unit} with fewer devices")
    else:
        why = "no plan that uses them is feasible within the bounds"
    return [{"device": d, "count": k, "why": why} for d, k in sorted(rest.items())]


def _placed(st: Stage, index: int, first: float) -> Stage:
    """``first``: the stage's first block (x.5: it starts with that block's MLP half)."""
    return replace(st, index=index, first_block=first)


def _why_infeasible(net: LLMNetwork, boards: list[Any], model: StageModel,
                    goal: Any = None) -> str:
    multi = sum(isinstance(x, BoardConfig) for x in boards) > 1
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
        larger = " or a ".join(x for x in ("V80", "VCK5000") if x != b.name)
        fix = (f"offer a larger board (a {larger})" if b.external_memory_gbps else
               "use an Alveo board with HBM such as U55C")
        return (f"one {net.arch.name} block does not fit a {b.name} at any folding: its "
                f"on-chip memory and logic are too small and it has {mem_s}; {fix}")
    bounds = [f"{what} {v * 1e3:g} ms" for what, v in (
        ("--max-latency", getattr(goal, "max_latency_s", None)),
        ("--max-ttft", getattr(goal, "max_ttft_s", None))) if v is not None]
    if bounds:
        return (f"{net.arch.name}: no plan on the {len(boards)} device(s) ({names}) meets "
                f"{' and '.join(bounds)}; relax the bound or offer faster devices")
    hint = ""
    if isinstance(b0, BoardConfig) and len({_name(b) for b in boards}) == 1:
        k = _most_blocks(model, b0, multi, net.n_blocks)
        hint = (f" (a {b0.board.name} holds at most {k} of its blocks: about "
                f"{math.ceil(net.n_blocks / k)} in all)")
    return (f"{net.arch.name}: its {net.n_blocks} blocks do not fit the {len(boards)} "
            f"device(s) ({names}); add devices{hint}")


def _most_blocks(model: StageModel, cfg: BoardConfig, multi: bool, n: int) -> int:
    """The most whole blocks one board builds (one is known to fit; binary search)."""
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if model.stage(cfg, mid, multi) is not None else (lo, mid - 1)
    return lo


def _with_metrics(plan: LLMPlan, boards: list[Any], hops: list[float]) -> LLMPlan:
    """The plan's rate at its sequences in flight (``dse.llm.search.Objective``), latency,
    time to first token (``dse.llm.search.prompt_times``: one model for every chain), bound
    and cost."""
    from dse.llm.search import Objective, prompt_times

    net, S = plan.network, plan.sequences
    st = plan.stages
    slow = max(st, key=lambda s: s.frame_s)
    used_hops = hops[1:len(st)]
    frame_s = max(max(s.frame_s for s in st), max(used_hops, default=0.0))
    latency_s = sum(s.latency_s for s in st) + sum(used_hops)
    throughput = 1.0 / frame_s
    rate = Objective(sequences=S).rate(frame_s, latency_s)
    used = boards[: len(st)]
    hbm_Bps = sum(s.mem_Bps for s in st)
    bytes_frame = sum(s.hbm_bytes_per_frame for s in st)
    binding = slow.binding if slow.frame_s >= max(used_hops, default=0.0) else "link"
    if S / latency_s < throughput:
        binding = (f"sequences in flight ({S}) x latency per "
                   f"{'token' if net.mode == 'decode' else 'sequence'}")
    m: dict[str, Any] = {"boards_used": len(st), "mode": net.mode, "sequences": S,
                         "latency_s": latency_s, "binding": binding,
                         "bottleneck_board": slow.index, "pipeline_frames_per_s": throughput,
                         # the links between the stages (dse.chain.links), for the plan
                         "hops_s": list(used_hops),
                         "frame_bytes": net.frame_bytes}
    if net.mode == "decode":
        bound = hbm_Bps / bytes_frame if bytes_frame else float("inf")
        m["prompt_tokens"] = plan.prompt
        m["time_to_first_token_s"] = prompt_times(st, [0.0] + list(used_hops),
                                                  max(1, plan.prompt))[1]
        m.update(tokens_per_s_per_sequence=1.0 / latency_s, tokens_per_s=rate,
                 latency_per_token_s=latency_s, pipeline_tokens_per_s=throughput,
                 bound_tokens_per_s=bound, bound="aggregate HBM bandwidth / (weight + KV "
                 "bytes per token)", ratio_to_bound=rate / bound if bound else 0.0,
                 kv_bytes_per_sequence=net.n_blocks * net.kv_cache_bits(
                     net.stacks[0].block) // 8)
        # sequences the KV cache room allows (HBM left after weights)
        free = sum((b.board.external_memory_gib if isinstance(b, BoardConfig) else
                    b.memory_gib) * 2**30 for b in used) - sum(s.weight_bytes for s in st)
        per = m["kv_bytes_per_sequence"]
        m["max_sequences_by_kv_capacity"] = int(free // per) if per else None
    else:
        m.update(frames_per_s=rate, sequences_per_s=rate, tokens_per_s=rate * net.seq)
        if bytes_frame:
            bound = hbm_Bps / bytes_frame
            m.update(bound_frames_per_s=bound, bound="aggregate HBM bandwidth / bytes per "
                     "frame", ratio_to_bound=rate / bound)
        else:
            m.update(bound="compute (all weights on chip)")
    prices = [s.price_per_hour for s in st if s.price_per_hour is not None]
    if len(prices) == len(st):
        m["price_per_hour"] = sum(prices)
        tps = m["tokens_per_s"]
        m["cost_per_million_tokens"] = sum(prices) / 3600 / tps * 1e6 if tps else None
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
            "layers": [{"layer": n, "slr": slr, "resources": r.as_dict()}
                       for n, r, slr in s.slr_layers]}


def plan_dict(plan: LLMPlan) -> dict[str, Any]:
    net = plan.network
    return {
        "schema": "dse-llm-plan/1",
        "model": {"name": net.arch.name, "family": net.arch.family, "params": net.arch.params(),
                  "mode": net.mode, "seq": net.seq, "context": net.context,
                  "weights": net.quant.weights, "acts": net.quant.acts, "kv": net.quant.kv,
                  "group": net.quant.group,
                  "blocks": net.n_blocks, "block_layers": len(net.stacks[0].block.layers),
                  # what rebuilds the block graph (dse emit binds an export to it)
                  "arch": arch_dict(net.arch), "rotation": net.quant.rotation},
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
            "hbm_channels": s.hbm_channels, "binding": s.binding,
            "resources": s.resources.as_dict() if s.resources is not None else {},
            "capacity": s.capacity.as_dict() if s.capacity is not None else {},
            "hbm_pseudo_channels": _channel_table(s.hbm_map),
            "folding": [{"layer": n, "impl": i, **a} for n, a, i in s.point.folding],
            # the partial blocks' and the head's own folding (layer names of those graphs)
            "extra_folding": {x: [{"layer": n, "impl": i, **a} for n, a, i in q.folding]
                              for x, q in s.extra_points},
            "slrs": _slr_table(s),
        } for s in plan.stages],
        "metrics": plan.metrics,
        "assumed": assumptions(plan),
    }


def assumptions(plan: LLMPlan) -> list[dict[str, Any]]:
    """The efficiencies the plan's numbers rest on, per device type used, with their
    sources."""
    from dataclasses import asdict

    from dse.specs.memory import DEFAULT_EFFICIENCY, HBM_EFFICIENCY_SOURCE

    out: list[dict[str, Any]] = []
    seen = set()
    for s in plan.stages:
        if s.board in seen:
            continue
        seen.add(s.board)
        if s.kind == "fpga":
            src = (HBM_EFFICIENCY_SOURCE if plan.efficiency == DEFAULT_EFFICIENCY else
                   "given with --hbm-efficiency")
            out.append({"device": s.board, "hbm_efficiency": plan.efficiency,
                        "loop_overhead_cycles": LOOP_OVERHEAD, "source": src})
        elif s.efficiency is not None:
            e = asdict(s.efficiency)
            out.append({"device": s.board, **{k: v for k, v in e.items() if k != "source"},
                        "source": e["source"]})
    return out
