"""Library entry points; the CLI is a thin layer over these."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from dse.exceptions import DseError
from dse.ir import LayerGraph, load_network
from dse.models import estimate
from dse.models.candidates import FoldingOption, enumerate_options
from dse.solver import STRATEGIES
from dse.specs import Resources, default_catalog

#: Attributes that are memory/implementation style, not parallelism.
STYLE_ATTRS = ("ram_style", "mem_mode", "resType", "ram_style_thresholds", "impl_style")
DEFAULT_PART = "xcu55c-fsvh2892-2L-e"


def example_model_path() -> Path:
    """The example network shipped inside the package (a small quantized CNN)."""
    return Path(str(importlib_resources.files("dse.examples").joinpath("cnv_small_w4a4.onnx")))


def resolve_model(model: str | Path | None) -> Path:
    """The model file (``None``: the bundled example); an empty path is an error, not the
    example."""
    from dse.exceptions import ModelLoadError

    if model is None:
        return example_model_path()
    if str(model).strip() == "":
        raise ModelLoadError("--model is empty; give an .onnx file (omit --model for the "
                             "bundled example)")
    return Path(model)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerSummary:
    name: str
    op_type: str  # specialized (what FINN would build)
    params: str
    dtypes: str
    weight_bits: int
    in_bits_per_frame: int
    out_bits_per_frame: int
    smallest: FoldingOption
    fastest: FoldingOption
    n_options: int
    finn_name: str = ""  # the node name in a one-FPGA FINN build (after specialization)
    absorbed: tuple[str, ...] = ()  # ONNX nodes folded into the layer

    def as_dict(self) -> dict[str, Any]:
        def opt(o: FoldingOption) -> dict[str, Any]:
            c = o.cost
            return {"folding": dict(o.attrs), "cycles": c.cycles, "lut": c.lut,
                    "bram18": c.bram18, "uram": c.uram, "dsp": c.dsp}

        return {
            "name": self.name, "op_type": self.op_type, "params": self.params,
            "dtypes": self.dtypes, "weight_bits": self.weight_bits,
            "in_bits_per_frame": self.in_bits_per_frame,
            "out_bits_per_frame": self.out_bits_per_frame,
            "smallest": opt(self.smallest), "fastest": opt(self.fastest),
            "n_options": self.n_options, "finn_name": self.finn_name,
            "source_nodes_absorbed": list(self.absorbed),
            "cost_source": self.cost_source,
        }

    @property
    def cost_source(self) -> str:
        """"FINN estimate", "FINN cycles + dse resource model" or "dse model"."""
        return self.smallest.cost.source


def _params(op: str, a: Mapping[str, Any]) -> str:
    f = {
        "MVAU": lambda: f"MW={a['MW']} MH={a['MH']} N={list(a['numInputVectors'])}",
        "VVAU": lambda: f"C={a['Channels']} k={'x'.join(map(str, a['Kernel']))} "
                        f"out={'x'.join(map(str, a['Dim']))}",
        "ConvolutionInputGenerator": lambda: (
            f"C={a['IFMChannels']} k={'x'.join(map(str, a['ConvKernelDim']))} "
            f"s={a['Stride'][0]} {'x'.join(map(str, a['IFMDim']))}->"
            f"{'x'.join(map(str, a['OFMDim']))}{' dw' if a.get('depthwise') else ''}"),
        "Thresholding": lambda: f"C={a['NumChannels']} steps={a['numSteps']} "
                                f"N={list(a['numInputVectors'])}",
        "Pool": lambda: f"C={a['Channels']} k={'x'.join(map(str, a['KernelSize']))} "
                        f"{a['Function']}",
        "FMPadding": lambda: f"C={a['NumChannels']} {'x'.join(map(str, a['ImgDim']))} "
                             f"pad={list(a['Padding'])}",
        "DuplicateStreams": lambda: f"C={a['NumChannels']} x{a['NumOutputStreams']}",
        "Reshape": lambda: f"{list(a['inp_shape'])}->{list(a['out_shape'])}",
        "HWSoftmax": lambda: f"C={a['NumChannels']}",
        "GlobalAccPool": lambda: f"C={a['NumChannels']}",
        "LabelSelect": lambda: f"labels={a['Labels']} K={a['K']}",
    }.get(op)
    if f is None and op.startswith("Elementwise"):
        return f"{list(a['lhs_shape'])} {op[len('Elementwise'):].lower()} {list(a['rhs_shape'])}"
    try:
        return f() if f else ""
    except KeyError:
        return ""


def _dtypes(op: str, a: Mapping[str, Any]) -> str:
    keys = {
        "MVAU": ("inputDataType", "weightDataType", "outputDataType"),
        "VVAU": ("inputDataType", "weightDataType", "outputDataType"),
        "Thresholding": ("inputDataType", "outputDataType"),
        "Pool": ("InputDataType", "OutputDataType"),
    }.get(op)
    if keys is None:
        for k in ("inputDataType", "lhs_dtype", "dtype", "input_data_type"):
            if k in a:
                return str(a[k])
        return ""
    return "/".join(str(a.get(k, "")) for k in keys)


def layer_options(layer: Any, part: str | None, *, keep_styles: bool = True,
                  allow_external: bool = True) -> list[FoldingOption]:
    opts = enumerate_options(layer.specialized_op_type, layer.finn_attrs(), part=part,
                             weight_bits=layer.weight_bits, allow_external=allow_external,
                             fixed=STYLE_ATTRS if keep_styles else ())
    if not opts:
        raise DseError(f"layer {layer.name} ({layer.op_type}): no legal folding under FINN's "
                       "rules for its attributes")
    return opts


def summarize_layers(graph: LayerGraph, part: str | None = DEFAULT_PART) -> list[LayerSummary]:
    out = []
    finn_names = graph.finn_names(part)
    for layer in graph.layers:
        opts = layer_options(layer, part)
        smallest = min(opts, key=lambda o: (-o.cost.cycles, o.cost.lut, o.cost.bram18))
        fastest = min(opts, key=lambda o: (o.cost.cycles, o.cost.lut, o.cost.bram18))
        ins, outs = graph.in_edges(layer.name), graph.out_edges(layer.name)
        out.append(LayerSummary(
            name=layer.name,
            op_type=f"{layer.op_type}_{smallest.impl}",
            params=_params(layer.op_type, layer.attrs),
            dtypes=_dtypes(layer.op_type, layer.attrs),
            weight_bits=layer.weight_bits,
            in_bits_per_frame=sum(e.bits_per_frame for e in ins),
            out_bits_per_frame=sum(e.bits_per_frame for e in outs),
            smallest=smallest,
            fastest=fastest,
            n_options=len(opts),
            finn_name=finn_names[layer.name],
            absorbed=layer.absorbed,
        ))
    return out


def totals(rows: list[LayerSummary], which: str) -> Resources:
    return Resources.total(
        Resources(lut=getattr(r, which).cost.lut, bram18=getattr(r, which).cost.bram18,
                  uram=getattr(r, which).cost.uram, dsp=getattr(r, which).cost.dsp)
        for r in rows
    )


def inspect(model: str | Path | None = None, *, part: str | None = DEFAULT_PART,
            input_dtype: str | None = None, minimize_bit_width: bool = True) -> dict[str, Any]:
    """The layer table of a network: per layer, costs at its smallest and fastest folding.
    For an architecture config (``llama2-7b``, ``config.json``): one block, in decode (or
    encoder) mode, with the LM head's layers after it."""
    from dse.llm.config import is_config_ref

    if is_config_ref(model):
        from dse.llm.config import load_arch, quant_spec
        from dse.llm.network import build_network

        arch = load_arch(model)
        net = build_network(arch, quant_spec(), "decode" if arch.causal else "encoder")
        graph = net.stacks[0].block
        path = Path(f"{arch.name} ({net.mode}: one of {net.n_blocks} identical blocks)")
    else:
        path = resolve_model(model)
        graph = load_network(path, input_dtype=input_dtype,
                             minimize_bit_width=minimize_bit_width)
    rows = summarize_layers(graph, part)
    small, fast = totals(rows, "smallest"), totals(rows, "fastest")
    return {
        "model": str(path),
        "sha256": graph.source_sha256,
        "part": part,
        "graph": graph,
        "layers": rows,
        "totals": {
            "smallest": {**small.as_dict(),
                         "max_cycles": max(r.smallest.cost.cycles for r in rows)},
            "fastest": {**fast.as_dict(), "max_cycles": max(r.fastest.cost.cycles for r in rows)},
            "weight_bits": sum(r.weight_bits for r in rows),
        },
        "host_nodes": [{"name": h.name, "op_type": h.op_type, "reason": h.reason}
                       for h in graph.host_nodes],
        "edges": len(graph.edges),
    }


def cost(op_type: str, attrs: Mapping[str, Any], part: str | None = None) -> dict[str, Any]:
    c = estimate(op_type, attrs, part)
    return c.as_dict()


def boards(board_files: list[str] | None = None) -> list[dict[str, Any]]:
    from dse.specs import load_catalog

    cat = load_catalog(board_files or ()) if board_files else default_catalog()
    out = []
    for b in cat.boards.values():
        cfg = cat.configure(b.name)
        out.append({
            "name": b.name, "part": b.part, "slrs": b.slrs, "device": b.device.as_dict(),
            "shells": list(b.shells), "default_shell": b.default_shell,
            "capacity_single": cfg.capacity(False).as_dict(),
            "capacity_multi": cfg.capacity(True).as_dict(),
            "memory": f"{b.external_memory_gib:g} GiB {b.external_memory_kind}"
                      + (f" ({b.hbm_channels} PCs)" if b.hbm_channels else ""),
            "memory_gbps": b.external_memory_gbps,
            "network_gbps": b.net_line_rate_gbps,
            "default_clock_mhz": b.default_clock_mhz,
        })
    return out


# ---------------------------------------------------------------------------------------------
# optimize



WWIDTH_SEARCH = (36, 64, 128, 256)  # SetFolding's mvau_wwidth_max values the baselines try


def parse_boards(boards: str | int | None, board: str | None = None) -> list[str]:
    """``4`` (with ``board``) or ``"U55C,U55C,U280"`` -> list of board names."""
    from dse.exceptions import SpecError
    from dse.schemas import MAX_BOARDS

    board = board or "U55C"
    if boards is None:
        return [board]
    if isinstance(boards, int):
        n = boards
    elif str(boards).strip().isdigit():
        n = int(str(boards).strip())
    else:
        names = [b.strip() for b in str(boards).split(",") if b.strip()]
        if not names:
            raise SpecError(f"--boards {boards!r}: give a count or a comma-separated list")
        if len(names) > MAX_BOARDS:
            raise SpecError(f"--boards: {len(names)} boards listed; give 1 to {MAX_BOARDS}")
        return names
    if not 1 <= n <= MAX_BOARDS:
        raise SpecError(f"--boards {n}: give 1 to {MAX_BOARDS} boards")
    return [board] * n


def parse_caps(items: list[str] | None) -> dict[str, float]:
    from dse.exceptions import SpecError

    caps: dict[str, float] = {}
    for it in items or []:
        for part in it.split(","):
            if "=" not in part:
                raise SpecError(f"--cap {part!r}: use RESOURCE=FRACTION, e.g. lut=0.8")
            k, v = part.split("=", 1)
            try:
                caps[k.strip().lower()] = float(v)
            except ValueError:
                raise SpecError(f"--cap {part!r}: {v!r} is not a number") from None
    return caps


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimizeResult:
    plan: Any  # PartitionPlan
    result: Any  # SolveResult
    graph: LayerGraph
    plan_path: Path | None


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
    board_files: list[str] | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    workers: int = 1,
    record_time: bool = True,
    progress: Any = None,
    replicas: int | str = 1,
    board_configs: Sequence[Any] | None = None,
    segment_replicas: bool = False,
    graph: LayerGraph | None = None,
    start: Any = None,
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
    layers' options are this instance's (the same network and board type)."""
    if str(replicas).strip() not in ("1", ""):
        return _optimize_replicas(locals())
    from dse import __version__
    from dse.exceptions import InfeasibleError, SpecError
    from dse.outdir import check_out_dir, staged_dir
    from dse.plan import make_plan
    from dse.schemas import OptimizeOptions, check_options
    from dse.solver.baselines import solve_baseline
    from dse.solver.order import solve_best_order
    from dse.solver.problem import AcclConfig, LinkConfig, build_problem
    from dse.solver.search import solve_joint
    from dse.specs import load_catalog

    if strategy not in STRATEGIES:
        raise SpecError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    check_options(OptimizeOptions, dict(
        time_limit=time_limit, clock_mhz=clock_mhz, link_gbps=link_gbps,
        link_efficiency=link_efficiency, rx_buffer_bytes=rx_buffer_bytes,
        rx_buffers=rx_buffers, seed=seed, workers=workers, mvau_wwidth_max=mvau_wwidth_max))
    if out is not None:
        check_out_dir(out)
    if board_configs:
        cfgs = list(board_configs)
    else:
        cat = load_catalog(board_files or ())
        cfgs = [cat.configure(n, shell=shell, caps=caps, clock_mhz=mhz)
                for n, mhz in (split_clock(x, clock_mhz) for x in parse_boards(boards, board))]
    path = resolve_model(model)
    t_load = time.monotonic()
    if graph is None:
        graph = load_network(path, input_dtype=input_dtype,
                             minimize_bit_width=minimize_bit_width)
    t_built = time.monotonic()
    accl_kw: dict[str, Any] = {}
    if rx_buffer_bytes is not None:
        accl_kw["rx_buffer_bytes"] = int(rx_buffer_bytes)
    if rx_buffers is not None:
        accl_kw["rx_buffer_count"] = int(rx_buffers)
    if link_gbps is None:  # the slowest board's network port (100 GbE on Alveo, 1 GbE on Zynq)
        link_gbps = min((c.board.net_line_rate_gbps for c in cfgs
                         if c.board.net_line_rate_gbps), default=100.0)
    problem = build_problem(
        graph, cfgs,
        link=LinkConfig(bandwidth_gbps=link_gbps, efficiency=link_efficiency, topology=topology),
        accl=AcclConfig(**accl_kw), allow_external=allow_external,
    )
    if segment_replicas and len(cfgs) > 1:
        if len({(c.board.name, c.clock_mhz, c.shell.name) for c in cfgs}) != 1:
            raise SpecError("segment replicas need identical boards (a count with --board, "
                            "or one name repeated, one clock)")
        if strategy != "joint":
            raise SpecError(f"--strategy {strategy}: segment replicas are the joint "
                            "solver's; the baselines copy whole pipelines (--replicas auto)")
        problem = replace(problem, max_replicas=len(cfgs))
    t_problem = time.monotonic()

    def solve(prob: Any, limit: float) -> Any:
        if strategy == "joint":
            seed_plan = None
            if start is not None and start[0].problem is not None and (
                    start[0].problem.options == prob.options):
                seed_plan = (start[0].choice, start[0].boards, start[1])
            return solve_joint(prob, time_limit=limit, workers=workers, seed=seed,
                               progress=progress, start=seed_plan)
        widths = [mvau_wwidth_max] if mvau_wwidth_max else list(WWIDTH_SEARCH)
        best = None
        for w in widths:  # the baselines search SetFolding's knob as finn-plus users do
            try:
                r = solve_baseline(prob, strategy, time_limit=limit / len(widths),
                                   workers=workers, seed=seed, progress=progress,
                                   mvau_wwidth_max=w)
            except InfeasibleError:
                continue
            if best is None or r.evaluation.fps > best.evaluation.fps:
                best = replace(r, log=r.log + (f"mvau_wwidth_max {w}",))
        if best is None:
            raise InfeasibleError(f"{strategy}: SetFolding finds no plan with mvau_wwidth_max "
                                  f"{', '.join(map(str, widths))} on these boards")
        return best

    def solve_all(prob: Any, limit: float) -> tuple[Any, list]:
        if board_order == "given":
            return solve(prob, limit), []
        if board_order == "auto":
            return solve_best_order(prob, solve, time_limit=limit, progress=progress)
        raise SpecError(f"--board-order {board_order!r}: choose auto or given")

    from dse.solver.slr import place

    t_solve = time.monotonic()
    # the time limit covers the whole run: loading and costing come out of it
    # (3 % and half a second are kept for the SLR check and the plan)
    res, tried = solve_all(problem, max(1.0, 0.97 * (time_limit - (t_solve - t_load)) - 0.5))
    from dse.solver.infra import reserve_for

    first = time.monotonic() - t_solve
    for _ in range(2):  # the plan as FINN builds it (its FIFOs, converters) must fit too
        again, left = reserve_for(res.problem, res), time_limit - (time.monotonic() - t_load)
        if again is None or left < 2.0:
            break
        # (as long again as the first search, at most: the II it proved is a bound here too)
        res = solve(again, max(1.0, min(0.9 * left - 0.5, 2 * first + 2.0)))
    # every Alveo board's layers must fit its SLRs (FINN's per-SLR limits, SLL wires): the
    # search places each plan it keeps (dse.solver.search, lazily per SLR); this checks the
    # placement independently of how it was found, and flags a plan that does not fit
    t_slr = time.monotonic()
    slrs = place(res.problem, res)
    unplaced = [b for b, x in enumerate(slrs) if x is not None and not x["feasible"]]
    slr_phase = ("place layers into SLRs (exact packing)", time.monotonic() - t_slr,
                 "done" if not unplaced else
                 f"board(s) {', '.join(map(str, unplaced))} do not fit their SLRs")
    plan = make_plan(res, model_path=str(path), model_sha256=graph.source_sha256,
                     clock_mhz=res.problem.clock_mhz, dse_version=__version__, seed=seed,
                     record_time=record_time, input_dtype=input_dtype,
                     minimize_bit_width=graph.minimized_bit_width, board_orders=tried,
                     phases=[("load and lower the network", t_built - t_load, "done"),
                             ("cost every folding (problem)", t_problem - t_built, "done"),
                             *res.phases, slr_phase])
    plan = attach_slrs(plan, slrs)
    from dse.solver.infra import attach_infrastructure  # FIFOs and converters as FINN builds

    plan = attach_infrastructure(plan, res.problem, res)
    split = sorted(x if isinstance(x, str) else f"{res.problem.boards[x].board.name} (board {x})"
                   for x in res.problem.slr_split)
    if split:
        from dse.plan import PartitionPlan

        any_ii = getattr(res, "ii_bound_any_floorplan", None)
        any_fps = (res.evaluation.fps * res.ii_cycles / any_ii if any_ii else
                   max([res.fps_bound] + [t["bound_fps"] for t in tried if t.get("bound_fps")]))
        d = json.loads(plan.to_json())
        d["solver"]["slr_model"] = {
            "per_slr_boards": split,
            "note": "these boards' layers follow their SLRs in order (SLR0, SLR1, ...); status "
                    "and bound hold for such plans; bound_fps_any_floorplan holds for any",
            "bound_fps_any_floorplan": round(max(any_fps, d["metrics"]["fps"]), 3)}
        plan = PartitionPlan(d)
    plan_path = None
    if out is not None:
        with staged_dir(out) as tmp:
            plan.save(tmp / "plan.json")
        plan_path = Path(out) / "plan.json"
    return OptimizeResult(plan=plan, result=res, graph=graph, plan_path=plan_path)


def _optimize_replicas(kw: dict[str, Any]) -> OptimizeResult:
    """Data-parallel replicas on ``n`` identical boards, in three layouts:

    - ``r`` copies of the whole pipeline, each a chain of ``n // r`` boards;
    - ``n k`` copies, ``k`` per board, one SLR group each (Elastic-DF's per-SLR replicas;
      each copy is solved on the least of the groups, so one design fits all of them, with a
      1/k share of the board's memory);
    - segment replicas: one chain whose boards each run as ``r_b`` identical copies (a
      stage of ``r_b`` boards takes every ``r_b``-th frame), the copies chosen by the joint
      solver with everything else (``optimize(segment_replicas=True)``).

    Each layout's FPS is bounded by its host I/O (``dse.solver.hostio``): the inputs in and
    outputs out over the IODMAs and host link of the boards that hold the first and last
    layers, shared by the copies on a board.
    The network is loaded once. The best total wins; fewer boards break ties, then the
    simpler layout (whole pipelines first)."""
    from dse.exceptions import InfeasibleError, SpecError
    from dse.outdir import check_out_dir
    from dse.plan import PartitionPlan
    from dse.solver.hostio import host_fps as host_fps_of
    from dse.solver.hostio import host_stages
    from dse.solver.slr import slice_config, slice_factors
    from dse.specs import load_catalog

    t0 = time.monotonic()
    if kw["out"] is not None:
        check_out_dir(kw["out"])
    names = parse_boards(kw["boards"], kw["board"])
    if len(set(names)) != 1:
        raise SpecError("--replicas needs identical boards (a count with --board, or one "
                        "name repeated)")
    n = len(names)
    name0, mhz0 = split_clock(names[0], kw["clock_mhz"])
    cfg = load_catalog(kw["board_files"] or ()).configure(
        name0, shell=kw["shell"], caps=kw["caps"], clock_mhz=mhz0)
    slices = slice_factors(cfg)
    # (replicas, whole boards per replica, replicas per board, segment replicas)
    joint = kw["strategy"] == "joint"  # segment replicas are the joint solver's alone
    layouts = ([(r, n // r, 1, False) for r in range(1, n + 1)]
               + [(n * k, 1, k, False) for k in slices]
               + ([(1, n, 1, True)] if n > 1 and joint else []))
    want = str(kw["replicas"]).strip()
    if want == "segments":
        if not joint:
            raise SpecError(f"--replicas segments with --strategy {kw['strategy']}: segment "
                            "replicas are the joint solver's; the baselines copy whole "
                            "pipelines (--replicas auto or a count)")
        if n < 2:
            raise SpecError("--replicas segments: give at least 2 boards (a stage's copies "
                            "are boards)")
        layouts = [x for x in layouts if x[3]]
    elif want != "auto":
        try:
            r0 = int(want)
        except (TypeError, ValueError):
            raise SpecError(f"--replicas {want!r}: give a count, auto or segments") from None
        if not any(r == r0 and not seg for r, _, _, seg in layouts):
            raise SpecError(f"--replicas {r0}: give 1 to {n} (whole boards each) or "
                            f"{', '.join(str(n * k) for k in slices) or 'no more'} (one SLR "
                            f"group each) for {n} x {names[0]}, or auto or segments")
        layouts = [x for x in layouts if x[0] == r0 and not x[3]]
    graph = kw.get("graph") or load_network(
        resolve_model(kw["model"]), input_dtype=kw["input_dtype"],
        minimize_bit_width=kw["minimize_bit_width"])
    h_in, h_out = host_stages(graph, cfg)
    shapes = sorted({(per, k, seg) for _, per, k, seg in layouts})
    # the time limit covers the whole run: loading once, then an equal share of what is
    # left per layout still to solve (a layout solved early leaves its time to the rest)
    best = None
    seen: dict[tuple[int, int, bool], Any] = {}
    tried = []
    for r, per, k, seg in layouts:
        if (per, k, seg) not in seen:
            budget = max(5.0, (kw["time_limit"] - (time.monotonic() - t0))
                         / max(1, len(shapes) - len(seen)))
            sub = {**kw, "replicas": 1, "boards": per, "board": names[0], "out": None,
                   "time_limit": budget, "graph": graph, "segment_replicas": seg,
                   "board_configs": [slice_config(cfg, k)] if k > 1 else None}
            if seg:  # start from the best chain of whole-pipeline copies (>= 2 boards each)
                # (its boards, each as n // used copies: solved with the multi-board
                # shell, so the plan holds in the segment model too)
                chains = [(n // x.plan["metrics"]["boards_used"] * x.plan["metrics"]["fps"],
                           x.plan["metrics"]["boards_used"], x)
                          for (p_, k_, s_), x in seen.items()
                          if p_ >= 2 and k_ == 1 and not s_ and not isinstance(x, Exception)]
                if chains:
                    _, used_, x = max(chains, key=lambda c: c[0])
                    sub["start"] = (x.result, [n // used_] * used_)
            try:
                seen[per, k, seg] = optimize(**sub)
            except InfeasibleError as e:
                seen[per, k, seg] = e
        res = seen[per, k, seg]
        entry: dict[str, Any] = {"replicas": r, "boards_each": per, "per_board": k}
        if seg:
            entry = {"layout": "segments", "boards": n}
        if isinstance(res, InfeasibleError):
            tried.append({**entry, "fps": None, "reason": str(res)[:200]})
            continue
        m = res.plan["metrics"]
        if seg:  # the first and last boards' copies each have their own host I/O
            stage = [b["replicas"] for b in res.plan["boards"]]
            host_fps = min(stage[0] * h_in.fps, stage[-1] * h_out.fps)
            used = m["boards_used_total"]
            entry["stage_copies"] = stage
        else:  # copies on one board (SLR groups) share its IODMAs and host link
            host_fps = host_fps_of(graph, cfg, k)
            used = r * m["boards_used"] if k == 1 else n
        each = min(m["fps"], host_fps)
        total = r * each
        tried.append({**entry, "fps": round(total, 3)})
        key = (total, -used)
        if best is None or key > best[0]:
            bound = "host I/O" if host_fps < m["fps"] else "the replica's own pipeline"
            best = (key, r, k, seg, res, each, total, bound, host_fps, used)
    if best is None:
        raise InfeasibleError(f"no replica layout fits {n} x {names[0]}: "
                              + "; ".join(t["reason"] for t in tried if t.get("reason"))[:400])
    _, r, k, seg, res, each, total, bound, host_fps, used = best
    d = json.loads(res.plan.to_json())
    d["metrics"]["replicas"] = {
        "layout": "segments" if seg else ("slr_groups" if k > 1 else "pipelines"),
        "count": r, "per_board": k, "fps_per_replica": each, "fps_total": total,
        "boards_used_total": used, "host_io_fps_per_replica": host_fps, "bound": bound,
        "counts_tried": [t["replicas"] for t in tried if "replicas" in t], "tried": tried}
    if seg:
        d["metrics"]["replicas"]["stage_copies"] = [b["replicas"] for b in d["boards"]]
        if bound == "the replica's own pipeline":
            d["metrics"]["replicas"]["bound"] = "the pipeline (with its stages' copies)"
    if k > 1:  # replica j sits in SLR group j % k of board j // k
        g = len(res.plan["boards"][0].get("slrs", {}).get("capacity", [])) or 1
        d["metrics"]["replicas"]["slices"] = [
            {"replica": j, "board": j // k, "slrs": list(range((j % k) * g, (j % k + 1) * g))}
            for j in range(r)]
    plan = PartitionPlan(d)
    plan_path = None
    if kw["out"] is not None:
        from dse.outdir import staged_dir

        with staged_dir(kw["out"]) as tmp:
            plan.save(tmp / "plan.json")
        plan_path = Path(kw["out"]) / "plan.json"
    return replace(res, plan=plan, plan_path=plan_path)


def attach_slrs(plan: Any, slrs: list) -> Any:
    """The SLR placement per board in the plan (``boards[i].slrs``, ``layers[j].slr``) and
    ``metrics.placeable``."""
    from dse.plan import PartitionPlan

    d = json.loads(plan.to_json())
    for b in d["boards"]:
        x = slrs[b["index"]] if b["index"] < len(slrs) else None
        b["slrs"] = x and {k: v for k, v in x.items() if k != "slr_of"}
    for l in d["layers"]:
        x = slrs[l["board"]] if l["board"] < len(slrs) else None
        if x and x["feasible"]:
            l["slr"] = x["slr_of"][l["name"]]
    d["metrics"]["placeable"] = all(x is None or x["feasible"] for x in slrs)
    return PartitionPlan(d)


# ---------------------------------------------------------------------------------------------
# explore


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreResult:
    out: Path
    study_name: str
    n_trials: int
    n_feasible: int
    pareto: list[dict[str, Any]]


def _redact(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(storage: str | None, out: Path) -> Any:
    """Optuna storage: an RDB URL, a journal file path, or (default) out/study.journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from dse.exceptions import SpecError

    if storage and "://" in storage:
        last: Exception | None = None
        for attempt in range(6):  # workers starting together race to create the schema
            try:
                # a worker that dies leaves its trial RUNNING: after the grace period Optuna
                # marks it failed and this callback enqueues it again (defaults included)
                retry = optuna.storages.RetryFailedTrialCallback(max_retry=3)
                return optuna.storages.RDBStorage(storage, heartbeat_interval=30,
                                                  grace_period=120, failed_trial_callback=retry)
            except ImportError as e:  # no driver: no point in retrying
                last = e
                break
            except Exception as e:  # server down, bad URL, or a concurrent schema creation
                last = e
                time.sleep(0.5 * (attempt + 1))
        msg = str(last).splitlines()[0][:160] if last else "unknown error"
        raise SpecError(f"--storage {_redact(storage)}: cannot open ({msg})") from None
    path = Path(storage) if storage else out / "study.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


RECLAIMED = "dse_interrupted"  # system attribute of a trial a crash left RUNNING


def reclaim_interrupted_trials(st: Any) -> int:
    """Trials a killed process left RUNNING (one process owns a journal study, so none is
    live): mark them failed (flagged, so they do not count as finished) and queue the same
    parameters again, the hand-run defaults included."""
    import optuna

    n = 0
    for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        params = t.system_attrs.get("fixed_params") or t.params
        st._storage.set_trial_system_attr(t._trial_id, RECLAIMED, True)
        st._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        if params:
            st.enqueue_trial(dict(params), user_attrs={"retry_of": t.number})
        n += 1
    return n


def count_finished(st: Any) -> int:
    """Finished trials of the study (complete or failed), not counting crash casualties."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sum(1 for t in st.get_trials(deepcopy=False, states=states)
               if not t.system_attrs.get(RECLAIMED))


def explore(
    model: str | Path | None = None,
    *,
    boards: str = "1..8",
    board_types: str = "U55C",
    trials: int = 40,
    storage: str | None = None,
    study: str | None = None,
    out: str | Path = "dse_explore",
    resume: bool = False,
    seed: int = 0,
    sampler: str = "nsga2",
    clock_range: tuple[float, float] = (150.0, 300.0),
    trial_time_limit: float = 20.0,
    input_dtype: str | None = None,
    minimize_bit_width: bool = True,
    board_files: list[str] | None = None,
    progress: Any = None,
) -> ExploreResult:
    """Multi-objective Optuna search over boards, clock, caps, weight placement and ACCL
    buffers, each trial solved exactly by the joint optimizer; writes results to ``out``."""
    import optuna

    from dse.exceptions import SpecError
    from dse.outdir import check_out_dir
    from dse.schemas import ExploreOptions, check_options
    from dse.solver.outer import (
        DIRECTIONS,
        ExploreSpace,
        default_configs,
        make_objective,
        make_sampler,
        parse_board_counts,
    )
    from dse.specs import load_catalog

    counts = parse_board_counts(boards)
    check_options(ExploreOptions, dict(
        trials=trials, max_boards=max(counts), trial_time_limit=trial_time_limit,
        clock_lo=clock_range[0], clock_hi=clock_range[1], seed=seed))
    if clock_range[0] > clock_range[1]:
        raise SpecError(f"--clock-mhz {clock_range[0]:g}..{clock_range[1]:g}: the range is "
                        "empty; give LOW..HIGH")
    out_dir = check_out_dir(out)
    catalog = load_catalog(board_files or ())
    types = tuple(t.strip() for t in board_types.split(",") if t.strip())
    if not types:
        raise SpecError("--board-types is empty; give board names, e.g. U55C,U280")
    for t in types:
        catalog.board(t)  # unknown names fail here, with the list of known boards
    space = ExploreSpace(board_counts=counts, board_types=types,
                         clock_mhz=clock_range, trial_time_limit=trial_time_limit)
    path = resolve_model(model)
    graph = load_network(path, input_dtype=input_dtype, minimize_bit_width=minimize_bit_width)
    name = study or f"dse-{path.stem}"
    journal = out_dir / "study.journal"
    if resume and not storage and not journal.exists():
        raise SpecError(f"--resume: no study to continue in {out_dir} (no study.journal); "
                        "run without --resume to start one")
    out_dir.mkdir(parents=True, exist_ok=True)
    store = open_storage(storage, out_dir)
    existing = [s.study_name for s in optuna.get_all_study_summaries(store)]
    shared = bool(storage and "://" in storage)
    if name in existing and not (resume or shared):
        raise SpecError(f"study {name!r} already has results in {out_dir}; pass --resume to "
                        "continue it, or choose another --out/--study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = optuna.create_study(study_name=name, storage=store, directions=list(DIRECTIONS),
                             sampler=make_sampler(sampler, seed), load_if_exists=True)
    if not st.trials:
        for params in default_configs(space):
            st.enqueue_trial(params, skip_if_exists=True)
    if not storage:  # dse's own journal in --out: one explore process owns it
        reclaimed = reclaim_interrupted_trials(st)
        if progress and reclaimed:
            progress(f"study {name}: {reclaimed} trial(s) interrupted by a crash marked failed "
                     "and queued again")
    done = count_finished(st)
    if progress and done:
        progress(f"study {name}: {done} trial(s) already finished")
    if done < trials:
        def stop_at_target(study: Any, _trial: Any) -> None:
            if count_finished(study) >= trials:
                study.stop()

        st.optimize(
            make_objective(graph, catalog, space, seed, progress),
            callbacks=[stop_at_target],
            n_trials=trials - done, catch=(Exception,), gc_after_trial=False,
        )
    return write_explore_results(st, out_dir, graph=graph, model_path=path, seed=seed,
                                 storage=_redact(storage) if storage else str(
                                     out_dir / "study.journal"), sampler=sampler)


def write_explore_results(st: Any, out_dir: Path, *, graph: LayerGraph, model_path: Path,
                          seed: int, storage: str, sampler: str) -> ExploreResult:
    """Write trials.csv, pareto.csv, plans/, figures and provenance.json into ``out_dir``, all
    at once on success (the study journal itself is Optuna's, written as trials finish)."""
    from dse.outdir import staged_dir

    with staged_dir(out_dir) as tmp:
        res = _write_explore_results(st, tmp, graph=graph, model_path=model_path, seed=seed,
                                     storage=storage, sampler=sampler)
    return replace(res, out=out_dir)


def _write_explore_results(st: Any, out_dir: Path, *, graph: LayerGraph, model_path: Path,
                           seed: int, storage: str, sampler: str) -> ExploreResult:
    import csv
    import json
    import platform
    import sys

    import optuna

    from dse import __version__, viz

    rows = []
    for t in sorted(st.trials, key=lambda t: t.number):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
            continue
        ua = t.user_attrs
        feasible = bool(ua.get("feasible", False)) and t.state == optuna.trial.TrialState.COMPLETE
        vals = t.values if (t.values and feasible) else [None] * 4
        rows.append({
            "trial": t.number, "state": t.state.name, "feasible": feasible,
            **{f"param_{k}": v for k, v in sorted(t.params.items())},
            "board_names": ua.get("board_names", ""),
            "fps": vals[0], "boards_used": vals[1], "latency_s": vals[2], "lut": vals[3],
            "ii_cycles": ua.get("ii_cycles"), "solver_status": ua.get("status", ""),
            "gap": ua.get("gap"), "wall_s": ua.get("wall_s"), "bottleneck": ua.get("bottleneck"),
            "reason": ua.get("reason", "") or ("" if t.state.name == "COMPLETE" else
                                               "interrupted by a crash (queued again)"
                                               if t.system_attrs.get(RECLAIMED) else "error"),
        })
    front = viz.pareto_rows([r for r in rows if r["feasible"]])
    front_ids = {r["trial"] for r in front}
    fields = sorted({k for r in rows for k in r}, key=lambda k: (
        ["trial", "state", "feasible"].index(k) if k in ("trial", "state", "feasible") else 3,
        k))
    for fname, data in (("trials.csv", rows), ("pareto.csv", front)):
        with (out_dir / fname).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(data)
    plans = out_dir / "plans"
    plans.mkdir(exist_ok=True)
    by_number = {t.number: t for t in st.trials}
    for n in sorted(front_ids):
        plan = by_number[n].user_attrs.get("plan")
        if plan:
            (plans / f"{n}.json").write_text(plan)
    viz.save_explore_figures(out_dir)
    import optuna as _o
    import ortools

    prov = {
        "dse_version": __version__, "python": platform.python_version(),
        "versions": {"optuna": _o.__version__, "ortools": ortools.__version__},
        "seed": seed, "sampler": sampler, "study": st.study_name, "storage": storage,
        "model": {"path": str(model_path), "sha256": graph.source_sha256},
        "command": " ".join(sys.argv), "trials": len(rows),
    }
    for mod in ("qonnx", "onnx", "numpy", "pandas", "matplotlib"):
        try:
            prov["versions"][mod] = __import__(mod).__version__
        except Exception:
            pass
    (out_dir / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")
    return ExploreResult(out=out_dir, study_name=st.study_name, n_trials=len(rows),
                         n_feasible=sum(r["feasible"] for r in rows), pareto=front)


# ---------------------------------------------------------------------------------------------
# FINN backend


def finn_hw_graph(model: str | Path, out_dir: Path, *, finn_env: str | Path | None = None,
                  input_dtype: str | None = None) -> Path:
    """The FINN HW-layer graph of ``model``: the file itself if it already holds HW layers,
    else FINN's own lowering (qonnx_to_finn .. convert_to_hw) run in the finn-plus env, with
    the graph input annotated ``input_dtype`` (the plan's ``--input-dtype``). Where FINN's
    default streamlining leaves layers unmapped (the float scales of ResNets and MobileNets
    between a threshold and the next conv), it is lowered again with the extra streamlining
    those networks need (``driver.step_streamline_residual``)."""
    from dse.backends.finn.env import require
    from dse.backends.finn.partition import canonical_names, unmapped_between
    from dse.backends.finn.runner import run_driver
    from dse.exceptions import BackendError
    from dse.ir.lower import is_hw_graph, read_model

    p = Path(model)
    if is_hw_graph(read_model(p)):
        return p
    env = require(Path(finn_env) if finn_env else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "finn_hw_graph.onnx"
    (out_dir / "logs").mkdir(exist_ok=True)
    import onnx

    stuck: list = []
    for residual in (False, True):
        log = out_dir / "logs" / ("finn_lower_residual.log" if residual else "finn_lower.log")
        args = [str(p.resolve()), str(target.resolve()), input_dtype or "-"]
        r = run_driver(env, "lower", *args, *(["residual"] if residual else []), log=log)
        if not r.get("ok"):
            if not residual:
                continue  # (the default flow may fail where the residual one does not)
            raise BackendError(f"FINN could not lower {p} to HW layers: {r.get('error')} "
                               f"(log: {log})")
        hw = onnx.load(str(target))
        stuck = unmapped_between(hw)
        if not stuck:
            break
    if stuck:
        n = stuck[0]
        more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
        hint = ("give the plan's model with its input type, or a HW-layer graph" if
                input_dtype is None else "finn-plus 1.6.1's flow has no HW layer for it, "
                "e.g. float attention MatMuls")
        raise BackendError(
            f"finn-plus cannot build {p.name}: its lowering leaves {n.op_type} {n.name!r}{more} "
            f"between HW layers unmapped, also with the residual streamlining ({hint}); "
            "dse emit writes nothing for this network")
    onnx.save(canonical_names(hw), str(target))  # reproducible names
    return target


def _check_buildable(plan: Any) -> None:
    """Layers finn-plus 1.6.1 can cost but not build on the plan's boards: one clear line."""
    from dse.exceptions import BackendError
    from dse.models._common import part_family

    data = plan.data if hasattr(plan, "data") else plan
    parts = {b["index"]: b["part"] for b in data["boards"]}
    for l in data["layers"]:
        part = parts.get(l["board"])
        if l["op_type"] == "PWPolyF" and part_family(part) != "versal":
            raise BackendError(
                f"finn-plus cannot build {l['name']} (PWPolyF) on board {l['board']} ({part}): "
                "its PWPolyF_rtl uses Versal's DSPFP32 only; dse emit writes nothing (place "
                "the activation on a Versal board or quantize it to thresholds)")


def emit_plan(plan: str | Path | Any, model: str | Path, out: str | Path, *,
              finn_env: str | Path | None = None, bitfile: bool = True) -> Any:
    """Per-board FINN build directories for a plan (see dse.backends.finn.emit)."""
    from dse.backends.finn.emit import emit
    from dse.outdir import staged_dir
    from dse.plan import PartitionPlan

    p = plan if isinstance(plan, PartitionPlan) else PartitionPlan.load(plan)
    _check_buildable(p)
    with staged_dir(out) as tmp:
        hw = finn_hw_graph(model, tmp, finn_env=finn_env,
                           input_dtype=p.data.get("model", {}).get("input_dtype"))
        qonnx = None if Path(hw) == Path(model) else Path(model)
        res = emit(p, hw, tmp, bitfile=bitfile, qonnx_model=qonnx)
    out_dir = Path(out)
    return replace(res, out=out_dir, boards=[out_dir / b.name for b in res.boards])


def verify_build(build_dir: str | Path, *, model: str | Path | None = None, inputs: int = 2,
                 seed: int = 0, finn_env: str | Path | None = None,
                 progress: Any = None) -> Any:
    """Run the emitted partitions in sequence and compare with the whole network."""
    from dse.backends.finn.verify import verify_build as _verify

    return _verify(build_dir, model=model, inputs=inputs, seed=seed,
                   env=Path(finn_env) if finn_env else None, progress=progress)


def build_plan(build_dir: str | Path, *, jobs: int = 2, finn_env: str | Path | None = None,
               progress: Any = None) -> Any:
    from dse.backends.finn.runner import build

    return build(build_dir, jobs=jobs, env=Path(finn_env) if finn_env else None,
                 progress=progress)


def finn_setup(path: str | Path | None = None, *, force: bool = False,
               progress: Any = None) -> Path:
    from dse.backends.finn.env import setup

    return setup(Path(path) if path else None, progress=progress, force=force)


@dataclass(frozen=True)
class LLMResult:
    plan: Any  # dse.llm.pipeline.LLMPlan
    data: dict[str, Any]
    out: Path | None


def optimize_llm(model: str | Path, *, boards: str | int | None = 1, board: str = "U55C",
                 shell: str | None = None, caps: Mapping[str, float] | None = None,
                 clock_mhz: float | None = None, mode: str | None = None, seq: int = 128,
                 context: int = 1024, sequences: int = 1, weights: str = "int4",
                 acts: str = "int8", kv: str | None = None, group: int = 0,
                 hbm_efficiency: float = 0.9,
                 board_files: Sequence[str | Path] = (), out: str | Path | None = None,
                 prices: Mapping[str, float] | None = None, order: str = "auto",
                 topology: str = "chain", progress: Any = None) -> LLMResult:
    """An LLM from its architecture config (a shipped name such as ``llama2-7b`` or a Hugging
    Face ``config.json``) over a chain of boards: split, build style, folding and metrics."""
    from dse.exceptions import SpecError
    from dse.llm.config import load_arch, quant_spec
    from dse.llm.network import build_network
    from dse.llm.pipeline import optimize_llm as _opt
    from dse.llm.pipeline import plan_dict
    from dse.outdir import check_out_dir, write_file_atomic

    if not 0 < hbm_efficiency <= 1:
        raise SpecError(f"--hbm-efficiency {hbm_efficiency}: give a fraction in (0, 1]")
    arch = load_arch(model)
    q = quant_spec(weights, acts, kv, group)
    mode = mode or ("encoder" if not arch.causal else "decode")
    chain = device_chain(parse_boards(boards, board), board_files, shell=shell, caps=caps,
                         clock_mhz=clock_mhz, prices=prices)
    if out is not None:
        check_out_dir(Path(out))
    net = build_network(arch, q, mode, seq=seq, context=context)
    if progress:
        progress(f"[{net.build_s:6.2f}s] {arch.name}: {net.n_blocks} blocks of "
                 f"{len(net.stacks[0].block.layers)} HW layers ({mode}, "
                 f"{arch.params() / 1e9:.2f} B parameters)")
    if topology not in ("chain", "switch"):
        raise SpecError(f"--topology {topology!r}: choose chain or switch")
    plan = _opt(net, chain, sequences=sequences, efficiency=hbm_efficiency, prompt=seq,
                order=order, topology=topology)
    data = plan_dict(plan)
    path = None
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        write_file_atomic(path / "llm_plan.json", json.dumps(data, indent=1, sort_keys=True)
                          + "\n")
    return LLMResult(plan=plan, data=data, out=path)


def split_clock(name: str, default_mhz: float | None) -> tuple[str, float | None]:
    """``NAME@MHZ`` (a board's own clock) -> (NAME, MHz); a bare name keeps the default
    (None: the board's own default clock, ``Board.default_clock_mhz``)."""
    from dse.exceptions import SpecError

    if "@" not in name:
        return name, default_mhz
    n, _, mhz = name.partition("@")
    try:
        clock = float(mhz)
    except ValueError:
        raise SpecError(f"--boards {n}@{mhz}: give the clock in MHz, e.g. U55C@250") from None
    if not 10 <= clock <= 1000:
        raise SpecError(f"--boards {n}@{mhz}: clock must be 10 .. 1000 MHz")
    return n, clock


def device_chain(names: list[str], board_files: Sequence[str | Path] = (), *,
                 shell: str | None = None, caps: Mapping[str, float] | None = None,
                 clock_mhz: float | None = None, prices: Mapping[str, float] | None = None
                 ) -> list[Any]:
    """Board configs (FPGA) and devices (GPU/CPU) for a list of names, in order. FPGA boards
    come from the board catalog, GPUs/CPUs from the device catalog; both read the user's
    board files. ``prices``: price per hour by name (overrides the files)."""
    from dataclasses import replace as _replace

    from dse.devices import load_devices
    from dse.exceptions import SpecError
    from dse.specs import load_catalog

    cat = load_catalog(board_files or ())
    devs = load_devices(list(board_files or ()))
    prices = dict(prices or {})
    out: list[Any] = []
    for n in names:
        n, clock = split_clock(n, clock_mhz)
        d = devs.get(n)
        if d is not None:
            p = prices.get(d.name, prices.get(n))
            out.append(_replace(d, price_per_hour=p) if p is not None else d)
            continue
        try:
            cfg = cat.configure(n, shell=shell, caps=caps, clock_mhz=clock)
        except SpecError:
            raise SpecError(f"--boards: {n!r} is neither a board ({', '.join(cat.boards)}) "
                            f"nor a device ({', '.join(devs.devices)}); define it in a "
                            "--board-file") from None
        p = prices.get(cfg.board.name, prices.get(n))
        if p is not None:
            cfg = _replace(cfg, board=_replace(cfg.board, price_per_hour=p))
        out.append(cfg)
    return out


def parse_prices(items: list[str] | None) -> dict[str, float]:
    """``--price U55C=1.65,A100-80GB=3.67`` -> {name: USD per hour}."""
    from dse.exceptions import SpecError

    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, _, v = part.partition("=")
            try:
                val = float(v)
            except ValueError:
                raise SpecError(f"--price {part!r}: use NAME=USD_PER_HOUR") from None
            if val < 0 or not name.strip():
                raise SpecError(f"--price {part!r}: use NAME=USD_PER_HOUR (>= 0)")
            out[name.strip()] = val
    return out
