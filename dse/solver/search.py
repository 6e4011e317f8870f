"""Joint optimizer: the smallest II (highest FPS) over folding and placement, with a proof.

The optimal II is one of finitely many values (an option's cycles or a link's cycles), and
feasibility is monotone in II (a slower target admits every faster plan). So:

1. cheap proofs (``greedy.proven_infeasible``) rule out the smallest values;
2. the greedy heuristic gives a first plan (upper bound);
3. a binary search between the two asks CP-SAT "is there a plan with II <= T?"; an
   INFEASIBLE answer proves every smaller T impossible, a plan lowers the upper bound;
4. at the best II, CP-SAT minimizes the boards used, then the resources (lexicographic).

The reported bound is the smallest II not proven impossible; gap = 1 - bound/II.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dse.exceptions import InfeasibleError, InternalError
from dse.solver.binfill import fill_bins
from dse.solver.cpsat import AtResult, solve_at
from dse.solver.evaluate import Evaluation, evaluate
from dse.solver.greedy import greedy, greedy_slrs, proven_infeasible
from dse.solver.problem import PartitionProblem
from dse.solver.slr import assign

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveResult:
    strategy: str
    status: str  # OPTIMAL (II proven minimal) or FEASIBLE
    choice: tuple[int, ...]
    boards: tuple[int, ...]
    evaluation: Evaluation
    ii_cycles: int
    ii_bound: int
    wall_s: float
    log: tuple[str, ...] = field(default=())
    problem: PartitionProblem | None = None  # the instance the choice indices refer to
    #: (phase, seconds, outcome): what each phase of the search did and whether the time
    #: limit cut it short
    phases: tuple[tuple[str, float, str], ...] = field(default=())
    #: per layer: its SLR on the boards whose SLRs the solver placed (``slr_split``), else None
    slrs: tuple[int | None, ...] | None = None
    #: the II bound proven before any board was modelled SLR by SLR: it holds for every
    #: floorplan (``ii_bound`` then holds for plans whose SLRs follow the chain)
    ii_bound_any_floorplan: int | None = None
    #: per board of the chain: the identical copies it runs as (segment replicas)
    replicas: tuple[int, ...] | None = None

    def option(self, i: int):
        assert self.problem is not None
        return self.problem.options[i][self.choice[i]]

    @property
    def fps(self) -> float:
        return self.evaluation.fps

    @property
    def fps_bound(self) -> float:
        return self.evaluation.fps * self.ii_cycles / self.ii_bound

    @property
    def gap(self) -> float:
        return max(0.0, 1.0 - self.ii_bound / self.ii_cycles)


def _first(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """Smallest index in [lo, hi) with ok(index) true (ok monotone); hi if none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def binding_limits(problem: PartitionProblem, T: int, time_limit: float = 10.0,
                   max_tests: int = 12) -> list[str]:
    """A small set of board and link limits that cannot all hold at II ``T``: CP-SAT's
    infeasible subset of assumptions, shrunk by deletion (each kept limit is needed)."""
    r = solve_at(problem, T, explain=True, time_limit=time_limit, workers=1)
    if r.status != "INFEASIBLE" or not r.core:
        return []
    core = list(dict.fromkeys(r.core))
    for label in list(core)[:max_tests]:
        rest = frozenset(c for c in core if c != label)
        trial = solve_at(problem, T, explain=True, time_limit=time_limit / 4, workers=1,
                         only=rest)
        if trial.status == "INFEASIBLE":
            core.remove(label)  # the others contradict each other without it
    return core


def explain_infeasible(problem: PartitionProblem) -> str:
    T = problem.candidate_iis()[-1]
    reason = proven_infeasible(problem, T)
    if reason:
        return reason
    limits = binding_limits(problem, T)
    if limits:
        return ("even at the smallest foldings these limits cannot all hold: "
                + "; ".join(limits) + ". Add boards, raise the caps (--cap lut=0.8), a faster "
                "link (--link-gbps) or allow external weights")
    return (f"no contiguous split of the {problem.n} layers over {problem.n_boards} "
            f"{'x '.join(sorted({b.board.name for b in problem.boards}))} board(s) satisfies the "
            "resource, link and ACCL limits even at the smallest foldings; add boards, raise the "
            "caps (--cap lut=0.8) or allow external weights")


@dataclass(frozen=True, slots=True, kw_only=True)
class JointPlan:
    """A plan the joint search holds: an option per layer, a board per layer, the SLR per
    layer where it is placed, the copies per board (segment replicas)."""

    choice: tuple[int, ...]
    boards: tuple[int, ...]
    slrs: tuple[int | None, ...] | None = None
    reps: tuple[int, ...] | None = None

    @classmethod
    def of(cls, choice: Sequence[int], boards: Sequence[int],
           slrs: Sequence[int | None] | None = None, reps: Sequence[int] | None = None
           ) -> JointPlan:
        return cls(choice=tuple(choice), boards=tuple(boards),
                   slrs=tuple(slrs) if slrs is not None else None,
                   reps=tuple(reps) if reps is not None else None)

    def hint(self) -> tuple[Any, ...]:
        """As ``solve_at`` takes a plan to start from."""
        return (self.choice, self.boards, self.slrs, self.reps)

    @property
    def used(self) -> int:
        """Boards of the chain in use."""
        return max(self.boards) + 1

    @property
    def physical(self) -> int:
        """Boards the plan occupies, every copy counted."""
        return sum(self.reps[:self.used]) if self.reps else self.used


def solve_joint(
    problem: PartitionProblem,
    *,
    time_limit: float = 60.0,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    secondary: bool = True,
    start: JointPlan | None = None,
    floor_fps: float | None = None,
) -> SolveResult:
    """``start``: a plan to start from (its options, boards and copies per board), e.g.
    another layout's best; the search then looks only for faster ones. ``floor_fps``: a
    rate another answer already beats (a replica layout found faster): a plan below it
    skips the least-resources phase (it will not be the one kept)."""
    return JointSearch(problem, time_limit=time_limit, workers=workers, seed=seed,
                       progress=progress, secondary=secondary, start=start,
                       floor_fps=floor_fps).run()


class JointSearch:
    """The joint search as named phases (``run``) over one state: the candidate IIs, the
    bound proven so far (``proven``), the best plan (``best`` at candidate ``hi``).

    Every plan must place into its boards' SLRs. The search asks CP-SAT with each board's
    SLRs summed (a relaxation: its infeasibility proofs hold for every floorplan, and it is
    2-3x faster than the per-SLR model at 150-300 layers) and places each plan it finds: the
    exact packing, else the SLR fill at the same II, else the boards filled more evenly, else
    the same cuts with the SLRs modelled. Only IIs where a plan exists with the SLRs summed
    but none was placed are asked again afterwards with the boards modelled SLR by SLR
    (``slr_split``)."""

    def __init__(self, problem: PartitionProblem, *, time_limit: float, workers: int,
                 seed: int, progress: Progress | None, secondary: bool,
                 start: JointPlan | None, floor_fps: float | None = None) -> None:
        self.t0 = time.monotonic()
        self.problem = problem
        self.time_limit = time_limit
        self.workers = workers
        self.seed = seed
        self.progress = progress
        self.secondary = secondary
        self.start = start
        self.floor_fps = floor_fps
        self.log: list[str] = []
        self.phases: list[tuple[str, float, str]] = []
        self.mark = time.monotonic()
        self.f = problem.clock_mhz * 1e6
        self.cands = problem.candidate_iis()
        self.top = len(self.cands)
        self.R = problem.max_replicas
        self.found: dict[int, JointPlan] = {}
        self.relaxed: int | None = None  # the bound proven before the first split
        self.unpacked: set[int] = set()  # boards whose plans did not pack into their SLRs
        self.fill_failed: dict[int, float] = {}  # II -> the time the SLR fill failed in there
        self.fill_cut: set[int] = set()  # IIs where the SLR fill ran out of time
        self.lo = 0
        self.hi = 0
        self.proven = 0
        self.proven_at = 0
        self.best: JointPlan | None = None
        self.probe: int | None = None
        self.undecided_any = False
        self.unplaced: list[int] = []  # candidates with a plan with the SLRs summed, none placed
        self.T = 0
        self.ii_lb = 0
        # whole-pipeline copies as greedy seeds: m boards of n // m copies each (none when a
        # start plan is given: it is at least as good as these)
        n_b = problem.n_boards
        self.seeds = (sorted({n_b // m for m in range(1, n_b + 1)} - {1}, reverse=True)
                      if self.R > 1 and start is None else [])

    # -- bookkeeping ----------------------------------------------------------------------

    def say(self, msg: str) -> None:
        self.log.append(msg)
        if self.progress:
            self.progress(f"[{time.monotonic() - self.t0:6.1f}s] {msg}")

    def left(self) -> float:
        return self.time_limit - (time.monotonic() - self.t0)

    def phase(self, name: str, outcome: str) -> None:
        now = time.monotonic()
        self.phases.append((name, round(now - self.mark, 3), outcome))
        self.mark = now

    def the_best(self) -> JointPlan:
        if self.best is None:
            raise InternalError("the joint search holds no plan")
        return self.best

    def solve_at(self, T: int, **kw: Any) -> AtResult:
        return solve_at(self.problem, T, workers=self.workers, seed=self.seed, **kw)

    # -- the phases -----------------------------------------------------------------------

    def run(self) -> SolveResult:
        self.lower_bound()
        self.first_plan()
        self.proven = self.lo
        self.phase("bounds and greedy", "done")
        self.fill_plans()
        self.ii_search()
        self.ii_between_candidates()
        if self.secondary:
            self.fewest_boards()
            if self.floor_fps is not None and self.f / max(self.T, 1) < self.floor_fps:
                self.phase("least resources", "skipped: another layout is faster")
            else:
                self.least_resources()
        return self.result()

    def lower_bound(self) -> None:
        """Cheap proofs rule out the smallest candidate IIs."""
        cands, problem = self.cands, self.problem
        self.lo = _first(0, self.top, lambda i: proven_infeasible(problem, cands[i]) is None)
        if self.lo == self.top:
            raise InfeasibleError(explain_infeasible(problem))
        self.proven_at = self.lo
        self.say(f"bound: II >= {cands[self.lo]:,} cycles ({self.f / cands[self.lo]:,.0f} fps) "
                 "from resource sums")

    def first_plan(self) -> None:
        """The start plan, the greedy heuristic's (bisected over the candidates), copies of
        the bottleneck board; CP-SAT at the slowest foldings where the greedy finds none."""
        cands, f, lo, top = self.cands, self.f, self.lo, self.top
        top_search = top
        start = self.start
        if start is not None:
            ev0 = evaluate(self.problem, start.choice, start.boards, replicas=start.reps)
            at = next((j for j in range(lo, top) if cands[j] >= ev0.ii_cycles), None)
            plan0 = (self.accept(list(start.choice), list(start.boards), None,
                                 reps=list(start.reps) if start.reps else None)
                     if ev0.feasible and at is not None else None)
            if plan0 is not None and at is not None:
                self.found[at] = plan0
                top_search = at
                self.say(f"start: II {ev0.ii_cycles:,} cycles ({f / ev0.ii_cycles:,.0f} fps)")
        hi = _first(lo, top_search, self.greedy_ok)
        if hi >= top:
            self.hi, self.best = top - 1, self.cp_sat_first_plan()
            return
        best = self.found[hi]
        if hi < top_search:
            self.say(f"greedy: II {cands[hi]:,} cycles ({f / cands[hi]:,.0f} fps)")
        g = self.grown(best) if self.R > 1 else None  # segment replicas: copy the bottleneck
        at = next((j for j in range(lo, hi) if g and cands[j] >= g[0]), None)
        if g is not None and at is not None:
            hi, best = at, g[1]
            self.found[hi] = best
            self.say(f"copies of the bottleneck board(s) {'/'.join(map(str, best.reps or ()))}"
                     f": II {g[0]:,} cycles ({f / g[0]:,.0f} fps)")
        self.hi, self.best = hi, best

    def cp_sat_first_plan(self) -> JointPlan:
        cands = self.cands
        self.say("greedy found no plan; asking CP-SAT at the slowest foldings")
        r = self.solve_at(cands[-1], time_limit=max(1.0, self.left() * 0.5))
        if r.status == "INFEASIBLE":
            raise InfeasibleError(explain_infeasible(self.problem))
        plan = (self.accept(r.choice, r.boards, r.slrs, cands[-1], reps=r.replicas)
                if r.choice is not None and r.boards is not None else None)
        if plan is None and r.choice is not None:  # solve again with the SLRs modelled
            self.split_slrs()
            r = self.solve_at(cands[-1], time_limit=max(1.0, self.left() * 0.5))
            plan = (self.accept(r.choice, r.boards, r.slrs, reps=r.replicas)
                    if r.choice is not None and r.boards is not None else None)
        if r.status == "INFEASIBLE":
            raise InfeasibleError(explain_infeasible(self.problem))
        if plan is None:
            raise InfeasibleError(
                f"no plan found within {self.time_limit:g} s (CP-SAT {r.status}); "
                "raise --time-limit or add boards")
        return plan

    def fill_plans(self) -> None:
        """Plans first, SLR by SLR: a bisection with the SLR fill alone (no proofs; 3-7 s a
        call at 150-300 layers, where CP-SAT takes 5-9 s to find a plan that then often does
        not pack). Its failures prove nothing, but the CP-SAT search then first asks at the
        candidate just below its best plan: an infeasible answer there proves it optimal."""
        if not (any(self.problem.slr_caps) and self.R == 1 and self.lo < self.hi
                and self.left() > 4.0):
            return
        stop = time.monotonic() + 0.35 * self.left()
        flo = self.lo
        while flo < self.hi and time.monotonic() < stop - 1.0:
            mid = (flo + self.hi) // 2
            got = self.slr_fill(self.cands[mid], min(12.0, max(1.0, stop - time.monotonic())))
            if got is not None:
                self.hi, self.best = mid, got
            else:
                flo = mid + 1
        if self.hi - 1 >= self.proven:
            self.probe = self.hi - 1
        self.phase("SLR fill (plans)", "done" if flo >= self.hi and not self.fill_cut else
                   "cut short by the time limit")

    def ii_search(self) -> None:
        """The binary search with CP-SAT; then the IIs whose plans did not place, again with
        the boards that did not pack modelled SLR by SLR."""
        rounds = 2 if self.secondary else 0
        search_lo = self.bisect(self.lo, rounds, first=self.probe)
        if self.unplaced and self.left() > 1.0:
            again = max(self.proven, min(self.unplaced))
            if again < self.hi:
                self.split_slrs()
                self.unplaced.clear()
                search_lo = self.bisect(again, rounds, split=True)
        undecided = search_lo < self.hi or self.undecided_any or bool(self.unplaced)
        self.phase("II search (CP-SAT)", "cut short by the time limit" if undecided else "done")
        self.T = self.cands[self.hi]
        self.ii_lb = self.cands[self.proven]
        if self.proven >= self.hi and self.hi > 0:
            # link and memory-bandwidth sums can land between candidates
            self.ii_lb = self.cands[self.hi - 1] + 1

    def bisect(self, search_lo: int, rounds: int, first: int | None = None,
               split: bool = False) -> int:
        """Binary search over [search_lo, hi), asking at ``first`` first (with a larger
        share of the time), and while that finds plans, just below each (the fill's plans
        are usually close to the optimum: one proof there closes the gap); returns where it
        stopped. ``split``: a plan that does not place splits its boards' SLRs too, and the
        same II is asked again."""
        cands, f = self.cands, self.f
        while search_lo < self.hi and self.left() > 0.5:
            steps = max(1, (self.hi - search_lo).bit_length()) + rounds
            budget = max(0.5, self.left() * 0.85 / steps)
            mid = (search_lo + self.hi) // 2
            chase = first is not None and search_lo <= first < self.hi
            if chase and first is not None:
                mid, budget = first, max(budget, self.left() * 0.3)
            first = None
            T = cands[mid]
            # a probe where the fill ran out of time before: the fill again, with more
            plan = (self.slr_fill(T, min(12.0, max(1.0, self.left() * 0.2)))
                    if chase and T in self.fill_cut else None)
            r = None
            if plan is None:
                # no hint: the best plan so far is at a slower II, its options are not all
                # allowed at T, and repairing the hint cost CP-SAT 3-5x the time (measured)
                r = self.solve_at(T, time_limit=budget)
                plan = (self.accept(r.choice, r.boards, r.slrs, T, reps=r.replicas)
                        if r.choice is not None and r.boards is not None else None)
                if plan is None and r.choice is not None and split and self.split_slrs():
                    first = mid
                    continue
            if plan is not None:
                self.hi, self.best = mid, plan
                if r is not None:
                    self.say(f"CP-SAT: II {T:,} cycles feasible ({f / T:,.0f} fps)")
                if chase and self.hi - 1 >= search_lo:
                    first = self.hi - 1
            elif r is not None and r.status == "INFEASIBLE":
                search_lo = mid + 1
                self.proven = max(self.proven, mid + 1)
                self.proven_at = self.proven
                self.say(f"CP-SAT: II {T:,} proven impossible")
            elif r is not None and r.choice is not None:
                search_lo = mid + 1
                self.unplaced.append(mid)
                self.say(f"CP-SAT: II {T:,} has a plan with the SLRs summed; none placed into "
                         "the SLRs")
            else:
                if not chase:  # (an undecided probe leaves the bisection as it was)
                    search_lo = mid + 1
                    self.undecided_any = True
                self.say(f"CP-SAT: II {T:,} undecided in {budget:.1f} s")
        return search_lo

    def ii_between_candidates(self) -> None:
        """The optimum may lie strictly between two candidates when several streams share a
        link or a memory: minimize the II itself over (previous candidate, T]; not when some
        layer cannot run faster than T in any folding (T is then proven)."""
        problem, hi, T = self.problem, self.hi, self.T
        floor = -(-max(min(o.cost.cycles for o in opts) for opts in problem.options) // self.R)
        between = None
        if hi > 0 and T > floor and self.proven >= hi and self.R == 1 and self.left() > 1.0:
            # an II strictly between the candidates has every layer at the previous
            # candidate's cycles or fewer, its links and memory at T - 1 or less: none such
            # is a proof
            between = self.solve_at(self.cands[hi - 1], slack_T=T - 1,
                                    time_limit=max(0.5, self.left() * 0.5))
        if hi > 0 and T <= floor:
            self.ii_lb = T
            self.phase("II between candidates",
                       f"skipped: no layer folds faster than {floor:,} cycles")
        elif between is not None and between.status == "INFEASIBLE":
            self.ii_lb = T
            self.phase("II between candidates", f"done: none below {T:,} with the layers at "
                       f"{self.cands[hi - 1]:,} cycles or fewer")
        elif hi > 0 and self.left() > 0.5:
            self.minimize_ii(self.cands[hi - 1] + 1)

    def minimize_ii(self, lo_T: int) -> None:
        r = self.solve_at(self.T, objective="ii", ii_low=lo_T,
                          time_limit=max(0.5, self.left() * 0.3), hint=self.the_best().hint())
        plan = (self.accept(r.choice, r.boards, r.slrs, int(round(r.objective)),
                            reps=r.replicas)
                if r.choice is not None and r.boards is not None and r.objective is not None
                else None)
        if plan is not None and r.objective is not None:
            T_new = int(round(r.objective))
            if T_new < self.T:
                self.say(f"CP-SAT: links allow II {T_new:,} cycles")
            self.T, self.best = T_new, plan
            if self.proven >= self.hi:  # everything below lo_T is proven impossible
                self.ii_lb = (self.T if r.status == "OPTIMAL" or r.bound is None
                              else max(lo_T, int(-(-r.bound // 1))))
        self.phase("II between candidates", "done" if r.status == "OPTIMAL" else
                   f"cut short by the time limit ({r.status})")

    def fewest_boards(self) -> None:
        """Lexicographic: fewer boards at the best II (greedy packings first, the SLR fill,
        one board, then CP-SAT), reporting each improvement."""
        problem, T = self.problem, self.T
        if problem.n_boards <= 1:
            return
        if self.the_best().physical > 1:
            # fewer boards by the greedy packing first: a plan on one board needs no CP-SAT
            for k in range(1, self.the_best().physical):
                g = greedy(problem, T, n_boards=k)
                plan = self.accept(g[0], g[1], None) if g is not None else None
                if plan is not None:
                    self.best = plan
                    self.say(f"greedy: II {T:,} on {k} board(s)")
                    break
        if self.the_best().physical > 1 and self.left() > 2.0:
            # the SLR fill takes the longest run of layers each SLR holds: few boards,
            # placed (none without SLRs or with segment replicas)
            got = self.slr_fill(T, min(8.0, max(1.0, self.left() * 0.15)))
            if got is not None and got.physical < self.the_best().physical:
                self.best = got
                self.say(f"SLR fill: II {T:,} on {got.physical} board(s)")
        if self.the_best().physical > 1 and self.left() > 1.0:
            # one board is the least there is: a small model (no cut points) settles it fast
            r = self.solve_at(T, max_boards=1, max_total=1,
                              time_limit=min(2.0, self.left() * 0.2))
            plan = (self.accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                    if r.choice is not None and r.boards is not None else None)
            if plan is not None:
                self.best = plan
                self.say(f"one board suffices at II {T:,}")
        if self.the_best().physical == 1:
            self.phase("fewest boards", "skipped: the plan already uses one board")
        elif self.left() > 0.5:
            self.solve_fewest_boards()
        else:
            self.phase("fewest boards", "skipped: no time left")

    def solve_fewest_boards(self) -> None:
        T = self.T
        r = self.solve_at(T, objective="boards", time_limit=max(0.5, self.left() * 0.45),
                          hint=self.the_best().hint(), on_solution=self.reporter("boards"))
        plan = (self.accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                if r.choice is not None and r.boards is not None else None)
        if plan is not None and plan.physical <= self.the_best().physical:
            self.best = plan
            self.say(f"fewest boards at II {T:,}: {plan.physical} ({r.status})")
        self.phase("fewest boards", "done" if r.status == "OPTIMAL" else
                   f"cut short by the time limit ({r.status})")

    def least_resources(self) -> None:
        """Lexicographic: the least resources on the boards the plan uses."""
        if self.left() <= 0.5:
            self.phase("least resources", "skipped: no time left")
            return
        T, best = self.T, self.the_best()
        used = best.used
        r = self.solve_at(T, objective="resources", max_boards=used, max_total=best.physical,
                          time_limit=max(0.5, self.left() * 0.9), hint=best.hint(),
                          on_solution=self.reporter("resources"))
        plan = (self.accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                if r.choice is not None and r.boards is not None else None)
        if plan is not None:
            self.best = plan
            self.say(f"least resources on {used} board(s) ({r.status})")
        self.phase("least resources", "done" if r.status == "OPTIMAL" else
                   f"cut short by the time limit ({r.status})")

    def result(self) -> SolveResult:
        problem, best = self.problem, self.the_best()
        ev = evaluate(problem, best.choice, best.boards, ii_hint=self.T, replicas=best.reps)
        if not ev.feasible:  # the formulation and the evaluator disagree: a bug, say so
            raise InternalError("the solver's plan violates " + "; ".join(ev.violations))
        ii_lb = min(self.ii_lb, ev.ii_cycles)
        status = "OPTIMAL" if ii_lb >= ev.ii_cycles else "FEASIBLE"
        copies = (f" as {ev.boards_total} with copies "
                  f"{'/'.join(map(str, ev.replicas[:ev.boards_used]))}"
                  if ev.boards_total > ev.boards_used else "")
        self.say(f"done: II {ev.ii_cycles:,} cycles, {ev.fps:,.0f} fps, bound {ii_lb:,} "
                 f"cycles, {ev.boards_used} board(s) used{copies}")
        return SolveResult(strategy="joint", status=status, choice=best.choice,
                           boards=best.boards, evaluation=ev, ii_cycles=ev.ii_cycles,
                           ii_bound=ii_lb, wall_s=time.monotonic() - self.t0,
                           log=tuple(self.log), problem=problem, phases=tuple(self.phases),
                           slrs=best.slrs if best.slrs else None,
                           ii_bound_any_floorplan=(min(self.relaxed, ii_lb) if self.relaxed
                                                   else None),
                           replicas=(tuple(ev.replicas[:ev.boards_used])
                                     if problem.max_replicas > 1 else None))

    # -- the steps the phases share ---------------------------------------------------------

    def reporter(self, what: str) -> Callable[[float], None]:
        """Reports CP-SAT's solutions, at most one a second."""
        last = [0.0]

        def on_solution(obj: float) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                self.say(f"  {what}: solution with objective {obj:,.0f}")

        return on_solution

    def accept(self, choice: Sequence[int], boards: Sequence[int],
               slrs: Sequence[int | None] | None, T: int | None = None,
               reps: Sequence[int] | None = None, fill: bool = True) -> JointPlan | None:
        """The plan placed into its boards' SLRs, or None. With ``T``, a plan that does not
        pack is repaired at that II (``fill``: the SLR fill and the even fill may change the
        cuts)."""
        problem, left = self.problem, self.left
        out, bad = assign(problem, choice, boards, slrs,
                          time_limit=min(5.0, max(0.5, left() * 0.05)))
        if not bad:
            return JointPlan.of(choice, boards, out, reps)
        self.unpacked.update(bad)
        if T is None or left() <= 1.0:
            return None
        if fill and left() > 2.0:
            # fill the SLRs one by one, each SLR's foldings chosen for it (dse.solver.binfill)
            got = self.slr_fill(T, min(12.0, max(1.0, left() * 0.25), left() - 1.0))
            if got is not None:
                return got
        names = ", ".join(map(str, sorted(bad)))
        if fill and left() > 1.0:
            # the same II with the boards as evenly filled as they go: room to pack
            r = self.solve_at(T, objective="balance", hint=(choice, boards, slrs, reps),
                              time_limit=min(5.0, max(0.5, left() * 0.1)))
            got = (self.accept(r.choice, r.boards, r.slrs, reps=r.replicas)
                   if r.choice is not None and r.boards is not None else None)
            if got is not None:
                self.say(f"board(s) {names}: filled more evenly to fit the SLRs")
                return got
        if left() > 1.0:
            every = frozenset(b for b in range(problem.n_boards) if problem.slr_caps[b])
            r = solve_at(replace(problem, slr_split=problem.slr_split | every), T,
                         fix_boards=boards, hint=(choice, boards, None, reps),
                         time_limit=min(5.0, max(0.5, left() * 0.1)), workers=self.workers,
                         seed=self.seed)
            if r.choice is not None and r.boards is not None:
                self.say(f"board(s) {names}: foldings chosen again to fit the SLRs, same cuts")
                return JointPlan.of(r.choice, r.boards, r.slrs, r.replicas)
        return None

    def split_slrs(self) -> bool:
        """From now on the boards whose plans did not pack are modelled SLR by SLR; False
        when there were none left to split."""
        problem = self.problem
        bad = frozenset(self.unpacked) - problem.slr_split
        if not bad:
            return False
        if not problem.slr_split:
            self.relaxed = self.cands[self.proven_at]
        self.problem = problem = replace(problem, slr_split=problem.slr_split | bad)
        names = ", ".join(f"{b} ({problem.boards[b].board.name})" for b in sorted(bad))
        self.say(f"board(s) {names}: plans with the SLRs summed did not place; from now on "
                 "each SLR is placed by the solver")
        return True

    def slr_fill(self, T: int, limit: float) -> JointPlan | None:
        """A plan at II ``T`` from filling the chain's SLRs one by one (binfill), or None."""
        if (not any(self.problem.slr_caps) or self.R > 1
                or self.fill_failed.get(T, 0.0) >= limit):
            return None  # (where it failed with as much time, it fails again)
        t = time.monotonic()
        g = fill_bins(self.problem, T, time_limit=limit)
        plan = self.accept(*g) if g is not None else None
        if plan is not None:
            self.say(f"SLR fill: II {T:,} cycles with every board placed SLR by SLR")
        elif time.monotonic() - t < 0.9 * limit:
            self.fill_failed[T] = limit
        else:
            self.fill_cut.add(T)  # out of time: it may succeed with more
        return plan

    def greedy_ok(self, i: int) -> bool:
        """A greedy plan at candidate ``i`` (kept in ``found``)."""
        problem, T = self.problem, self.cands[i]
        r = greedy(problem, T)
        plan = self.accept(r[0], r[1], None) if r is not None else None
        if plan is None and any(problem.slr_caps):  # fill SLR by SLR instead
            g = greedy_slrs(problem, T)
            plan = self.accept(*g) if g is not None else None
        for k in self.seeds:  # segment replicas: every board in use as k copies or more
            if plan is not None:
                break
            gk = greedy(problem, T * k, n_boards=problem.n_boards // k)
            if gk is not None:
                used = max(gk[1]) + 1
                plan = self.accept(gk[0], gk[1], None, reps=[problem.n_boards // used] * used)
        if plan is not None:
            self.found[i] = plan
        return plan is not None

    def grown(self, plan: JointPlan) -> tuple[int, JointPlan] | None:
        """Copy the bottleneck: each spare board becomes another copy of the board whose
        stage is slowest, while that lowers the II (same foldings and cuts)."""
        problem = self.problem
        used = plan.used
        reps = list(plan.reps or [1] * used)[:used]
        ev = evaluate(problem, plan.choice, plan.boards, replicas=reps)
        if not ev.feasible:
            return None
        while sum(reps) < problem.n_boards:
            stage = [max((problem.cycles_on(i, plan.choice[i], b) for i in range(problem.n)
                          if plan.boards[i] == b), default=0) / reps[b] for b in range(used)]
            b = stage.index(max(stage))
            trial = reps[:b] + [reps[b] + 1] + reps[b + 1:]
            ev2 = evaluate(problem, plan.choice, plan.boards, replicas=trial)
            if not ev2.feasible or ev2.ii_cycles >= ev.ii_cycles:
                break
            reps, ev = trial, ev2
        return ev.ii_cycles, replace(plan, reps=tuple(reps))
