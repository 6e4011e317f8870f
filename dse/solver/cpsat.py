"""CP-SAT formulation of the joint folding + contiguous partition problem at a fixed II.

Variables
  ``u[i][b]`` (b = 1..B-1): layer i sits on board >= b. Boards form a pipeline, so along the
  topological order ``u`` is non-decreasing, and ``z[i][b] = u[i][b] - u[i][b+1]`` (layer i on
  board b) is linear in ``u``. An edge (s -> t) crosses chain boundary b exactly when
  ``u[t][b] - u[s][b] = 1``, so link traffic is linear too.
  ``x[i][k]``: layer i uses option k (only options with cycles <= T, resource-Pareto at T).
  ``y[i][k][b]``: option k of layer i on board b (exact via both marginals).

Boards named in ``problem.slr_split`` are modelled per SLR: each of their SLRs is a bin of the
chain (SLR0, SLR1, ... in order), with its own caps and Elastic-DF's mean rule, and the streams
that cross an SLR boundary (their producer's padded width, as chosen) within its SLL wires. The
staircase then runs over bins; boards are groups of consecutive bins.

At a fixed II every constraint is linear; the optimal II is found by the caller's search over
the finite set of values it can take, which gives a proven bound (see ``search.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from dse.models.candidates import FoldingOption, prune_dominated
from dse.solver.cpsolver import cp_solver
from dse.solver.problem import DIMS, RES, UNBUILDABLE, PartitionProblem, frame_buffer_bram18
from dse.solver.slr import SLL_PER_BOUNDARY, mean_units

STATUS = {
    cp_model.OPTIMAL: "OPTIMAL",
    cp_model.FEASIBLE: "FEASIBLE",
    cp_model.INFEASIBLE: "INFEASIBLE",
    cp_model.MODEL_INVALID: "MODEL_INVALID",
    cp_model.UNKNOWN: "UNKNOWN",
}


@dataclass(frozen=True, slots=True)
class AtResult:
    status: str  # OPTIMAL / FEASIBLE / INFEASIBLE / UNKNOWN
    choice: list[int] | None
    boards: list[int] | None
    objective: float | None
    bound: float | None
    wall_s: float
    core: tuple[str, ...] = ()  # with explain=True and INFEASIBLE: limits that cannot all hold
    slrs: list[int | None] | None = None  # per layer: its SLR where the board is split
    replicas: list[int] | None = None  # per board: its copies (segment replicas)


def options_at(problem: PartitionProblem, T: int, *, keep_faster: bool = False
               ) -> list[list[int]]:
    """Per layer, the option indices that meet ``T`` and are not dominated in resources
    (``keep_faster``: every option that meets ``T``; an II below ``T`` may need them).
    With segment replicas an option meets ``T`` on a board of ``ceil(cycles / T)`` copies
    or more: that count joins the resources in the dominance test."""
    R = problem.max_replicas
    coupled: dict[int, list[tuple]] = {}
    for c in problem.couplings:
        coupled[c.producer] = list(c.producer_keys)
        coupled[c.consumer] = list(c.consumer_keys)
    out = []
    for i, opts in enumerate(problem.options):
        ks = [k for k, o in enumerate(opts) if o.cost.cycles <= T * R]
        if keep_faster:
            out.append(ks)
            continue
        # the same options meet most IIs the search asks: the dominance test is memoized
        # per layer and option set (1.5 s per call on 278 layers otherwise)
        memo = ("dominance", i, tuple(ks), T if R > 1 else None)
        if memo in problem._memo:
            out.append(problem._memo[memo])
            continue
        groups: dict[tuple, list[int]] = {}
        for k in ks:
            groups.setdefault(tuple(coupled[i][k]) if i in coupled else (), []).append(k)
        kept: list[int] = []
        tables = [t for t in problem.board_costs if t is not None]
        for key in sorted(groups):
            idx = groups[key]
            # dominance on resources only: cycles no longer matter once <= T; on every part
            flat = [_as_resource_option(opts[k]) for k in idx]
            extra = [tuple(v for t in tables for v in _resource_vector(t[i][k]))
                     + ((-(-opts[k].cost.cycles // T),) if R > 1 else ())
                     for k in idx] if tables or R > 1 else None
            keep = {id(o) for o in prune_dominated(flat, extra)}
            kept.extend(k for k, o in zip(idx, flat) if id(o) in keep)
        problem._memo[memo] = sorted(kept)
        out.append(problem._memo[memo])
    return out


def _resource_vector(c: Any) -> tuple[int, ...]:
    from dse.solver.problem import UNBUILDABLE

    return (c.lut, c.ff, c.bram18, c.uram, c.dsp) if c is not None else (UNBUILDABLE,) * 5


def _as_resource_option(o: FoldingOption) -> FoldingOption:
    from dataclasses import replace

    return FoldingOption(attrs=o.attrs, impl=o.impl, cost=replace(o.cost, cycles=0),
                         external_weight_bits=o.external_weight_bits)


def solve_at(
    problem: PartitionProblem,
    T: int,
    *,
    objective: str = "none",
    max_boards: int | None = None,
    time_limit: float = 10.0,
    workers: int = 2,
    seed: int = 0,
    hint: tuple[Sequence[int], Sequence[int]] | None = None,
    on_solution: Callable[[float], None] | None = None,
    ii_low: int | None = None,
    explain: bool = False,
    only: frozenset[str] | None = None,
    fix_boards: Sequence[int] | None = None,
    max_total: int | None = None,
    slack_T: int | None = None,
) -> AtResult:
    """Find a plan with II <= ``T``; optionally minimize boards used or resources.

    ``objective``: "none" (feasibility), "boards" (fewest boards), "resources" (least
    capacity-weighted resources, then fewest cut bits), "crossings" (Elastic-DF's: streams
    crossing an SLR boundary cost 1, a board boundary 10), "balance" (the fullest board's
    fill as low as it goes: boards that leave room pack into their SLRs), "ii" (the smallest II in
    [``ii_low``, ``T``] the links allow with the options that meet ``T``), with ``max_boards``
    boards at most. External-memory bandwidth is booked at ``ii_low`` in "ii" mode (the most it
    can be in the range), else at ``T``.

    ``explain``: every board-capacity and link limit is guarded by an assumption literal; an
    infeasible answer then carries CP-SAT's infeasible subset of them (``core``), by name.
    With ``only``, every guarded limit not named in it is left out (to shrink the subset).

    ``fix_boards``: every layer stays on the board given (the cuts are fixed): what is left
    is each board's foldings and, on split boards, its SLRs (a repair of a plan whose
    layers do not pack).

    With ``problem.max_replicas`` > 1 every board of the chain also chooses how many
    identical copies it runs as (segment replicas): ``wr[b][r]`` = board b runs as r copies;
    a layer meets ``T`` on it when its cycles are at most ``r T``; the streams across a
    boundary are spread over the copies on both sides, each copy's memory serves 1/r of the
    frames, and all copies together (``max_total``, else the boards offered) fit the boards.

    ``slack_T`` (no replicas): the layers meet ``T`` but links, external-memory bandwidth and
    channels are booked at II ``slack_T`` >= ``T``: infeasible means no plan has an II below
    ``slack_T + 1`` whose layers all meet ``T`` (the II between two candidates).
    """
    t_start = time.monotonic()
    p = problem
    n = p.n
    B = min(p.n_boards, max_boards or p.n_boards)
    m = cp_model.CpModel()
    # minimizing the II over a range of candidates needs the faster options too
    wide = objective == "ii" and (ii_low or 1) <= max(
        (o.cost.cycles for opts in p.options for o in opts if o.cost.cycles < T), default=0)
    ks = options_at(p, T, keep_faster=wide)
    if any(not k for k in ks):
        return AtResult("INFEASIBLE", None, None, None, None, 0.0)
    if p.max_replicas > 1:
        slack_T = None
    T_link = max(T, slack_T or T)  # the II at which links and memory are booked
    T_use = T_link  # the II at which external bandwidth is booked
    ii = None
    if objective == "ii":
        lo = max(1, ii_low or 1)
        ii = m.NewIntVar(lo, T, "ii")
        T_use = lo
    bpc = p.link_rate()
    R = p.max_replicas

    guards: list[tuple[Any, str]] = []

    def guarded(ct: Any, label: str) -> None:
        if only is not None and label not in only:
            ct.OnlyEnforceIf(m.NewBoolVar("relaxed"))  # free: the limit is off
        elif explain:
            lit = m.NewBoolVar(label)
            ct.OnlyEnforceIf(lit)
            guards.append((lit, label))

    n_links = [0]

    def link_ok(load, expr, sides: Sequence[int] = ()) -> None:
        """Traffic fits one link at the plan's II: ``load`` (``p.link_load`` units) within
        the link's rate, ``expr`` (bits per frame) within ACCL's receive buffers (with
        replicas: the link of each copy of the boards in ``sides``, which carries 1/r of the
        frames)."""
        label = (f"link {n_links[0]}: at most {link_cap:,} units of link load and "
                 f"{rx * 8:,} bits per frame ({p.link.bandwidth_gbps:g} Gb/s at II {T:,}, "
                 "ACCL receive buffers)")
        n_links[0] += 1
        if R > 1:
            for b in sides:
                rhs = bpc.numerator * (P[b] if ii is not None else T * reps[b])
                guarded(m.Add(load * bpc.denominator <= rhs), label)
        elif ii is None:
            guarded(m.Add(load <= link_cap), label)
        else:
            guarded(m.Add(load * bpc.denominator <= bpc.numerator * ii), label)
        guarded(m.Add(expr <= rx * 8), label + " ")

    # bins: one per board, or one per SLR of a split board, in chain order
    split = [p.split_slrs(b) for b in range(B)]
    bins: list[tuple[int, int | None]] = []
    first_bin: list[int] = []
    for b in range(B):
        first_bin.append(len(bins))
        bins.extend([(b, s) for s in range(len(split[b]))] if split[b] else [(b, None)])
    L = len(bins)
    first_bin.append(L)

    # staircase over bins: u[i][l] = layer i sits in bin >= l; the bins a layer can reach
    # are bounded by the least resources of the layers before it (they must fit the bins
    # before) and after it (they must fit the bins after)
    # (not when explaining: the bounds would hide the capacity limits the reason names)
    lo_bin, hi_bin = (_bin_range(p, ks, bins, T) if not explain and only is None
                      else ([0] * n, [L - 1] * n))
    u: list[list] = []
    for i in range(n):
        row: list = [1]
        for l in range(1, L):
            b_l, s_l = bins[l]
            if fix_boards is not None and (b_l != fix_boards[i] or not s_l):
                row.append(int(fix_boards[i] >= b_l))  # another board, or a board boundary
            elif i == 0 or l > hi_bin[i]:
                row.append(0)
            elif l <= lo_bin[i]:
                row.append(1)
            else:
                row.append(m.NewBoolVar(f"u{i}_{l}"))
        row.append(0)
        u.append(row)
    if any(lo_bin[i] > hi_bin[i] for i in range(n)):
        return AtResult("INFEASIBLE", None, None, None, None, 0.0)
    for i in range(1, n):
        for l in range(1, L):
            if i > 1:
                _implies(m, u[i - 1][l], u[i][l])
            if l > 1:
                _implies(m, u[i][l], u[i][l - 1])

    def ub(i: int, b: int):  # layer i sits on board >= b
        return u[i][first_bin[b]]

    def z(i: int, b: int):  # layer i on board b
        return ub(i, b) - ub(i, b + 1)

    def zl(i: int, l: int):  # layer i in bin l
        return u[i][l] - u[i][l + 1]

    # segment replicas: wr[b][r] = board b runs as r copies (exactly one r where it is used)
    wr: list[dict[int, Any]] = []
    reps: list[Any] = []  # per board: its copies (0 where unused)
    P: list[Any] = []  # per board: II x copies (in "ii" mode)
    if R > 1:
        for b in range(B):
            used = 1 if b == 0 else ub(n - 1, b)
            wb = {r: m.NewBoolVar(f"w{b}_{r}") for r in range(1, R + 1)} if not (
                isinstance(used, int) and not used) else {}
            if wb:
                m.Add(sum(wb.values()) == used)
            wr.append(wb)
            reps.append(sum(r * v for r, v in wb.items()) if wb else 0)
        m.Add(sum(reps) <= min(p.n_boards, max_total or p.n_boards))
        if ii is not None:
            for b in range(B):
                rb = m.NewIntVar(0, R, f"r{b}")
                m.Add(rb == reps[b])
                pb = m.NewIntVar(0, R * T, f"p{b}")
                m.AddMultiplicationEquality(pb, [ii, rb])
                P.append(pb)

    # option choice
    x: list[dict[int, object]] = []
    for i in range(n):
        if len(ks[i]) == 1:
            x.append({ks[i][0]: 1})
        else:
            xi = {k: m.NewBoolVar(f"x{i}_{k}") for k in ks[i]}
            m.AddExactlyOne(xi.values())
            x.append(xi)
    if ii is not None and not p.mixed_clocks and R == 1:  # II >= every option's cycles
        for i in range(n):
            m.Add(sum(p.options[i][k].cost.cycles * (x[i][k] if not isinstance(x[i][k], int)
                                                    else 1) for k in ks[i]) <= ii)
    at_ii: list = []  # with a clock per board: (cycles on the bin's board, indicator)
    for c in p.couplings:
        keys = {c.producer_keys[k] for k in ks[c.producer]} | {
            c.consumer_keys[k] for k in ks[c.consumer]}
        for key in keys:
            lhs = [x[c.producer][k] for k in ks[c.producer] if c.producer_keys[k] == key]
            rhs = [x[c.consumer][k] for k in ks[c.consumer] if c.consumer_keys[k] == key]
            m.Add(sum(lhs) == sum(rhs))

    # per-board resource sums
    caps = [p.capacity(b, T_link) for b in range(B)]
    sums: list[dict[str, list]] = [{d: [] for d in DIMS} for _ in range(B)]
    slr_sums: list[dict[str, list]] = [{d: [] for d in RES + ("mean",)} for _ in range(L)]
    # boards bounded by their SLRs' sum (not split): valid bin-packing cuts from the dual
    # feasible functions f_k(x) = floor((k + 1) x) / k (Fekete and Schepers 2001): a layer
    # that needs x of an SLR's capacity C counts floor((k + 1) x / C); the layers of a board
    # with S SLRs count at most k S. Big layers that cannot share an SLR are caught here.
    dff: list[dict[tuple[str, int], list]] = [{} for _ in range(B)]
    chan: list[dict[int, list]] = [{} for _ in range(B)]  # replicas: channels per copy count
    dff_cap: list[dict[str, int]] = []
    for b in range(B):
        sl = p.slr_caps[b] if b < len(p.slr_caps) and not split[b] else None
        dff_cap.append({d: max(c[d] for c in sl) for d in RES} | {
            "mean": mean_units({}, sl[0])[1]} if sl else {})

    def book(i: int, k: int, l: int, var: Any) -> None:
        b, s = bins[l]
        use = p.usage(i, k, T_use, b, T_channels=T_link)
        cyc = p.cycles_on(i, k, b)
        if use["lut"] >= UNBUILDABLE or cyc > T * R:  # not buildable there, or too slow
            if isinstance(var, int):
                if var:
                    m.AddBoolOr([])  # the layer's only place: no plan
            else:
                m.Add(var == 0)
            return
        if R > 1:  # on a board of enough copies: cycles <= r T (r II in "ii" mode)
            q = -(-cyc // T)
            if q > 1:
                m.Add(sum(v for r, v in wr[b].items() if r >= q) >= var)
            if ii is not None:
                m.Add(P[b] >= cyc * var)
        elif ii is not None and p.mixed_clocks:
            at_ii.append((i, cyc, var))
        for d in DIMS:
            if use[d] and not (R > 1 and d == "ext_channels"):
                sums[b][d].append(use[d] * var)
        if R > 1 and use["ext_channels"]:  # a copy of r streams at r T: its channels then
            bits = p.options[i][k].external_weight_bits
            for r in wr[b]:
                chan[b].setdefault(r, []).append(
                    p.stream_channels(b, bits, bits * p.nvec[i], r * T) * var)
        if dff_cap[b]:
            sl = p.slr_caps[b]
            size = {d: use[d] for d in RES}
            size["mean"] = min(mean_units(use, c)[0] for c in sl)
            for d, C in dff_cap[b].items():
                for kk in (1, 2, 3):
                    c = (kk + 1) * size[d] // C if C else 0
                    if c:
                        dff[b].setdefault((d, kk), []).append(c * var)
        if s is not None:
            for d in RES:
                if use[d]:
                    slr_sums[l][d].append(use[d] * var)
            units, _ = mean_units(use, split[b][s])
            if units:
                slr_sums[l]["mean"].append(units * var)

    for i in range(n):
        reach = [l for l in range(L) if not (isinstance(zl(i, l), int) and not zl(i, l))]
        if len(ks[i]) == 1:
            for l in reach:
                book(i, ks[i][0], l, zl(i, l))
            continue
        ys = {}
        for k in ks[i]:
            for l in reach:
                ys[k, l] = m.NewBoolVar(f"y{i}_{k}_{l}") if len(reach) > 1 else x[i][k]
        if len(reach) > 1:
            for l in reach:
                m.Add(sum(ys[k, l] for k in ks[i]) == zl(i, l))
            for k in ks[i]:
                m.Add(sum(ys[k, l] for l in reach) == x[i][k])
        for (k, l), y in ys.items():
            book(i, k, l, y)

    for b in range(B):
        for r, terms in chan[b].items():
            cap_ch = p.ext_channels(b)
            ct = m.Add(sum(terms) <= cap_ch)
            ct.OnlyEnforceIf(wr[b][r])
            guarded(ct,
                    f"board {b} ({p.boards[b].board.name}) as {r} copies: memory channels "
                    f"at most {cap_ch:,}")
        S = len(p.slr_caps[b]) if dff_cap[b] else 0
        for (d, kk), terms in dff[b].items():
            m.Add(sum(terms) <= kk * S)

    # symmetry: of two alike boards in a row, the first is used before the second
    for b in range(B - 1):
        a, c = p.boards[b], p.boards[b + 1]
        if (a == c and bool(split[b]) == bool(split[b + 1])
                and not isinstance(ub(n - 1, b + 1), int)):
            m.Add(sum(z(i, b) for i in range(n)) >= ub(n - 1, b + 1))

    if at_ii:  # the II is at least every layer's cycles on its board's clock
        per: dict[int, list] = {}
        for i, cyc, var in at_ii:
            per.setdefault(i, []).append(cyc * var)
        for terms in per.values():
            m.Add(sum(terms) <= ii)

    # split boards: every SLR within its caps and the mean rule, every SLR boundary within
    # its SLL wires (each crossing stream at its producer's padded width, as chosen)
    for l, (b, s) in enumerate(bins):
        if s is None:
            continue
        cap = split[b][s]
        for d in RES + ("mean",):
            if slr_sums[l][d]:
                lim = mean_units({}, cap)[1] if d == "mean" else cap[d]
                what = "mean BRAM/URAM/DSP units" if d == "mean" else d.upper()
                guarded(m.Add(sum(slr_sums[l][d]) <= lim),
                        f"board {b} ({p.boards[b].board.name}) SLR{s}: {what} at most {lim:,}")
        if s == 0:
            continue
        terms = []
        for e in p.edges:
            cross = u[e.v][l] - u[e.u][l]
            widths = {k: _out_width(p.cost_on(e.u, k, b)) for k in ks[e.u]}
            wmax = max(widths.values())
            if not wmax:
                continue
            if len(set(widths.values())) == 1 or isinstance(x[e.u][ks[e.u][0]], int):
                terms.append(wmax * cross)
                continue
            t = m.NewIntVar(0, wmax, f"sll{e.u}_{e.v}_{l}")
            m.Add(t >= sum(w * x[e.u][k] for k, w in widths.items()) - wmax * (1 - cross))
            terms.append(t)
        if terms:
            guarded(m.Add(sum(terms) <= SLL_PER_BOUNDARY),
                    f"board {b} ({p.boards[b].board.name}) SLR{s - 1}<->SLR{s}: at most "
                    f"{SLL_PER_BOUNDARY:,} SLL wires")

    # links and ACCL
    link_cap = p.link_cap_bits(T_link)
    rx = p.rx_capacity_bytes()
    cut_terms: list = []
    if B > 1:
        for e in p.edges:
            if not p.cuttable(e) or p.link_cycles(p.link_load(e)) > T_link:
                why = ("exceeds ACCL's transfer/receive limits" if not p.cuttable(e) else
                       f"takes longer than II {T:,} on the link")
                label = (f"stream {p.order[e.u]} -> {p.order[e.v]} stays on one board (one "
                         f"frame, {e.link_bits // 8:,} B, {why})")
                for b in range(1, B):
                    guarded(m.Add(ub(e.v, b) == ub(e.u, b)), label)
        fb = {ei: frame_buffer_bram18(e.bits) for ei, e in enumerate(p.edges)}
        if p.link.topology == "chain":
            for b in range(1, B):
                terms = [(e, ub(e.v, b) - ub(e.u, b)) for e in p.edges if e.link_bits]
                if terms:
                    link_ok(sum(p.link_load(e) * t for e, t in terms),
                            sum(e.link_bits * t for e, t in terms), (b - 1, b))
                    cut_terms.extend((e.link_bits, t) for e, t in terms)
                if p.accl.sender_frame_buffer:
                    for ei, e in enumerate(p.edges):
                        if fb[ei]:
                            sums[b - 1]["bram18"].append(fb[ei] * (ub(e.v, b) - ub(e.u, b)))
        else:
            for a in range(B):
                out_terms, in_terms = [], []
                for ei, e in enumerate(p.edges):
                    o = m.NewBoolVar(f"out{ei}_{a}")
                    if a + 1 < B:
                        m.Add(o >= z(e.u, a) + ub(e.v, a + 1) - 1)
                    else:
                        m.Add(o == 0)
                    out_terms.append((e, o))
                    cut_terms.append((e.link_bits, o))
                    if p.accl.sender_frame_buffer and fb[ei]:
                        sums[a]["bram18"].append(fb[ei] * o)
                    if a > 0:
                        r = m.NewBoolVar(f"in{ei}_{a}")
                        m.Add(r >= z(e.v, a) - ub(e.u, a))
                        in_terms.append((e, r))
                for io in (out_terms, in_terms):
                    if io:
                        link_ok(sum(p.link_load(e) * t for e, t in io),
                                sum(e.link_bits * t for e, t in io), (a,))
        for ei, e in enumerate(p.edges):  # skip streams are buffered where they arrive
            if e.skip and fb[ei]:
                for b in range(1, B):
                    r = m.NewBoolVar(f"skip{ei}_{b}")
                    m.Add(r >= z(e.v, b) - ub(e.u, b))
                    sums[b]["bram18"].append(fb[ei] * r)
    for b in range(B):
        for d in DIMS:
            if not sums[b][d]:
                continue
            if d == "ext_bpf" and R > 1:  # each copy's memory serves 1/r of the frames
                rate = p.ext_bits_per_cycle(b)
                m.Add(sum(sums[b][d]) * rate.denominator
                      <= rate.numerator * (P[b] if ii is not None else T * reps[b]))
            elif d == "ext_bpf" and ii is not None:  # bandwidth x II, exactly
                rate = p.ext_bits_per_cycle(b)
                m.Add(sum(sums[b][d]) * rate.denominator <= rate.numerator * ii)
            else:
                what = {"ext_bits": "external memory bits", "ext_bpf": "external memory bits "
                        "per frame", "ext_channels": "memory channels"}.get(d, d.upper())
                guarded(m.Add(sum(sums[b][d]) <= caps[b][d]),
                        f"board {b} ({p.boards[b].board.name}): {what} at most {caps[b][d]:,}")

    # objective
    if objective == "ii":
        m.Minimize(ii)
    elif objective == "balance":  # the fullest board's fill, in per mille of its capacity
        M = m.NewIntVar(0, 1000, "fill")
        for b in range(B):
            for d in RES:
                if sums[b][d] and caps[b][d]:
                    m.Add(1000 * sum(sums[b][d]) <= M * caps[b][d])
        m.Minimize(M)
    elif objective == "crossings" and L > 1:  # Elastic-DF's: 1 per SLR crossed, 10 per link
        m.Minimize(sum((10 if bins[l][0] != bins[l - 1][0] else 1) * (u[e.v][l] - u[e.u][l])
                       for l in range(1, L) for e in p.edges))
    elif objective == "boards" and R > 1:  # every copy is a board
        m.Minimize(sum(reps))
    elif objective == "boards" and B > 1:
        m.Minimize(sum(ub(n - 1, b) for b in range(1, B)))
    elif objective == "resources":
        tot = {d: max(c[d] for c in caps) for d in DIMS}
        terms = []
        for i in range(n):
            for k in ks[i]:
                use = min((p.usage(i, k, T, b) for b in range(B)),
                          key=lambda u: sum(u.values()))
                w = int(round(1e4 * sum(min(use[d], tot[d]) / tot[d] for d in DIMS if tot[d])))
                if w and not isinstance(x[i][k], int):
                    terms.append(w * x[i][k])
        # then fewer bits on the links (one unit per 512-bit ACCL word)
        terms.extend((bits // 512) * t for bits, t in cut_terms)
        if terms:
            m.Minimize(sum(terms))

    if hint is not None:
        hc, hb = hint[0], hint[1]
        hs = hint[2] if len(hint) > 2 and hint[2] else None
        for i in range(n):
            for k, var in x[i].items():
                if not isinstance(var, int):
                    m.AddHint(var, int(hc[i] == k))
            for l in range(1, L):
                b, s = bins[l]
                if isinstance(u[i][l], int) or (s and (hs is None or hs[i] is None)):
                    continue  # no hint for a split board's SLRs without a placement
                at = (hb[i], hs[i] if hs is not None and hs[i] is not None else 0)
                m.AddHint(u[i][l], int(at >= (b, s or 0)))
        if R > 1:
            hr = hint[3] if len(hint) > 3 and hint[3] else None
            used_h = max(hb) + 1
            for b, wb in enumerate(wr):
                for r, var in wb.items():
                    m.AddHint(var, int(b < used_h and (hr[b] if hr else 1) == r))

    solver = cp_solver()
    prm = solver.parameters
    # One worker searches deterministically: with the deterministic-time limit, the same
    # inputs and seed give the same plan. The wall-clock limit is the safety net for a loaded
    # machine (only when it cuts a phase short can two runs differ). More workers run
    # CP-SAT's parallel portfolio: faster, not reproducible.
    prm.num_workers = max(1, workers)
    prm.random_seed = seed
    # building the model counts against the limit (on 300-layer chains it took 1-2 s, and
    # calls overran their budget by that much)
    prm.max_time_in_seconds = max(0.05, time_limit - (time.monotonic() - t_start))
    prm.max_deterministic_time = max(0.05, time_limit)
    prm.log_search_progress = False
    # one presolve round and light probing: on 150-300-layer chains presolve took half of
    # each call; measured twice as fast end to end (results/scale_benchmark.csv)
    prm.max_presolve_iterations = 1
    prm.cp_model_probing_level = 1

    class _CB(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:  # pragma: no cover - timing dependent
            if on_solution is not None:
                on_solution(self.ObjectiveValue())

    if guards:
        m.AddAssumptions([lit for lit, _ in guards])
    status = solver.Solve(m, _CB() if on_solution else None)
    name = STATUS.get(status, "UNKNOWN")
    if name not in ("OPTIMAL", "FEASIBLE"):
        core: tuple[str, ...] = ()
        if guards and name == "INFEASIBLE":
            by_index = {lit.Index(): label for lit, label in guards}
            core = tuple(by_index[i] for i in solver.SufficientAssumptionsForInfeasibility()
                         if i in by_index)
        return AtResult(name, None, None, None, None, solver.WallTime(), core)

    def val(v) -> int:
        return v if isinstance(v, int) else int(solver.Value(v))

    choice = [next(k for k, var in x[i].items() if val(var)) for i in range(n)]
    at = [bins[sum(val(u[i][l]) for l in range(1, L))] for i in range(n)]
    boards = [b for b, _ in at]
    slrs = [s for _, s in at] if any(split) else None
    obj = solver.ObjectiveValue() if objective != "none" else None
    bnd = solver.BestObjectiveBound() if objective != "none" else None
    copies = ([max(1, sum(r * val(v) for r, v in wb.items())) for wb in wr] if R > 1
              else None)
    return AtResult(name, choice, boards, obj, bnd, solver.WallTime(), slrs=slrs,
                    replicas=copies)


def _implies(m: Any, a: Any, b: Any) -> None:
    """a => b for literals or the constants 0/1 the bin bounds fix."""
    if isinstance(a, int) and isinstance(b, int):
        if a and not b:
            m.AddBoolOr([])
    elif isinstance(a, int):
        if a:
            m.Add(b == 1)
    elif isinstance(b, int):
        if not b:
            m.Add(a == 0)
    else:
        m.AddImplication(a, b)


def _bin_range(p: PartitionProblem, ks: list[list[int]], bins: list[tuple[int, int | None]],
               T: int) -> tuple[list[int], list[int]]:
    """Per layer, the first and last bin it can sit in: the layers up to it need at least
    their least resources (any option meeting ``T``, any board) in the bins up to its own,
    and the layers from it on in the bins from its own."""
    n, L = p.n, len(bins)
    caps = []
    for b, s in bins:
        c = p.split_slrs(b)[s] if s is not None else p.capacity(b, T)
        caps.append([int(c[d]) for d in RES])
    boards = sorted({b for b, _ in bins})
    least = []
    for i in range(n):
        row = [min(u[d] for k in ks[i] for b in boards
                   for u in (p.usage(i, k, T, b),)) for d in RES]
        least.append(row)
    R = len(RES)

    def cum(rows: list[list[int]]) -> list[list[int]]:
        out, acc = [], [0] * R
        for r in rows:
            acc = [a + x for a, x in zip(acc, r)]
            out.append(acc)
        return out

    pre, cap_pre = cum(least), cum(caps)
    suf = cum(least[::-1])[::-1]
    cap_suf = cum(caps[::-1])[::-1]
    lo, hi = [], []
    for i in range(n):
        lo.append(next((l for l in range(L) if all(pre[i][d] <= cap_pre[l][d]
                                                   for d in range(R))), L))
        hi.append(next((l for l in range(L - 1, -1, -1) if all(suf[i][d] <= cap_suf[l][d]
                                                               for d in range(R))), -1))
    return lo, hi


def _out_width(c: Any) -> int:
    return max(c.outstream_widths_padded or (0,)) if c is not None else 0
