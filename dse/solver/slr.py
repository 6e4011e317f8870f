"""SLRs: each Alveo board modelled per super logic region, as FINN's platform model does.

Per-SLR area is FINN's per-SLR table (``finn_slrs``, ``hardware_facts.md`` §1.2) less the
shell parts in their SLR: the static region (Coyote's locked checkpoint, or nothing for the
Vitis platforms whose table is already the dynamic region) and the HBM/DDR controller in the
memory's SLR, the network stack and ACCL's CCLO in the network port's SLR. Caps are FINN's
per-SLR limits for timing closure (LUT 0.7, FF 0.5, BRAM18/URAM/DSP 0.8) and Elastic-DF's
rule that the mean of the BRAM, URAM and DSP utilization stays <= 0.7.

Every layer sits in one SLR: a folding larger than the largest SLR is not legal
(``PartitionProblem.cost_on``). ``pack`` is the independent placement of a plan's layers into
a board's SLRs (exact, CP-SAT bin packing, with the SLL wires between adjacent SLRs: the
padded widths of the streams that cross a boundary, against its SLL count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dse.specs.resources import RESOURCE_NAMES, Resources

SLR_CAPS = {"lut": 0.7, "ff": 0.5, "bram18": 0.8, "uram": 0.8, "dsp": 0.8}
MEAN_CAP = 0.7  # Elastic-DF: mean of BRAM18, URAM and DSP utilization per SLR
SLL_PER_BOUNDARY = 23_040  # Vivado's "SLR1<->SLR0 ... Available 23040" on U55C
DIMS = RESOURCE_NAMES
#: one layer's or one SLR's use: a record, or a mapping by kind (the LLM planner's tables)
Counts = Resources | Mapping[str, int]


def slr_areas(cfg: Any, multi_board: bool) -> list[dict[str, int]] | None:
    """Each SLR's area less the shell parts that sit in it; None for boards without a
    per-SLR table (one die: the board capacity is the SLR)."""
    b = cfg.board
    if not b.finn_slrs or (b.slrs < 2 and b.slice_of < 2):
        return None
    area = [dict(r.as_dict()) for r in b.finn_slrs]
    shell = cfg.shell
    parts: list[tuple[int, Any]] = []
    if shell.name != "vitis":  # FINN's table is the Vitis dynamic region; others sit in it
        parts.append((0, shell.base))
    if b.hbm_gib or b.ddr_gib:
        mem_slr = b.hbm_slr if b.hbm_slr is not None else (b.ddr_slrs[0] if b.ddr_slrs else 0)
        parts.append((mem_slr, shell.memory_controller))
    if multi_board:
        eth = getattr(b, "eth_slr", None)
        eth = eth if eth is not None else len(area) - 1
        parts.append((eth, shell.network))
        parts.append((eth, shell.cclo))
    for s, r in parts:
        s = min(s, len(area) - 1)
        for d, v in r.as_dict().items():
            if d in area[s]:
                area[s][d] = max(0, area[s][d] - v)
    return area


def slr_capacities(cfg: Any, multi_board: bool) -> list[dict[str, Any]] | None:
    """Usable resources per SLR after the shell and FINN's per-SLR caps; None for boards
    without a per-SLR table (one die: the board capacity is the SLR)."""
    area = slr_areas(cfg, multi_board)
    if area is None:
        return None
    caps = {d: min(float(cfg.caps.get(d, 1.0)), SLR_CAPS[d]) for d in DIMS}
    return [{d: int(a.get(d, 0) * caps[d]) for d in DIMS} | {"_area": a} for a in area]


def slice_factors(cfg: Any) -> list[int]:
    """How many replicas one board can hold side by side, each in its own group of SLRs
    (Elastic-DF's per-SLR replicas): the divisors of its SLR count above 1."""
    n = cfg.board.slrs if cfg.board.finn_slrs else 1
    return [k for k in range(2, n + 1) if n % k == 0]


def slice_config(cfg: Any, k: int) -> Any:
    """One of ``k`` equal slices of a board for one replica: each slice is a group of
    consecutive SLRs, with the elementwise least area over the groups (net of the shell parts
    in them, so that one design fits every slice), a 1/k share of the external memory (its
    capacity, bandwidth and channels) and the board's host DMA shared the same way."""

    b = cfg.board
    area = slr_areas(cfg, False)
    if area is None or len(area) % k:
        raise ValueError(f"{b.name} has no {k} equal SLR groups")
    g = len(area) // k
    rows = tuple(Resources(**{d: min(area[j * g + s][d] for j in range(k)) for d in DIMS})
                 for s in range(g))
    zero = Resources()
    shell = replace(cfg.shell, base=zero, memory_controller=zero, ddr_controller=zero,
                    network=zero, cclo=zero)
    board = replace(b, slrs=g, finn_slrs=rows, device=Resources.total(rows),
                    hbm_gib=b.hbm_gib / k, hbm_bandwidth_gbps=b.hbm_bandwidth_gbps / k,
                    hbm_channels=b.hbm_channels // k, ddr_gib=b.ddr_gib / k,
                    ddr_bandwidth_gbps=b.ddr_bandwidth_gbps / k, slice_of=k)
    return replace(cfg, board=board, shell=shell)


def bound_by_slrs(cap: Resources, slrs: list[dict[str, Any]] | None) -> Resources:
    """A board's capacity, no more than its SLRs hold together."""
    if slrs is None:
        return cap
    return cap.with_counts(**{d: min(v, sum(int(x[d]) for x in slrs)) for d, v in cap.items(DIMS)})


def fits_one(use: Counts, slrs: list[dict[str, Any]]) -> bool:
    """Whether one layer fits some SLR on its own."""
    got = {d: use.get(d, 0) for d in DIMS}  # read once, not once per SLR
    return any(all(got[d] <= s[d] for d in DIMS) and _mean_ok(got, s) for s in slrs)


def _mean_ok(use: Counts, s: dict[str, Any]) -> bool:
    a = s["_area"]
    fr = [use.get(d, 0) / a[d] for d in ("bram18", "uram", "dsp") if a.get(d)]
    return not fr or sum(fr) / len(fr) <= MEAN_CAP + 1e-9


MEAN_SCALE = 1_000_000  # the mean rule in integers: per-mille-of-a-thousand units


def mean_units(use: Counts, s: dict[str, Any]) -> tuple[int, int]:
    """The mean rule as an integer sum: (this layer's units, the SLR's allowance). Units are
    rounded up, so a sum within the allowance keeps the exact mean within ``MEAN_CAP``."""
    a = s["_area"]
    ds = [d for d in ("bram18", "uram", "dsp") if a.get(d)]
    units = sum(-(-use.get(d, 0) * MEAN_SCALE // a[d]) for d in ds)
    return units, int(MEAN_CAP * len(ds) * MEAN_SCALE)


def check_assignment(layers: Sequence[tuple[str, Counts]], edges: list[tuple[str, str, int]],
                     slrs: list[dict[str, Any]], slr_of: dict[str, int], *,
                     sll_limit: int | None = None) -> list[str]:
    """What a given placement of ``layers`` into ``slrs`` breaks (empty: it is legal): the
    caps and the mean rule per SLR, the SLL wires per boundary."""
    sll_limit = SLL_PER_BOUNDARY if sll_limit is None else sll_limit
    bad: list[str] = []
    S = len(slrs)
    for n, _ in layers:
        if not 0 <= slr_of.get(n, -1) < S:
            bad.append(f"layer {n} has no SLR")
    if bad:
        return bad
    for s in range(S):
        on = [u for n, u in layers if slr_of[n] == s]
        for d in DIMS:
            used = sum(u.get(d, 0) for u in on)
            if used > slrs[s][d]:
                bad.append(f"SLR{s}: {d.upper()} {used:,} > {slrs[s][d]:,}")
        total = {d: sum(u.get(d, 0) for u in on) for d in DIMS}
        if not _mean_ok(total, slrs[s]):
            bad.append(f"SLR{s}: mean BRAM/URAM/DSP utilization above {MEAN_CAP:g}")
    for k, bits in enumerate(sll_bits(edges, slr_of, S)):
        if bits > sll_limit:
            bad.append(f"SLR{k}<->SLR{k + 1}: {bits:,} SLL wires > {sll_limit:,}")
    return bad


def sll_bits(edges: list[tuple[str, str, int]], slr_of: dict[str, int], S: int) -> list[int]:
    """Padded stream bits crossing each SLR boundary (edges between placed layers)."""
    return [sum(w for u, v, w in edges if u in slr_of and v in slr_of
                and min(slr_of[u], slr_of[v]) <= k < max(slr_of[u], slr_of[v]))
            for k in range(S - 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Packing:
    feasible: bool
    slr_of: dict[str, int]
    usage: list[dict[str, int]]
    sll: list[int]  # padded stream bits crossing each boundary
    status: str


def pack(layers: Sequence[tuple[str, Counts]], edges: list[tuple[str, str, int]],
         slrs: list[dict[str, Any]], *, time_limit: float = 10.0,
         sll_limit: int | None = None, adjacent_only: bool = False) -> Packing:
    """Place ``layers`` (name, resources) into ``slrs``: every SLR within its caps and the
    mean rule, every boundary within its SLL wires (``edges``: src, dst, padded width).
    Any feasible placement is kept (the SLL limit is a constraint, not an objective).
    ``adjacent_only``: no stream between SLRs that are not neighbours, as FINN's Elastic-DF
    partitioner rules (its SLL count between SLR0 and SLR2 is 0); by default such a stream
    passes through the SLRs between and takes SLL wires at every boundary it crosses."""
    from ortools.sat.python import cp_model  # (heavy: it loads pandas too)

    from dse.solver.cpsolver import cp_solver  # (imports OR-Tools)

    sll_limit = SLL_PER_BOUNDARY if sll_limit is None else sll_limit
    S = len(slrs)
    m = cp_model.CpModel()
    names = [n for n, _ in layers]
    y = {(n, s): m.new_bool_var(f"y_{i}_{s}") for i, n in enumerate(names) for s in range(S)}
    for n in names:
        m.add_exactly_one(y[n, s] for s in range(S))
    use = dict(layers)
    for s in range(S):
        for d in DIMS:
            m.add(sum(use[n].get(d, 0) * y[n, s] for n in names) <= slrs[s][d])
        a = slrs[s]["_area"]
        ds = [d for d in ("bram18", "uram", "dsp") if a.get(d)]
        if ds:  # mean utilization <= 0.7, scaled to integers
            scale = 1
            for d in ds:
                scale *= a[d]
            m.add(sum(use[n].get(d, 0) * (scale // a[d]) * y[n, s] for n in names for d in ds)
                  <= int(MEAN_CAP * len(ds) * scale))
    # prefix indicators p[n, k] = 1 if n sits in an SLR <= k; a stream crosses boundary k
    # when its ends differ there
    for k in range(S - 1):
        terms = []
        for u, v, w in edges:
            if u not in use or v not in use:
                continue
            pu = sum(y[u, s] for s in range(k + 1))
            pv = sum(y[v, s] for s in range(k + 1))
            c = m.new_bool_var(f"c_{u}_{v}_{k}")
            m.add(c >= pu - pv)
            m.add(c >= pv - pu)
            terms.append(w * c)
        m.add(sum(terms) <= sll_limit)
    if adjacent_only:
        for u, v, _ in edges:
            if u in use and v in use and u != v:
                for s in range(S):
                    for t in range(S):
                        if abs(s - t) > 1:
                            m.add_bool_or([y[u, s].negated(), y[v, t].negated()])
    solver = cp_solver()  # feasibility: any placement within the caps and SLL wires
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    st = solver.solve(m)
    name = solver.status_name(st)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Packing(feasible=False, slr_of={}, usage=[], sll=[], status=name)
    slr_of = {n: next(s for s in range(S) if solver.value(y[n, s])) for n in names}
    usage = [{d: sum(use[n].get(d, 0) for n in names if slr_of[n] == s) for d in DIMS}
             for s in range(S)]
    return Packing(feasible=True, slr_of=slr_of, usage=usage, sll=sll_bits(edges, slr_of, S),
                   status=name)


def board_layers(problem: Any, choice: Any, boards: Any, b: int
                 ) -> tuple[list[tuple[str, Counts]], list[tuple[str, str, int]]]:
    """Board ``b``'s layers (name, resources on its part) and the streams between them
    (src, dst, the producer's padded output width) in a plan."""
    layers = []
    width: dict[str, int] = {}
    for i in range(problem.n):
        if boards[i] != b:
            continue
        c = problem.cost_on(i, choice[i], b)
        name = problem.order[i]
        layers.append((name, Resources.of(c) + problem.share(i, choice[i])))  # + input FIFO
        width[name] = max(c.outstream_widths_padded or (0,))
    edges = [(problem.order[e.u], problem.order[e.v], width[problem.order[e.u]])
             for e in problem.edges
             if problem.order[e.u] in width and problem.order[e.v] in width]
    return layers, edges


def chain_pack(layers: Sequence[tuple[str, Counts]], edges: list[tuple[str, str, int]],
               slrs: list[dict[str, Any]], *, sll_limit: int | None = None
               ) -> dict[str, int] | None:
    """The layers, in their pipeline order, cut into consecutive SLRs (SLR0 first): each
    SLR is filled as far as its caps, the mean rule and the SLL wires at the cut allow. The
    placement the solver's per-SLR model describes; None when this greedy fill fails."""
    sll_limit = SLL_PER_BOUNDARY if sll_limit is None else sll_limit
    names = [n for n, _ in layers]
    pos = {n: i for i, n in enumerate(names)}
    cross = [0] * (len(names) + 1)  # padded bits over a cut before position c
    for u, v, w in edges:
        if u in pos and v in pos:
            for c in range(min(pos[u], pos[v]) + 1, max(pos[u], pos[v]) + 1):
                cross[c] += w
    out: dict[str, int] = {}
    start, s = 0, 0
    while start < len(names):
        if s >= len(slrs):
            return None
        total = dict.fromkeys(DIMS, 0)
        end = start
        while end < len(names):
            use = layers[end][1]
            nxt = {d: total[d] + use.get(d, 0) for d in DIMS}
            if any(nxt[d] > slrs[s][d] for d in DIMS) or not _mean_ok(nxt, slrs[s]):
                break
            total, end = nxt, end + 1
        if end < len(names):  # cut where the SLL wires allow, at or before ``end``
            while end > start and cross[end] > sll_limit:
                end -= 1
        if end == start and start < len(names):
            s += 1  # nothing fits here (or no legal cut): the next SLR
            continue
        for i in range(start, end):
            out[names[i]] = s
        start, s = end, s + 1
    return out


def place(problem: Any, result: Any, time_limit: float = 10.0) -> list[dict[str, Any] | None]:
    """The SLR placement of every board of a solved plan (None for one-die boards): the
    solver's own where it chose the SLRs (checked here), else an exact packing."""
    out: list[dict[str, Any] | None] = []
    boards = list(result.boards)
    chosen = getattr(result, "slrs", None) or ()
    for b in range(problem.n_boards):
        slrs = problem.slr_caps[b] if b < len(problem.slr_caps) else None
        idx = [i for i in range(problem.n) if boards[i] == b]
        if slrs is None or not idx:
            out.append(None)
            continue
        layers, edges = board_layers(problem, result.choice, boards, b)
        given = {problem.order[i]: chosen[i] for i in idx
                 if i < len(chosen) and chosen[i] is not None}
        if len(given) == len(idx) and not check_assignment(layers, edges, slrs, given):
            use = dict(layers)
            p = Packing(feasible=True, slr_of=given,
                        usage=[{d: sum(use[n].get(d, 0) for n in given if given[n] == s)
                                for d in DIMS} for s in range(len(slrs))],
                        sll=sll_bits(edges, given, len(slrs)), status="SOLVER")
        else:
            p = pack(layers, edges, slrs, time_limit=time_limit)
        out.append({"feasible": p.feasible, "status": p.status, "slr_of": p.slr_of,
                    "usage": p.usage, "sll_bits": p.sll, "sll_limit": SLL_PER_BOUNDARY,
                    "capacity": [{d: s[d] for d in DIMS} for s in slrs]})
    return out


def assign(problem: Any, choice: Any, boards: Any, slrs: Any = None, *,
           time_limit: float = 5.0) -> tuple[list[int | None], set[int]]:
    """An SLR per layer: kept from ``slrs`` where given; on every other board with SLRs the
    layers placed in chain order where that fits (what the solver's per-SLR model
    describes), else by exact packing. Also the boards that cannot be packed."""
    out: list[int | None] = list(slrs) if slrs else [None] * problem.n
    bad: set[int] = set()
    for b in sorted(set(boards)):
        caps = problem.slr_caps[b] if b < len(problem.slr_caps) else None
        idx = [i for i in range(problem.n) if boards[i] == b]
        if caps is None or all(out[i] is not None for i in idx):
            continue
        layers, edges = board_layers(problem, choice, boards, b)
        at = chain_pack(layers, edges, caps)
        if at is None:
            p = pack(layers, edges, caps, time_limit=time_limit)
            if not p.feasible:
                bad.add(b)
                continue
            at = p.slr_of
        for i in idx:
            out[i] = at[problem.order[i]]
    return out, bad


def floorplan_json(plan_layers: list[dict[str, Any]], board: int,
                   slr_of: dict[str, int]) -> dict[str, Any]:
    """FINN's ``vitis_floorplan_file`` for one board: per node its SLR, partition and device
    (``Defaults`` keeps every other node's choice to Vitis)."""
    fp: dict[str, Any] = {"Defaults": {}}
    for lyr in plan_layers:
        if lyr["board"] == board and lyr["name"] in slr_of:
            fp[lyr.get("finn_name") or lyr["name"]] = {"slr": int(slr_of[lyr["name"]]),
                                                   "partition_id": 0, "device_id": board,
                                                   "mem_port": ""}
    return fp
