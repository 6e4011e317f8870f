"""From boards and options to a plan: the one path ``dse optimize`` and every ``dse explore``
trial take, so a trial plans exactly what ``dse optimize`` plans for the same configuration.

``problem_for`` builds the problem (links at the slowest board's line rate unless told, ACCL
buffers); ``plan_problem`` solves it (over the board orders, or in the order given), plans
again where the plan as FINN builds it (its sized FIFOs and converters) does not fit, checks
the SLR placement and makes the plan document, with its FIFOs and converters attached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dse import __version__
from dse.exceptions import SpecError
from dse.ir import LayerGraph
from dse.plan import PartitionPlan, make_plan
from dse.plan_edits import attach_slrs, with_slr_model
from dse.solver import DEFAULT_BATCH
from dse.solver.infra import attach_infrastructure, reserve_for
from dse.solver.order import solve_best_order
from dse.solver.problem import AcclConfig, LinkConfig, PartitionProblem, build_problem
from dse.solver.search import SolveResult
from dse.solver.slr import place
from dse.specs import BoardConfig

#: one solve of a problem within a time limit (the joint search, or a baseline)
Solve = Callable[[PartitionProblem, float], SolveResult]
Phase = tuple[str, float, str]
BOARD_ORDERS = ("auto", "given")


def problem_for(graph: LayerGraph, cfgs: Sequence[BoardConfig], *,
                link_gbps: float | None = None, link_efficiency: float | None = None,
                topology: str = "chain", rx_buffer_bytes: int | None = None,
                rx_buffers: int | None = None, allow_external: bool = True
                ) -> PartitionProblem:
    """The problem of ``graph`` on ``cfgs``; ``link_gbps`` None: the slowest board's network
    port (100 GbE on Alveo, 1 GbE on Zynq)."""
    accl = AcclConfig()
    if rx_buffer_bytes is not None:
        accl = replace(accl, rx_buffer_bytes=int(rx_buffer_bytes))
    if rx_buffers is not None:
        accl = replace(accl, rx_buffer_count=int(rx_buffers))
    if link_gbps is None:
        link_gbps = min((c.board.net_line_rate_gbps for c in cfgs
                         if c.board.net_line_rate_gbps), default=100.0)
    link = LinkConfig(bandwidth_gbps=link_gbps, topology=topology)
    if link_efficiency is not None:
        link = replace(link, efficiency=link_efficiency)
    return build_problem(graph, cfgs, link=link, accl=accl, allow_external=allow_external)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRecord:
    """What the plan document records beyond the solve: the model, the seed, whether wall
    times are kept, the driver batch, and the phases before the solve (loading, costing)."""

    model_path: str
    model_sha256: str
    seed: int
    record_time: bool = True
    input_dtype: str | None = None
    minimize_bit_width: bool = False
    batch: int = DEFAULT_BATCH
    phases: tuple[Phase, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    plan: PartitionPlan
    result: SolveResult
    #: what each board order gave (empty when one order was solved)
    tried: list[dict[str, Any]]


def plan_problem(problem: PartitionProblem, solve: Solve, *, time_limit: float,
                 started: float, record: PlanRecord, board_order: str = "auto",
                 progress: Callable[[str], None] | None = None,
                 floor_fps: float | None = None) -> Planned:
    """Solve ``problem`` and make its plan. ``time_limit`` covers the whole run from
    ``started`` (a ``time.monotonic()`` reading: loading and costing come out of it; 3 % and
    half a second are kept for the SLR check and the plan). ``board_order``: ``auto`` solves
    every distinct order of the boards and keeps the best (dse.solver.order), ``given`` the
    boards' order as they are. ``floor_fps``: a rate another answer already beats (a
    replica layout): a plan below it is not re-planned for its FIFOs (it will not be kept)."""
    if board_order not in BOARD_ORDERS:
        raise SpecError(f"--board-order {board_order!r}: choose auto or given")
    t_solve = time.monotonic()
    limit = max(1.0, 0.97 * (time_limit - (t_solve - started)) - 0.5)
    tried: list[dict[str, Any]] = []
    if board_order == "given":
        res = solve(problem, limit)
    else:
        res, tried = solve_best_order(problem, solve, time_limit=limit, progress=progress)
    if floor_fps is None or res.evaluation.fps >= floor_fps:  # else it will not be kept
        res = fit_infrastructure(res, solve, time_limit=time_limit, started=started,
                                 first=time.monotonic() - t_solve)
    prob = res.problem
    assert prob is not None
    slrs, slr_phase = _slr_check(res)
    plan = make_plan(res, model_path=record.model_path, model_sha256=record.model_sha256,
                     clock_mhz=prob.clock_mhz, dse_version=__version__, seed=record.seed,
                     record_time=record.record_time, input_dtype=record.input_dtype,
                     minimize_bit_width=record.minimize_bit_width, board_orders=tried,
                     phases=[*record.phases, *res.phases, slr_phase], batch=record.batch)
    plan = _with_slr_model(attach_slrs(plan, slrs), res, tried)
    plan = attach_infrastructure(plan, prob, res)  # FIFOs and converters as FINN builds
    return Planned(plan=plan, result=res, tried=tried)


def fit_infrastructure(res: SolveResult, solve: Solve, *, time_limit: float, started: float,
                       first: float) -> SolveResult:
    """The plan as FINN builds it (its sized FIFOs, converters) must fit too: where it does
    not, plan again with them kept back (dse.solver.infra.reserve_for), four times at most,
    each time for as long as the first search took, at most twice that, keeping back 5 %
    more each time (a plan found in less room has other foldings and FIFOs: CNV-w1a1 in one
    U55C SLR group needed 2,239 LUT, then 2,405). When less time is left than the first
    search took, the plan is kept as it is and says it does not fit as built
    (``metrics.fits_as_built``): a search cut shorter would trade it for a much slower one."""
    for attempt in range(4):
        assert res.problem is not None
        again = reserve_for(res.problem, res, slack=0.05 * attempt)
        left = 0.9 * (time_limit - (time.monotonic() - started)) - 0.5
        if again is None or left < max(2.0, first):
            break
        res = solve(again, min(left, 2 * first + 2.0))
    return res


def _slr_check(res: SolveResult) -> tuple[list[dict[str, Any] | None], Phase]:
    """Every Alveo board's layers must fit its SLRs (FINN's per-SLR limits, SLL wires): the
    search places each plan it keeps (dse.solver.search, lazily per SLR); this checks the
    placement independently of how it was found, and flags a plan that does not fit."""
    t_slr = time.monotonic()
    assert res.problem is not None
    slrs = place(res.problem, res)
    unplaced = [b for b, x in enumerate(slrs) if x is not None and not x["feasible"]]
    return slrs, ("place layers into SLRs (exact packing)", time.monotonic() - t_slr,
                  "done" if not unplaced else
                  f"board(s) {', '.join(map(str, unplaced))} do not fit their SLRs")


def _with_slr_model(plan: PartitionPlan, res: SolveResult, tried: list[dict[str, Any]]
                    ) -> PartitionPlan:
    """The note and any-floorplan bound of boards the solver placed SLR by SLR, if any."""
    problem = res.problem
    assert problem is not None
    split = sorted(x if isinstance(x, str) else f"{problem.boards[x].board.name} (board {x})"
                   for x in problem.slr_split)
    if not split:
        return plan
    any_ii = res.ii_bound_any_floorplan
    any_fps = (res.evaluation.fps * res.ii_cycles / any_ii if any_ii else
               max([res.fps_bound] + [t["bound_fps"] for t in tried if t.get("bound_fps")]))
    # whether those boards' layers follow their SLRs in chain order, read off the plan: the
    # per-SLR model places them so, the SLR fill and exact packing in any order
    def slrs_on(b: int) -> list[int]:
        return [lyr["slr"] for lyr in plan["layers"] if lyr["board"] == b and "slr" in lyr]

    in_order = all(slrs_on(b) == sorted(slrs_on(b))
                   for b in problem.slr_split if isinstance(b, int))
    return with_slr_model(plan, per_slr_boards=split, bound_fps_any_floorplan=any_fps,
                          in_chain_order=in_order)
