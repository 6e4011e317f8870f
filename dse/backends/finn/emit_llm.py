"""Emit, per FPGA stage of an LLM plan, a FINN build directory.

An LLM plan (``dse.chain.plan.PipelinePlan`` with network "llm") gives, per stage, a range of
blocks ("0-3"; "4.5-8.5" with half blocks), the build style (``spatial``: every block its
own hardware; ``rolled``: one block iterated, FINN's FINNLoop / multi-layer offload), where
the weights live, the folding of ONE block (layer names of the block graph dse builds from
the config), the HBM pseudo-channel table and the SLR table. Per FPGA stage this writes:

* ``folding_config.json`` / ``specialize_layers_config.json``: the plan's folding and
  hls/rtl choice; keyed by FINN's node names when the user's export is bound, by the block's
  layer names (every block of the stage takes the same) otherwise;
* ``dataflow_build_config.json`` (``dse.backends.finn.emit.build_config``), with finn-plus's
  MLO settings (``mlo``, ``loop_body_hierarchy``, ``step_loop_rolling``) on a rolled stage;
* ``memory_map.json``: the plan's pseudo-channel table (``dse.chain.channels`` rule);
* ``floorplan.json``: the plan's SLR per layer, where the stage was placed per SLR;
* with the export bound: ``model.onnx`` (the stage's part of finn-plus's HW-layer graph of
  the export, weights included) and ``model_accl.onnx`` (ACCL boundary nodes).

At the top, ``manifest.json`` (ranks, ACCL boundaries, what is bound, notes) and a README.
GPU and CPU stages are listed there as not FINN builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from dse.backends.finn.emit import EmitResult, _with_accl, build_config, dump_json
from dse.backends.finn.llm_bind import (
    Binding,
    BlockRange,
    StageGraph,
    block_range,
    stage_folding,
    stage_graph,
)
from dse.chain.plan import PipelinePlan, Stage
from dse.exceptions import PlanError
from dse.models._common import part_family
from dse.solver.problem import ACCL_WORD_BITS
from dse.specs import Board, default_catalog

#: finn-plus's loop body for an MLO build: the nodes carrying the PyTorch scope "layers.0"
#: (``step_loop_rolling``, finn/builder/build_dataflow_steps.py of finn-plus 1.6.1)
LOOP_BODY_HIERARCHY = [["", "layers.0"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FpgaStage:
    rank: int
    stage: Stage
    record: Mapping[str, Any]  # the stage of the LLM planner's own plan (dse-llm-plan/1)
    blocks: BlockRange
    board: Board | None


def fpga_stages(plan: PipelinePlan) -> list[FpgaStage]:
    catalog = default_catalog()
    out: list[FpgaStage] = []
    for st, rec in zip(plan.stages, plan.payload["stages"], strict=True):
        if st.device.kind != "fpga":
            continue
        name = st.device.name
        out.append(FpgaStage(rank=len(out), stage=st, record=rec,
                             blocks=block_range(st.segment.label, st.segment.parts),
                             board=catalog.board(name) if name in catalog.boards else None))
    return out


def _configs(fs: FpgaStage, sg: StageGraph | None) -> tuple[dict, dict]:
    """(folding config, specialize-layers config) of a stage."""
    fold: dict[str, Any] = {"Defaults": {}}
    spec: dict[str, Any] = {"Defaults": {}}
    per_layer = stage_folding(fs.record)
    if sg is None:  # keyed by the block's layer names: every block of the stage takes them
        for layer, a in sorted(per_layer.items()):
            fold[layer] = {k: v for k, v in sorted(a.items()) if k != "impl"}
            spec[layer] = {"preferred_impl_style": a["impl"]}
        return fold, spec
    for node in sg.nodes:
        if node.layer is not None and node.layer in per_layer:
            a = per_layer[node.layer]
            fold[node.finn_name] = {k: v for k, v in sorted(a.items()) if k != "impl"}
        if node.impl:
            spec[node.generic_name] = {"preferred_impl_style": node.impl}
    return fold, spec


def _memory_map(fs: FpgaStage, sg: StageGraph | None) -> dict[str, Any] | None:
    """The plan's HBM pseudo-channel table as the CNN emit writes ``memory_map.json``: per
    stream (copy.layer, the KV cache, the loop's activations) its channel, offset, bytes and
    rate."""
    table = fs.record.get("hbm_pseudo_channels")
    if not table or not table.get("streams"):
        return None
    names = sg.stream_nodes if sg is not None else {}
    entries = []
    for stream, shares in sorted(table["streams"].items()):
        for sh in shares:
            entries.append({"layer": stream, "finn_node": names.get(stream),
                            "memory": "HBM", "pseudo_channel": sh["channel"],
                            "offset": sh["offset"], "bytes": sh["bytes"], "gbps": sh["gbps"]})
    return {"board": fs.rank, "entries": entries,
            "channel_gbps": table.get("usable_gbps_per_channel"),
            "channel_bytes": table.get("bytes_per_channel")}


def _floorplan(fs: FpgaStage, sg: StageGraph | None) -> dict[str, Any] | None:
    """FINN's ``vitis_floorplan_file``: per node (per block layer without the export) its
    SLR as the plan placed it."""
    slrs = fs.record.get("slrs")
    if not slrs or not slrs.get("feasible"):
        return None
    names = sg.slr_nodes if sg is not None else {}
    fp: dict[str, Any] = {"Defaults": {}}
    for e in slrs["layers"]:
        fp[names.get(e["layer"], e["layer"])] = {"slr": int(e["slr"]), "partition_id": 0,
                                                 "device_id": fs.rank, "mem_port": ""}
    return fp


def _build_cfg(fs: FpgaStage, plan: PipelinePlan, *, bitfile: bool) -> dict[str, Any]:
    b = fs.board
    cfg = build_config(name=fs.stage.device.name, part=b.part if b else "",
                       board=b, clock_mhz=float(fs.stage.device.clock_mhz
                                                or plan.payload.get("clock_mhz", 200.0)),
                       minimize=True, bitfile=bitfile)
    if fs.stage.build.style == "rolled":
        cfg["mlo"] = True
        cfg["loop_body_hierarchy"] = LOOP_BODY_HIERARCHY
        steps = list(cfg["steps"])  # rolled after specialization: finn-plus streams a loop's
        # weights through MVAU_rtl only (matrixvectoractivation.adapt_for_loop_body)
        steps.insert(steps.index("step_specialize_layers") + 1, "step_loop_rolling")
        if bitfile:  # MLO: the streamed weights' offsets before the hardware is generated
            steps.insert(steps.index("step_hw_codegen"), "step_assign_ddr_weight_offsets")
        cfg["steps"] = steps
    return cfg


def _boundaries(stages: list[FpgaStage], plan: PipelinePlan) -> dict[int, dict[str, list]]:
    """Per rank its ACCL inputs and outputs: the residual stream to the neighbouring FPGA
    stage (one frame: ``frame_bytes`` of the plan, in 512-bit ACCL words)."""
    nbytes = int(plan.payload.get("metrics", {}).get("frame_bytes", 0))
    bits = nbytes * 8
    words = -(-bits // ACCL_WORD_BITS)
    out: dict[int, dict[str, list]] = {s.rank: {"inputs": [], "outputs": []} for s in stages}
    for a, b in zip(stages, stages[1:], strict=False):
        if b.stage.index != a.stage.index + 1:
            continue  # a GPU/CPU stage between them: host links, not ACCL
        link = {"bits_per_frame": bits, "accl_words_per_frame": words, "tag": 0}
        out[a.rank]["outputs"].append({**link, "to_rank": b.rank, "to_ranks": [b.rank]})
        out[b.rank]["inputs"].append({**link, "from_rank": a.rank, "from_ranks": [a.rank]})
    return out


def _write_models(d: Path, fs: FpgaStage, sg: StageGraph, io: Mapping[str, list]) -> None:
    onnx.save(sg.model, str(d / "model.onnx"))
    if not (io["inputs"] or io["outputs"]):
        return

    def stream(t: str, x: Mapping[str, Any], peer: int) -> dict[str, Any]:
        return {"tensor": t, "peer": peer, "tag": x["tag"], "dtype": sg.dtypes.get(t, "FLOAT32"),
                "stream_width": sg.widths.get(t, 0), "bits_per_frame": x["bits_per_frame"],
                "words_per_frame": x["accl_words_per_frame"]}

    ins = [stream(t, x, x["from_rank"]) for t, x in zip(sg.inputs, io["inputs"], strict=False)]
    outs = [stream(t, x, x["to_rank"]) for t, x in zip(sg.outputs, io["outputs"], strict=False)]
    onnx.save(_with_accl(sg.model, fs.rank, ins, outs), str(d / "model_accl.onnx"))


def emit_llm(plan: PipelinePlan, out: str | Path, *, binding: Binding | None = None,
             bitfile: bool = True) -> EmitResult:
    """Write the per-board FINN build directories of an LLM ``plan`` into ``out``.
    ``binding``: the user's export lowered by finn-plus and bound to the plan's blocks
    (``dse.backends.finn.llm_bind.bind``); without it only the configs are written."""
    if plan.network != "llm":
        raise PlanError("emit_llm takes an LLM plan; a CNN plan goes through dse emit's "
                        "CNN path (dse.backends.finn.emit)")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = fpga_stages(plan)
    if not stages:
        raise PlanError("the LLM plan has no FPGA stage: nothing for FINN to build")
    io = _boundaries(stages, plan)
    notes = list(binding.notes) if binding else [
        "weights not bound: no --model export was given, so no graph was written; the "
        "configs are keyed by the block's layer names (every block of a stage takes them)"]
    notes += _unbuildable(stages)
    dirs, boards = [], []
    for fs in stages:
        d = out_dir / f"board{fs.rank}"
        d.mkdir(exist_ok=True)
        sg = (stage_graph(binding, fs.blocks, fs.record,
                          rolled=fs.stage.build.style == "rolled") if binding else None)
        boards.append(_write_stage(d, fs, sg, io[fs.rank], plan, bitfile=bitfile))
        dirs.append(d)
    manifest = {
        "schema_version": 1, "network": "llm", "model": dict(plan.model),
        "weights_bound": binding is not None,
        "finn_graph": binding.source if binding else None,
        "clock_mhz": plan.payload.get("clock_mhz"), "world_size": len(stages),
        "topology": "chain", "boards": boards,
        "not_finn": [{"stage": s.index, "kind": s.device.kind, "device": s.device.name,
                      "blocks": s.segment.label} for s in plan.stages
                     if s.device.kind != "fpga"],
        "notes": notes,
        "predicted": {"frame_s": plan.metrics.frame_s, "latency_s": plan.metrics.latency_s,
                      "tokens_per_s": plan.metrics.tokens_per_s},
    }
    (out_dir / "manifest.json").write_text(dump_json(manifest))
    (out_dir / "README.md").write_text(_readme(manifest))
    return EmitResult(out=out_dir, boards=dirs, manifest=manifest)


def _unbuildable(stages: list[FpgaStage]) -> list[str]:
    """One line per board where finn-plus 1.6.1 cannot build a layer of the plan's block:
    PWPolyF_rtl (SiLU/GELU polynomials) uses Versal's DSPFP32 only."""
    out = []
    for fs in stages:
        poly = sorted(n for n in fs.stage.build.folding if n.startswith("PWPolyF"))
        part = fs.board.part if fs.board else ""
        if poly and part_family(part) != "versal":
            out.append(f"board{fs.rank} ({fs.stage.device.name}, {part}): finn-plus cannot "
                       f"build {', '.join(poly)} (PWPolyF_rtl uses Versal's DSPFP32 only); "
                       "plan the activation on a Versal board or quantize it to thresholds")
    return out


def _write_stage(d: Path, fs: FpgaStage, sg: StageGraph | None, io: Mapping[str, list],
                 plan: PipelinePlan, *, bitfile: bool) -> dict[str, Any]:
    fold, spec = _configs(fs, sg)
    (d / "folding_config.json").write_text(dump_json(fold))
    (d / "specialize_layers_config.json").write_text(dump_json(spec))
    cfg = _build_cfg(fs, plan, bitfile=bitfile)
    mm = _memory_map(fs, sg)
    if mm is not None:
        (d / "memory_map.json").write_text(dump_json(mm))
    fp = _floorplan(fs, sg)
    if fp is not None:
        (d / "floorplan.json").write_text(dump_json(fp))
        cfg["vitis_floorplan_file"] = "floorplan.json"
    (d / "dataflow_build_config.json").write_text(dump_json(cfg))
    if sg is not None:
        _write_models(d, fs, sg, io)
    st, br = fs.stage, fs.blocks
    return {
        "rank": fs.rank, "ranks": [fs.rank], "dir": d.name, "name": st.device.name,
        "part": fs.board.part if fs.board else None, "stage": st.index,
        "blocks": st.segment.label, "parts": list(st.segment.parts),
        "style": st.build.style, "weights": st.build.weights,
        "loop": ({"body": LOOP_BODY_HIERARCHY[0][1], "iterations": len(br.full)}
                 if st.build.style == "rolled" else None),
        "layers": sorted(stage_folding(fs.record)),
        "finn_nodes": dict(sg.finn_nodes) if sg else {},
        "inputs": io["inputs"], "outputs": io["outputs"],
        "predicted": {"frame_s": st.frame_s, "latency_s": st.latency_s,
                      "block_ii_cycles": fs.record.get("block_ii_cycles"),
                      "resources": dict(st.resources)},
    }


def _readme(m: Mapping[str, Any]) -> str:
    bound = m["weights_bound"]
    lines = [
        f"# FINN builds for a dse LLM plan ({m['model'].get('name')}, "
        f"{m['model'].get('mode')})", "",
        f"{m['world_size']} FPGA board(s) in a chain, joined by ACCL (the residual stream of "
        "one frame per hop; `manifest.json` lists ranks, peers and words per frame).", "",
        ("The weights are bound: `model.onnx` in each `boardK/` is the board's part of "
         "finn-plus's HW-layer graph of the given export, and the folding config names "
         "FINN's nodes." if bound else
         "**The weights are not bound** (no `--model` export was given): no graph was "
         "written; `folding_config.json` and `specialize_layers_config.json` are keyed by "
         "the layer names of one block as dse builds it from the config, and every block of "
         "a board takes the same folding. Rerun `dse emit --plan ... --model export.onnx` "
         "with the QONNX export of the model to bind them."), "",
        "A rolled board (`style` rolled) is one block iterated (finn-plus's FINNLoop): its "
        "build config sets `mlo` and `loop_body_hierarchy` and runs `step_loop_rolling`.", "",
        "| rank | board | blocks | style | weights |", "|---|---|---|---|---|",
    ]
    for b in m["boards"]:
        lines.append(f"| {b['rank']} | {b['name']} | {b['blocks']}"
                     f"{' + head' if 'head' in b['parts'] else ''} | {b['style']} | "
                     f"{b['weights']} |")
    for s in m["not_finn"]:
        lines.append(f"\nStage {s['stage']} ({s['kind']} {s['device']}, blocks "
                     f"{s['blocks']}) is not a FINN build.")
    if m["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in m["notes"]]
    lines.append("")
    return "\n".join(lines)
