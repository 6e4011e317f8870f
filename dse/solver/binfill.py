"""A constructive plan for a target II that fills the chain's bins (SLRs) one by one.

The chain is a sequence of bins: each SLR of an Alveo board (in order SLR0, SLR1, ...), or a
whole board without an SLR table. For contiguous partitions, giving each bin the longest
prefix of the remaining layers that fits it is optimal when the bins are independent: the
layers left over are a suffix of what any other split leaves, and a subset of a bin that fits
still fits. So each bin is filled greedily, layer by layer, and when the next layer fits in
none of its foldings the bin's foldings are chosen again together (a small multiple-choice
knapsack, CP-SAT) before the bin is closed. Cuts move back to the nearest legal point
(link traffic and ACCL limits between boards, SLL wires between SLRs). Board-level limits
(external memory, ACCL frame buffers) are booked per board.

Where :func:`dse.solver.greedy.greedy_slrs` fixes one folding per layer before packing, this
chooses each layer's folding for the bin it lands in, so a bin short of LUTs takes the BRAM,
URAM or DSP variants. A plan it returns is checked with the evaluator.
"""

from __future__ import annotations

import time
from typing import Any

from ortools.sat.python import cp_model

from dse.solver.cpsat import _out_width, options_at
from dse.solver.cpsolver import cp_solver
from dse.solver.evaluate import evaluate
from dse.solver.problem import RES, UNBUILDABLE, PartitionProblem, frame_buffer_bram18
from dse.solver.slr import SLL_PER_BOUNDARY, mean_units
from dse.specs import Resources

Plan = tuple[list[int], list[int], list[int | None]]


def fill_bins(problem: PartitionProblem, T: int, *, time_limit: float = 3.0) -> Plan | None:
    """(choice, boards, SLR per layer) reaching II <= ``T``, or None if the heuristic fails
    (or runs out of ``time_limit``). Not for segment replicas."""
    if problem.max_replicas > 1:
        return None
    t_end = time.monotonic() + time_limit
    ks = options_at(problem, T)
    if any(not k for k in ks):
        return None
    return _BinFill(problem, T, ks, t_end).run()


class _BinFill:
    """The chain's bins (a board, or an SLR of one) filled in order, each with the longest
    run of layers it holds, the foldings chosen for the bin."""

    def __init__(self, p: PartitionProblem, T: int, ks: list[list[int]], t_end: float) -> None:
        self.p, self.T, self.t_end = p, T, t_end
        n, B = self.n, self.B = p.n, p.n_boards
        self.bins: list[tuple[int, int | None]] = []
        for b in range(B):
            sl = p.slr_caps[b] if b < len(p.slr_caps) else None
            self.bins += [(b, s) for s in range(len(sl))] if sl else [(b, None)]
        self.bcaps = [p.capacity(b, T) for b in range(B)]
        self.couple = {c.consumer: c for c in p.couplings}
        # per board: (option, use) pairs of each layer that meet T there
        self.use: list[list[dict[int, Resources]]] = [
            [{} for _ in range(n)] for _ in range(B)]
        for b in range(B):
            for i in range(n):
                for k in ks[i]:
                    u = p.usage(i, k, T, b)
                    if u.lut < UNBUILDABLE and p.cycles_on(i, k, b) <= T:
                        self.use[b][i][k] = u
        cross_bits = [0] * (n + 1)
        cross_load = [0] * (n + 1)
        blocked = [False] * (n + 1)
        self.crossing: list[list[int]] = [[] for _ in range(n + 1)]
        for ei, e in enumerate(p.edges):
            for c in range(e.u + 1, e.v + 1):
                cross_bits[c] += e.link_bits
                cross_load[c] += p.link_load(e)
                self.crossing[c].append(ei)
                if not p.cuttable(e):
                    blocked[c] = True
        link_cap, rx = p.link_cap_bits(T), p.rx_capacity_bytes()
        self.board_cut = [0 < c < n and not blocked[c] and cross_load[c] <= link_cap
                          and cross_bits[c] // 8 <= rx for c in range(n + 1)]
        self.choice: list[int] = [-1] * n
        self.boards: list[int] = [0] * n
        self.slrs: list[int | None] = [None] * n
        self.committed = [Resources() for _ in range(B)]
        self.refolded: dict[int, dict[int, int]] = {}

    def allowed(self, i: int, b: int, picked: dict[int, int]) -> list[int]:
        opts = list(self.use[b][i])
        c = self.couple.get(i)
        if c is not None:
            kp = picked.get(c.producer, self.choice[c.producer])
            if kp >= 0:
                opts = [k for k in opts if c.consumer_keys[k] == c.producer_keys[kp]]
        return opts

    def run(self) -> Plan | None:
        n, bins, boards = self.n, self.bins, self.boards
        lo, j = 0, 0
        while lo < n:
            if j >= len(bins) or time.monotonic() > self.t_end:
                return None
            b, s = bins[j]
            last_of_board = j + 1 >= len(bins) or bins[j + 1][0] != b
            hi, picked = self.fill_bin(lo, b, s)
            if last_of_board and s is not None and hi < n:
                hi, picked = self.grow_board(lo, hi, b, s, picked)
            # cut at the nearest legal point at or before hi
            while hi > lo and not self.legal(hi, b, lo, picked, last_of_board):
                hi -= 1
            if hi == lo and last_of_board and all(boards[i] != b for i in range(lo)):
                return None  # a whole board left empty: the chain would pass through it
            self.commit(lo, hi, b, s, picked, last_of_board)
            lo = hi
            j += 1
        for b, at in self.refolded.items():  # these boards' SLRs: in any order
            for i in range(n):
                if boards[i] == b:
                    self.slrs[i] = at.get(i)
        ev = evaluate(self.p, self.choice, boards, ii_hint=self.T)
        if not ev.feasible or ev.ii_cycles > self.T:
            return None
        return self.choice, boards, self.slrs

    def fill_bin(self, lo: int, b: int, s: int | None) -> tuple[int, dict[int, int]]:
        """The layers from ``lo`` on that the bin holds, each at the folding that takes the
        least of what the bin has left (the bin's foldings chosen again, with the layer in,
        where none fits): (the first layer left out, the foldings picked)."""
        p, n, use, bcaps = self.p, self.n, self.use, self.bcaps
        cap = p.slr_table(b)[s] if s is not None else None
        lim = {d: (cap[d] if cap is not None else v) for d, v in bcaps[b].items(RES)}
        room_b = bcaps[b] - self.committed[b]
        allowance = mean_units({}, cap)[1] if cap is not None else 0
        picked: dict[int, int] = {}
        tot = Resources()
        units = 0

        def fits(u: Resources, tot: Resources, units: int) -> int | None:
            nxt = tot + u
            if any(v > lim[d] for d, v in nxt.items(RES)) or not nxt.fits(room_b):
                return None
            m = units + (mean_units(u, cap)[0] if cap is not None else 0)
            return m if cap is None or m <= allowance else None

        hi = lo
        while hi < n:
            best = None
            for k in self.allowed(hi, b, picked):
                u = use[b][hi][k]
                m = fits(u, tot, units)
                if m is None:
                    continue
                # the folding that takes the least of what the bin has left
                score = sum(v / max(1, lim[d] - tot.get(d)) for d, v in u.items(RES))
                if best is None or score < best[0]:
                    best = (score, k, m)
            if best is None:  # choose the bin's foldings again, with this layer in
                again = _knapsack(p, use[b], list(range(lo, hi + 1)), picked, self.choice,
                                  lim, room_b, cap, allowance, self.couple,
                                  min(0.5, max(0.05, self.t_end - time.monotonic())))
                if again is None:
                    break
                picked = again
                tot = Resources.total(use[b][i][k] for i, k in picked.items())
                units = sum(mean_units(use[b][i][k], cap)[0] for i, k in picked.items()
                            ) if cap is not None else 0
                hi += 1
                continue
            _, k, units = best
            picked[hi] = k
            tot += use[b][hi][k]
            hi += 1
        return hi, picked

    def grow_board(self, lo: int, hi: int, b: int, s: int, picked: dict[int, int]
                   ) -> tuple[int, dict[int, int]]:
        """The board's layers need not follow its SLRs in order: take more layers while the
        exact packer still places them (foldings chosen for the whole board)."""
        p, n, use, choice, slrs = self.p, self.n, self.use, self.choice, self.slrs
        committed, t_end = self.committed, self.t_end
        start = next((i for i in range(lo) if self.boards[i] == b and choice[i] >= 0), lo)
        both = {i: choice[i] for i in range(start, lo)} | picked
        board_slrs: dict[int, int] = {}
        hint_slrs = {i: t for i in range(start, lo) if (t := slrs[i]) is not None}
        hint_slrs.update(dict.fromkeys(range(lo, hi), s))
        room = self.bcaps[b] - committed[b] + Resources.total(
            use[b][i][choice[i]] for i in range(start, lo))

        def trial_at(h: int) -> tuple | None:
            if time.monotonic() >= t_end:
                return None
            layers = list(range(start, h))
            return _board_knapsack(p, _shortlist(use[b], layers, both, self.couple,
                                                 self.bcaps[b]),
                                   layers, both, choice, b, room, self.couple,
                                   min(1.0, t_end - time.monotonic()), hint_slrs)

        # the longest prefix that still packs: gallop, then bisect (a subset of layers
        # that packs still packs)
        good_h, good, bad_h, step = hi, None, n + 1, 1
        if b == self.B - 1:  # the last board takes every layer left, or the fill fails
            good_h, step = n - 1, 1
        while good_h < n and time.monotonic() < t_end:
            h = min(n, good_h + step)
            r = trial_at(h)
            if r is None:
                bad_h = h
                break
            good_h, good, step = h, r, step * 2
        while bad_h - good_h > 1 and good_h < n and time.monotonic() < t_end:
            h = (good_h + bad_h) // 2
            r = trial_at(h)
            if r is None:
                bad_h = h
            else:
                good_h, good = h, r
        if good is not None:
            both, board_slrs = good
            hi = good_h
        if len(both) > len(picked) + (lo - start):
            for i in range(start, lo):  # the board's earlier SLRs, refolded
                committed[b] = committed[b] - use[b][i][choice[i]] + use[b][i][both[i]]
                choice[i], slrs[i] = both[i], None
            picked = {i: both[i] for i in range(lo, hi)}
            self.refolded[b] = board_slrs
        return hi, picked

    def legal(self, c: int, b: int, lo: int, picked: dict[int, int],
              last_of_board: bool) -> bool:
        """A cut before layer ``c``: a board boundary the links, ACCL and the sender's frame
        buffers allow, or an SLR boundary within its SLL wires."""
        p = self.p
        if c >= self.n:
            return True
        if last_of_board:
            if not self.board_cut[c]:
                return False
            if p.accl.sender_frame_buffer:  # the frames leaving are buffered here
                fb = sum(frame_buffer_bram18(p.edges[ei].bits) for ei in self.crossing[c])
                inside = sum(self.use[b][i][picked[i]].bram18 for i in range(lo, c))
                if self.committed[b].bram18 + inside + fb > self.bcaps[b].bram18:
                    return False
            return True
        w = sum(_width(p, e.u, picked.get(e.u, self.choice[e.u]), b)
                for e in (p.edges[ei] for ei in self.crossing[c]))
        return w <= SLL_PER_BOUNDARY

    def commit(self, lo: int, hi: int, b: int, s: int | None, picked: dict[int, int],
               last_of_board: bool) -> None:
        """Layers lo..hi-1 into the bin; the frames leaving the board buffered on it (and a
        skip stream's on the next)."""
        p, committed = self.p, self.committed
        for i in range(lo, hi):
            self.choice[i], self.boards[i], self.slrs[i] = picked[i], b, s
            committed[b] += self.use[b][i][picked[i]]
        if last_of_board and hi < self.n:
            for ei in self.crossing[hi]:
                e = p.edges[ei]
                fb = frame_buffer_bram18(e.bits)
                if p.accl.sender_frame_buffer:
                    committed[b] = committed[b].plus("bram18", fb)
                if e.skip and b + 1 < self.B:
                    committed[b + 1] = committed[b + 1].plus("bram18", fb)


#: above this many (layer, folding) pairs a board's placement model keeps a shortlist of each
#: layer's foldings (_shortlist): on 70-layer boards of 278-layer chains the full model ran
#: into its 1 s limit on most calls
SHORTLIST_ABOVE = 400


def _shortlist(use: list[dict[int, Resources]], layers: list[int], picked: dict[int, int],
               couple: dict, cap: Resources) -> list[dict[int, Resources]]:
    """``use`` with, for each of ``layers`` that is not coupled to another, only the folding
    already picked and the ones least in each resource and in their scarcity-weighted sum;
    everything when the model is small. A heuristic's shortcut: the fill may miss a plan."""
    if sum(len(use[i]) for i in layers) <= SHORTLIST_ABOVE:
        return use
    coupled = {c.consumer for c in couple.values()} | {c.producer for c in couple.values()}
    w = {d: 1.0 / v if v else 1.0 for d, v in cap.items()}

    out = list(use)
    for i in layers:
        if i in coupled or len(use[i]) <= 4:
            continue
        ks = list(use[i])
        keep = {min(ks, key=lambda k: (use[i][k].weighted(w), k))}
        for d in (*RES, "ext_bpf"):
            keep.add(min(ks, key=lambda k: (use[i][k].get(d), use[i][k].weighted(w), k)))
        if picked.get(i) in use[i]:
            keep.add(picked[i])
        out[i] = {k: use[i][k] for k in sorted(keep)}
    return out


def _board_knapsack(p: PartitionProblem, use: list[dict[int, Resources]],
                    layers: list[int], picked: dict[int, int], choice: list[int], b: int,
                    room_b: Resources, couple: dict, time_limit: float,
                    hint_slrs: dict[int, int]) -> tuple[dict[int, int], dict[int, int]] | None:
    """Foldings and an SLR (any order) for ``layers`` on board ``b``: every SLR within its
    caps and the mean rule, every SLR boundary within its SLL wires (each crossing stream at
    its producer's widest folding), the board's limits; or None."""
    caps = p.slr_table(b)
    S = len(caps)
    m = cp_model.CpModel()
    y = {(i, k, t): m.new_bool_var("") for i in layers for k in use[i] for t in range(S)}
    x = {i: {k: sum(y[i, k, t] for t in range(S)) for k in use[i]} for i in layers}
    at = {i: {t: sum(y[i, k, t] for k in use[i]) for t in range(S)} for i in layers}
    for i in layers:
        if not use[i]:
            return None
        m.add(sum(x[i].values()) == 1)
        c = couple.get(i)
        if c is not None:
            key_of = c.producer_keys.__getitem__
            if c.producer in x:
                for key in {c.consumer_keys[k] for k in use[i]}:
                    m.add(sum(v for kp, v in x[c.producer].items() if key_of(kp) == key)
                          == sum(v for kc, v in x[i].items() if c.consumer_keys[kc] == key))
            elif choice[c.producer] >= 0:
                for kc, v in x[i].items():
                    if c.consumer_keys[kc] != key_of(choice[c.producer]):
                        m.add(v == 0)
    for t in range(S):
        for d in RES:
            terms: list[Any] = [use[i][k].get(d) * y[i, k, t] for i in layers for k in use[i]
                                if use[i][k].get(d)]
            if terms:
                m.add(sum(terms) <= caps[t][d])
        units = [mean_units(use[i][k], caps[t])[0] * y[i, k, t] for i in layers for k in use[i]]
        m.add(sum(units) <= mean_units({}, caps[t])[1])
    for d, room in room_b.items():
        terms = [use[i][k].get(d) * v for i in layers for k, v in x[i].items()
                 if use[i][k].get(d)]
        if terms:
            m.add(sum(terms) <= room)
    inside = set(layers)
    edges = [e for e in p.edges if e.u in inside and e.v in inside]
    if S > 1 and edges:
        below = {i: [m.new_bool_var("") for _ in range(S - 1)] for i in layers}
        for i in layers:  # below[i][t]: layer i in SLR <= t
            for t in range(S - 1):
                m.add(sum(at[i][q] for q in range(t + 1)) == below[i][t])
        for t in range(S - 1):
            terms = []
            for e in edges:
                w = max((_width(p, e.u, k, b) for k in use[e.u]), default=0)
                if not w:
                    continue
                cr = m.new_bool_var("")
                m.add(cr >= below[e.u][t] - below[e.v][t])
                m.add(cr >= below[e.v][t] - below[e.u][t])
                terms.append(w * cr)
            if terms:
                m.add(sum(terms) <= SLL_PER_BOUNDARY)
    for i in layers:  # the chain-order fill's foldings and SLRs where it placed the layer
        hk, ht = picked.get(i), hint_slrs.get(i)
        for (ii, kk, tt) in ((i, kk, tt) for kk in use[i] for tt in range(S)):
            m.add_hint(y[ii, kk, tt], int(kk == hk and tt == ht))
    s = cp_solver()
    s.parameters.num_workers = 1
    s.parameters.max_time_in_seconds = time_limit
    s.parameters.max_presolve_iterations = 1
    s.parameters.cp_model_probing_level = 0
    st = s.solve(m)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    got = {(i, k, t) for (i, k, t), v in y.items() if s.value(v)}
    return {i: k for i, k, _ in got}, {i: t for i, _, t in got}


def _width(p: PartitionProblem, i: int, k: int, b: int) -> int:
    return _out_width(p.cost_on(i, k, b))


def _knapsack(p: PartitionProblem, use: list[dict[int, Resources]], layers: list[int],
              picked: dict[int, int], choice: list[int], lim: dict[str, int],
              room_b: Resources, cap: dict | None, allowance: int, couple: dict,
              time_limit: float) -> dict[int, int] | None:
    """Foldings for ``layers`` in one bin within its limits, least of its scarce resources
    used, or None (infeasible or undecided in ``time_limit``)."""
    m = cp_model.CpModel()
    x = {i: {k: m.new_bool_var(f"x{i}_{k}") for k in use[i]} for i in layers}
    for i in layers:
        if not x[i]:
            return None
        m.add_exactly_one(x[i].values())
        c = couple.get(i)
        if c is not None:
            if c.producer in x:
                for kc, v in x[i].items():
                    m.add(sum(vp for kp, vp in x[c.producer].items()
                              if c.producer_keys[kp] == c.consumer_keys[kc]) >= 1
                          ).only_enforce_if(v)
            elif choice[c.producer] >= 0:
                key = c.producer_keys[choice[c.producer]]
                for kc, v in x[i].items():
                    if c.consumer_keys[kc] != key:
                        m.add(v == 0)
    for d, room in room_b.items():
        terms = [use[i][k].get(d) * v for i in layers for k, v in x[i].items()
                 if use[i][k].get(d)]
        if terms:
            m.add(sum(terms) <= min(lim.get(d, room), room))
    if cap is not None:
        terms = [mean_units(use[i][k], cap)[0] * v for i in layers for k, v in x[i].items()]
        m.add(sum(terms) <= allowance)
    m.minimize(sum(int(1e4 * sum(u / max(1, lim[d]) for d, u in use[i][k].items(RES))) * v
                   for i in layers for k, v in x[i].items()))
    for i, k in picked.items():
        if i in x and k in x[i]:
            for kk, v in x[i].items():
                m.add_hint(v, int(kk == k))
    s = cp_solver()
    s.parameters.num_workers = 1
    s.parameters.max_time_in_seconds = time_limit
    st = s.solve(m)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {i: next(k for k, v in x[i].items() if s.value(v)) for i in layers}
