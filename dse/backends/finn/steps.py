"""The FINN steps of a plan: lower a model to FINN's HW layers (in the finn-plus env), emit
per-board build directories, run the builds, verify the partitions, set up the env."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import onnx

from dse.backends.finn.emit import EmitResult, emit
from dse.backends.finn.emit_llm import emit_llm
from dse.backends.finn.env import require, setup
from dse.backends.finn.llm_bind import Binding, bind
from dse.backends.finn.partition import canonical_names, unmapped_between
from dse.backends.finn.runner import BoardBuild, build, run_driver
from dse.backends.finn.verify import VerifyResult
from dse.backends.finn.verify import verify_build as _verify
from dse.chain.plan import PipelinePlan, load_plan
from dse.examples import resolve_model
from dse.exceptions import BackendError, PlanError, SpecError
from dse.ir import load_network
from dse.ir.lower import is_hw_graph, read_model
from dse.llm.network import plan_network
from dse.models._common import part_family
from dse.outdir import check_out_dir, staged_dir
from dse.plan import PartitionPlan
from dse.plan_check import check_plan_against
from dse.specs import load_catalog

Progress = Callable[[str], None]


def finn_hw_graph(model: str | Path, out_dir: Path, *, finn_env: str | Path | None = None,
                  input_dtype: str | None = None) -> Path:
    """The FINN HW-layer graph of ``model``: the file itself if it already holds HW layers,
    else FINN's own lowering (qonnx_to_finn .. convert_to_hw) run in the finn-plus env, with
    the graph input annotated ``input_dtype`` (the plan's ``--input-dtype``). Where FINN's
    default streamlining leaves layers unmapped (the float scales of ResNets and MobileNets
    between a threshold and the next conv), it is lowered again with the extra streamlining
    those networks need (``driver.step_streamline_residual``)."""
    p = Path(model)
    if is_hw_graph(read_model(p)):
        return p
    env = require(Path(finn_env) if finn_env else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "finn_hw_graph.onnx"
    (out_dir / "logs").mkdir(exist_ok=True)
    stuck: list[onnx.NodeProto] = []
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


def _check_buildable(plan: PartitionPlan) -> None:
    """Layers finn-plus 1.6.1 can cost but not build on the plan's boards: one clear line."""

    data = plan.data
    parts = {b["index"]: b["part"] for b in data["boards"]}
    for layer in data["layers"]:
        part = parts.get(layer["board"])
        if layer["op_type"] == "PWPolyF" and part_family(part) != "versal":
            raise BackendError(
                f"finn-plus cannot build {layer['name']} (PWPolyF) on board {layer['board']} "
                f"({part}): "
                "its PWPolyF_rtl uses Versal's DSPFP32 only; dse emit writes nothing (place "
                "the activation on a Versal board or quantize it to thresholds)")
        if layer["op_type"] == "Hadamard" or (layer["op_type"] in ("MVAU", "VVAU")
                                              and layer.get("cost_source") == "dse model"):
            raise BackendError(
                f"finn-plus cannot build {layer['name']} ({layer['op_type']}): FINN has no "
                "minifloat MVAU/VVAU and no Hadamard op (dse costs them with its own model, "
                "docs/minifloat.md); dse emit writes nothing")


def emit_plan(plan: str | Path | PartitionPlan | PipelinePlan, model: str | Path | None,
              out: str | Path, *,
              finn_env: str | Path | None = None, bitfile: bool = True,
              board_files: Sequence[str | Path] = ()) -> EmitResult:
    """Per-board FINN build directories for a plan (see dse.backends.finn.emit); the plan is
    checked against the network and the catalog (``board_files``: the plan's own boards)
    before anything is written."""
    where = str(plan) if isinstance(plan, (str, Path)) else "plan"
    if isinstance(plan, PartitionPlan):
        p = plan
    else:
        chain = plan if isinstance(plan, PipelinePlan) else load_plan(plan)
        if chain.network == "llm":
            return emit_llm_plan(chain, model, out, finn_env=finn_env, bitfile=bitfile)
        p = PartitionPlan.from_dict(chain.payload, where)
    if model is None:
        raise SpecError("dse emit of a CNN plan needs --model: the QONNX file or FINN "
                           "HW graph the plan was made from")
    check_out_dir(out)
    check_plan_against(p, load_network(resolve_model(model), input_dtype=p.data.get(
        "model", {}).get("input_dtype")), load_catalog(board_files),
        where)
    _check_buildable(p)
    with staged_dir(out) as tmp:
        hw = finn_hw_graph(model, tmp, finn_env=finn_env,
                           input_dtype=p.data.get("model", {}).get("input_dtype"))
        qonnx = None if Path(hw) == Path(model) else Path(model)
        res = emit(p, hw, tmp, bitfile=bitfile, qonnx_model=qonnx)
    out_dir = Path(out)
    return replace(res, out=out_dir, boards=[out_dir / b.name for b in res.boards])


def emit_llm_plan(plan: PipelinePlan, model: str | Path | None, out: str | Path, *,
                  finn_env: str | Path | None = None, bitfile: bool = True) -> EmitResult:
    """Per-board FINN build directories for an LLM plan (``dse.backends.finn.emit_llm``);
    with ``model`` (the user's QONNX export of the same architecture, or finn-plus's HW
    graph of it) its HW graph is bound to the plan's blocks, without it only the configs
    are written (and the output says so)."""
    check_out_dir(out)
    with staged_dir(out) as tmp:
        binding = _bind_export(plan, Path(model), tmp, finn_env) if model else None
        res = emit_llm(plan, tmp, binding=binding, bitfile=bitfile)
    out_dir = Path(out)
    return replace(res, out=out_dir, boards=[out_dir / b.name for b in res.boards])


def _bind_export(plan: PipelinePlan, model: Path, tmp: Path,
                 finn_env: str | Path | None) -> Binding:
    """finn-plus's HW-layer graph of the export (its own lowering, in its env), bound to the
    plan's blocks. finn-plus leaves some transformer ops un-lowered (float norms, rotary
    slices, attention MatMuls): they stay in the graph and are named in the output."""
    if is_hw_graph(read_model(model)):
        hw_path = model
    else:
        env = require(Path(finn_env) if finn_env else None)
        hw_path = tmp / "finn_hw_graph.onnx"
        (tmp / "logs").mkdir(exist_ok=True)
        log = tmp / "logs" / "finn_lower.log"
        r = run_driver(env, "lower", str(model.resolve()), str(hw_path.resolve()), "-",
                       log=log)
        if not r.get("ok"):
            raise BackendError(f"finn-plus could not lower {model.name}: {r.get('error')} "
                               f"(log: {log.name} in the output's logs/)")
    hw = canonical_names(onnx.load(str(hw_path)))
    net = plan_network(plan.model)
    block = net.stacks[0].block if net else None
    head = net.head if net else None
    if block is None:
        raise PlanError("the LLM plan does not record its architecture (written by an older "
                        "dse): rerun dse optimize to bind an export, or emit without --model")
    producers = {(e.dst, lyr.op_type): lyr.name for lyr in block.layers
                 for e in block.out_edges(lyr.name) if e.dst}
    return bind(hw, blocks=int(plan.model["blocks"]), folding=[x.name for x in block.layers],
                last_op=block.layers[-1].op_type,
                shapes={x.name: x.finn_attrs() for x in block.layers}, source=model,
                producers=producers, head_layers=[x.name for x in head.layers] if head else (),
                head_shapes={x.name: x.finn_attrs() for x in head.layers} if head else None)


def verify_build(build_dir: str | Path, *, model: str | Path | None = None, inputs: int = 2,
                 seed: int = 0, finn_env: str | Path | None = None,
                 progress: Progress | None = None) -> VerifyResult:
    """Run the emitted partitions in sequence and compare with the whole network."""

    return _verify(build_dir, model=model, inputs=inputs, seed=seed,
                   env=Path(finn_env) if finn_env else None, progress=progress)


def build_plan(build_dir: str | Path, *, jobs: int = 2, finn_env: str | Path | None = None,
               progress: Progress | None = None) -> list[BoardBuild]:

    return build(build_dir, jobs=jobs, env=Path(finn_env) if finn_env else None,
                 progress=progress)


def finn_setup(path: str | Path | None = None, *, force: bool = False,
               progress: Progress | None = None) -> Path:

    return setup(Path(path) if path else None, progress=progress, force=force)
