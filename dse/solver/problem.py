"""A validated partitioning instance: layers in pipeline order, their costed options, boards,
links and ACCL limits, all as integer tables the solvers read (no cost model calls during search).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dse.exceptions import InfeasibleError, SpecError
from dse.ir import LayerGraph
from dse.models._common import bram18_table, ceil_div
from dse.models.candidates import FoldingOption, enumerate_options, prune_dominated
from dse.specs import BoardConfig, Resources

ACCL_WORD_BITS = 512  # ACCL/Coyote stream words
RES = ("lut", "ff", "bram18", "uram", "dsp")
#: solver resource dimensions: the five FPGA resources, then external memory
DIMS = RES + ("ext_bits", "ext_mbps", "ext_channels")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Board-to-board links (ACCL over Coyote RDMA by default)."""

    bandwidth_gbps: float = 100.0
    #: usable share of the line rate; 0.88 = ACCL kernel-to-kernel streaming measured at
    #: ~88 Gb/s on 100 GbE (hardware_facts.md 3.4)
    efficiency: float = 0.88
    #: per-hop latency; 3.79 us = ACCL+ on Coyote RDMA, 512 B eager send/recv, median
    latency_s: float = 3.79e-6
    topology: str = "chain"  # "chain" or "switch"

    def __post_init__(self) -> None:
        if self.bandwidth_gbps <= 0:
            raise SpecError(f"link bandwidth_gbps must be positive, got {self.bandwidth_gbps}")
        if not 0 < self.efficiency <= 1:
            raise SpecError(f"link efficiency must be in (0, 1], got {self.efficiency}")
        if self.topology not in ("chain", "switch"):
            raise SpecError(f"topology must be 'chain' or 'switch', got {self.topology!r}")

    def bits_per_cycle(self, clock_mhz: float) -> float:
        return self.bandwidth_gbps * self.efficiency * 1e3 / clock_mhz


@dataclass(frozen=True, slots=True, kw_only=True)
class AcclConfig:
    """ACCL receive-side limits for the activations crossing one link, per frame.

    Defaults are the ACCL+ Coyote benchmark setting (4 MiB eager RX buffers, world size + 2 of
    them) and the 23-bit DMA length field (8,388,544 B per transfer).
    """

    rx_buffer_bytes: int = 4 * 1024 * 1024
    rx_buffer_count: int | None = None  # None: world size + 2
    max_transfer_bytes: int = 8_388_544
    #: ACCLOut packs a whole frame before it sends, so the sender buffers one frame of each
    #: cut stream (512-bit FIFO); charged in BRAM18 on the sending board
    sender_frame_buffer: bool = True

    def rx_capacity_bytes(self, world_size: int) -> int:
        count = self.rx_buffer_count if self.rx_buffer_count is not None else world_size + 2
        return count * self.rx_buffer_bytes


def padded_bits(bits: int) -> int:
    return ceil_div(bits, ACCL_WORD_BITS) * ACCL_WORD_BITS


def frame_buffer_bram18(bits: int) -> int:
    """BRAM18s of a 512-bit FIFO holding one frame of ``bits``."""
    return bram18_table(ceil_div(bits, ACCL_WORD_BITS), ACCL_WORD_BITS)


@dataclass(frozen=True, slots=True, kw_only=True)
class PEdge:
    """An edge between layers at positions ``u < v`` in pipeline order."""

    u: int
    v: int
    tensor: str
    bits: int  # payload bits per frame
    skip: bool  # bypasses layers (a residual/skip stream)

    @property
    def link_bits(self) -> int:
        return padded_bits(self.bits)


@dataclass(frozen=True, slots=True, kw_only=True)
class Coupling:
    """FINN's rule that a depthwise SWG's SIMD equals its consumer's PE (VVAU/Pool)."""

    producer: int
    consumer: int
    producer_keys: tuple[tuple, ...]  # per producer option
    consumer_keys: tuple[tuple, ...]  # per consumer option


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProblem:
    graph: LayerGraph
    order: tuple[str, ...]  # layer names in pipeline (topological) order
    options: tuple[tuple[FoldingOption, ...], ...]  # per position
    weight_bits: tuple[int, ...]
    nvec: tuple[int, ...]  # input vectors per frame (external weights are re-read per vector)
    edges: tuple[PEdge, ...]
    couplings: tuple[Coupling, ...]
    boards: tuple[BoardConfig, ...]
    link: LinkConfig
    accl: AcclConfig
    clock_mhz: float
    allow_external: bool = True
    max_boards_used: int | None = None

    @property
    def n(self) -> int:
        return len(self.order)

    @property
    def n_boards(self) -> int:
        return len(self.boards)

    def capacity(self, b: int) -> dict[str, int]:
        """Per-dimension capacity of board ``b`` (FPGA resources and external memory)."""
        cfg = self.boards[b]
        res = cfg.capacity(self.n_boards > 1).as_dict()
        board = cfg.board
        mem_gib = board.external_memory_gib
        res["ext_bits"] = int(mem_gib * 8 * 2**30)
        res["ext_mbps"] = int(board.external_memory_gbps * 8 * 1000)  # GB/s -> Mb/s
        res["ext_channels"] = board.hbm_channels or (
            max(1, round(board.ddr_bandwidth_gbps / 19.25)) if board.ddr_gib else 0)
        return res

    def channel_gib(self, b: int) -> float:
        board = self.boards[b].board
        if board.hbm_channels:
            return board.hbm_channel_gib
        ch = self.capacity(b)["ext_channels"]
        return board.ddr_gib / ch if ch else 0.0

    def channel_mbps(self, b: int) -> float:
        cap = self.capacity(b)
        return cap["ext_mbps"] / cap["ext_channels"] if cap["ext_channels"] else 0.0

    def usage(self, i: int, k: int, T: int, b: int) -> dict[str, int]:
        """Resource use of option ``k`` of layer ``i`` on board ``b`` at II ``T`` cycles."""
        o = self.options[i][k]
        c = o.cost
        out = {"lut": c.lut, "ff": c.ff, "bram18": c.bram18, "uram": c.uram, "dsp": c.dsp,
               "ext_bits": 0, "ext_mbps": 0, "ext_channels": 0}
        if o.external_weight_bits:
            bits = o.external_weight_bits
            mbps = bits * self.nvec[i] * self.clock_mhz / T  # bits/frame * frames/us = Mb/s
            out["ext_bits"] = bits
            out["ext_mbps"] = math.ceil(mbps)
            gib = self.channel_gib(b)
            per_ch = self.channel_mbps(b)
            by_size = ceil_div(bits, int(gib * 8 * 2**30)) if gib else 10**9
            by_bw = math.ceil(mbps / per_ch) if per_ch else 10**9
            out["ext_channels"] = max(1, by_size, by_bw)
        return out

    def link_cap_bits(self, T: int) -> int:
        """Bits per frame one link carries at II ``T``."""
        return int(T * self.link.bits_per_cycle(self.clock_mhz))

    def link_cycles(self, bits: int) -> int:
        return math.ceil(bits / self.link.bits_per_cycle(self.clock_mhz))

    def rx_capacity_bytes(self) -> int:
        return self.accl.rx_capacity_bytes(self.n_boards)

    def cuttable(self, e: PEdge) -> bool:
        """Whether one frame of this stream fits ACCL's transfer and receive limits."""
        nbytes = e.link_bits // 8
        return nbytes <= self.accl.max_transfer_bytes and nbytes <= self.rx_capacity_bytes()

    def candidate_iis(self) -> list[int]:
        """Every value the optimal II can take: option cycles and link cycles of cut sets."""
        vals = {o.cost.cycles for opts in self.options for o in opts}
        vals |= {self.link_cycles(e.link_bits) for e in self.edges}
        vals.discard(0)
        return sorted(vals | {1})


# ---------------------------------------------------------------------------------------------


def pipeline_order(graph: LayerGraph) -> list[str]:
    """The graph's layers in a topological order (as stored: the lowering emits one)."""
    return [l.name for l in graph.layers]


def _nvec(layer: Any) -> int:
    v = layer.attrs.get("numInputVectors")
    if v is None:
        if layer.op_type == "VVAU":
            return 1
        return 1
    out = 1
    for d in (v if isinstance(v, (list, tuple)) else [v]):
        out *= int(d)
    return out


def _coupling_key(layer: Any, o: FoldingOption, role: str) -> tuple:
    a = {**layer.finn_attrs(), **dict(o.attrs)}
    if role == "producer":
        return (int(a.get("SIMD", 1)), int(a.get("parallel_window", 0)))
    simd = int(a.get("SIMD", 1)) if layer.op_type == "VVAU" else 1
    return (int(a.get("PE", 1)), int(simd > 1))


def _bypasses(succ: dict[int, list[int]], u: int, v: int) -> bool:
    """Whether v is reachable from u other than by the direct edge (a skip/residual stream)."""
    stack = [w for w in succ.get(u, []) if w != v]
    seen = set(stack)
    while stack:
        w = stack.pop()
        if w == v:
            return True
        for x in succ.get(w, []):
            if x not in seen and x <= v:
                seen.add(x)
                stack.append(x)
    return False


def build_problem(
    graph: LayerGraph,
    boards: Sequence[BoardConfig],
    *,
    link: LinkConfig | None = None,
    accl: AcclConfig | None = None,
    allow_external: bool = True,
    option_filter: Callable[[str, FoldingOption], bool] | None = None,
) -> PartitionProblem:
    """Enumerate and cost every layer's legal foldings once, prune, and build the tables."""
    if not boards:
        raise SpecError("give at least one board")
    clocks = {b.clock_mhz for b in boards}
    if len(clocks) != 1:
        raise SpecError("all boards of one pipeline must run at one clock; got "
                        f"{sorted(clocks)} MHz")
    clock = clocks.pop()
    part = boards[0].board.part
    order = pipeline_order(graph)
    pos = {n: i for i, n in enumerate(order)}
    layers = [graph.layer(n) for n in order]

    # depthwise SWG -> VVAU/Pool couplings
    producer_of = {e.tensor: e.src for e in graph.edges if e.src is not None}
    coupled: dict[int, tuple[int, str]] = {}
    for i, l in enumerate(layers):
        if l.op_type in ("VVAU", "Pool"):
            for t in l.inputs:
                src = producer_of.get(t)
                if src is not None and graph.layer(src).op_type == "ConvolutionInputGenerator" \
                        and int(graph.layer(src).attrs.get("depthwise", 0)):
                    coupled[i] = (pos[src], "consumer")
                    coupled[pos[src]] = (i, "producer")

    options: list[tuple[FoldingOption, ...]] = []
    for i, l in enumerate(layers):
        opts = enumerate_options(l.specialized_op_type, l.finn_attrs(), impl=l.impl, part=part,
                                 weight_bits=l.weight_bits, allow_external=allow_external)
        if option_filter is not None:
            opts = [o for o in opts if option_filter(l.name, o)]
        if not opts:
            raise InfeasibleError(f"layer {l.name} ({l.op_type}) has no legal folding left")
        if i in coupled:
            role = coupled[i][1]
            groups: dict[tuple, list[FoldingOption]] = {}
            for o in opts:
                groups.setdefault(_coupling_key(l, o, role), []).append(o)
            kept = [o for key in sorted(groups) for o in prune_dominated(groups[key])]
        else:
            kept = prune_dominated(opts)
        options.append(tuple(kept))

    couplings = []
    for i, (j, role) in sorted(coupled.items()):
        if role != "producer":
            continue
        couplings.append(Coupling(
            producer=i, consumer=j,
            producer_keys=tuple(_coupling_key(layers[i], o, "producer") for o in options[i]),
            consumer_keys=tuple(_coupling_key(layers[j], o, "consumer") for o in options[j]),
        ))

    pairs = [(pos[e.src], pos[e.dst], e) for e in graph.edges
             if e.src is not None and e.dst is not None]
    succ: dict[int, list[int]] = {}
    for u, v, _ in pairs:
        succ.setdefault(u, []).append(v)
    edges = []
    for u, v, e in pairs:
        edges.append(PEdge(u=u, v=v, tensor=e.tensor, bits=e.bits_per_frame,
                           skip=_bypasses(succ, u, v)))
    return PartitionProblem(
        graph=graph, order=tuple(order), options=tuple(options),
        weight_bits=tuple(l.weight_bits for l in layers), nvec=tuple(_nvec(l) for l in layers),
        edges=tuple(edges), couplings=tuple(couplings), boards=tuple(boards),
        link=link or LinkConfig(), accl=accl or AcclConfig(), clock_mhz=clock,
        allow_external=allow_external,
    )


def zero_resources() -> dict[str, int]:
    return dict.fromkeys(DIMS, 0)


__all__ = [
    "DIMS",
    "RES",
    "AcclConfig",
    "Coupling",
    "LinkConfig",
    "PEdge",
    "PartitionProblem",
    "Resources",
    "build_problem",
    "field",
]
