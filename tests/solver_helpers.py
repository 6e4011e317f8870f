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
