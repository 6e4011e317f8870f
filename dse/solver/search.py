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
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dse.exceptions import InfeasibleError
from dse.solver.binfill import fill_bins
from dse.solver.cpsat import solve_at
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


def solve_joint(
    problem: PartitionProblem,
    *,
    time_limit: float = 60.0,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    secondary: bool = True,
    start: tuple | None = None,
) -> SolveResult:
    """``start``: a plan to start from, (option per layer, board per layer, copies per board
    or None), e.g. another layout's best; the search then looks only for faster ones."""
    t0 = time.monotonic()
    log: list[str] = []

    def say(msg: str) -> None:
        log.append(msg)
        if progress:
            progress(f"[{time.monotonic() - t0:6.1f}s] {msg}")

    def left() -> float:
        return time_limit - (time.monotonic() - t0)

    f = problem.clock_mhz * 1e6
    phases: list[tuple[str, float, str]] = []
    mark = [time.monotonic()]

    def phase(name: str, outcome: str) -> None:
        now = time.monotonic()
        phases.append((name, round(now - mark[0], 3), outcome))
        mark[0] = now

    cands = problem.candidate_iis()
    top = len(cands)
    lo = _first(0, top, lambda i: proven_infeasible(problem, cands[i]) is None)
    if lo == top:
        raise InfeasibleError(explain_infeasible(problem))
    say(f"bound: II >= {cands[lo]:,} cycles ({f / cands[lo]:,.0f} fps) from resource sums")

    # Every plan must place into its boards' SLRs. The search asks CP-SAT with each board's
    # SLRs summed (a relaxation: its infeasibility proofs hold for every floorplan, and it is
    # 2-3x faster than the per-SLR model at 150-300 layers) and places each plan it finds:
    # the exact packing, else the SLR fill at the same II, else the boards filled more evenly,
    # else the same cuts with the SLRs modelled. Only IIs where a plan exists with the SLRs
    # summed but none was placed are asked again afterwards with the boards modelled SLR by
    # SLR (``slr_split``).
    def accept(choice, boards, slrs, T: int | None = None, reps: list[int] | None = None,
               fill: bool = True) -> tuple | None:
        """The plan (choice, boards, SLR per layer, copies per board) placed into its
        boards' SLRs, or None. With ``T``, a plan that does not pack is repaired at that II
        (``fill``: the SLR fill and the even fill may change the cuts)."""
        out, bad = assign(problem, choice, boards, slrs,
                          time_limit=min(5.0, max(0.5, left() * 0.05)))
        if not bad:
            return choice, boards, out, reps
        unpacked.update(bad)
        if T is None or left() <= 1.0:
            return None
        if fill and left() > 2.0:
            # fill the SLRs one by one, each SLR's foldings chosen for it (dse.solver.binfill)
            got = slr_fill(T, min(12.0, max(1.0, left() * 0.25), left() - 1.0))
            if got is not None:
                return got
        if fill and left() > 1.0:
            # the same II with the boards as evenly filled as they go: room to pack
            r = solve_at(problem, T, objective="balance", hint=(choice, boards, slrs, reps),
                         time_limit=min(5.0, max(0.5, left() * 0.1)), workers=workers,
                         seed=seed)
            got = (accept(r.choice, r.boards, r.slrs, reps=r.replicas)
                   if r.choice is not None else None)
            if got is not None:
                say(f"board(s) {', '.join(map(str, sorted(bad)))}: filled more evenly to fit "
                    "the SLRs")
                return got
        if left() > 1.0:
            every = frozenset(b for b in range(problem.n_boards) if problem.slr_caps[b])
            r = solve_at(replace(problem, slr_split=problem.slr_split | every), T,
                         fix_boards=boards, hint=(choice, boards, None, reps),
                         time_limit=min(5.0, max(0.5, left() * 0.1)), workers=workers,
                         seed=seed)
            if r.choice is not None:
                say(f"board(s) {', '.join(map(str, sorted(bad)))}: foldings chosen again to "
                    "fit the SLRs, same cuts")
                return r.choice, r.boards, r.slrs, r.replicas
        return None

    def split_slrs() -> bool:
        """From now on the boards whose plans did not pack are modelled SLR by SLR; False
        when there were none left to split."""
        nonlocal problem
        bad = frozenset(unpacked) - problem.slr_split
        if not bad:
            return False
        if not problem.slr_split:
            relaxed[0] = cands[proven_at[0]]
        problem = replace(problem, slr_split=problem.slr_split | bad)
        names = ", ".join(f"{b} ({problem.boards[b].board.name})" for b in sorted(bad))
        say(f"board(s) {names}: plans with the SLRs summed did not place; from now on each "
            "SLR is placed by the solver")
        return True

    def slr_fill(T: int, limit: float) -> tuple | None:
        """A plan at II ``T`` from filling the chain's SLRs one by one (binfill), or None."""
        if not any(problem.slr_caps) or R > 1 or fill_failed.get(T, 0.0) >= limit:
            return None  # (where it failed with as much time, it fails again)
        t = time.monotonic()
        g = fill_bins(problem, T, time_limit=limit)
        plan = accept(*g) if g is not None else None
        if plan is not None:
            say(f"SLR fill: II {T:,} cycles with every board placed SLR by SLR")
        elif time.monotonic() - t < 0.9 * limit:
            fill_failed[T] = limit
        else:
            fill_cut.add(T)  # out of time: it may succeed with more
        return plan

    found: dict[int, tuple] = {}
    relaxed: list[int | None] = [None]  # the bound proven before the first split
    unpacked: set[int] = set()  # boards whose plans did not pack into their SLRs
    fill_failed: dict[int, float] = {}  # II -> the time the SLR fill failed in there
    fill_cut: set[int] = set()  # IIs where the SLR fill ran out of time
    proven_at = [lo]

    R = problem.max_replicas
    # whole-pipeline copies as greedy seeds: m boards of n // m copies each (none when a
    # start plan is given: it is at least as good as these)
    seeds = sorted({problem.n_boards // m for m in range(1, problem.n_boards + 1)} - {1},
                   reverse=True) if R > 1 and start is None else []

    def greedy_ok(i: int) -> bool:
        r = greedy(problem, cands[i])
        plan = accept(r[0], r[1], None) if r is not None else None
        if plan is None and any(problem.slr_caps):  # fill SLR by SLR instead
            g = greedy_slrs(problem, cands[i])
            plan = accept(*g) if g is not None else None
        for k in seeds:  # segment replicas: every board in use as k copies or more
            if plan is not None:
                break
            g = greedy(problem, cands[i] * k, n_boards=problem.n_boards // k)
            if g is not None:
                used = max(g[1]) + 1
                plan = accept(g[0], g[1], None, reps=[problem.n_boards // used] * used)
        if plan is not None:
            found[i] = plan
        return plan is not None

    def grown(plan: tuple) -> tuple[int, tuple] | None:
        """Copy the bottleneck: each spare board becomes another copy of the board whose
        stage is slowest, while that lowers the II (same foldings and cuts)."""
        used = max(plan[1]) + 1
        reps = list(plan[3] or [1] * used)[:used]
        ev = evaluate(problem, plan[0], plan[1], replicas=reps)
        if not ev.feasible:
            return None
        while sum(reps) < problem.n_boards:
            stage = [max((problem.cycles_on(i, plan[0][i], b) for i in range(problem.n)
                          if plan[1][i] == b), default=0) / reps[b] for b in range(used)]
            b = stage.index(max(stage))
            trial = reps[:b] + [reps[b] + 1] + reps[b + 1:]
            ev2 = evaluate(problem, plan[0], plan[1], replicas=trial)
            if not ev2.feasible or ev2.ii_cycles >= ev.ii_cycles:
                break
            reps, ev = trial, ev2
        return ev.ii_cycles, (plan[0], plan[1], plan[2], reps)

    top_search = top
    if start is not None:
        ev0 = evaluate(problem, start[0], start[1], replicas=start[2])
        at = next((j for j in range(lo, top) if cands[j] >= ev0.ii_cycles), None)
        plan0 = (accept(list(start[0]), list(start[1]), None,
                        reps=list(start[2]) if start[2] else None)
                 if ev0.feasible and at is not None else None)
        if plan0 is not None:
            found[at] = plan0
            top_search = at
            say(f"start: II {ev0.ii_cycles:,} cycles ({f / ev0.ii_cycles:,.0f} fps)")
    hi = _first(lo, top_search, greedy_ok)
    if hi < top:
        best = found[hi]
        if hi < top_search:
            say(f"greedy: II {cands[hi]:,} cycles ({f / cands[hi]:,.0f} fps)")
        g = grown(best) if R > 1 else None  # segment replicas: copy the bottleneck board
        at = next((j for j in range(lo, hi) if g and cands[j] >= g[0]), None)
        if g is not None and at is not None:
            hi, best = at, g[1]
            found[hi] = best
            say(f"copies of the bottleneck board(s) {'/'.join(map(str, best[3]))}: II "
                f"{g[0]:,} cycles ({f / g[0]:,.0f} fps)")
    else:
        say("greedy found no plan; asking CP-SAT at the slowest foldings")
        r = solve_at(problem, cands[-1], time_limit=max(1.0, left() * 0.5), workers=workers,
                     seed=seed)
        if r.status == "INFEASIBLE":
            raise InfeasibleError(explain_infeasible(problem))
        plan = (accept(r.choice, r.boards, r.slrs, cands[-1], reps=r.replicas)
                if r.choice is not None else None)
        if plan is None and r.choice is not None:  # solve again with the SLRs modelled
            split_slrs()
            r = solve_at(problem, cands[-1], time_limit=max(1.0, left() * 0.5),
                         workers=workers, seed=seed)
            plan = (accept(r.choice, r.boards, r.slrs, reps=r.replicas)
                    if r.choice is not None else None)
        if r.status == "INFEASIBLE":
            raise InfeasibleError(explain_infeasible(problem))
        if plan is None:
            raise InfeasibleError(
                f"no plan found within {time_limit:g} s (CP-SAT {r.status}); "
                "raise --time-limit or add boards")
        hi, best = top - 1, plan
    proven = lo
    phase("bounds and greedy", "done")

    # plans first, SLR by SLR: a bisection with the SLR fill alone (no proofs; 3-7 s a call
    # at 150-300 layers, where CP-SAT takes 5-9 s to find a plan that then often does not
    # pack). Its failures prove nothing, but the CP-SAT search below then first asks at the
    # candidate just below its best plan: an infeasible answer there proves it optimal.
    probe = None
    if any(problem.slr_caps) and R == 1 and lo < hi and left() > 4.0:
        stop = time.monotonic() + 0.35 * left()
        flo = lo
        while flo < hi and time.monotonic() < stop - 1.0:
            mid = (flo + hi) // 2
            got = slr_fill(cands[mid], min(12.0, max(1.0, stop - time.monotonic())))
            if got is not None:
                hi, best = mid, got
            else:
                flo = mid + 1
        if hi - 1 >= proven:
            probe = hi - 1
        phase("SLR fill (plans)", "done" if flo >= hi and not fill_cut else
              "cut short by the time limit")

    # binary search with CP-SAT
    undecided_any = False
    unplaced: list[int] = []  # candidates with a plan with the SLRs summed, none placed

    def bisect(search_lo: int, rounds: int, first: int | None = None, split: bool = False
               ) -> int:
        """Binary search over [search_lo, hi), asking at ``first`` first (with a larger
        share of the time), and while that finds plans, just below each (the fill's plans
        are usually close to the optimum: one proof there closes the gap); returns where it
        stopped. ``split``: a plan that does not place splits its boards' SLRs too, and the
        same II is asked again."""
        nonlocal hi, best, proven, undecided_any
        while search_lo < hi and left() > 0.5:
            steps = max(1, (hi - search_lo).bit_length()) + rounds
            budget = max(0.5, left() * 0.85 / steps)
            mid = (search_lo + hi) // 2
            chase = first is not None and search_lo <= first < hi
            if chase:
                mid, budget = first, max(budget, left() * 0.3)
            first = None
            T = cands[mid]
            # a probe where the fill ran out of time before: the fill again, with more
            plan = (slr_fill(T, min(12.0, max(1.0, left() * 0.2)))
                    if chase and T in fill_cut else None)
            r = None
            if plan is None:
                # no hint: the best plan so far is at a slower II, its options are not all
                # allowed at T, and repairing the hint cost CP-SAT 3-5x the time (measured)
                r = solve_at(problem, T, time_limit=budget, workers=workers, seed=seed)
                plan = (accept(r.choice, r.boards, r.slrs, T, reps=r.replicas)
                        if r.choice is not None else None)
                if plan is None and r.choice is not None and split and split_slrs():
                    first = mid
                    continue
            if plan is not None:
                hi, best = mid, plan
                if r is not None:
                    say(f"CP-SAT: II {T:,} cycles feasible ({f / T:,.0f} fps)")
                if chase and hi - 1 >= search_lo:
                    first = hi - 1
            elif r.status == "INFEASIBLE":
                search_lo = mid + 1
                proven = max(proven, mid + 1)
                proven_at[0] = proven
                say(f"CP-SAT: II {T:,} proven impossible")
            elif r.choice is not None:
                search_lo = mid + 1
                unplaced.append(mid)
                say(f"CP-SAT: II {T:,} has a plan with the SLRs summed; none placed into "
                    "the SLRs")
            else:
                if not chase:  # (an undecided probe leaves the bisection as it was)
                    search_lo = mid + 1
                    undecided_any = True
                say(f"CP-SAT: II {T:,} undecided in {budget:.1f} s")
        return search_lo

    search_lo = bisect(lo, 2 if secondary else 0, first=probe)
    if unplaced and left() > 1.0:
        # ask those IIs again with the boards that did not pack modelled SLR by SLR
        again = max(proven, min(unplaced))
        if again < hi:
            split_slrs()
            unplaced.clear()
            search_lo = bisect(again, 2 if secondary else 0, split=True)
    undecided = search_lo < hi or undecided_any or bool(unplaced)
    phase("II search (CP-SAT)", "cut short by the time limit" if undecided else "done")
    T = cands[hi]
    ii_lb = cands[proven]
    if proven >= hi and hi > 0:
        ii_lb = cands[hi - 1] + 1  # link and memory-bandwidth sums can land between candidates

    # the optimum may lie strictly between two candidates when several streams share a link
    # or a memory: minimize the II itself over (previous candidate, T]; not when some layer
    # cannot run faster than T in any folding (T is then proven)
    floor = -(-max(min(o.cost.cycles for o in opts) for opts in problem.options) // R)
    between = None
    if hi > 0 and T > floor and proven >= hi and R == 1 and left() > 1.0:
        # an II strictly between the candidates has every layer at the previous candidate's
        # cycles or fewer, its links and memory at T - 1 or less: none such is a proof
        between = solve_at(problem, cands[hi - 1], slack_T=T - 1,
                           time_limit=max(0.5, left() * 0.5), workers=workers, seed=seed)
    if hi > 0 and T <= floor:
        ii_lb = T
        phase("II between candidates", f"skipped: no layer folds faster than {floor:,} cycles")
    elif between is not None and between.status == "INFEASIBLE":
        ii_lb = T
        phase("II between candidates", f"done: none below {T:,} with the layers at "
              f"{cands[hi - 1]:,} cycles or fewer")
    elif hi > 0 and left() > 0.5:
        lo_T = cands[hi - 1] + 1
        r = solve_at(problem, T, objective="ii", ii_low=lo_T, time_limit=max(0.5, left() * 0.3),
                     workers=workers, seed=seed, hint=best)
        plan = (accept(r.choice, r.boards, r.slrs, int(round(r.objective)), reps=r.replicas)
                if r.choice is not None and r.objective is not None else None)
        if plan is not None:
            T_new = int(round(r.objective))
            if T_new < T:
                say(f"CP-SAT: links allow II {T_new:,} cycles")
            T, best = T_new, plan
            if proven >= hi:  # everything below lo_T is proven impossible
                ii_lb = T if r.status == "OPTIMAL" else max(lo_T, int(-(-r.bound // 1)))
        phase("II between candidates", "done" if r.status == "OPTIMAL" else
              f"cut short by the time limit ({r.status})")

    # lexicographic secondary objectives at the best II, reporting each improvement
    def reporter(what: str) -> Callable[[float], None]:
        last = [0.0]

        def on_solution(obj: float) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                say(f"  {what}: solution with objective {obj:,.0f}")

        return on_solution

    def physical(plan: tuple) -> int:  # boards a plan occupies, every copy counted
        used = max(plan[1]) + 1
        return sum(plan[3][:used]) if plan[3] else used

    if secondary and problem.n_boards > 1 and physical(best) > 1:
        # fewer boards by the greedy packing first: a plan on one board needs no CP-SAT
        for k in range(1, physical(best)):
            g = greedy(problem, T, n_boards=k)
            plan = accept(g[0], g[1], None) if g is not None else None
            if plan is not None:
                best = plan
                say(f"greedy: II {T:,} on {k} board(s)")
                break
    if secondary and problem.n_boards > 1 and physical(best) > 1 and left() > 2.0:
        # the SLR fill takes the longest run of layers each SLR holds: few boards, placed
        # (none without SLRs or with segment replicas)
        g = slr_fill(T, min(8.0, max(1.0, left() * 0.15)))
        if g is not None and physical(g) < physical(best):
            best = g
            say(f"SLR fill: II {T:,} on {physical(g)} board(s)")
    if secondary and problem.n_boards > 1 and physical(best) > 1 and left() > 1.0:
        # one board is the least there is: a small model (no cut points) settles it fast
        r = solve_at(problem, T, max_boards=1, max_total=1, time_limit=min(2.0, left() * 0.2),
                     workers=workers, seed=seed)
        plan = (accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                if r.choice is not None else None)
        if plan is not None:
            best = plan
            say(f"one board suffices at II {T:,}")
    if secondary and problem.n_boards > 1 and physical(best) == 1:
        phase("fewest boards", "skipped: the plan already uses one board")
    elif secondary and problem.n_boards > 1 and left() > 0.5:
        r = solve_at(problem, T, objective="boards", time_limit=max(0.5, left() * 0.45),
                     workers=workers, seed=seed, hint=best, on_solution=reporter("boards"))
        plan = (accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                if r.choice is not None else None)
        if plan is not None and physical(plan) <= physical(best):
            best = plan
            say(f"fewest boards at II {T:,}: {physical(plan)} ({r.status})")
        phase("fewest boards", "done" if r.status == "OPTIMAL" else
              f"cut short by the time limit ({r.status})")
    elif secondary and problem.n_boards > 1:
        phase("fewest boards", "skipped: no time left")
    if secondary and left() > 0.5:
        used = max(best[1]) + 1
        r = solve_at(problem, T, objective="resources", max_boards=used,
                     max_total=physical(best), time_limit=max(0.5, left() * 0.9),
                     workers=workers, seed=seed, hint=best, on_solution=reporter("resources"))
        plan = (accept(r.choice, r.boards, r.slrs, T, reps=r.replicas, fill=False)
                if r.choice is not None else None)
        if plan is not None:
            best = plan
            say(f"least resources on {used} board(s) ({r.status})")
        phase("least resources", "done" if r.status == "OPTIMAL" else
              f"cut short by the time limit ({r.status})")
    elif secondary:
        phase("least resources", "skipped: no time left")
    ev = evaluate(problem, best[0], best[1], ii_hint=T, replicas=best[3])
    if not ev.feasible:  # the formulation and the evaluator disagree: a bug, say so loudly
        raise RuntimeError("internal error: the solver's plan violates " + "; ".join(
            ev.violations))
    ii_lb = min(ii_lb, ev.ii_cycles)
    status = "OPTIMAL" if ii_lb >= ev.ii_cycles else "FEASIBLE"
    say(f"done: II {ev.ii_cycles:,} cycles, {ev.fps:,.0f} fps, bound {ii_lb:,} cycles, "
        f"{ev.boards_used} board(s) used"
        + (f" as {ev.boards_total} with copies "
           f"{'/'.join(map(str, ev.replicas[:ev.boards_used]))}"
           if ev.boards_total > ev.boards_used else ""))
    return SolveResult(strategy="joint", status=status, choice=tuple(best[0]),
                       boards=tuple(best[1]), evaluation=ev, ii_cycles=ev.ii_cycles,
                       ii_bound=ii_lb,
                       wall_s=time.monotonic() - t0, log=tuple(log), problem=problem,
                       phases=tuple(phases), slrs=tuple(best[2]) if best[2] else None,
                       ii_bound_any_floorplan=min(relaxed[0], ii_lb) if relaxed[0] else None,
                       replicas=(tuple(ev.replicas[:ev.boards_used])
                                 if problem.max_replicas > 1 else None))
