"""``dse optimize`` for a network file: every layer's folding and board chosen to maximize FPS
(the joint CP-SAT solver or a SetFolding baseline), the SLR placement checked, the plan made
and written; with ``replicas``, the best data-parallel layout (dse.solver.replicas)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dse.chain.host import split_devices, with_host_stages
from dse.devices import Device
from dse.examples import resolve_model
from dse.exceptions import InfeasibleError, SpecError
from dse.ir import LayerGraph, load_network
from dse.outdir import check_out_dir, staged_dir
from dse.plan import PartitionPlan
from dse.plan_edits import with_replicas
from dse.schemas import OptimizeOptions, check_options
from dse.solver import DEFAULT_BATCH, STRATEGIES, replicas
from dse.solver.baselines import solve_baseline
from dse.solver.hostio import host_stages
from dse.solver.planning import PlanRecord, Solve, plan_problem, problem_for
from dse.solver.problem import PartitionProblem
from dse.solver.search import JointPlan, SolveResult, solve_joint
from dse.solver.slr import slice_config, slice_factors
from dse.specs import BoardConfig, load_catalog
from dse.specs.parse import parse_boards, split_clock

WWIDTH_SEARCH = (36, 64, 128, 256)  # SetFolding's mvau_wwidth_max values the baselines try

Progress = Callable[[str], None]
#: a plan to start from: (its solve, copies per board)
Start = tuple[SolveResult, list[int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimizeResult:
    plan: PartitionPlan
    result: SolveResult
    graph: LayerGraph
    plan_path: Path | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimizeRequest:
    """The arguments of ``optimize`` (see there)."""

    model: str | Path | None
    boards: str | int | None
    board: str | None
    shell: str | None
    caps: Mapping[str, float] | None
    clock_mhz: float | None
    time_limit: float
    strategy: str
    link_gbps: float | None
    link_efficiency: float
    topology: str
    rx_buffer_bytes: int | None
    rx_buffers: int | None
    allow_external: bool
    input_dtype: str | None
    minimize_bit_width: bool
    board_order: str
    mvau_wwidth_max: int | None
    board_files: Sequence[str] | None
    out: str | Path | None
    seed: int
    workers: int
    record_time: bool
    progress: Progress | None
    replicas: int | str
    board_configs: Sequence[BoardConfig] | None
    segment_replicas: bool
    graph: LayerGraph | None
    start: Start | None
    batch: int
    #: a per-copy rate another replica layout already beats (dse.solver.replicas.search)
    floor_fps: float | None = None


def optimize(
    model: str | Path | None = None,
    *,
    boards: str | int | None = 1,
    board: str | None = None,
    shell: str | None = None,
    caps: Mapping[str, float] | None = None,
    clock_mhz: float | None = None,
    time_limit: float = 60.0,
    strategy: str = "joint",
    link_gbps: float | None = None,
    link_efficiency: float = 0.88,
    topology: str = "chain",
    rx_buffer_bytes: int | None = None,
    rx_buffers: int | None = None,
    allow_external: bool = True,
    input_dtype: str | None = None,
    minimize_bit_width: bool = True,
    board_order: str = "auto",
    mvau_wwidth_max: int | None = None,
    board_files: Sequence[str] | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    workers: int = 1,
    record_time: bool = True,
    progress: Progress | None = None,
    replicas: int | str = 1,
    board_configs: Sequence[BoardConfig] | None = None,
    segment_replicas: bool = False,
    graph: LayerGraph | None = None,
    start: Start | None = None,
    batch: int = DEFAULT_BATCH,
) -> OptimizeResult:
    """Choose every layer's folding and board to maximize FPS; write ``out/plan.json``.

    ``replicas``: data-parallel copies of the whole pipeline over the boards offered
    (``"auto"``: the best count; each copy is solved exactly on its share of the boards, or
    on one SLR group of a board when several copies share it).
    ``board_configs``: boards already configured (``Catalog.configure``), in place of
    ``boards``/``board``/``shell``/``caps``/``clock_mhz``.
    ``segment_replicas``: every board of the chain may run as several identical copies (a
    stage of r boards takes every r-th frame), the copies chosen with everything else within
    the boards offered (identical boards); ``replicas="segments"`` does this and reports the
    host I/O bound.
    ``graph``: the network already loaded (``load_network`` of ``model``).
    ``start``: a plan to start from, as (SolveResult, copies per board): used where its
    layers' options are this instance's (the same network and board type).
    ``batch``: the frames of the one FINN PYNQ driver call ``metrics.batch`` reports
    (``metrics.fps`` is the steady state)."""
    req = OptimizeRequest(
        model=model, boards=boards, board=board, shell=shell, caps=caps, clock_mhz=clock_mhz,
        time_limit=time_limit, strategy=strategy, link_gbps=link_gbps,
        link_efficiency=link_efficiency, topology=topology, rx_buffer_bytes=rx_buffer_bytes,
        rx_buffers=rx_buffers, allow_external=allow_external, input_dtype=input_dtype,
        minimize_bit_width=minimize_bit_width, board_order=board_order,
        mvau_wwidth_max=mvau_wwidth_max, board_files=board_files, out=out, seed=seed,
        workers=workers, record_time=record_time, progress=progress, replicas=replicas,
        board_configs=board_configs, segment_replicas=segment_replicas, graph=graph,
        start=start, batch=batch)
    if str(replicas).strip() not in ("1", ""):
        return _optimize_replicas(req)
    return _optimize_one(req)


def _check(req: OptimizeRequest) -> None:
    if req.strategy not in STRATEGIES:
        raise SpecError(f"--strategy {req.strategy!r}: choose one of {', '.join(STRATEGIES)}")
    check_options(OptimizeOptions, dict(
        time_limit=req.time_limit, clock_mhz=req.clock_mhz, link_gbps=req.link_gbps,
        link_efficiency=req.link_efficiency, rx_buffer_bytes=req.rx_buffer_bytes,
        rx_buffers=req.rx_buffers, seed=req.seed, workers=req.workers,
        mvau_wwidth_max=req.mvau_wwidth_max, batch=req.batch))
    if req.out is not None:
        check_out_dir(req.out, files=("plan.json",))


def _board_configs(req: OptimizeRequest) -> tuple[list[BoardConfig], list[Device]]:
    """The FPGA chain's boards, and the GPUs/CPUs offered for the layers FINN leaves on the
    host (``dse.chain.host``)."""
    if req.board_configs:
        return list(req.board_configs), []
    cat = load_catalog(req.board_files or ())
    fpga, hosts = split_devices(parse_boards(req.boards, req.board), req.board_files)
    if not fpga:
        raise SpecError(f"--boards {req.boards}: a CNN needs at least one FPGA board; a GPU or "
                        "CPU takes only the layers FINN leaves on the host")
    return [cat.configure(n, shell=req.shell, caps=req.caps, clock_mhz=mhz)
            for n, mhz in (split_clock(x, req.clock_mhz) for x in fpga)], hosts


def _problem(req: OptimizeRequest, graph: LayerGraph, cfgs: list[BoardConfig]
             ) -> PartitionProblem:
    problem = problem_for(graph, cfgs, link_gbps=req.link_gbps,
                          link_efficiency=req.link_efficiency, topology=req.topology,
                          rx_buffer_bytes=req.rx_buffer_bytes, rx_buffers=req.rx_buffers,
                          allow_external=req.allow_external)
    if req.segment_replicas and len(cfgs) > 1:
        if len({(c.board.name, c.clock_mhz, c.shell.name) for c in cfgs}) != 1:
            raise SpecError("segment replicas need identical boards (a count with --board, "
                            "or one name repeated, one clock)")
        if req.strategy != "joint":
            raise SpecError(f"--strategy {req.strategy}: segment replicas are the joint "
                            "solver's; the baselines copy whole pipelines (--replicas auto)")
        problem = replace(problem, max_replicas=len(cfgs))
    return problem


def _solve_baselines(req: OptimizeRequest, prob: PartitionProblem, limit: float
                     ) -> SolveResult:
    """The baselines search SetFolding's knob as finn-plus users do."""
    widths = [req.mvau_wwidth_max] if req.mvau_wwidth_max else list(WWIDTH_SEARCH)
    best: SolveResult | None = None
    for w in widths:
        try:
            r = solve_baseline(prob, req.strategy, time_limit=limit / len(widths),
                               workers=req.workers, seed=req.seed, progress=req.progress,
                               mvau_wwidth_max=w)
        except InfeasibleError:
            continue
        if best is None or r.evaluation.fps > best.evaluation.fps:
            best = replace(r, log=r.log + (f"mvau_wwidth_max {w}",))
    if best is None:
        raise InfeasibleError(f"{req.strategy}: SetFolding finds no plan with mvau_wwidth_max "
                              f"{', '.join(map(str, widths))} on these boards")
    return best


def _solver(req: OptimizeRequest) -> Solve:
    def solve(prob: PartitionProblem, limit: float) -> SolveResult:
        if req.strategy != "joint":
            return _solve_baselines(req, prob, limit)
        seed_plan = None
        start = req.start
        if start is not None and start[0].problem is not None and (
                start[0].problem.options == prob.options):
            seed_plan = JointPlan.of(start[0].choice, start[0].boards, None, start[1])
        return solve_joint(prob, time_limit=limit, workers=req.workers, seed=req.seed,
                           progress=req.progress, start=seed_plan, floor_fps=req.floor_fps)

    return solve


def _save(plan: PartitionPlan, out: str | Path | None) -> Path | None:
    if out is None:
        return None
    with staged_dir(out) as tmp:
        plan.save(tmp / "plan.json")
    return Path(out) / "plan.json"


def _optimize_one(req: OptimizeRequest) -> OptimizeResult:
    _check(req)
    cfgs, hosts = _board_configs(req)
    path = resolve_model(req.model)
    t_load = time.monotonic()
    graph = req.graph
    if graph is None:
        graph = load_network(path, input_dtype=req.input_dtype,
                             minimize_bit_width=req.minimize_bit_width)
    t_built = time.monotonic()
    problem = _problem(req, graph, cfgs)
    t_problem = time.monotonic()
    record = PlanRecord(model_path=str(path), model_sha256=graph.source_sha256, seed=req.seed,
                        record_time=req.record_time, input_dtype=req.input_dtype,
                        minimize_bit_width=graph.minimized_bit_width, batch=req.batch,
                        phases=(("load and lower the network", t_built - t_load, "done"),
                                ("cost every folding (problem)", t_problem - t_built, "done")))
    planned = plan_problem(problem, _solver(req), time_limit=req.time_limit, started=t_load,
                           record=record, board_order=req.board_order, progress=req.progress,
                           floor_fps=req.floor_fps)
    plan = planned.plan
    if hosts:  # the layers FINN leaves on the host, as a GPU/CPU stage of the chain
        plan = PartitionPlan(with_host_stages(dict(plan.data), graph, hosts, cfgs)[0])
    return OptimizeResult(plan=plan, result=planned.result, graph=graph,
                          plan_path=_save(plan, req.out))


def _optimize_replicas(req: OptimizeRequest) -> OptimizeResult:
    """The best replica layout on identical boards (dse.solver.replicas); the network is
    loaded once."""
    t0 = time.monotonic()
    if req.out is not None:
        check_out_dir(req.out, files=("plan.json",))
    names = parse_boards(req.boards, req.board)
    if len(set(names)) != 1:
        raise SpecError("--replicas needs identical boards (a count with --board, or one "
                        "name repeated)")
    n = len(names)
    name0, mhz0 = split_clock(names[0], req.clock_mhz)
    cfg = load_catalog(req.board_files or ()).configure(
        name0, shell=req.shell, caps=req.caps, clock_mhz=mhz0)
    slices = slice_factors(cfg)
    candidates = replicas.layouts(n, slices, joint=req.strategy == "joint",
                                  want=str(req.replicas).strip(), strategy=req.strategy,
                                  board_name=names[0])
    graph = req.graph or load_network(
        resolve_model(req.model), input_dtype=req.input_dtype,
        minimize_bit_width=req.minimize_bit_width)
    h_in, h_out = host_stages(graph, cfg)  # one board's IODMAs and host link

    def solve_layout(shape: replicas.Shape, *, time_limit: float, start: Start | None,
                     floor_fps: float | None = None) -> OptimizeResult:
        k = shape.per_board
        return _optimize_one(replace(
            req, replicas=1, boards=shape.boards_each, board=names[0], out=None,
            time_limit=time_limit, graph=graph, segment_replicas=shape.segments,
            board_configs=[slice_config(cfg, k)] if k > 1 else None,
            start=start if start is not None else req.start, floor_fps=floor_fps))

    choice = replicas.search(candidates, solve_layout, n=n, board_name=names[0],
                             host=(h_in.fps, h_out.fps), time_limit=req.time_limit,
                             t0=t0)
    plan = with_replicas(choice.solved.plan, choice.metrics)
    return replace(choice.solved, plan=plan, plan_path=_save(plan, req.out))
