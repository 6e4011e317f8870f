"""A validated partitioning instance: layers in pipeline order, their costed options, boards,
links and ACCL limits, all as integer tables the solvers read (no cost model calls during search).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from dse.chain.channels import ChannelRule, channel_rule
from dse.chain.links import HOP_LATENCY_S, LINK_EFFICIENCY, FpgaLink, fpga_link
from dse.exceptions import DseError, InfeasibleError, InternalError, SpecError
from dse.ir import Layer, LayerGraph
from dse.models import LayerCost, estimate
from dse.models._common import bram18_table, ceil_div, part_family, prod
from dse.models.candidates import FoldingOption, enumerate_options, prune_dominated
from dse.solver.hostio import IoStage, host_stages
from dse.solver.infra import input_fifo
from dse.solver.slr import bound_by_slrs, fits_one, slr_capacities
from dse.specs import KINDS, RESOURCE_NAMES, BoardConfig, Resources

ACCL_WORD_BITS = 512  # ACCL/Coyote stream words
RES = RESOURCE_NAMES
#: solver resource dimensions: the five FPGA resources, then external memory
DIMS = KINDS
UNBUILDABLE = 10**15  # the use of an option a board's part cannot build (larger than any cap)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Board-to-board links (``dse.chain.links``): ACCL+ over Coyote RDMA (its measured
    message curve) when every board is on Coyote at 100 Gb/s, else a stream at the line rate
    x ``efficiency`` with ``latency_s`` per hop."""

    bandwidth_gbps: float = 100.0
    efficiency: float = LINK_EFFICIENCY
    latency_s: float = HOP_LATENCY_S
    topology: str = "chain"  # "chain" or "switch"

    def __post_init__(self) -> None:
        if self.bandwidth_gbps <= 0:
            raise SpecError(f"link bandwidth_gbps must be positive, got {self.bandwidth_gbps}")
        if not 0 < self.efficiency <= 1:
            raise SpecError(f"link efficiency must be in (0, 1], got {self.efficiency}")
        if self.topology not in ("chain", "switch"):
            raise SpecError(f"topology must be 'chain' or 'switch', got {self.topology!r}")

    def bits_per_cycle(self, clock_mhz: float) -> Fraction:
        """Payload bits one link moves per clock cycle, as an exact fraction."""
        return exact(self.bandwidth_gbps) * exact(self.efficiency) * 1000 / exact(clock_mhz)


@dataclass(frozen=True, slots=True, kw_only=True)
class AcclConfig:
    """ACCL receive-side limits for the activations crossing one link, per frame.

    Defaults are the ACCL+ Coyote benchmark setting (4 MiB eager RX buffers, world size + 2 of
    them) and the 23-bit DMA length field (8,388,544 B per transfer).
    """

    #: ACCL is the Coyote shell's collective engine; boards on other shells (FINN's Vitis
    #: shell, Zynq) stream over their own network stack: no ACCL buffers or limits
    enabled: bool = True
    rx_buffer_bytes: int = 4 * 1024 * 1024
    rx_buffer_count: int | None = None  # None: world size + 2
    max_transfer_bytes: int = 8_388_544
    #: ACCLOut packs a whole frame before it sends, so the sender buffers one frame of each
    #: cut stream (512-bit FIFO); charged in BRAM18 on the sending board
    sender_frame_buffer: bool = True

    def rx_capacity_bytes(self, world_size: int) -> int:
        count = self.rx_buffer_count if self.rx_buffer_count is not None else world_size + 2
        return count * self.rx_buffer_bytes


def exact(x: float) -> Fraction:
    """A rate or clock as the exact fraction it was meant to be: 153.33333333333334 GB/s (a
    third of 460) is 460/3. Small denominators keep CP-SAT's coefficients within int64."""
    return Fraction(str(x)).limit_denominator(10**6)


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
    clock_mhz: float  # the fastest board's clock: the II's unit
    allow_external: bool = True
    #: per board: the options' costs on that board's part ([i][k], None where the option is
    #: illegal there), or None where they are the options' own (the first board's part family)
    board_costs: tuple[tuple[tuple[LayerCost | None, ...], ...] | None, ...] = ()
    # per board: usable resources per SLR (dse.solver.slr), None for one-die boards
    slr_caps: tuple[list[dict[str, Any]] | None, ...] = ()
    #: the boards (by name, or by index in this chain) whose SLRs the CP-SAT model places
    #: layers into (each SLR a bin of the chain); the others are bounded by their SLRs' sum
    #: and packed afterwards
    slr_split: frozenset[str | int] = frozenset()
    #: segment replicas: each board of the chain may run as up to this many identical copies
    #: (a stage of ``r`` boards, each handling every ``r``-th frame), the copies counted
    #: against the boards offered; 1 = one board per stage (dse.solver.replicas)
    max_replicas: int = 1
    #: per board: its host I/O stages (input IODMA, output IODMA; dse.solver.hostio). The
    #: input enters on board 0, the output leaves from the last board used
    host: tuple[tuple[IoStage, IoStage], ...] = ()
    #: per layer, per option: the FIFO at the layer's input as FINN would size it for a
    #: producer streaming evenly at the layer's own rate (dse.solver.infra.input_fifo),
    #: summed with the layer's own estimate; () for none
    infra_share: tuple[tuple[Resources, ...], ...] = ()
    #: per board: resources kept back for the FIFOs and converters a plan needs beyond its
    #: layers' shares (dse.solver.infra.reserve_for)
    reserve: tuple[Resources, ...] = ()
    #: memo of the pure per-(layer, option, board) lookups below (cost_on, usage): the greedy
    #: and the model builders ask them ~10^6 times on 300-layer chains. Not a field of the
    #: problem: ``replace`` starts a new one, nothing compares or hashes it
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False,
                        hash=False)

    def slr_table(self, b: int) -> list[dict[str, Any]]:
        """Board ``b``'s SLR capacities, where the caller knows the board has them."""
        caps = _at(self.slr_caps, b)
        if caps is None:
            raise InternalError(f"board {b} ({self.boards[b].board.name}) has no SLR table")
        return caps

    def share(self, i: int, k: int) -> Resources:
        """Option ``k`` of layer ``i``'s share of the stream FIFOs (its input FIFO)."""
        if i < len(self.infra_share) and k < len(self.infra_share[i]):
            return self.infra_share[i][k]
        return Resources()

    def host_cycles(self, b: int, direction: str) -> int:
        """Cycles per frame of board ``b``'s input (``"in"``) or output IODMA stage, in
        cycles of the fastest board's clock (0 without host I/O)."""
        if b >= len(self.host):
            return 0
        st = self.host[b][0 if direction == "in" else 1]
        if st.clock_mhz >= self.clock_mhz:
            return st.cycles
        return -(-st.cycles * exact(self.clock_mhz) // exact(st.clock_mhz))

    def host_floor(self) -> int:
        """No plan runs faster than this II: the input enters on board 0 (spread over its
        copies), the output leaves from some board (over its copies)."""
        if not self.host:
            return 0
        r = self.max_replicas
        out = min(self.host_cycles(b, "out") for b in range(len(self.host)))
        return max(-(-self.host_cycles(0, "in") // r), -(-out // r))

    def split_slrs(self, b: int) -> list[dict[str, Any]] | None:
        """Board ``b``'s SLR capacities when the solver places its layers into SLRs."""
        if b not in self.slr_split and self.boards[b].board.name not in self.slr_split:
            return None
        return _at(self.slr_caps, b)

    def twin(self, b: int) -> int:
        """The first board whose configuration, cost table and SLRs equal board ``b``'s (the
        per-board lookups below answer the same for both: kept once)."""
        got = self._memo.get(("twin", b))
        if got is None:
            def same(a: int) -> bool:
                return (self.boards[a] == self.boards[b]
                        and _at(self.board_costs, a) is _at(self.board_costs, b)
                        and _at(self.slr_caps, a) == _at(self.slr_caps, b))
            got = self._memo[("twin", b)] = next(a for a in range(b + 1) if same(a))
        return int(got)

    def cost_on(self, i: int, k: int, b: int) -> LayerCost | None:
        """FINN's estimate of option ``k`` of layer ``i`` on board ``b``'s part; None where
        it cannot be built there (other part family, or larger than any SLR of the board)."""
        if b < self.n_boards:
            b = self.twin(b)
        key = ("cost", i, k, b)
        if key in self._memo:
            return self._memo[key]
        table = _at(self.board_costs, b)
        c = self.options[i][k].cost if table is None else table[i][k]
        slrs = _at(self.slr_caps, b)
        if c is not None and slrs is not None and not fits_one(Resources.of(c), slrs):
            c = None
        self._memo[key] = c
        return c

    def cycles_on(self, i: int, k: int, b: int) -> int:
        """Cycles per frame of option ``k`` of layer ``i`` on board ``b``, in cycles of the
        fastest board's clock (``clock_mhz``): a board at a slower clock takes longer."""
        c = self.options[i][k].cost.cycles
        f = self.boards[b].clock_mhz if b < len(self.boards) else self.clock_mhz
        if f >= self.clock_mhz:
            return c
        return -(-c * exact(self.clock_mhz) // exact(f))

    @property
    def mixed_clocks(self) -> bool:
        return len({c.clock_mhz for c in self.boards}) > 1

    @property
    def n(self) -> int:
        return len(self.order)

    @property
    def n_boards(self) -> int:
        return len(self.boards)

    def capacity(self, b: int, T: int | None = None) -> Resources:
        """Capacity of board ``b`` at II ``T``: FPGA resources, external memory bits,
        external bits read per frame (bandwidth x ``T`` cycles) and memory channels."""
        cfg = self.boards[b]
        res = bound_by_slrs(cfg.capacity(self.n_boards > 1),
                            _at(self.slr_caps, b))
        res = res.with_counts(
            ext_bits=int(cfg.board.external_memory_gib * 8 * 2**30),
            ext_bpf=math.floor(T * self.ext_bits_per_cycle(b)) if T else 0,
            ext_channels=self.ext_channels(b))
        if b < len(self.reserve):
            res = res.with_counts(**{d: max(0, res.get(d) - v)
                                     for d, v in self.reserve[b].items(RES)})
        return res

    def ext_channels(self, b: int) -> int:
        """Channels (or striped ports) a design on board ``b`` may use (``dse.chain.channels``)."""
        board = self.boards[b].board
        if not board.external_memory_gib or not board.external_memory_gbps:
            return 0
        return self.channel_rule(b).usable

    def channel_rule(self, b: int) -> ChannelRule:
        """Board ``b``'s HBM/DDR channel rule (``dse.chain.channels``), kept once."""
        key = ("rule", b)
        if key not in self._memo:
            self._memo[key] = channel_rule(self.boards[b].board, self.boards[b].shell.name)
        rule: ChannelRule = self._memo[key]
        return rule

    def ext_bits_per_cycle(self, b: int) -> Fraction:
        """External-memory bits board ``b`` reads per clock cycle (GB/s -> bits/cycle)."""
        key = ("bpc", b)
        if key not in self._memo:
            self._memo[key] = exact(self.boards[b].board.external_memory_gbps) * 8000 / exact(
                self.clock_mhz)
        return self._memo[key]

    def channel_bits(self, b: int) -> int:
        cfg = self.boards[b]
        return channel_rule(cfg.board, cfg.shell.name).channel_bytes * 8

    def usage(self, i: int, k: int, T: int, b: int, T_channels: int | None = None
              ) -> Resources:
        """Resource use of option ``k`` of layer ``i`` on board ``b`` (``T``, the II, is kept
        for models whose use depends on it).

        External weights are re-read for every input vector (FINN streams them like data), so
        a layer reads ``weight bits x numInputVectors`` per frame from HBM/DDR.
        """
        o = self.options[i][k]
        if b < self.n_boards:
            b = self.twin(b)
        key = ("use", i, k, b, (T_channels or T) if o.external_weight_bits else None)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = self._usage(i, k, T, b, T_channels)
        return got

    def _usage(self, i: int, k: int, T: int, b: int, T_channels: int | None) -> Resources:
        o = self.options[i][k]
        c = self.cost_on(i, k, b)
        if c is None:  # not buildable on this board's part: never fits
            return Resources.uniform(UNBUILDABLE)
        out = Resources.of(c) + self.share(i, k)
        if not o.external_weight_bits:
            return out
        bits = o.external_weight_bits
        bpf = bits * self.nvec[i]
        # each external stream gets whole pseudo-channels covering both its bits and
        # its rate at II T (dse.specs.memory; emit's memory map uses the same rule)
        # (at ``T_channels`` when given: the II a plan may be slowed to, so that a plan
        # feasible there never needs more channels than the board has)
        return out.with_counts(ext_bits=bits, ext_bpf=bpf,
                               ext_channels=self.stream_channels(b, bits, bpf, T_channels or T))

    def stream_channels(self, b: int, bits: int, bpf: int, T: int) -> int:
        """Pseudo-channels one external stream needs on board ``b`` at II ``T``: enough for
        its weights (capacity) and for ``bpf`` bits per frame (bandwidth)."""
        ch = self.ext_channels(b)
        if not ch:
            return 1  # a board without external memory has 0 channels: never fits
        rule = self.channel_rule(b)
        per_ch = math.floor(T * self.ext_bits_per_cycle(b) / rule.physical) if T else 0
        by_rate = ceil_div(bpf, per_ch) if per_ch else ch + 1
        return rule.stream_channels(ceil_div(bits, 8), by_rate)

    def channel_cycles(self, b: int, streams: list[tuple[int, int]], limit: int) -> int:
        """The smallest II at which board ``b``'s external streams ((bits, bits per frame)
        each) fit its pseudo-channels, searched up to ``limit``; 0 without streams."""
        if not streams:
            return 0
        ch = self.ext_channels(b)

        def fits(T: int) -> bool:
            return sum(self.stream_channels(b, w, f, T) for w, f in streams) <= ch

        if fits(1):
            return 1
        lo, hi = 1, max(2, limit)
        while not fits(hi):  # beyond the limit (a full-rate stream the shell's ports slow)
            if hi >= 10**15:
                return limit
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
        return hi

    def ext_cycles(self, b: int, bpf: int) -> int:
        """Cycles per frame board ``b``'s external memory needs to deliver ``bpf`` bits."""
        rate = self.ext_bits_per_cycle(b)
        if not bpf:
            return 0
        return math.ceil(bpf / rate) if rate else 10**18

    @property
    def fpga_link(self) -> FpgaLink:
        """The board-to-board link of this chain (``dse.chain.links``)."""
        coyote = all(c.shell.name == "coyote" for c in self.boards)
        return fpga_link(accl=self.accl.enabled and coyote, gbps=self.link.bandwidth_gbps,
                         efficiency=self.link.efficiency, latency_s=self.link.latency_s)

    def link_rate(self) -> Fraction:
        """Link load units one link clears per clock cycle: payload bits (a stream at the
        line rate), or cycles (the ACCL+ curve, whose per-message time is not linear)."""
        if self.fpga_link.accl_rdma:
            return Fraction(1)
        return self.link.bits_per_cycle(self.clock_mhz)

    def link_load(self, e: PEdge) -> int:
        """What one frame of stream ``e`` puts on a link it crosses, in ``link_rate`` units:
        its padded bits, or the cycles of its message on the ACCL+ curve (one ACCLOut
        message per stream and frame, so a link's load is linear in the streams cut)."""
        if not self.fpga_link.accl_rdma:
            return e.link_bits
        key = ("load", e.link_bits)
        if key not in self._memo:
            self._memo[key] = math.ceil(
                self.fpga_link.frame_s(e.link_bits // 8) * self.clock_mhz * 1e6 - 1e-9)
        return self._memo[key]

    def channel_rate_cycles(self, b: int, bpf: int) -> int:
        """The smallest II at which one stream of ``bpf`` bits per frame fits the channels a
        design may use on board ``b`` by its rate (``dse.chain.channels``): where the shell's
        reserved ports keep a full-rate stream below the board's whole bandwidth."""
        ch = self.ext_channels(b)
        rate = self.ext_bits_per_cycle(b)
        if not (ch and rate and bpf):
            return 0
        cfg = self.boards[b]
        physical = channel_rule(cfg.board, cfg.shell.name).physical
        T = math.ceil(ceil_div(bpf, ch) * physical / rate)
        while T > 1 and ceil_div(bpf, math.floor((T - 1) * rate / physical) or 1) <= ch:
            T -= 1
        return T

    def link_cap_bits(self, T: int) -> int:
        """Link load one link carries per frame at II ``T``."""
        return math.floor(T * self.link_rate())

    def link_cycles(self, load: int) -> int:
        """Cycles one link needs for ``load`` (``link_load`` units) per frame."""
        return math.ceil(load / self.link_rate())

    def rx_capacity_bytes(self) -> int:
        return self.accl.rx_capacity_bytes(self.n_boards)

    def cuttable(self, e: PEdge) -> bool:
        """Whether one frame of this stream fits ACCL's transfer and receive limits."""
        if not self.accl.enabled:
            return True
        nbytes = e.link_bits // 8
        return nbytes <= self.accl.max_transfer_bytes and nbytes <= self.rx_capacity_bytes()

    def candidate_iis(self) -> list[int]:
        """Every value the optimal II can take: option cycles and link cycles of cut sets."""
        vals = {o.cost.cycles for opts in self.options for o in opts}
        if self.mixed_clocks:
            vals |= {self.cycles_on(i, k, b) for i, opts in enumerate(self.options)
                     for k in range(len(opts)) for b in range(self.n_boards)}
        vals |= {self.link_cycles(self.link_load(e)) for e in self.edges}
        for i, opts in enumerate(self.options):  # external weights' bandwidth
            for o in opts:
                if o.external_weight_bits:
                    bpf = o.external_weight_bits * self.nvec[i]
                    vals |= {f(b, bpf) for b in range(self.n_boards) for f in
                             (self.ext_cycles, self.channel_rate_cycles)
                             if self.boards[b].board.external_memory_gbps}
        worst_bpf = sum(max(o.external_weight_bits for o in opts) * self.nvec[i]
                        for i, opts in enumerate(self.options))
        for b in range(self.n_boards):  # every external stream on one board
            if self.boards[b].board.external_memory_gbps and worst_bpf:
                vals.add(self.ext_cycles(b, worst_bpf))
        # the most one link can ever carry (every stream at once) bounds the search from above
        vals.add(self.link_cycles(sum(self.link_load(e) for e in self.edges)))
        vals.discard(0)
        # a stage of r copies takes every r-th frame: its II is ceil(II / r)
        # (ceil(ceil(x) / r) = ceil(x / r), so every candidate over r is one too)
        vals |= {self.host_cycles(b, d) for b in range(len(self.host)) for d in ("in", "out")}
        vals |= {-(-v // r) for v in list(vals) for r in range(2, self.max_replicas + 1)}
        # host I/O is a stage of every plan: no II below its floor is reachable
        floor = self.host_floor()
        return sorted(v for v in vals | {1, max(1, floor)} if v >= floor)


# ---------------------------------------------------------------------------------------------


def _nvec(layer: Any) -> int:
    """Input vectors per frame (VVAU and ops without the attribute: 1)."""
    v = layer.attrs.get("numInputVectors", 1)
    return prod(v if isinstance(v, (list, tuple)) else [v])


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


def _at(table: tuple[Any, ...], b: int) -> Any:
    """Board ``b``'s entry of a per-board table, None past its end."""
    return table[b] if b < len(table) else None


def build_problem(
    graph: LayerGraph,
    boards: Sequence[BoardConfig],
    *,
    link: LinkConfig | None = None,
    accl: AcclConfig | None = None,
    allow_external: bool = True,
    option_filter: Callable[[str, FoldingOption], bool] | None = None,
    host_io: bool = True,
    fifos: bool = True,
    fixed: Mapping[str, FoldingOption] | None = None,
) -> PartitionProblem:
    """Enumerate and cost every layer's legal foldings once, prune, and build the tables.
    ``host_io``: the IODMAs and host link are a stage of the pipeline (dse.solver.hostio).
    ``fifos``: each option carries its input FIFO (dse.solver.infra). ``fixed``: layers
    (by name) whose only option is the one given (a folding config applied)."""
    if not boards:
        raise SpecError("give at least one board")
    # each board runs at its own clock; the II is counted in cycles of the fastest one
    clock = max(b.clock_mhz for b in boards)
    part = boards[0].board.part
    order = [lyr.name for lyr in graph.layers]  # stored in topological order
    pos = {n: i for i, n in enumerate(order)}
    layers = [graph.layer(n) for n in order]

    # depthwise SWG -> VVAU/Pool couplings
    producer_of = {e.tensor: e.src for e in graph.edges if e.src is not None}
    coupled: dict[int, tuple[int, str]] = {}
    for i, lyr in enumerate(layers):
        if lyr.op_type in ("VVAU", "Pool"):
            for t in lyr.inputs:
                src = producer_of.get(t)
                if src is not None and graph.layer(src).op_type == "ConvolutionInputGenerator" \
                        and int(graph.layer(src).attrs.get("depthwise", 0)):
                    coupled[i] = (pos[src], "consumer")
                    coupled[pos[src]] = (i, "producer")

    # boards of another part family (Versal DSP58, 7-series DSP48E1) cost the same foldings
    # differently: their costs come from their own part, and pruning keeps what is best on any
    other_parts: dict[str, str] = {}
    base_family = part_family(part)
    for c in boards:
        fam = part_family(c.board.part)
        if fam != base_family:
            other_parts.setdefault(fam, c.board.part)

    def recost(lyr: Layer, o: FoldingOption, other: str) -> LayerCost | None:
        try:
            return estimate(f"{lyr.op_type}_{o.impl}", {**lyr.finn_attrs(), **o.attrs}, other)
        except DseError:
            return None

    share_of = _FifoShares(part, any(c.board.device.uram for c in boards)) if fifos else None
    options: list[tuple[FoldingOption, ...]] = []
    family_costs: dict[str, list[tuple[LayerCost | None, ...]]] = {f: [] for f in other_parts}
    # layers alike in every attribute (a ResNet's repeated blocks) share their costed options
    seen: dict[Any, list[FoldingOption]] = {}
    recosted: dict[int, list[LayerCost | None]] = {}
    for i, lyr in enumerate(layers):
        try:
            key: tuple[Any, ...] = (lyr.specialized_op_type, lyr.impl, lyr.weight_bits,
                                    tuple(sorted(lyr.attrs.items())))
            hash(key)
        except TypeError:
            key = ("layer", i)
        if fixed is not None and lyr.name in fixed:
            options.append((fixed[lyr.name],))
            for fam in other_parts:
                family_costs[fam].append((recost(lyr, fixed[lyr.name], other_parts[fam]),))
            continue
        if key not in seen:
            seen[key] = enumerate_options(lyr.specialized_op_type, lyr.finn_attrs(), impl=lyr.impl,
                                          part=part, weight_bits=lyr.weight_bits,
                                          allow_external=allow_external)
        opts = seen[key]
        if option_filter is not None:
            opts = [o for o in opts if option_filter(lyr.name, o)]
        if not opts:
            raise InfeasibleError(f"layer {lyr.name} ({lyr.op_type}) has no legal folding left")
        for o in opts:
            if id(o) not in recosted:
                recosted[id(o)] = [recost(lyr, o, prt) for prt in other_parts.values()]
        others = {id(o): recosted[id(o)] for o in opts}

        def extra(group: list[FoldingOption], others: dict[int, Any] = others,
                  lyr: Layer = lyr) -> list[tuple[int, ...]] | None:
            """Beyond the option's own costs: its input FIFO (booked with it, so an option
            with a larger FIFO does not dominate) and its costs on the other parts."""
            if not other_parts and share_of is None:
                return None
            return [(tuple(share_of(lyr, o).values(RES)) if share_of is not None else ()) + tuple(
                v for c in others[id(o)] for v in (
                    (c.lut, c.ff, c.bram18, c.uram, c.dsp) if c else (UNBUILDABLE,) * 5))
                for o in group]

        if i in coupled:
            role = coupled[i][1]
            groups: dict[tuple, list[FoldingOption]] = {}
            for o in opts:
                groups.setdefault(_coupling_key(lyr, o, role), []).append(o)
            kept = [o for key in sorted(groups)
                    for o in prune_dominated(groups[key], extra(groups[key]))]
        else:
            kept = prune_dominated(opts, extra(opts))
        options.append(tuple(kept))
        for j, fam in enumerate(other_parts):
            family_costs[fam].append(tuple(others[id(o)][j] for o in kept))

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
    accl = accl or AcclConfig()
    if len(boards) > 1 and not all(c.shell.name == "coyote" for c in boards):
        accl = replace(accl, enabled=False, sender_frame_buffer=False)
    board_costs = tuple(
        None if part_family(c.board.part) == base_family
        else tuple(family_costs[part_family(c.board.part)]) for c in boards)
    return PartitionProblem(
        graph=graph, order=tuple(order), options=tuple(options),
        weight_bits=tuple(lyr.weight_bits for lyr in layers),
        nvec=tuple(_nvec(lyr) for lyr in layers),
        edges=tuple(edges), couplings=tuple(couplings), boards=tuple(boards),
        link=link or LinkConfig(), accl=accl, clock_mhz=clock,
        allow_external=allow_external, board_costs=board_costs,
        slr_caps=tuple(slr_capacities(c, len(boards) > 1) for c in boards),
        host=tuple(host_stages(graph, c) for c in boards) if host_io else (),
        infra_share=tuple(tuple(share_of(lyr, o) for o in opts)
                          for lyr, opts in zip(layers, options, strict=True))
        if share_of is not None else (),
    )


class _FifoShares:
    """Each option's input FIFO's resources (dse.solver.infra.input_fifo),
    computed once per option object and per stream pattern (ram_style and the like do not
    change it)."""

    def __init__(self, part: str, has_uram: bool) -> None:
        self.part, self.has_uram = part, has_uram
        self.memo: dict[int, Resources] = {}
        self.by_pattern: dict[tuple, Resources] = {}

    def __call__(self, lay: Layer, o: FoldingOption) -> Resources:
        got = self.memo.get(id(o))
        if got is not None:
            return got
        a = {**lay.finn_attrs(), **o.attrs}
        c = o.cost
        key = (lay.op_type, c.cycles, c.input_words, c.output_words, c.instream_width,
               *(str(a.get(x)) for x in ("IFMDim", "ConvKernelDim", "MW", "MH", "SIMD", "PE")))
        if key not in self.by_pattern:
            _, self.by_pattern[key] = input_fifo(lay.op_type, a, c, self.part, self.has_uram)
        self.memo[id(o)] = got = self.by_pattern[key]
        return got


__all__ = [
    "DIMS",
    "RES",
    "AcclConfig",
    "Coupling",
    "LinkConfig",
    "PEdge",
    "PartitionProblem",
    "build_problem",
]
