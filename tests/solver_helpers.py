"""Synthetic partitioning instances with hand-set costs, and an exhaustive reference solver."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import MappingProxyType

from dse.exceptions import InfeasibleError
from dse.ir import Edge, Layer, LayerGraph
from dse.models._common import LayerCost
from dse.models.candidates import FoldingOption
from dse.solver.evaluate import evaluate
from dse.solver.problem import AcclConfig, Coupling, LinkConfig, PartitionProblem, PEdge
from dse.specs import BoardConfig, default_catalog
from dse.specs.board import board_from_dict


def board(name: str = "T", lut: int = 100, bram18: int = 100, dsp: int = 100,
          hbm_gib: float = 0.0, hbm_gbps: float = 0.0, channels: int = 0,
          clock_mhz: float = 100.0) -> BoardConfig:
    b = board_from_dict({"name": name, "part": "xcu55c-fsvh2892-2L-e", "shells": ["zynq"],
                         "device": {"lut": lut, "ff": 10**9, "bram18": bram18, "uram": 0,
                                    "dsp": dsp},
                         "hbm": {"gib": hbm_gib, "bandwidth_gbps": hbm_gbps,
                                 "channels": channels},
                         "shell_flow_type": "vivado_zynq"})
    caps = dict.fromkeys(("lut", "ff", "bram18", "uram", "dsp"), 1.0)
    return BoardConfig(board=b, shell=default_catalog().shell("zynq"), caps=caps,
                       clock_mhz=clock_mhz)


def option(cycles: int, lut: int, bram18: int = 0, dsp: int = 0, ext_bits: int = 0,
           tag: int = 0) -> FoldingOption:
    cost = LayerCost(op_type="Thresholding_rtl", cycles=cycles, lut=lut, bram18=bram18, uram=0,
                     dsp=dsp, ff=0, instream_widths=(8,), outstream_widths=(8,),
                     output_words=(1,))
    attrs = {"PE": tag + 1, **({"mem_mode": "external"} if ext_bits else {})}
    return FoldingOption(attrs=MappingProxyType(attrs), impl="rtl", cost=cost,
                         external_weight_bits=ext_bits)


def problem(options: Sequence[Sequence[FoldingOption]],
            edges: Sequence[tuple[int, int, int]] | None = None,
            boards: Sequence[BoardConfig] | None = None,
            *, link: LinkConfig | None = None, accl: AcclConfig | None = None,
            couplings: Sequence[Coupling] = ()) -> PartitionProblem:
    n = len(options)
    if edges is None:
        edges = [(i, i + 1, 64) for i in range(n - 1)]
    layers = tuple(Layer(name=f"L{i}", op_type="Thresholding",
                         attrs={"NumChannels": 8, "PE": 1}) for i in range(n))
    gedges = tuple(Edge(tensor=f"t{u}_{v}", src=f"L{u}", dst=f"L{v}", dtype="UINT8",
                        elems_per_frame=bits // 8) for u, v, bits in edges)
    graph = LayerGraph(name="synthetic", layers=layers, edges=gedges)
    pedges = []
    for u, v, bits in edges:
        others = [(a, b) for a, b, _ in edges if (a, b) != (u, v)]
        reach, frontier = set(), [b for a, b in others if a == u]
        while frontier:
            w = frontier.pop()
            if w not in reach:
                reach.add(w)
                frontier += [b for a, b in others if a == w]
        pedges.append(PEdge(u=u, v=v, tensor=f"t{u}_{v}", bits=bits, skip=v in reach))
    return PartitionProblem(
        graph=graph, order=tuple(l.name for l in layers),
        options=tuple(tuple(o) for o in options), weight_bits=tuple(0 for _ in range(n)),
        nvec=tuple(1 for _ in range(n)), edges=tuple(pedges), couplings=tuple(couplings),
        boards=tuple(boards or [board()]), link=link or LinkConfig(),
        accl=accl or AcclConfig(sender_frame_buffer=False),
        clock_mhz=max(c.clock_mhz for c in boards) if boards else 100.0,
    )


def brute_force(p: PartitionProblem) -> int | None:
    """The smallest II over every option choice and every contiguous placement (or None)."""
    best = None
    n, B = p.n, p.n_boards
    placements = [c for c in itertools.combinations_with_replacement(range(B), n)
                  if c[0] == 0]
    for choice in itertools.product(*(range(len(o)) for o in p.options)):
        ii_layers = max(p.options[i][k].cost.cycles for i, k in enumerate(choice))
        if best is not None and ii_layers >= best:
            continue
        for boards in placements:
            ev = evaluate(p, choice, boards)
            if ev.feasible and (best is None or ev.ii_cycles < best):
                best = ev.ii_cycles
    return best


def solve_or_none(p: PartitionProblem, **kw) -> int | None:
    from dse.solver.search import solve_joint

    try:
        return solve_joint(p, time_limit=kw.pop("time_limit", 20.0), workers=1,
                           secondary=kw.pop("secondary", False), **kw).ii_cycles
    except InfeasibleError:
        return None


def brute_force_replicas(p: PartitionProblem) -> int | None:
    """Like :func:`brute_force` with segment replicas: every board of the chain in use runs
    as 1.. copies, all copies within the boards offered."""
    best = None
    n, B = p.n, p.n_boards
    placements = [c for c in itertools.combinations_with_replacement(range(B), n)
                  if c[0] == 0]
    for choice in itertools.product(*(range(len(o)) for o in p.options)):
        for boards in placements:
            used = max(boards) + 1
            for reps in itertools.product(range(1, min(B, p.max_replicas) + 1), repeat=used):
                if sum(reps) > B:
                    continue
                ev = evaluate(p, choice, boards, replicas=reps)
                if ev.feasible and (best is None or ev.ii_cycles < best):
                    best = ev.ii_cycles
    return best


def random_instance(draw, *, max_layers: int, max_boards: int,
                    identical_boards: bool = False) -> PartitionProblem:
    """A random small instance for the brute-force tests (``draw``: hypothesis's): 2 to
    ``max_layers`` layers of 1-3 foldings (some with external weights), a chain with an
    optional skip stream, slow links (chain or switch), small ACCL buffers; boards of random
    size, memory and clock, or ``identical_boards`` (one random board repeated, one clock)."""
    from hypothesis import strategies as st

    n = draw(st.integers(2, max_layers))
    n_boards = draw(st.integers(1, max_boards))
    opts = []
    for _ in range(n):
        k = draw(st.integers(1, 3))
        opts.append([option(cycles=draw(st.integers(1, 40)) * 10,
                            lut=draw(st.integers(5, 60)), bram18=draw(st.integers(0, 30)),
                            ext_bits=draw(st.sampled_from([0, 0, 0, 4000, 20000])),
                            tag=j) for j in range(k)])
    edges = [(i, i + 1, draw(st.sampled_from([64, 512, 2048, 8192]))) for i in range(n - 1)]
    if n >= 3 and draw(st.booleans()):  # a residual (skip) stream
        u = draw(st.integers(0, n - 3))
        edges.append((u, draw(st.integers(u + 2, n - 1)), draw(st.sampled_from([512, 4096]))))

    def spec() -> dict:
        # HBM of 1e-6 GiB (8.6 kbit) at 0.001..0.004 GB/s: 80..320 bits per 100 MHz cycle
        return dict(lut=draw(st.integers(40, 120)), bram18=draw(st.integers(20, 60)),
                    hbm_gib=draw(st.sampled_from([0.0, 1e-6, 1e-5])),
                    hbm_gbps=draw(st.sampled_from([0.001, 0.004])), channels=2)

    if identical_boards:
        one = spec()
        boards = [board("B", **one) for _ in range(n_boards)]
    else:
        boards = [board(f"B{b}", **spec(),
                        clock_mhz=draw(st.sampled_from([100.0, 100.0, 75.0, 130.0])))
                  for b in range(n_boards)]
    # slow links so that link traffic matters: 0.5..2 Gb/s at 100 MHz = 5..20 bits per cycle
    link = LinkConfig(bandwidth_gbps=draw(st.sampled_from([0.5, 1.0, 2.0])), efficiency=1.0,
                      topology=draw(st.sampled_from(["chain", "chain", "switch"])))
    accl = AcclConfig(rx_buffer_bytes=draw(st.sampled_from([256, 4096])), rx_buffer_count=1,
                      sender_frame_buffer=draw(st.booleans()))
    return problem(opts, edges, boards, link=link, accl=accl)
