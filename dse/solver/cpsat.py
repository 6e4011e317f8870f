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
from dataclasses import dataclass, replace
from typing import Any

from ortools.sat.python import cp_model

from dse.models.candidates import FoldingOption, prune_dominated
from dse.solver.cpsolver import cp_solver
from dse.solver.problem import (
    DIMS,
    RES,
    UNBUILDABLE,
    PartitionProblem,
    PEdge,
    frame_buffer_bram18,
)
from dse.solver.slr import SLL_PER_BOUNDARY, mean_units
from dse.specs import Resources

STATUS = {
    cp_model.OPTIMAL: "OPTIMAL",
    cp_model.FEASIBLE: "FEASIBLE",
    cp_model.INFEASIBLE: "INFEASIBLE",
    cp_model.MODEL_INVALID: "MODEL_INVALID",
    cp_model.UNKNOWN: "UNKNOWN",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AtResult:
    status: str  # OPTIMAL / FEASIBLE / INFEASIBLE / UNKNOWN
    choice: list[int] | None = None
    boards: list[int] | None = None
    objective: float | None = None
    bound: float | None = None
    wall_s: float = 0.0
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
            # the option's input FIFO (problem.share) is booked with it: an option with fewer
            # resources of its own but a larger FIFO does not dominate
            extra = [tuple(problem.share(i, k).values(RES))
                     + tuple(v for t in tables for v in _resource_vector(t[i][k]))
                     + ((-(-opts[k].cost.cycles // T),) if R > 1 else ())
                     for k in idx]
            keep = {id(o) for o in prune_dominated(flat, extra)}
            kept.extend(k for k, o in zip(idx, flat, strict=True) if id(o) in keep)
        problem._memo[memo] = sorted(kept)
        out.append(problem._memo[memo])
    return out


def _resource_vector(c: Any) -> tuple[int, ...]:
    return (c.lut, c.ff, c.bram18, c.uram, c.dsp) if c is not None else (UNBUILDABLE,) * 5


def _as_resource_option(o: FoldingOption) -> FoldingOption:
    return FoldingOption(attrs=o.attrs, impl=o.impl, cost=replace(o.cost, cycles=0),
                         external_weight_bits=o.external_weight_bits)


Lit = cp_model.IntVar | int  # a Boolean variable, or the constant 0/1 the bounds fix
Expr = Any  # a CP-SAT linear expression (ortools' LinearExprT), or an int


def solve_at(
    problem: PartitionProblem,
    T: int,
    *,
    objective: str = "none",
    max_boards: int | None = None,
    time_limit: float = 10.0,
    workers: int = 2,
    seed: int = 0,
    hint: Sequence[Any] | None = None,
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
    fill as low as it goes: boards that leave room pack into their SLRs), "ii" (the smallest
    II in [``ii_low``, ``T``] the links allow with the options that meet ``T``), with
    ``max_boards`` boards at most. External-memory bandwidth is booked at ``ii_low`` in "ii"
    mode (the most it can be in the range), else at ``T``.

    ``hint``: (choice, boards[, SLR per layer[, copies per board]]) of a plan to start from.

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
    model = AtModel(problem, T, objective=objective, max_boards=max_boards, ii_low=ii_low,
                    explain=explain, only=only, fix_boards=fix_boards, max_total=max_total,
                    slack_T=slack_T)
    if not model.build():
        return AtResult(status="INFEASIBLE")
    if hint is not None:
        model.add_hint(hint)
    return model.solve(time_limit=max(0.05, time_limit - (time.monotonic() - t_start)),
                       deterministic_limit=max(0.05, time_limit), workers=workers, seed=seed,
                       on_solution=on_solution)


class AtModel:
    """The CP-SAT model of one ``solve_at`` call, one method per family of variables and
    constraints. ``build`` adds them in a fixed order: the same inputs give the same model,
    and so the same answer from CP-SAT."""

    def __init__(self, problem: PartitionProblem, T: int, *, objective: str,
                 max_boards: int | None, ii_low: int | None, explain: bool,
                 only: frozenset[str] | None, fix_boards: Sequence[int] | None,
                 max_total: int | None, slack_T: int | None) -> None:
        p = self.p = problem
        self.T = T
        self.n = p.n
        self.B = min(p.n_boards, max_boards or p.n_boards)
        self.m = cp_model.CpModel()
        self.objective = objective
        self.ii_low = ii_low
        self.explain = explain
        self.only = only
        self.fix_boards = fix_boards
        self.max_total = max_total
        self.R = p.max_replicas
        # links and memory are booked at T_link, external bandwidth at T_use
        self.T_link = max(T, (slack_T if self.R == 1 else None) or T)
        self.T_use = self.T_link
        self.ii: cp_model.IntVar | None = None
        self.bpc = p.link_rate()
        self.guards: list[tuple[cp_model.IntVar, str]] = []
        self.n_links = 0
        self.link_cap = 0
        self.rx = 0
        self.ks: list[list[int]] = []
        self.split: list[list[dict[str, Any]] | None] = []
        self.bins: list[tuple[int, int | None]] = []
        self.first_bin: list[int] = []
        self.L = 0
        self.u: list[list[Lit]] = []
        self.wr: list[dict[int, cp_model.IntVar]] = []
        self.reps: list[Expr] = []  # per board: its copies (0 where unused)
        self.P: list[cp_model.IntVar] = []  # per board: II x copies (in "ii" mode)
        self.x: list[dict[int, Lit]] = []
        self.at_ii: list[tuple[int, int, Lit]] = []  # clock per board: (layer, cycles, in)
        self.caps: list[Resources] = []
        self.sums: list[dict[str, list[Expr]]] = []
        self.slr_sums: list[dict[str, list[Expr]]] = []
        self.dff: list[dict[tuple[str, int], list[Expr]]] = []
        self.chan: list[dict[int, list[Expr]]] = []
        self.dff_cap: list[dict[str, int]] = []
        self.cut_terms: list[tuple[int, Expr]] = []

    # -- the model, family by family ------------------------------------------------------

    def build(self) -> bool:
        """Every variable and constraint; False when the instance is infeasible already."""
        if not self.options():
            return False
        self.ii_variable()
        self.bin_layout()
        if not self.staircase():
            return False
        self.segment_replicas()
        self.option_choice()
        self.couplings()
        self.resource_sums()
        self.replica_channels_and_bin_cuts()
        self.symmetry()
        self.ii_per_clock()
        self.slr_limits()
        self.links()
        self.board_limits()
        self.set_objective()
        return True

    def options(self) -> bool:
        """The options per layer that meet ``T`` (and the faster ones, to minimize the II)."""
        p, T = self.p, self.T
        # minimizing the II over a range of candidates needs the faster options too
        wide = self.objective == "ii" and (self.ii_low or 1) <= max(
            (o.cost.cycles for opts in p.options for o in opts if o.cost.cycles < T),
            default=0)
        self.ks = options_at(p, T, keep_faster=wide)
        return all(self.ks)

    def ii_variable(self) -> None:
        if self.objective == "ii":
            lo = max(1, self.ii_low or 1)
            self.ii = self.m.new_int_var(lo, self.T, "ii")
            self.T_use = lo

    def guarded(self, ct: cp_model.Constraint, label: str) -> None:
        """A limit the explanation names (``explain``) or leaves out (``only``)."""
        if self.only is not None and label not in self.only:
            ct.only_enforce_if(self.m.new_bool_var("relaxed"))  # free: the limit is off
        elif self.explain:
            lit = self.m.new_bool_var(label)
            ct.only_enforce_if(lit)
            self.guards.append((lit, label))

    def link_ok(self, load: Expr, expr: Expr, sides: Sequence[int] = ()) -> None:
        """Traffic fits one link at the plan's II: ``load`` (``p.link_load`` units) within
        the link's rate, ``expr`` (bits per frame) within ACCL's receive buffers (with
        replicas: the link of each copy of the boards in ``sides``, which carries 1/r of the
        frames)."""
        p, m, bpc, rx = self.p, self.m, self.bpc, self.rx
        label = (f"link {self.n_links}: at most {self.link_cap:,} units of link load and "
                 f"{rx * 8:,} bits per frame ({p.link.bandwidth_gbps:g} Gb/s at II "
                 f"{self.T:,}, ACCL receive buffers)")
        self.n_links += 1
        if self.R > 1:
            for b in sides:
                rhs = bpc.numerator * (self.P[b] if self.ii is not None
                                       else self.T * self.reps[b])
                self.guarded(m.add(load * bpc.denominator <= rhs), label)
        elif self.ii is None:
            self.guarded(m.add(load <= self.link_cap), label)
        else:
            self.guarded(m.add(load * bpc.denominator <= bpc.numerator * self.ii), label)
        self.guarded(m.add(expr <= rx * 8), label + " ")

    def bin_layout(self) -> None:
        """Bins: one per board, or one per SLR of a split board, in chain order."""
        self.split = [self.p.split_slrs(b) for b in range(self.B)]
        for b in range(self.B):
            self.first_bin.append(len(self.bins))
            sl = self.split[b]
            self.bins.extend([(b, s) for s in range(len(sl))] if sl else [(b, None)])
        self.L = len(self.bins)
        self.first_bin.append(self.L)

    def staircase(self) -> bool:
        """u[i][lyr] = layer i sits in bin >= lyr; the bins a layer can reach are bounded by
        the least resources of the layers before it (they must fit the bins before) and after
        it (they must fit the bins after); not when explaining (the bounds would hide the
        capacity limits the reason names). False if a layer can reach no bin."""
        p, m, n, L, fix = self.p, self.m, self.n, self.L, self.fix_boards
        lo_bin, hi_bin = (_bin_range(p, self.ks, self.bins, self.T)
                          if not self.explain and self.only is None else ([0] * n, [L - 1] * n))
        for i in range(n):
            row: list[Lit] = [1]
            for lyr in range(1, L):
                b_l, s_l = self.bins[lyr]
                if fix is not None and (b_l != fix[i] or not s_l):
                    row.append(int(fix[i] >= b_l))  # another board, or a board boundary
                elif i == 0 or lyr > hi_bin[i]:
                    row.append(0)
                elif lyr <= lo_bin[i]:
                    row.append(1)
                else:
                    row.append(m.new_bool_var(f"u{i}_{lyr}"))
            row.append(0)
            self.u.append(row)
        if any(lo_bin[i] > hi_bin[i] for i in range(n)):
            return False
        u = self.u
        for i in range(1, n):
            for lyr in range(1, L):
                if i > 1:
                    _implies(m, u[i - 1][lyr], u[i][lyr])
                if lyr > 1:
                    _implies(m, u[i][lyr], u[i][lyr - 1])
        return True

    def ub(self, i: int, b: int) -> Lit:
        """Layer i sits on board >= b."""
        return self.u[i][self.first_bin[b]]

    def z(self, i: int, b: int) -> Expr:
        """Layer i on board b."""
        return self.ub(i, b) - self.ub(i, b + 1)

    def zl(self, i: int, lyr: int) -> Expr:
        """Layer i in bin lyr."""
        return self.u[i][lyr] - self.u[i][lyr + 1]

    def segment_replicas(self) -> None:
        """wr[b][r] = board b runs as r copies (exactly one r where it is used)."""
        p, m, R, T = self.p, self.m, self.R, self.T
        if R <= 1:
            return
        for b in range(self.B):
            used = 1 if b == 0 else self.ub(self.n - 1, b)
            wb = {r: m.new_bool_var(f"w{b}_{r}") for r in range(1, R + 1)} if not (
                isinstance(used, int) and not used) else {}
            if wb:
                m.add(sum(wb.values()) == used)
            self.wr.append(wb)
            self.reps.append(sum(r * v for r, v in wb.items()) if wb else 0)
        m.add(sum(self.reps) <= min(p.n_boards, self.max_total or p.n_boards))
        if self.ii is not None:
            for b in range(self.B):
                rb = m.new_int_var(0, R, f"r{b}")
                m.add(rb == self.reps[b])
                pb = m.new_int_var(0, R * T, f"p{b}")
                m.add_multiplication_equality(pb, [self.ii, rb])
                self.P.append(pb)

    def option_choice(self) -> None:
        """x[i][k]: layer i uses option k; in "ii" mode the II covers every option's cycles."""
        p, m, ks = self.p, self.m, self.ks
        for i in range(self.n):
            if len(ks[i]) == 1:
                self.x.append({ks[i][0]: 1})
            else:
                xi = {k: m.new_bool_var(f"x{i}_{k}") for k in ks[i]}
                m.add_exactly_one(xi.values())
                self.x.append(dict(xi))
        if self.ii is not None and not p.mixed_clocks and self.R == 1:
            for i in range(self.n):
                m.add(sum(p.options[i][k].cost.cycles * self.x[i][k] for k in ks[i])
                      <= self.ii)

    def couplings(self) -> None:
        """Coupled layers (a producer and its consumer) choose matching keys."""
        ks, x = self.ks, self.x
        for c in self.p.couplings:
            keys = {c.producer_keys[k] for k in ks[c.producer]} | {
                c.consumer_keys[k] for k in ks[c.consumer]}
            for key in keys:
                lhs = [x[c.producer][k] for k in ks[c.producer] if c.producer_keys[k] == key]
                rhs = [x[c.consumer][k] for k in ks[c.consumer] if c.consumer_keys[k] == key]
                self.m.add(sum(lhs) == sum(rhs))

    def resource_sums(self) -> None:
        """y[i][k][lyr]: option k of layer i in bin lyr (exact via both marginals), each
        booked into its board's and SLR's sums.

        Boards bounded by their SLRs' sum (not split) get valid bin-packing cuts from the dual
        feasible functions f_k(x) = floor((k + 1) x) / k (Fekete and Schepers 2001): a layer
        that needs x of an SLR's capacity C counts floor((k + 1) x / C); the layers of a board
        with S SLRs count at most k S. Big layers that cannot share an SLR are caught here."""
        p, m, B, ks, x = self.p, self.m, self.B, self.ks, self.x
        self.caps = [p.capacity(b, self.T_link) for b in range(B)]
        self.sums = [{d: [] for d in DIMS} for _ in range(B)]
        self.slr_sums = [{d: [] for d in RES + ("mean",)} for _ in range(self.L)]
        self.dff = [{} for _ in range(B)]
        self.chan = [{} for _ in range(B)]  # replicas: channels per copy count
        for b in range(B):
            sl = p.slr_caps[b] if b < len(p.slr_caps) and not self.split[b] else None
            self.dff_cap.append({d: max(c[d] for c in sl) for d in RES} | {
                "mean": mean_units({}, sl[0])[1]} if sl else {})
        for i in range(self.n):
            reach = [lyr for lyr in range(self.L)
                     if not (isinstance(self.zl(i, lyr), int) and not self.zl(i, lyr))]
            if len(ks[i]) == 1:
                for lyr in reach:
                    self.book(i, ks[i][0], lyr, self.zl(i, lyr))
                continue
            ys: dict[tuple[int, int], Lit] = {}
            for k in ks[i]:
                for lyr in reach:
                    ys[k, lyr] = (m.new_bool_var(f"y{i}_{k}_{lyr}") if len(reach) > 1
                                  else x[i][k])
            if len(reach) > 1:
                for lyr in reach:
                    m.add(sum(ys[k, lyr] for k in ks[i]) == self.zl(i, lyr))
                for k in ks[i]:
                    m.add(sum(ys[k, lyr] for lyr in reach) == x[i][k])
            for (k, lyr), y in ys.items():
                self.book(i, k, lyr, y)

    def book(self, i: int, k: int, lyr: int, var: Expr) -> None:
        """Option k of layer i in bin lyr (``var``): its resources into the sums, its cycles
        against the II (or the copies of its board)."""
        p, m, T, R = self.p, self.m, self.T, self.R
        b, s = self.bins[lyr]
        use = p.usage(i, k, self.T_use, b, T_channels=self.T_link)
        cyc = p.cycles_on(i, k, b)
        if use.lut >= UNBUILDABLE or cyc > T * R:  # not buildable there, or too slow
            if isinstance(var, int):
                if var:
                    m.add_bool_or([])  # the layer's only place: no plan
            else:
                m.add(var == 0)
            return
        if R > 1:  # on a board of enough copies: cycles <= r T (r II in "ii" mode)
            q = -(-cyc // T)
            if q > 1:
                m.add(sum(v for r, v in self.wr[b].items() if r >= q) >= var)
            if self.ii is not None:
                m.add(self.P[b] >= cyc * var)
        elif self.ii is not None and p.mixed_clocks:
            self.at_ii.append((i, cyc, var))
        for d, v in use.items():
            if v and not (R > 1 and d == "ext_channels"):
                self.sums[b][d].append(v * var)
        if R > 1 and use.ext_channels:  # a copy of r streams at r T: its channels then
            bits = p.options[i][k].external_weight_bits
            for r in self.wr[b]:
                self.chan[b].setdefault(r, []).append(
                    p.stream_channels(b, bits, bits * p.nvec[i], r * T) * var)
        if self.dff_cap[b]:
            sl = p.slr_table(b)
            size = dict(use.items(RES))
            size["mean"] = min(mean_units(use, c)[0] for c in sl)
            for d, C in self.dff_cap[b].items():
                for kk in (1, 2, 3):
                    c = (kk + 1) * size[d] // C if C else 0
                    if c:
                        self.dff[b].setdefault((d, kk), []).append(c * var)
        split = self.split[b]
        if s is not None and split is not None:
            for d, v in use.items(RES):
                if v:
                    self.slr_sums[lyr][d].append(v * var)
            units, _ = mean_units(use, split[s])
            if units:
                self.slr_sums[lyr]["mean"].append(units * var)

    def replica_channels_and_bin_cuts(self) -> None:
        """Per copy count, the memory channels of one copy; the bin-packing cuts per board."""
        p, m = self.p, self.m
        for b in range(self.B):
            for r, terms in self.chan[b].items():
                cap_ch = p.ext_channels(b)
                ct = m.add(sum(terms) <= cap_ch)
                ct.only_enforce_if(self.wr[b][r])
                self.guarded(ct, f"board {b} ({p.boards[b].board.name}) as {r} copies: "
                                 f"memory channels at most {cap_ch:,}")
            S = len(p.slr_table(b)) if self.dff_cap[b] else 0
            for (_d, kk), terms in self.dff[b].items():
                m.add(sum(terms) <= kk * S)

    def symmetry(self) -> None:
        """Of two alike boards in a row, the first is used before the second."""
        p, n, split = self.p, self.n, self.split
        for b in range(self.B - 1):
            if (p.boards[b] == p.boards[b + 1] and bool(split[b]) == bool(split[b + 1])
                    and not isinstance(self.ub(n - 1, b + 1), int)):
                self.m.add(sum(self.z(i, b) for i in range(n)) >= self.ub(n - 1, b + 1))

    def ii_per_clock(self) -> None:
        """With a clock per board: the II is at least every layer's cycles on its board."""
        if not self.at_ii or self.ii is None:
            return
        per: dict[int, list[Expr]] = {}
        for i, cyc, var in self.at_ii:
            per.setdefault(i, []).append(cyc * var)
        for terms in per.values():
            self.m.add(sum(terms) <= self.ii)

    def slr_limits(self) -> None:
        """Split boards: every SLR within its caps and the mean rule, every SLR boundary
        within its SLL wires (each crossing stream at its producer's padded width, as
        chosen)."""
        p, m, u, x, ks = self.p, self.m, self.u, self.x, self.ks
        for lyr, (b, s) in enumerate(self.bins):
            split = self.split[b]
            if s is None or split is None:
                continue
            cap = split[s]
            name = p.boards[b].board.name
            for d in RES + ("mean",):
                if self.slr_sums[lyr][d]:
                    lim = mean_units({}, cap)[1] if d == "mean" else cap[d]
                    what = "mean BRAM/URAM/DSP units" if d == "mean" else d.upper()
                    self.guarded(m.add(sum(self.slr_sums[lyr][d]) <= lim),
                                 f"board {b} ({name}) SLR{s}: {what} at most {lim:,}")
            if s == 0:
                continue
            terms: list[Expr] = []
            for e in p.edges:
                cross = u[e.v][lyr] - u[e.u][lyr]
                widths = {k: _out_width(p.cost_on(e.u, k, b)) for k in ks[e.u]}
                wmax = max(widths.values())
                if not wmax:
                    continue
                if len(set(widths.values())) == 1 or isinstance(x[e.u][ks[e.u][0]], int):
                    terms.append(wmax * cross)
                    continue
                t = m.new_int_var(0, wmax, f"sll{e.u}_{e.v}_{lyr}")
                m.add(t >= sum(w * x[e.u][k] for k, w in widths.items()) - wmax * (1 - cross))
                terms.append(t)
            if terms:
                self.guarded(m.add(sum(terms) <= SLL_PER_BOUNDARY),
                             f"board {b} ({name}) SLR{s - 1}<->SLR{s}: at most "
                             f"{SLL_PER_BOUNDARY:,} SLL wires")

    def links(self) -> None:
        """Streams too big for a link stay on one board; every link within its bandwidth
        and ACCL's receive buffers; the frame buffers of the cut streams in BRAM."""
        p = self.p
        self.link_cap = p.link_cap_bits(self.T_link)
        self.rx = p.rx_capacity_bytes()
        if self.B <= 1:
            return
        for e in p.edges:
            if not p.cuttable(e) or p.link_cycles(p.link_load(e)) > self.T_link:
                why = ("exceeds ACCL's transfer/receive limits" if not p.cuttable(e) else
                       f"takes longer than II {self.T:,} on the link")
                label = (f"stream {p.order[e.u]} -> {p.order[e.v]} stays on one board (one "
                         f"frame, {e.link_bits // 8:,} B, {why})")
                for b in range(1, self.B):
                    self.guarded(self.m.add(self.ub(e.v, b) == self.ub(e.u, b)), label)
        fb = {ei: frame_buffer_bram18(e.bits) for ei, e in enumerate(p.edges)}
        if p.link.topology == "chain":
            self.chain_links(fb)
        else:
            self.switch_links(fb)
        for ei, e in enumerate(p.edges):  # skip streams are buffered where they arrive
            if e.skip and fb[ei]:
                for b in range(1, self.B):
                    r = self.m.new_bool_var(f"skip{ei}_{b}")
                    self.m.add(r >= self.z(e.v, b) - self.ub(e.u, b))
                    self.sums[b]["bram18"].append(fb[ei] * r)

    def chain_links(self, fb: dict[int, int]) -> None:
        p, ub = self.p, self.ub
        for b in range(1, self.B):
            terms = [(e, ub(e.v, b) - ub(e.u, b)) for e in p.edges if e.link_bits]
            if terms:
                self.link_ok(sum(p.link_load(e) * t for e, t in terms),
                             sum(e.link_bits * t for e, t in terms), (b - 1, b))
                self.cut_terms.extend((e.link_bits, t) for e, t in terms)
            if p.accl.sender_frame_buffer:
                for ei, e in enumerate(p.edges):
                    if fb[ei]:
                        self.sums[b - 1]["bram18"].append(fb[ei] * (ub(e.v, b) - ub(e.u, b)))

    def switch_links(self, fb: dict[int, int]) -> None:
        p, m, B = self.p, self.m, self.B
        for a in range(B):
            out_terms: list[tuple[PEdge, Expr]] = []
            in_terms: list[tuple[PEdge, Expr]] = []
            for ei, e in enumerate(p.edges):
                o = m.new_bool_var(f"out{ei}_{a}")
                if a + 1 < B:
                    m.add(o >= self.z(e.u, a) + self.ub(e.v, a + 1) - 1)
                else:
                    m.add(o == 0)
                out_terms.append((e, o))
                self.cut_terms.append((e.link_bits, o))
                if p.accl.sender_frame_buffer and fb[ei]:
                    self.sums[a]["bram18"].append(fb[ei] * o)
                if a > 0:
                    r = m.new_bool_var(f"in{ei}_{a}")
                    m.add(r >= self.z(e.v, a) - self.ub(e.u, a))
                    in_terms.append((e, r))
            for io in (out_terms, in_terms):
                if io:
                    self.link_ok(sum(p.link_load(e) * t for e, t in io),
                                 sum(e.link_bits * t for e, t in io), (a,))

    def board_limits(self) -> None:
        """Every board's sums within its capacity; external-memory bandwidth at the II (per
        copy with replicas)."""
        p, m, ii = self.p, self.m, self.ii
        for b in range(self.B):
            for d in DIMS:
                if not self.sums[b][d]:
                    continue
                total = sum(self.sums[b][d])
                if d == "ext_bpf" and self.R > 1:  # each copy's memory serves 1/r of frames
                    rate = p.ext_bits_per_cycle(b)
                    m.add(total * rate.denominator
                          <= rate.numerator * (self.P[b] if ii is not None
                                               else self.T * self.reps[b]))
                elif d == "ext_bpf" and ii is not None:  # bandwidth x II, exactly
                    rate = p.ext_bits_per_cycle(b)
                    m.add(total * rate.denominator <= rate.numerator * ii)
                else:
                    what = {"ext_bits": "external memory bits", "ext_bpf": "external memory "
                            "bits per frame", "ext_channels": "memory channels"}.get(d, d.upper())
                    cap = self.caps[b].get(d)
                    self.guarded(m.add(total <= cap),
                                 f"board {b} ({p.boards[b].board.name}): {what} at most {cap:,}")

    def set_objective(self) -> None:
        p, m, B, L, objective = self.p, self.m, self.B, self.L, self.objective
        if objective == "ii" and self.ii is not None:
            m.minimize(self.ii)
        elif objective == "balance":  # the fullest board's fill, in per mille of its capacity
            M = m.new_int_var(0, 1000, "fill")
            for b in range(B):
                for d in RES:
                    if self.sums[b][d] and self.caps[b].get(d):
                        m.add(1000 * sum(self.sums[b][d]) <= M * self.caps[b].get(d))
            m.minimize(M)
        elif objective == "crossings" and L > 1:  # Elastic-DF's: 1 per SLR crossed, 10 a link
            bins, u = self.bins, self.u
            m.minimize(sum((10 if bins[lyr][0] != bins[lyr - 1][0] else 1)
                           * (u[e.v][lyr] - u[e.u][lyr])
                           for lyr in range(1, L) for e in p.edges))
        elif objective == "boards" and self.R > 1:  # every copy is a board
            m.minimize(sum(self.reps))
        elif objective == "boards" and B > 1:
            m.minimize(sum(self.ub(self.n - 1, b) for b in range(1, B)))
        elif objective == "resources":
            self.resources_objective()

    def resources_objective(self) -> None:
        """Least capacity-weighted resources, then fewer bits on the links (one unit per
        512-bit ACCL word)."""
        p = self.p
        tot = {d: max(c.get(d) for c in self.caps) for d in DIMS}
        terms: list[Expr] = []
        for i in range(self.n):
            for k in self.ks[i]:
                use = min((p.usage(i, k, self.T, b) for b in range(self.B)),
                          key=lambda u: sum(u.values()))
                w = int(round(1e4 * sum(min(v, tot[d]) / tot[d] for d, v in use.items() if tot[d])))
                xv = self.x[i][k]
                if w and not isinstance(xv, int):
                    terms.append(w * xv)
        terms.extend((bits // 512) * t for bits, t in self.cut_terms)
        if terms:
            self.m.minimize(sum(terms))

    def add_hint(self, hint: Sequence[Any]) -> None:
        """Start from a plan: (choice, boards[, SLR per layer[, copies per board]])."""
        m, u, bins = self.m, self.u, self.bins
        hc, hb = hint[0], hint[1]
        hs = hint[2] if len(hint) > 2 and hint[2] else None
        for i in range(self.n):
            for k, var in self.x[i].items():
                if not isinstance(var, int):
                    m.add_hint(var, int(hc[i] == k))
            for lyr in range(1, self.L):
                b, s = bins[lyr]
                ui = u[i][lyr]
                if isinstance(ui, int) or (s and (hs is None or hs[i] is None)):
                    continue  # no hint for a split board's SLRs without a placement
                at = (hb[i], hs[i] if hs is not None and hs[i] is not None else 0)
                m.add_hint(ui, int(at >= (b, s or 0)))
        if self.R > 1:
            hr = hint[3] if len(hint) > 3 and hint[3] else None
            used_h = max(hb) + 1
            for b, wb in enumerate(self.wr):
                for r, var in wb.items():
                    m.add_hint(var, int(b < used_h and (hr[b] if hr else 1) == r))

    # -- the solve ------------------------------------------------------------------------

    def solve(self, *, time_limit: float, deterministic_limit: float, workers: int, seed: int,
              on_solution: Callable[[float], None] | None) -> AtResult:
        solver = cp_solver()
        prm = solver.parameters
        # One worker searches deterministically: with the deterministic-time limit, the same
        # inputs and seed give the same plan. The wall-clock limit is the safety net for a
        # loaded machine (only when it cuts a phase short can two runs differ). More workers
        # run CP-SAT's parallel portfolio: faster, not reproducible.
        prm.num_workers = max(1, workers)
        prm.random_seed = seed
        # building the model counts against the limit (on 300-layer chains it took 1-2 s,
        # and calls overran their budget by that much): the caller passes what is left
        prm.max_time_in_seconds = time_limit
        prm.max_deterministic_time = deterministic_limit
        prm.log_search_progress = False
        # one presolve round and light probing: on 150-300-layer chains presolve took half
        # of each call; measured twice as fast end to end (results/scale_benchmark.csv)
        prm.max_presolve_iterations = 1
        prm.cp_model_probing_level = 1
        if self.guards:
            self.m.add_assumptions([lit for lit, _ in self.guards])
        callback = _Progress(on_solution) if on_solution else None
        status = solver.solve(self.m, callback)
        name = STATUS.get(status, "UNKNOWN")
        if name not in ("OPTIMAL", "FEASIBLE"):
            core: tuple[str, ...] = ()
            if self.guards and name == "INFEASIBLE":
                by_index = {lit.index: label for lit, label in self.guards}
                core = tuple(by_index[i]
                             for i in solver.sufficient_assumptions_for_infeasibility()
                             if i in by_index)
            return AtResult(status=name, wall_s=solver.wall_time, core=core)
        return self.read(solver, name)

    def read(self, solver: cp_model.CpSolver, status: str) -> AtResult:
        """The plan in the solver's solution."""
        def val(v: Lit) -> int:
            return v if isinstance(v, int) else int(solver.value(v))

        n, L, u = self.n, self.L, self.u
        choice = [next(k for k, var in self.x[i].items() if val(var)) for i in range(n)]
        at = [self.bins[sum(val(u[i][lyr]) for lyr in range(1, L))] for i in range(n)]
        boards = [b for b, _ in at]
        slrs = [s for _, s in at] if any(self.split) else None
        scored = self.objective != "none"
        obj = solver.objective_value if scored else None
        bnd = solver.best_objective_bound if scored else None
        copies = ([max(1, sum(r * val(v) for r, v in wb.items())) for wb in self.wr]
                  if self.R > 1 else None)
        return AtResult(status=status, choice=choice, boards=boards, objective=obj, bound=bnd,
                        wall_s=solver.wall_time, slrs=slrs, replicas=copies)


class _Progress(cp_model.CpSolverSolutionCallback):
    """Reports the objective of every solution CP-SAT finds."""

    def __init__(self, report: Callable[[float], None]) -> None:
        super().__init__()
        self.report = report

    def on_solution_callback(self) -> None:  # pragma: no cover - timing dependent
        self.report(self.objective_value)


def _implies(m: Any, a: Any, b: Any) -> None:
    """a => b for literals or the constants 0/1 the bin bounds fix."""
    if isinstance(a, int) and isinstance(b, int):
        if a and not b:
            m.add_bool_or([])
    elif isinstance(a, int):
        if a:
            m.add(b == 1)
    elif isinstance(b, int):
        if not b:
            m.add(a == 0)
    else:
        m.add_implication(a, b)


def _bin_range(p: PartitionProblem, ks: list[list[int]], bins: list[tuple[int, int | None]],
               T: int) -> tuple[list[int], list[int]]:
    """Per layer, the first and last bin it can sit in: the layers up to it need at least
    their least resources (any option meeting ``T``, any board) in the bins up to its own,
    and the layers from it on in the bins from its own."""
    n, L = p.n, len(bins)
    caps = [[int(p.slr_table(b)[s][d]) for d in RES] if s is not None
            else p.capacity(b, T).values(RES) for b, s in bins]
    boards = sorted({b for b, _ in bins})
    least = [Resources.least((p.usage(i, k, T, b) for k in ks[i] for b in boards), RES
                             ).values(RES) for i in range(n)]
    R = len(RES)

    def cum(rows: list[list[int]]) -> list[list[int]]:
        out, acc = [], [0] * R
        for r in rows:
            acc = [a + x for a, x in zip(acc, r, strict=True)]
            out.append(acc)
        return out

    pre, cap_pre = cum(least), cum(caps)
    suf = cum(least[::-1])[::-1]
    cap_suf = cum(caps[::-1])[::-1]
    lo, hi = [], []
    for i in range(n):
        lo.append(next((lyr for lyr in range(L) if all(pre[i][d] <= cap_pre[lyr][d]
                                                   for d in range(R))), L))
        hi.append(next((lyr for lyr in range(L - 1, -1, -1) if all(suf[i][d] <= cap_suf[lyr][d]
                                                               for d in range(R))), -1))
    return lo, hi


def _out_width(c: Any) -> int:
    return max(c.outstream_widths_padded or (0,)) if c is not None else 0
