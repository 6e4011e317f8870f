"""Baselines users and benchmarks compare the joint optimizer with.

* ``setfolding``: FINN's SetFolding at a target, then an even contiguous split (boards get
  equal shares of the capacity-weighted resources). The target is searched: the best FPS at
  which that recipe yields a legal plan.
* ``two-stage``: SetFolding first, then the fewest boards for that fixed folding (exact, by
  CP-SAT), again at the best target that yields a plan.
* ``elastic-df``: Elastic-DF's placement of SetFolding's folding (Alonso et al., "Elastic-DF",
  ACM TRETS 2021; finn-experimental ``analysis/partitioning.py``, finn_cost_formulas.md 7):
  every layer in one (board, SLR) node, FINN's per-SLR limits, the mean of BRAM/URAM/DSP
  utilization <= 0.7, SLL wires per SLR boundary, link bandwidth, and its objective, the
  fewest weighted crossings (1 per SLR boundary, 10 per board hop). Its replicas come from
  ``dse optimize --replicas``. Elastic-DF's ILP may put a layer in any SLR; here the SLRs
  follow the chain, as in dse's own per-SLR model.

All three only accept plans whose every Alveo board places into its SLRs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from dse.exceptions import InfeasibleError
from dse.models.candidates import FoldingOption
from dse.models.registry import estimate
from dse.solver.cpsat import solve_at
from dse.solver.evaluate import evaluate
from dse.solver.problem import DIMS, PartitionProblem
from dse.solver.search import SolveResult
from dse.solver.setfolding import set_folding
from dse.solver.slr import assign

Progress = Callable[[str], None]


def _fixed_problem(problem: PartitionProblem, fold: dict[str, dict]) -> PartitionProblem | None:
    """The problem with each layer pinned to SetFolding's folding (its styles as lowered)."""
    part = problem.boards[0].board.part
    opts = []
    for name, w in zip(problem.order, problem.weight_bits, strict=True):
        layer = problem.graph.layer(name)
        attrs = {**layer.finn_attrs(), **fold.get(name, {})}
        try:
            cost = estimate(layer.specialized_op_type, attrs, part)
        except Exception:
            return None
        impl = cost.op_type.rsplit("_", 1)[1]
        ext = w if attrs.get("mem_mode") == "external" else 0
        keep = {k: attrs[k] for k in ("PE", "SIMD", "parallel_window", "ram_style", "mem_mode",
                                      "resType") if k in attrs}
        opts.append((FoldingOption(attrs=keep, impl=impl, cost=cost, external_weight_bits=ext),))
    # SetFolding itself sets each depthwise SWG's SIMD to its consumer's PE
    return replace(problem, options=tuple(opts), couplings=())


def even_split(problem: PartitionProblem, n_boards: int) -> list[int]:
    """Contiguous split into ``n_boards`` segments of near-equal weighted resource use."""
    p = problem
    caps = [p.capacity(b, 1) for b in range(n_boards)]
    tot = {d: max(1, sum(c.get(d) for c in caps)) for d in DIMS}
    w = []
    for i in range(p.n):
        u = p.usage(i, 0, max(1, p.options[i][0].cost.cycles), 0)
        w.append(sum(v / tot[d] for d, v in u.items()))
    total = sum(w) or 1.0
    boards, acc = [], 0.0
    for wi in w:
        b = min(n_boards - 1, int((acc + wi / 2) / total * n_boards))
        boards.append(b)
        acc += wi
    for i in range(1, len(boards)):
        boards[i] = max(boards[i], boards[i - 1])
    return boards


def solve_baseline(
    problem: PartitionProblem,
    strategy: str,
    *,
    time_limit: float = 60.0,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    mvau_wwidth_max: int = 36,
) -> SolveResult:
    """Best plan the baseline recipe finds, searching SetFolding's target."""
    if strategy not in ("setfolding", "two-stage", "elastic-df"):
        raise ValueError(strategy)
    # a recipe's plan must place: every board with SLRs is placed per SLR
    problem = replace(problem, slr_split=frozenset(
        c.board.name for b, c in enumerate(problem.boards) if problem.slr_caps[b]))
    t0 = time.monotonic()
    log: list[str] = []
    part = problem.boards[0].board.part
    cands = problem.candidate_iis()
    cache: dict[int, tuple | None] = {}

    def attempt(idx: int):
        if idx in cache:
            return cache[idx]
        T = cands[idx]
        fold = set_folding(problem.graph, T, mvau_wwidth_max=mvau_wwidth_max, part=part)
        fixed = _fixed_problem(problem, fold)
        res: tuple | None = None
        if fixed is not None:
            ii = max(o[0].cost.cycles for o in fixed.options)
            choice = [0] * fixed.n
            if strategy == "setfolding":
                for nb in range(1, problem.n_boards + 1):
                    boards = even_split(fixed, nb)
                    ev = evaluate(fixed, choice, boards)
                    if not ev.feasible:
                        continue
                    slrs, bad = assign(fixed, choice, boards)
                    if not bad:
                        res = (fixed, choice, boards, ev, slrs)
                        break
            else:
                budget = max(0.5, (time_limit - (time.monotonic() - t0)) / 8)
                r = solve_at(fixed, ii, objective="boards" if strategy == "two-stage"
                             else "crossings", time_limit=budget, workers=workers, seed=seed)
                if r.choice is not None and r.boards is not None:
                    ev = evaluate(fixed, r.choice, r.boards)
                    if ev.feasible:
                        res = (fixed, r.choice, r.boards, ev, r.slrs)
        cache[idx] = res
        return res

    # feasibility is (nearly) monotone in the target; binary search, then step down greedily
    lo, hi = 0, len(cands) - 1
    if attempt(hi) is None:
        raise InfeasibleError(f"{strategy}: even SetFolding's slowest folding does not fit "
                              f"{problem.n_boards} board(s)")
    while lo < hi and time.monotonic() - t0 < time_limit:
        mid = (lo + hi) // 2
        if attempt(mid) is not None:
            hi = mid
        else:
            lo = mid + 1
    fixed, choice, boards, ev, slrs = attempt(hi)
    msg = f"{strategy}: target {cands[hi]:,} cycles -> II {ev.ii_cycles:,} ({ev.fps:,.0f} fps)"
    log.append(msg)
    if progress:
        progress(msg)
    return SolveResult(strategy=strategy, status="FEASIBLE", choice=tuple(choice),
                       boards=tuple(boards), evaluation=ev, ii_cycles=ev.ii_cycles,
                       ii_bound=ev.ii_cycles, wall_s=time.monotonic() - t0, log=tuple(log),
                       problem=fixed, slrs=tuple(slrs) if slrs else None,
                       phases=((f"{strategy}: SetFolding target search and placement",
                                round(time.monotonic() - t0, 3), "done"),))
