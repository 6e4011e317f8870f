"""Fast bounds and a constructive heuristic for a target II.

* :func:`proven_infeasible` — sound, cheap proofs that no plan reaches II ``T`` (per-resource
  sums of the smallest options against the boards' total, a layer that fits no board, a layer
  with no option that fast).
* :func:`greedy` — per layer the cheapest option that meets ``T`` (resources weighted by their
  scarcity), then a left-to-right packing that cuts at the furthest point whose link traffic and
  ACCL limits hold. A success is a feasible plan (checked with the evaluator).
"""

from __future__ import annotations

from collections.abc import Sequence

from dse.solver import slr
from dse.solver.evaluate import evaluate
from dse.solver.problem import DIMS, RES, PartitionProblem
from dse.solver.slr import mean_units
from dse.specs import Resources


def allowed(problem: PartitionProblem, i: int, T: int) -> list[int]:
    return [k for k, o in enumerate(problem.options[i]) if o.cost.cycles <= T]


def proven_infeasible(problem: PartitionProblem, T: int, n_boards: int | None = None
                      ) -> str | None:
    """A reason no plan reaches II ``T`` on the first ``n_boards`` boards, or None."""
    p = problem
    B = n_boards or p.n_boards
    R = p.max_replicas
    Tr = T * R  # with segment replicas a layer may take up to R x T on a board of R copies
    caps = [p.capacity(b, Tr) for b in range(B)]
    total = Resources.total(caps)
    mins = Resources()
    # with replicas: the layers slower than (q - 1) T in every folding sit on boards of q
    # copies or more, and at most B // q such boards fit the B offered
    slow = [Resources() for _ in range(R + 1)]
    for i in range(p.n):
        ks = allowed(p, i, Tr)
        if not ks:
            return (f"layer {p.order[i]} cannot run faster than "
                    f"{min(o.cost.cycles for o in p.options[i]):,} cycles per frame"
                    + (f" (over {R} copies: {-(-min(o.cost.cycles for o in p.options[i]) // R):,})"
                       if R > 1 else ""))
        uses = [(b, p.usage(i, k, Tr, b)) for k in ks for b in range(B)]
        if not any(u.fits(caps[b]) for b, u in uses):
            return _layer_fits_nowhere(p, i, ks, Tr, caps)
        # the least any board can spend on this layer (parts may differ)
        least = Resources.least((u for _, u in uses), RES)
        mins += least
        if R > 1:
            q = -(-min(p.options[i][k].cost.cycles for k in ks) // T)
            for qq in range(2, q + 1):
                slow[qq] += least
    for d in mins.over(total, RES):
        return (f"the network needs at least {mins.get(d):,} {d.upper()} at its smallest "
                f"foldings for II {T:,}; {B} board(s) allow {total.get(d):,}")
    for q in range(2, R + 1):
        room = {d: sorted((c.get(d) for c in caps), reverse=True)[:B // q] for d in RES}
        for d, need in slow[q].items(RES):
            if need > sum(room[d]):
                return (f"the layers slower than {(q - 1) * T:,} cycles need at least "
                        f"{need:,} {d.upper()} on boards of {q} or more copies; "
                        f"{B // q} such board(s) allow {sum(room[d]):,}")
    return None


_DIM_WORDS = {"ext_bits": "bits of external memory (HBM/DDR)",
              "ext_bpf": "bits per frame of external-memory bandwidth",
              "ext_channels": "external memory channels"}


def _layer_fits_nowhere(p: PartitionProblem, i: int, ks: list[int], T: int,
                        caps: list[Resources]) -> str:
    """Why no legal folding of layer ``i`` fits on any board: the resource whose smallest use
    over all foldings exceeds the largest board's limit, or, when every folding breaks a
    different limit, the folding that comes closest and what it breaks."""
    name = p.order[i]
    op = p.graph.layer(name).op_type
    best_b = max(range(len(caps)), key=lambda b: caps[b].lut)
    board = p.boards[best_b].board.name
    cap = caps[best_b]
    need = Resources.least(p.usage(i, k, T, best_b) for k in ks)
    over = need.over(cap)
    if over:
        d = max(over, key=lambda d: need.fraction_of(cap, d))
        what = _DIM_WORDS.get(d, d.upper())
        hint = ("allow external weights or use a board with HBM/DDR" if d.startswith("ext")
                else f"use a larger board or raise the cap (--cap {d}=0.9)")
        return (f"layer {name} ({op}) needs at least {need.get(d):,} {what} in every legal "
                f"folding at II {T:,}, but board {best_b} ({board}) allows "
                f"{cap.get(d):,} after its shell and caps; {hint}")

    def excess(k: int) -> tuple[float, str]:
        u = p.usage(i, k, T, best_b)
        worst = max(DIMS, key=lambda d: u.fraction_of(cap, d))
        return u.fraction_of(cap, worst), worst

    k = min(ks, key=lambda k: excess(k)[0])
    ratio, worst = excess(k)
    u = p.usage(i, k, T, best_b)
    return (f"no folding of layer {name} ({op}) fits board {best_b} ({board}): the closest "
            f"one ({_label(p.options[i][k])}) needs {u.get(worst):,} "
            f"{_DIM_WORDS.get(worst, worst.upper())}"
            f" where {cap.get(worst):,} are allowed ({ratio:.2f}x); use a larger board")


def _label(o: object) -> str:
    attrs = getattr(o, "attrs", {})
    return ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) or "default folding"


def _weights(problem: PartitionProblem, B: int, T: int) -> dict[str, float]:
    total = Resources.total(problem.capacity(b, T) for b in range(B))
    return {d: (1.0 / v) if v else 1e9 for d, v in total.items()}


def _pick(problem: PartitionProblem, T: int, w: dict[str, float]) -> list[int] | None:
    p = problem
    choice: list[int | None] = [None] * p.n

    def cost(i: int, k: int) -> float:
        return p.usage(i, k, T, 0).weighted(w)

    coupled = {c.producer for c in p.couplings} | {c.consumer for c in p.couplings}
    for c in p.couplings:
        best = None
        for kp in allowed(p, c.producer, T):
            for kc in allowed(p, c.consumer, T):
                if c.producer_keys[kp] == c.consumer_keys[kc]:
                    s = cost(c.producer, kp) + cost(c.consumer, kc)
                    if best is None or s < best[0]:
                        best = (s, kp, kc)
        if best is None:
            return None
        choice[c.producer], choice[c.consumer] = best[1], best[2]
    for i in range(p.n):
        if i in coupled:
            continue
        ks = allowed(p, i, T)
        if not ks:
            return None
        choice[i] = min(ks, key=lambda k: (cost(i, k), k))
    return [int(k) for k in choice]  # type: ignore[arg-type]


def _pack(problem: PartitionProblem, choice: Sequence[int], T: int, B: int) -> list[int] | None:
    """Contiguous packing, cutting at the furthest legal point before an overflow."""
    p = problem
    n = p.n
    cross_bits = [0] * (n + 1)
    cross_load = [0] * (n + 1)
    blocked = [False] * (n + 1)
    link_cap = p.link_cap_bits(T)
    rx = p.rx_capacity_bytes()
    for e in p.edges:
        for c in range(e.u + 1, e.v + 1):
            cross_bits[c] += e.link_bits
            cross_load[c] += p.link_load(e)
            if not p.cuttable(e):
                blocked[c] = True
    legal_cut = [c > 0 and not blocked[c] and cross_load[c] <= link_cap and
                 cross_bits[c] // 8 <= rx for c in range(n + 1)]
    boards = [0] * n
    start, b = 0, 0
    caps = [p.capacity(x, T) for x in range(B)]
    acc = Resources()
    i = 0
    while i < n:
        u = p.usage(i, choice[i], T, b)
        if p.cycles_on(i, choice[i], b) <= T and (acc + u).fits(caps[b]):
            acc += u
            boards[i] = b
            i += 1
            continue
        cut = next((c for c in range(i, start, -1) if legal_cut[c]), None)
        if cut is None or b + 1 >= B:
            return None
        b += 1
        start = cut
        acc = Resources.total(p.usage(j, choice[j], T, b) for j in range(cut, i))
        boards[cut:i] = [b] * (i - cut)
        if not acc.fits(caps[b]):
            return None
    return boards


def _pack_bins(problem: PartitionProblem, choice: Sequence[int], T: int, B: int
               ) -> tuple[list[int], list[int | None]] | None:
    """Contiguous packing into bins: each SLR of a board with SLRs is one (its caps and the
    mean rule; a cut inside a board within the SLL wires), other boards are one; cuts between
    boards at the furthest legal point. Board-level limits (external memory) per board."""
    p = problem
    n = p.n
    bins: list[tuple[int, int | None]] = []
    for b in range(B):
        caps = p.slr_caps[b] if b < len(p.slr_caps) else None
        bins += [(b, s) for s in range(len(caps))] if caps else [(b, None)]
    width = [max(p.options[i][choice[i]].cost.outstream_widths_padded or (0,)) for i in range(n)]
    cross_bits = [0] * (n + 1)
    cross_load = [0] * (n + 1)
    cross_w = [0] * (n + 1)
    blocked = [False] * (n + 1)
    for e in p.edges:
        for c in range(e.u + 1, e.v + 1):
            cross_bits[c] += e.link_bits
            cross_load[c] += p.link_load(e)
            cross_w[c] += width[e.u]
            if not p.cuttable(e):
                blocked[c] = True
    link_cap = p.link_cap_bits(T)
    rx = p.rx_capacity_bytes()
    board_cut = [c > 0 and not blocked[c] and cross_load[c] <= link_cap and
                 cross_bits[c] // 8 <= rx for c in range(n + 1)]
    # (the limit read at the call: tests vary it)
    slr_cut = [cross_w[c] <= slr.SLL_PER_BOUNDARY for c in range(n + 1)]
    bcaps = [p.capacity(b, T) for b in range(B)]
    boards: list[int] = [0] * n
    slrs: list[int | None] = [None] * n
    committed = [Resources() for _ in range(B)]  # earlier bins' layers, per board
    j, lo = 0, 0
    while lo < n:
        if j >= len(bins):
            return None
        b, s = bins[j]
        cap = p.slr_table(b)[s] if s is not None else None
        allowance = mean_units({}, cap)[1] if cap is not None else 0
        tot, res, units = committed[b], Resources(), 0
        hi = lo
        while hi < n and p.cycles_on(hi, choice[hi], b) <= T:  # grow the bin layer by layer
            u = p.usage(hi, choice[hi], T, b)
            nxt = tot + u
            if not nxt.fits(bcaps[b]):
                break
            if cap is not None:
                r = res + u
                m = units + mean_units(u, cap)[0]
                if any(v > cap[d] for d, v in r.items(RES)) or m > allowance:
                    break
                res, units = r, m
            tot, hi = nxt, hi + 1
        if hi < n:  # the next layer does not fit: cut at a legal point
            nxt_board = j + 1 < len(bins) and bins[j + 1][0] != bins[j][0]
            legal = board_cut if (nxt_board or j + 1 >= len(bins)) else slr_cut
            while hi > lo and not legal[hi]:
                hi -= 1
        for i in range(lo, hi):
            boards[i], slrs[i] = b, s
            committed[b] += p.usage(i, choice[i], T, b)
        lo = hi
        j += 1
    return boards, slrs


def _variants(problem: PartitionProblem, B: int, T: int) -> list[dict[str, float]]:
    """Scarcity weights, then each of LUT, BRAM, DSP and URAM made four times dearer."""
    base = _weights(problem, B, T)
    return [base] + [dict(base, **{d: base[d] * 4.0}) for d in ("lut", "bram18", "dsp", "uram")]


def _first_feasible(problem: PartitionProblem, T: int, B: int, pack
                    ) -> tuple[list[int], list[int], list[int | None] | None] | None:
    """Per weighting, the cheapest options and a packing ``pack`` (-> (boards, SLRs) or
    None); the first plan the evaluator accepts at II <= ``T``."""
    for w in _variants(problem, B, T):
        choice = _pick(problem, T, w)
        if choice is None:
            return None
        packed = pack(problem, choice, T, B)
        if packed is None:
            continue
        ev = evaluate(problem, choice, packed[0], ii_hint=T)
        if ev.feasible and ev.ii_cycles <= T:
            return choice, packed[0], packed[1]
    return None


def greedy_slrs(problem: PartitionProblem, T: int, n_boards: int | None = None
                ) -> tuple[list[int], list[int], list[int | None] | None] | None:
    """Like :func:`greedy`, packing SLR by SLR: (choice, boards, SLR per layer) or None."""
    return _first_feasible(problem, T, n_boards or problem.n_boards, _pack_bins)


def greedy(problem: PartitionProblem, T: int, n_boards: int | None = None
           ) -> tuple[list[int], list[int]] | None:
    """A feasible (choice, boards) reaching II <= ``T``, or None if the heuristic fails."""
    def pack(p: PartitionProblem, choice: Sequence[int], T: int, B: int):
        boards = _pack(p, choice, T, B)
        return None if boards is None else (boards, None)

    r = _first_feasible(problem, T, n_boards or problem.n_boards, pack)
    return None if r is None else (r[0], r[1])
