"""The order of the boards in the chain, chosen rather than taken as typed.

A pipeline's first layers sit on the first board, so with boards of different sizes, parts or
memories the order changes what fits where (``U250,U280,U55C`` and ``U55C,U280,U250`` differ
by a quarter in fps on one network). Every distinct order of the given multiset of boards is
solved (at most ``limit``; beyond that the given order, largest-first and smallest-first), and
the best plan wins: most frames per second, then fewest boards, then fewest LUTs.

``name_orders`` is the one order enumeration, shared with the LLM chain search
(``dse.llm.pipeline``): it walks the distinct orders of a multiset of device names directly,
so ``n`` identical boards are one order (not ``n!`` permutations to deduplicate).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from dse.exceptions import InfeasibleError
from dse.solver.problem import PartitionProblem
from dse.solver.search import SolveResult

Solve = Callable[[PartitionProblem, float], SolveResult]
MIN_SECONDS = 2.0  # the least time one order gets; fewer orders are tried when it runs short


def name_orders(names: list[str]) -> Iterator[tuple[int, ...]]:
    """One index order per distinct sequence of ``names`` (boards of one name are alike), in
    lexicographic order of first appearance: the multiset's permutations, never the n! index
    permutations (64 identical boards are one order, found at once)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n, []).append(i)
    keys = list(groups)
    left = {k: len(v) for k, v in groups.items()}

    def rec(prefix: list[str]) -> Iterator[list[str]]:
        if len(prefix) == len(names):
            yield prefix
            return
        for k in keys:
            if left[k]:
                left[k] -= 1
                yield from rec(prefix + [k])
                left[k] += 1

    for seq in rec([]):
        used = dict.fromkeys(keys, 0)
        order = []
        for k in seq:
            order.append(groups[k][used[k]])
            used[k] += 1
        yield tuple(order)


def grouped_orders(names: Sequence[str]) -> list[tuple[int, ...]]:
    """Orders that keep devices of one name together, the names in every order: the
    fallback when a chain has too many distinct orders to try them all."""
    types = list(dict.fromkeys(names))
    return [tuple(i for t in tp for i, n in enumerate(names) if n == t)
            for tp in itertools.permutations(types)]


def distinct_orders(problem: PartitionProblem, limit: int = 24) -> list[tuple[int, ...]]:
    """Board index orders that give different chains (boards of one name are alike)."""
    n = problem.n_boards
    names = [c.board.name for c in problem.boards]
    given = tuple(range(n))
    out = list(itertools.islice(name_orders(names), limit + 1))
    if len(out) <= limit:
        out.sort(key=lambda p: p != given)  # the typed order first
        return out
    size = [problem.capacity(b).lut for b in range(n)]
    largest = tuple(sorted(range(n), key=lambda b: (-size[b], b)))
    smallest = tuple(sorted(range(n), key=lambda b: (size[b], b)))
    return list(dict.fromkeys([given, largest, smallest]))


def permuted(problem: PartitionProblem, order: tuple[int, ...]) -> PartitionProblem:
    costs = problem.board_costs or tuple(None for _ in problem.boards)
    return replace(problem, boards=tuple(problem.boards[i] for i in order),
                   board_costs=tuple(costs[i] for i in order))


def _score(res: SolveResult) -> tuple[float, int, int]:
    ev = res.evaluation
    lut = sum(u.lut for u in ev.usage)
    return (ev.fps, -ev.boards_used, -lut)


def solve_best_order(problem: PartitionProblem, solve: Solve, *, time_limit: float,
                     progress: Callable[[str], None] | None = None, limit: int = 24
                     ) -> tuple[SolveResult, list[dict[str, Any]]]:
    """The best plan over the distinct board orders, and what each order gave."""
    orders = distinct_orders(problem, limit)
    if len(orders) == 1:
        return solve(problem, time_limit), []
    if len(orders) * MIN_SECONDS > time_limit:  # the time limit covers the whole search
        orders = distinct_orders(problem, limit=0)[:max(1, int(time_limit // MIN_SECONDS))]
    each = time_limit / len(orders)
    best, best_key, first_error = None, None, None
    tried: list[dict[str, Any]] = []
    for order in orders:
        names = ",".join(problem.boards[i].board.name for i in order)
        try:
            res = solve(permuted(problem, order), each)
        except InfeasibleError as e:
            tried.append({"order": names, "fps": None, "reason": str(e)})
            first_error = first_error or e
            if progress:
                progress(f"board order {names}: infeasible")
            continue
        key = _score(res)
        tried.append({"order": names, "fps": round(key[0], 3),
                      "bound_fps": round(res.fps_bound, 3), "status": res.status})
        if progress:
            progress(f"board order {names}: {key[0]:,.1f} fps")
        if best_key is None or key > best_key:
            best, best_key = res, key
    if best is None:
        assert first_error is not None
        raise first_error
    return best, tried
