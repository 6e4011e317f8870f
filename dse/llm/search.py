"""The chain search of an LLM pipeline: which offered devices, in which order, which blocks.

What the user asks for is throughput at the sequences they keep in flight:

    rate = min(S / latency, 1 / slowest stage)       tokens/s (decode) or sequences/s

subject to an optional latency bound (per token in decode, per sequence otherwise) and an
optional time-to-first-token bound. A dynamic program over (devices used, network units
placed) keeps, per state, the Pareto set of partial chains over (slowest stage, latency sum,
first and last prompt token out): every term of the rate and of both bounds only grows along
a chain, so a dominated partial chain can never end better. Every prefix of the device order
ends a candidate plan, so every subset that is a prefix of some order is searched; the
caller walks every distinct order of the offered multiset (``dse.solver.order``), so every
subset in every order is covered. Among plans of equal rate the fewest devices win, then the
lowest latency.

Time to first token, one model for every chain (FPGA-only or mixed, ``prompt_times``): the
``P`` prompt tokens leave a streaming stage (FPGA dataflow, one token per frame) one frame
apart after its fill latency, and a streaming stage starts on a token as soon as it arrives;
a batched stage (GPU/CPU) waits for the whole prompt and runs it as one step. Stages overlap:
an FPGA-only chain gives ``latency + (P - 1) x slowest frame``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REL_TIE = 1e-9  # rates this close are equal (then fewer devices win)
FRONT_CAP = 24  # partial chains kept per state (the best by rate when more are Pareto-optimal)


@dataclass(frozen=True, slots=True, kw_only=True)
class Objective:
    """What the chain search maximizes and the bounds it keeps."""

    sequences: int
    max_latency_s: float | None = None
    max_ttft_s: float | None = None

    def rate(self, worst_s: float, latency_s: float) -> float:
        """Frames per second (tokens in decode, sequences otherwise) with ``sequences`` in
        flight: each sequence has one frame in the chain at a time."""
        if worst_s <= 0 or latency_s <= 0:
            return 0.0
        return min(self.sequences / latency_s, 1.0 / worst_s)

    def allows(self, latency_s: float, ttft_s: float) -> bool:
        return ((self.max_latency_s is None or latency_s <= self.max_latency_s * (1 + 1e-12))
                and (self.max_ttft_s is None or ttft_s <= self.max_ttft_s * (1 + 1e-12)))


def prompt_step(first: float, last: float, stage: Any, hop_s: float, prompt: int
                ) -> tuple[float, float]:
    """(first, last) prompt token out of ``stage``, given them out of the stage before and
    the hop between (see the module doc)."""
    if stage.prefill_s is not None:  # batched: the whole prompt in one step
        done = last + hop_s + stage.prefill_s
        return done, done
    first_out = first + hop_s + stage.latency_s
    return first_out, max(last + hop_s + stage.latency_s,
                           first_out + (prompt - 1) * stage.frame_s)


def prompt_times(stages: Any, hops: Any, prompt: int) -> tuple[float, float]:
    """(first, last) prompt token out of a chain; ``hops[i]`` leads into ``stages[i]``."""
    first = last = 0.0
    for st, h in zip(stages, hops, strict=True):
        first, last = prompt_step(first, last, st, h, prompt)
    return first, last


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    """A chain over the first devices and units: its slowest stage, latency, prompt times."""

    worst: float
    latency: float
    first: float
    last: float
    stage: Any = None
    h0: int = 0  # the first unit of ``stage``
    parent: Partial | None = None

    def dominates(self, o: Partial) -> bool:
        return (self.worst <= o.worst and self.latency <= o.latency and self.first <= o.first
                and self.last <= o.last)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainResult:
    stages: tuple[tuple[Any, int], ...]  # (stage, its first unit) in chain order
    rate: float
    latency_s: float
    ttft_s: float
    #: the best rate with exactly n devices of this order (None: no feasible plan)
    rate_by_count: tuple[float | None, ...]


def _add(front: list[Partial], new: Partial, objective: Objective) -> None:
    if any(p.dominates(new) for p in front):
        return
    front[:] = [p for p in front if not new.dominates(p)]
    front.append(new)
    if len(front) > FRONT_CAP:
        front.sort(key=lambda p: (-objective.rate(p.worst, p.latency), p.latency))
        del front[FRONT_CAP:]


def search_chain(units: int, n_devices: int, stage_at: Callable[[int, int, int], Any],
                 hops: list[float], objective: Objective, prompt: int,
                 max_misses: int = 3) -> ChainResult | None:
    """The best plan over prefixes of one device order; ``stage_at(b, h0, h1)`` is device
    ``b`` running units ``h0 .. h1`` (None: it does not fit), ``hops[b]`` the link into
    device ``b``. ``max_misses``: units past the last that fit before a device gives up
    (resources and memory only grow with the units)."""
    dp: list[list[list[Partial]]] = [[[] for _ in range(units + 1)]
                                     for _ in range(n_devices + 1)]
    dp[0][0].append(Partial(worst=0.0, latency=0.0, first=0.0, last=0.0))
    for b in range(n_devices):
        hop = hops[b]
        for h0 in range(units):
            front = dp[b][h0]
            if not front:
                continue
            misses = 0
            for h1 in range(h0 + 1, units + 1):
                st = stage_at(b, h0, h1)
                if st is None:
                    misses += 1
                    if misses > max_misses:
                        break
                    continue
                misses = 0
                for p in front:
                    first, last = prompt_step(p.first, p.last, st, hop, prompt)
                    lat = p.latency + hop + st.latency_s
                    if not objective.allows(lat, last):
                        continue
                    _add(dp[b + 1][h1], Partial(worst=max(p.worst, st.frame_s, hop), latency=lat,
                                                first=first, last=last, stage=st, h0=h0,
                                                parent=p), objective)
    return _best(dp, units, objective)


def _best(dp: list[list[list[Partial]]], units: int, objective: Objective
          ) -> ChainResult | None:
    by_count: list[float | None] = []
    best: tuple[float, int, float, Partial] | None = None
    for b in range(1, len(dp)):
        done = dp[b][units]
        if not done:
            by_count.append(None)
            continue
        p = max(done, key=lambda p: (objective.rate(p.worst, p.latency), -p.latency))
        r = objective.rate(p.worst, p.latency)
        by_count.append(r)
        if best is None or r > best[0] * (1 + REL_TIE):  # equal: the fewer devices stay
            best = (r, b, p.latency, p)
    if best is None:
        return None
    stages = []
    node: Partial | None = best[3]
    while node is not None and node.stage is not None:
        stages.append((node.stage, node.h0))
        node = node.parent
    stages.reverse()
    return ChainResult(stages=tuple(stages), rate=best[0], latency_s=best[2],
                       ttft_s=best[3].last, rate_by_count=tuple(by_count))


def better(a: ChainResult, b: ChainResult | None) -> bool:
    """``a`` beats ``b``: a higher rate, else (equal rates) fewer devices, else lower
    latency."""
    if b is None:
        return True
    if a.rate > b.rate * (1 + REL_TIE):
        return True
    if a.rate < b.rate * (1 - REL_TIE):
        return False
    return (len(a.stages), a.latency_s) < (len(b.stages), b.latency_s)
