"""Evaluate one assignment (option and board per layer) against every constraint.

This is the single source of truth for what a legal plan is; the CP-SAT formulation mirrors it
and the tests check the two agree (and brute-force tiny instances with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dse.solver.problem import PartitionProblem, frame_buffer_bram18
from dse.specs import Resources


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    feasible: bool
    violations: tuple[str, ...]
    ii_cycles: int
    layer_ii: int
    link_ii: int
    ext_ii: int
    bottleneck: str
    fps: float
    latency_s: float
    boards_used: int
    usage: tuple[Resources, ...]  # per board
    capacity: tuple[Resources, ...]
    link_bits: tuple[int, ...]  # per link: chain boundary b-1 -> b, or per board egress (switch)
    link_bytes: tuple[int, ...]
    #: per link: its load in ``PartitionProblem.link_load`` units (cycles on the ACCL+ curve)
    link_load: tuple[int, ...] = field(default=())
    cut_edges: tuple[int, ...]  # indices into problem.edges
    extra_bram18: tuple[int, ...] = field(default=())  # ACCL/skip buffers per board
    #: per board of the chain: the identical copies it runs as (segment replicas), 1 each
    replicas: tuple[int, ...] = field(default=())
    #: host I/O: the input and output IODMA stages' II (cycles of the fastest clock)
    host_ii: int = 0

    @property
    def boards_total(self) -> int:
        """Physical boards: every copy of every board of the chain in use."""
        reps = self.replicas or (1,) * self.boards_used
        return sum(reps[:self.boards_used])


def crossings(problem: PartitionProblem, boards: Sequence[int], ei: int) -> list[int]:
    """Chain boundaries (1..B-1) an edge crosses: board b-1 sends to board b."""
    e = problem.edges[ei]
    return list(range(boards[e.u] + 1, boards[e.v] + 1))


def evaluate(problem: PartitionProblem, choice: Sequence[int], boards: Sequence[int],
             *, ii_hint: int | None = None, replicas: Sequence[int] | None = None
             ) -> Evaluation:
    """Check every constraint; ``ii_hint`` is an operating II the plan is run at (>= its
    bottleneck), which sets the external-memory bandwidth the plan needs.

    ``replicas``: per board of the chain, the identical copies it runs as (a stage of ``r``
    boards takes every ``r``-th frame). A stage's II is its own over ``r``; the streams into
    and out of it are spread over its copies' links (each copy's port carries ``1/r`` of the
    frames) and each copy's external memory serves ``1/r`` of them. The copies count
    against the boards offered."""
    p = problem
    n, B = p.n, p.n_boards
    viol: list[str] = []
    if len(choice) != n or len(boards) != n:
        raise ValueError("choice and boards need one entry per layer")
    reps = [1] * B if replicas is None else [max(1, int(r)) for r in replicas][:B]
    reps += [1] * (B - len(reps))
    used_slots = (max(boards) + 1) if boards else 0
    if max(reps) > 1:
        if max(reps) > p.max_replicas:
            viol.append(f"a board runs as {max(reps)} copies; this instance allows "
                        f"{p.max_replicas}")
        if sum(reps[:used_slots]) > B:
            viol.append(f"the stages' copies need {sum(reps[:used_slots])} boards; "
                        f"{B} are offered")
    if boards and boards[0] != 0:
        viol.append(f"the first layer {p.order[0]} must sit on board 0")
    for i in range(1, n):
        if boards[i] < boards[i - 1]:
            viol.append(f"layer {p.order[i]} on board {boards[i]} comes after a layer on board "
                        f"{boards[i - 1]} (boards form a pipeline in order)")
            break
    for i in range(n):
        if not 0 <= boards[i] < B:
            viol.append(f"layer {p.order[i]}: board index {boards[i]} out of range")
    for c in p.couplings:
        if c.producer_keys[choice[c.producer]] != c.consumer_keys[choice[c.consumer]]:
            viol.append(f"{p.order[c.producer]} SIMD/parallel_window must match "
                        f"{p.order[c.consumer]} PE (FINN's depthwise rule)")
    # layer II
    cyc = [-(-p.cycles_on(i, choice[i], b) // reps[b])
           for i, b in ((i, min(max(boards[i], 0), B - 1)) for i in range(n))]
    layer_ii = max(cyc) if cyc else 1
    bottleneck = p.order[cyc.index(layer_ii)] if cyc else ""

    cut = [ei for ei, e in enumerate(p.edges) if boards[e.u] < boards[e.v]]
    for ei in cut:
        e = p.edges[ei]
        if not p.cuttable(e):
            viol.append(f"stream {e.tensor} ({e.link_bits // 8} B per frame) exceeds ACCL's "
                        f"transfer/receive limit; it cannot cross boards")
    # links
    if p.link.topology == "chain":
        link_bits = [0] * max(B - 1, 0)
        link_load = [0] * max(B - 1, 0)
        for ei in cut:
            for b in crossings(p, boards, ei):
                link_bits[b - 1] += p.edges[ei].link_bits
                link_load[b - 1] += p.link_load(p.edges[ei])
    else:  # switch: per board egress and ingress
        link_bits = [0] * (2 * B)
        link_load = [0] * (2 * B)
        for ei in cut:
            e = p.edges[ei]
            for li in (boards[e.u], B + boards[e.v]):
                link_bits[li] += e.link_bits
                link_load[li] += p.link_load(e)
    link_bytes = [b // 8 for b in link_bits]
    rx = p.rx_capacity_bytes()
    for li, nb in enumerate(link_bytes):
        if nb > rx:
            viol.append(f"link {li}: {nb} B per frame exceed ACCL's receive buffers ({rx} B)")
    if p.link.topology == "chain":  # a boundary's traffic is spread over both sides' copies
        share = [min(reps[b], reps[b + 1]) for b in range(len(link_bits))]
    else:
        share = [reps[b % B] for b in range(len(link_bits))]
    link_ii = max((-(-p.link_cycles(x) // r)
                   for x, r in zip(link_load, share, strict=True)), default=0)
    # external weights are streamed every frame: memory bandwidth throttles the pipeline
    # (a layer's use does not depend on the II: one table serves bandwidth and the sums)
    layer_use = [p.usage(i, choice[i], 1, boards[i]) for i in range(n)]
    bpf = [0] * B
    for i in range(n):
        bpf[boards[i]] += layer_use[i].ext_bpf
    ext_ii = [-(-p.ext_cycles(b, bpf[b]) // reps[b]) for b in range(B)]
    # pseudo-channels: every stream needs channels for its rate, so they bound the II too
    streams: list[list[tuple[int, int]]] = [[] for _ in range(B)]
    for i in range(n):
        if layer_use[i].ext_bits:
            streams[boards[i]].append((layer_use[i].ext_bits, layer_use[i].ext_bpf))
    top = max(layer_ii, link_ii, max(ext_ii, default=0), ii_hint or 1)
    ext_ii = [max(e, -(-p.channel_cycles(b, streams[b], top * reps[b]) // reps[b]))
              for b, e in enumerate(ext_ii)]
    host_in, host_out = host_iis(p, boards, reps)
    host_ii = max(host_in, host_out)
    ii = max(layer_ii, link_ii, max(ext_ii, default=0), host_ii, ii_hint or 1)
    if host_ii >= max(layer_ii, link_ii, max(ext_ii, default=0)):
        bottleneck = "host I/O (" + ("input" if host_in >= host_out else "output") + " IODMA)"
    elif link_ii > layer_ii and link_ii >= max(ext_ii, default=0):
        bottleneck = f"link {link_load.index(max(link_load))}"
    elif max(ext_ii, default=0) > max(layer_ii, link_ii):
        bottleneck = f"external memory of board {ext_ii.index(max(ext_ii))}"
    T = ii
    for i in range(n):  # an external stream's channels cover its rate at the final II
        u = layer_use[i]
        if u.ext_bits:
            layer_use[i] = u.with_counts(ext_channels=p.stream_channels(
                boards[i], u.ext_bits, u.ext_bpf, T * reps[boards[i]]))

    usage = [Resources() for _ in range(B)]
    for i in range(n):
        usage[boards[i]] += layer_use[i]
    extra = [0] * B
    for ei in cut:
        e = p.edges[ei]
        fb = frame_buffer_bram18(e.bits)
        if p.accl.sender_frame_buffer:
            if p.link.topology == "chain":
                for b in crossings(p, boards, ei):
                    extra[b - 1] += fb
            else:
                extra[boards[e.u]] += fb
        if e.skip:
            extra[boards[e.v]] += fb
    usage = [u.plus("bram18", x) for u, x in zip(usage, extra, strict=True)]
    caps = [p.capacity(b, T * reps[b]) for b in range(B)]  # each copy's memory: 1/r the frames
    for b in range(B):
        for d in usage[b].over(caps[b]):
            what = {"ext_bits": "external memory bits", "ext_bpf": "external memory "
                    "bandwidth (bits per frame)", "ext_channels": "memory channels"
                    }.get(d, d.upper())
            viol.append(f"board {b} ({p.boards[b].board.name}): {what} "
                        f"{usage[b].get(d):,} > {caps[b].get(d):,} allowed")
    used = used_slots
    fps = p.clock_mhz * 1e6 / ii
    return Evaluation(
        feasible=not viol, violations=tuple(viol), ii_cycles=ii, layer_ii=layer_ii,
        link_ii=link_ii, ext_ii=max(ext_ii, default=0), bottleneck=bottleneck, fps=fps,
        latency_s=latency(p, choice, boards), boards_used=used, usage=tuple(usage),
        capacity=tuple(caps), link_bits=tuple(link_bits), link_bytes=tuple(link_bytes),
        link_load=tuple(link_load), cut_edges=tuple(cut), extra_bram18=tuple(extra),
        replicas=tuple(reps), host_ii=host_ii,
    )


def host_iis(problem: PartitionProblem, boards: Sequence[int], reps: Sequence[int]
             ) -> tuple[int, int]:
    """(input, output) host I/O II of a plan: the input over board 0's copies, the output
    over the last used board's (each copy board has its own IODMAs)."""
    if not problem.host or not boards:
        return 0, 0
    last = max(boards)
    return (-(-problem.host_cycles(0, "in") // reps[0]),
            -(-problem.host_cycles(last, "out") // reps[last]))


def latency(problem: PartitionProblem, choice: Sequence[int], boards: Sequence[int]) -> float:
    """Critical-path latency: FINN's per-layer cycles summed along the longest path (FINN's
    own pessimistic measure) plus, per board hop, ACCL's latency and the frame's transfer time.
    """
    p = problem
    f = p.clock_mhz * 1e6
    link = p.fpga_link
    dist = [p.cycles_on(i, choice[i], boards[i]) / f for i in range(p.n)]
    best = list(dist)
    incoming: dict[int, list[int]] = {}
    for ei, e in enumerate(p.edges):
        incoming.setdefault(e.v, []).append(ei)
    for v in range(p.n):
        for ei in incoming.get(v, []):
            e = p.edges[ei]
            hops = boards[e.v] - boards[e.u] if p.link.topology == "chain" else int(
                boards[e.v] != boards[e.u])
            hop = hops * link.arrival_s(e.link_bits // 8) if hops else 0.0
            best[v] = max(best[v], best[e.u] + hop + dist[v])
    host = 0.0
    if p.host and boards:  # the input and output IODMAs move one frame each
        host = (p.host_cycles(0, "in") + p.host_cycles(max(boards), "out")) / f
    return (max(best) + host) if best else 0.0

