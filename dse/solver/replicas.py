"""Data-parallel replicas on ``n`` identical boards, in three layouts:

- ``r`` copies of the whole pipeline, each a chain of ``n // r`` boards;
- ``n k`` copies, ``k`` per board, one SLR group each (Elastic-DF's per-SLR replicas; each
  copy is solved on the least of the groups, so one design fits all of them, with a 1/k share
  of the board's memory);
- segment replicas: one chain whose boards each run as ``r_b`` identical copies (a stage of
  ``r_b`` boards takes every ``r_b``-th frame), the copies chosen by the joint solver with
  everything else.

Each layout's FPS is bounded by its host I/O (dse.solver.hostio): the inputs in and outputs
out over the IODMAs and host link of
the boards that hold the first and last layers, shared by the copies on a board. The best
total wins; fewer boards break ties, then the simpler layout (whole pipelines first). The
solve of one layout is the caller's (``SolveLayout``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from dse.exceptions import InfeasibleError, SpecError
from dse.plan import PartitionPlan
from dse.solver.search import SolveResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """``replicas`` copies, each on ``boards_each`` whole boards or one of ``per_board`` SLR
    groups of a board; ``segments``: one chain whose boards run as several copies."""

    replicas: int
    boards_each: int
    per_board: int
    segments: bool

    @property
    def shape(self) -> Shape:
        return Shape(boards_each=self.boards_each, per_board=self.per_board,
                     segments=self.segments)


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Shape:
    """What one solve covers: layouts of the same shape share it."""

    boards_each: int
    per_board: int
    segments: bool


class Solved(Protocol):
    """What the search reads from one layout's solve (dse.optimize.OptimizeResult)."""

    @property
    def plan(self) -> PartitionPlan: ...

    @property
    def result(self) -> SolveResult: ...


R = TypeVar("R", bound=Solved)
R_co = TypeVar("R_co", bound=Solved, covariant=True)


class SolveLayout(Protocol[R_co]):
    """One shape's solve; ``floor_fps``: a per-copy rate below which none of the shape's
    layouts can beat the best found so far (the solve may then skip what only the plan kept
    needs: its least-resources phase, its re-plans for FIFOs)."""

    def __call__(self, shape: Shape, *, time_limit: float,
                 start: tuple[SolveResult, list[int]] | None,
                 floor_fps: float | None = None) -> R_co: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaChoice(Generic[R]):
    """The layout chosen: its solve, and ``metrics.replicas`` of the plan."""

    solved: R
    metrics: dict[str, Any]


def layouts(n: int, slices: Sequence[int], *, joint: bool, want: str, strategy: str,
            board_name: str) -> list[Layout]:
    """The layouts ``--replicas`` (``want``: a count, auto or segments) asks for on ``n``
    boards with SLR-group counts ``slices`` (segment replicas are the joint solver's alone)."""
    every = ([Layout(replicas=r, boards_each=n // r, per_board=1, segments=False)
              for r in range(1, n + 1)]
             + [Layout(replicas=n * k, boards_each=1, per_board=k, segments=False)
                for k in slices]
             + ([Layout(replicas=1, boards_each=n, per_board=1, segments=True)]
                if n > 1 and joint else []))
    if want == "segments":
        if not joint:
            raise SpecError(f"--replicas segments with --strategy {strategy}: segment "
                            "replicas are the joint solver's; the baselines copy whole "
                            "pipelines (--replicas auto or a count)")
        if n < 2:
            raise SpecError("--replicas segments: give at least 2 boards (a stage's copies "
                            "are boards)")
        return [x for x in every if x.segments]
    if want == "auto":
        return every
    try:
        r0 = int(want)
    except (TypeError, ValueError):
        raise SpecError(f"--replicas {want!r}: give a count, auto or segments") from None
    if not any(x.replicas == r0 and not x.segments for x in every):
        raise SpecError(f"--replicas {r0}: give 1 to {n} (whole boards each) or "
                        f"{', '.join(str(n * k) for k in slices) or 'no more'} (one SLR "
                        f"group each) for {n} x {board_name}, or auto or segments")
    return [x for x in every if x.replicas == r0 and not x.segments]


def _start(seen: Mapping[Shape, Any], n: int) -> tuple[SolveResult, list[int]] | None:
    """Segment replicas start from the best chain of whole-pipeline copies (>= 2 boards each):
    its boards, each as n // used copies (solved with the multi-board shell, so the plan holds
    in the segment model too)."""
    chains = [(n // x.plan["metrics"]["boards_used"] * x.plan["metrics"]["fps"],
               x.plan["metrics"]["boards_used"], x)
              for s, x in seen.items()
              if s.boards_each >= 2 and s.per_board == 1 and not s.segments
              and not isinstance(x, Exception)]
    if not chains:
        return None
    _, used, x = max(chains, key=lambda c: c[0])
    return (x.result, [n // used] * used)


def _more_boards_unused(seen: Mapping[Shape, Any], shape: Shape) -> bool:
    """A whole pipeline on more boards, or a chain of segment copies, need not be solved when
    a proven-optimal pipeline on fewer (>= 2) boards already left some of its boards unused:
    splitting the network over more boards did not help it (64 boards on a tiny MLP: the
    pipelines on 1 and 2 boards, not 15 sizes and a 64-board segment model)."""
    if shape.per_board > 1:
        return False
    for s, x in seen.items():
        if (s.segments or s.per_board > 1 or s.boards_each < 2 or isinstance(x, Exception)
                or (s.boards_each >= shape.boards_each and not shape.segments)):
            continue
        if (x.plan["metrics"]["boards_used"] < s.boards_each
                and x.plan["solver"]["status"] == "OPTIMAL"):
            return True
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scored(Generic[R]):
    key: tuple[float, int]
    layout: Layout
    solved: R
    each: float
    total: float
    bound: str
    host_fps: float
    used: int


def _score(layout: Layout, res: Solved, *, n: int, host: tuple[float, float],
           entry: dict[str, Any]) -> tuple[float, float, float, int]:
    """(FPS per copy, total FPS, host I/O FPS per copy, boards used) of a solved layout.
    ``host``: the FPS one board's input and output host stages carry (dse.solver.hostio)."""
    m = res.plan["metrics"]
    k = layout.per_board
    if layout.segments:  # the first and last boards' copies each have their own host I/O
        stage = [b["replicas"] for b in res.plan["boards"]]
        host_fps = min(stage[0] * host[0], stage[-1] * host[1])
        used = m["boards_used_total"]
        entry["stage_copies"] = stage
    else:  # copies on one board (SLR groups) share its IODMAs and host link
        host_fps = min(host) / k
        used = layout.replicas * m["boards_used"] if k == 1 else n
    each = min(m["fps"], host_fps)
    return each, layout.replicas * each, host_fps, used


def search(candidates: Sequence[Layout], solve: SolveLayout[R], *, n: int, board_name: str,
           host: tuple[float, float], time_limit: float, t0: float) -> ReplicaChoice[R]:
    """Solve every distinct shape once (smallest first, skipping those more boards cannot
    improve) and keep the best layout. The time limit covers the whole run (from ``t0``): an
    equal share of what is left per shape still to solve (a shape solved early leaves its time
    to the rest; at least 1 s each). ``host``: the FPS one board's input and output host
    stages carry (dse.solver.hostio)."""
    # pipelines on 2, 3, ... boards (smallest first, so that the larger ones can be skipped),
    # the one-board pipeline (often the fastest copies: what it sets, the SLR groups need
    # not polish), SLR groups, then segments (which start from the pipelines)
    shapes = sorted({x.shape for x in candidates},
                    key=lambda s: (s.segments, s.per_board > 1,
                                   s.boards_each == 1 and s.per_board == 1, s.boards_each))
    seen: dict[Shape, R | InfeasibleError] = {}
    best_total = 0.0
    for i, shape in enumerate(shapes):
        if _more_boards_unused(seen, shape):
            seen[shape] = InfeasibleError(f"not solved: a pipeline on fewer than "
                                          f"{shape.boards_each} boards left boards unused")
            continue
        budget = max(1.0, (time_limit - (time.monotonic() - t0)) / (len(shapes) - i))
        start = _start(seen, n) if shape.segments else None
        mine = [x for x in candidates if x.shape == shape]
        floor = (best_total / max(x.replicas for x in mine)
                 if best_total and not shape.segments else None)
        try:
            got = solve(shape, time_limit=budget, start=start, floor_fps=floor)
        except InfeasibleError as e:
            seen[shape] = e
            continue
        seen[shape] = got
        best_total = max([best_total] + [_score(x, got, n=n, host=host, entry={})[1]
                                         for x in mine])
    best: _Scored[R] | None = None
    tried: list[dict[str, Any]] = []
    for layout in candidates:
        res = seen[layout.shape]
        entry: dict[str, Any] = {"replicas": layout.replicas, "boards_each": layout.boards_each,
                                 "per_board": layout.per_board}
        if layout.segments:
            entry = {"layout": "segments", "boards": n}
        if isinstance(res, InfeasibleError):
            tried.append({**entry, "fps": None, "reason": str(res)[:200]})
            continue
        each, total, host_fps, used = _score(layout, res, n=n, host=host, entry=entry)
        tried.append({**entry, "fps": round(total, 3)})
        key = (total, -used)
        if best is None or key > best.key:
            bound = ("host I/O" if host_fps < res.plan["metrics"]["fps"] else
                     "the replica's own pipeline")
            best = _Scored(key=key, layout=layout, solved=res, each=each, total=total,
                           bound=bound, host_fps=host_fps, used=used)
    if best is None:
        raise InfeasibleError(f"no replica layout fits {n} x {board_name}: "
                              + "; ".join(t["reason"] for t in tried if t.get("reason"))[:400])
    return ReplicaChoice(solved=best.solved, metrics=_metrics(best, tried, n))


def _metrics(best: _Scored[R], tried: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """``metrics.replicas`` of the chosen layout (``n``: the boards offered)."""
    lay, plan = best.layout, best.solved.plan
    k, seg = lay.per_board, lay.segments
    out: dict[str, Any] = {
        "layout": "segments" if seg else ("slr_groups" if k > 1 else "pipelines"),
        "count": lay.replicas, "per_board": k, "fps_per_replica": best.each,
        "fps_total": best.total, "boards_used_total": best.used, "boards_offered": n,
        "host_io_fps_per_replica": best.host_fps, "bound": best.bound,
        "counts_tried": [t["replicas"] for t in tried if "replicas" in t], "tried": tried}
    if seg:
        out["stage_copies"] = [b["replicas"] for b in plan["boards"]]
        if best.bound == "the replica's own pipeline":
            out["bound"] = "the pipeline (with its stages' copies)"
    if k > 1:  # replica j sits in SLR group j % k of board j // k
        g = len(plan["boards"][0].get("slrs", {}).get("capacity", [])) or 1
        out["slices"] = [
            {"replica": j, "board": j // k, "slrs": list(range((j % k) * g, (j % k + 1) * g))}
            for j in range(lay.replicas)]
    return out
