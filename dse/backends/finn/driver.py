"""Runs inside the finn-plus virtualenv (never imported by dse itself): dse calls it as a
subprocess, ``<finn-env>/bin/python driver.py COMMAND ...``, and reads the JSON it prints last.

Commands
  build DIR              FINN's builder on DIR/model.onnx + DIR/dataflow_build_config.json
  lower QONNX OUT [DT|-] [residual]   FINN's own lowering to HW layers (qonnx_to_finn ..
                         convert_to_hw); DT annotates the graph input, residual adds the
                         streamlining that ResNets and MobileNets need
  exec MODEL IN.npz OUT.npz   execute a HW-layer graph in Python (FINN's execute_onnx)
  to_finn QONNX OUT      FINN's ConvertQONNXtoFINN (QONNX -> FINN-ONNX, MultiThreshold form)
  estimate QONNX OUT FPS FINN's default estimate-only flow (SetFolding to FPS, bit-width
                         minimization, estimate reports) on a QONNX model; OUT/folded.onnx
  setfolding HW OUT.json SPEC.json   FINN's SetFolding on a specialized HW-layer graph for
                         every [target_cycles, mvau_wwidth_max] in SPEC; the folding
                         attributes and expected cycles per node, per setting
  estimate_dir DIR       FINN's own steps (specialize layers, apply the folding config,
                         minimize bit widths) and estimate analyses on DIR/model.onnx with
                         DIR/dataflow_build_config.json, without the dataflow partition (an
                         LLM board's graph keeps the float ops finn-plus cannot lower);
                         DIR/output/report/estimate_layer_{cycles,resources}.json

Without Vivado, FINN's builder cannot even be imported; two monkeypatches (no FINN file is
changed) make its estimate-only flow run: the XSI simulator is declared absent, and the final
metadata write gets a placeholder Vivado root (finn_plus_notes.md section 1).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path


def _prepare() -> None:
    os.environ.setdefault("FINN_BUILD_DIR", tempfile.mkdtemp(prefix="dse-finn-"))
    import finn.xsi

    finn.xsi.SimEngine = None  # no Vivado XSI here; bind the lazy name before the builder


def _builder():
    _prepare()
    import finn.builder.build_dataflow as bdf

    if not os.environ.get("XILINX_VIVADO"):
        bdf.get_vivado_root = lambda: "no-vivado"
    return bdf


def have_vivado() -> bool:
    return bool(os.environ.get("XILINX_VIVADO")) and shutil.which("vivado") is not None


def cmd_build(d: Path) -> dict:
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    bdf = _builder()
    cfg_path = d / "dataflow_build_config.json"
    data = json.loads(cfg_path.read_text())
    note = ""
    wants_bitfile = "bitfile" in data.get("generate_outputs", [])
    if wants_bitfile and not have_vivado():
        note = ("bitstreams need Vivado/Vitis (XILINX_VIVADO not set or vivado not on PATH); "
                "ran FINN's estimate-only flow instead")
        data["generate_outputs"] = ["estimate_reports"]
        data["steps"] = [s for s in data["steps"] if s in (
            "step_create_dataflow_partition", "step_specialize_layers",
            "step_apply_folding_config", "step_minimize_bit_width",
            "step_generate_estimate_reports")]
        cfg_path = d / "dataflow_build_config.estimate_only.json"
        cfg_path.write_text(json.dumps(data, indent=1, sort_keys=True))
    cfg = DataflowBuildConfig.construct_from(cfg_path)
    cfg.output_dir = str(d / "output")
    t0 = time.time()
    rc = bdf.build_dataflow_cfg(str(d / "model.onnx"), cfg)
    return {"ok": rc == 0, "rc": rc, "wall_s": round(time.time() - t0, 2), "note": note,
            "report_dir": str(d / "output" / "report")}


def _annotate_input(dtype: str):
    """A build step: the graph input annotated ``dtype`` (after tidy-up), as dse's
    ``--input-dtype`` does; without it FINN leaves MatMuls with a FLOAT32 input unmapped."""
    def step_annotate_input(model, cfg):
        from qonnx.core.datatype import DataType

        model.set_tensor_datatype(model.graph.input[0].name, DataType[dtype])
        return model
    return step_annotate_input


def step_streamline_residual(model, cfg):
    """Before FINN's own streamline: move the float scales that brevitas leaves between a
    MultiThreshold and the next (depthwise) conv, across forks and residual adds, into the
    thresholds (finn_plus_notes.md section 2: the fix that lowers ResNet-10 and MobileNetV1)."""
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.absorb import AbsorbMulIntoMultiThreshold
    from finn.transformation.streamline.collapse_repeated import CollapseRepeatedMul
    from finn.transformation.streamline.reorder import (
        MoveLinearPastEltwiseAdd,
        MoveLinearPastFork,
        MoveMulPastDWConv,
        MoveScalarLinearPastInvariants,
        MoveScalarMulPastConv,
    )
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for _ in range(4):
        for t in (MoveLinearPastFork(), MoveMulPastDWConv(), MoveScalarMulPastConv(),
                  MoveLinearPastEltwiseAdd(), MoveScalarLinearPastInvariants(),
                  CollapseRepeatedMul(), AbsorbMulIntoMultiThreshold(), Streamline()):
            model = model.transform(t)
    model = model.transform(InferShapes()).transform(InferDataTypes())
    return model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())


def step_transpose_cleanup(model, cfg):
    """After FINN's streamline: the layout Transposes around forks and residual adds moved and
    absorbed until nothing changes (else they sit between HW layers)."""
    from finn.transformation.streamline.absorb import (
        AbsorbConsecutiveTransposes,
        AbsorbTransposeIntoMultiThreshold,
    )
    from finn.transformation.streamline.reorder import (
        MoveTransposePastFork,
        MoveTransposePastJoinAdd,
    )

    for _ in range(20):
        before = model.model.SerializeToString()
        for t in (MoveTransposePastJoinAdd(), MoveTransposePastFork(),
                  AbsorbTransposeIntoMultiThreshold(), AbsorbConsecutiveTransposes()):
            model = model.transform(t)
        if model.model.SerializeToString() == before:
            break
    return model


def step_round_thresholds(model, cfg):
    """After the conversion to HW layers: thresholds behind a residual add (whose output
    only now has an integer type) rounded up to integers, as FINN's streamline does for
    every other threshold (RoundAndClipThresholds); FINN's bit-width minimization then sizes
    them from their values. Left alone they stay FLOAT32, 32 bits each."""
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    return model.transform(RoundAndClipThresholds())


def cmd_lower(src: Path, out: Path, input_dtype: str | None = None,
              residual: bool = False) -> dict:
    """FINN's lowering to HW layers. ``input_dtype``: the graph input's type (as the plan
    was made); ``residual``: the extra streamlining that networks with residual adds and
    per-channel scales (ResNets, MobileNets) need."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    bdf = _builder()
    work = Path(tempfile.mkdtemp(prefix="dse-lower-"))
    steps: list = ["step_qonnx_to_finn", "step_tidy_up"]
    if input_dtype:
        steps.append(_annotate_input(input_dtype))
    if residual:
        steps.append(step_streamline_residual)
    steps.append("step_streamline")
    if residual:
        steps.append(step_transpose_cleanup)
    steps.append("step_convert_to_hw")
    if residual:  # (FINN's own bit-width rules, on the rounded thresholds and the adds)
        steps += [step_round_thresholds, "step_minimize_bit_width"]
    cfg = DataflowBuildConfig(
        output_dir=str(work), synth_clk_period_ns=5.0, generate_outputs=[],
        folding_config_file=None, target_fps=1, steps=steps, save_intermediate_models=True,
    )
    rc = bdf.build_dataflow_cfg(str(src), cfg)
    last = steps[-1] if isinstance(steps[-1], str) else steps[-1].__name__
    hw = work / "intermediate_models" / f"{last}.onnx"
    if rc != 0 or not hw.exists():
        log = (work / "build_dataflow.log")
        tail = log.read_text().strip().splitlines()[-3:] if log.exists() else []
        return {"ok": False, "error": " | ".join(tail) or f"FINN returned {rc}"}
    shutil.copy(hw, out)
    return {"ok": True, "path": str(out)}


def cmd_exec(model: Path, inp: Path, out: Path) -> dict:
    """Execute a (generic) HW-layer graph in Python; inputs and outputs as .npz by name."""
    import numpy as np

    _prepare()
    import finn.custom_op.fpgadataflow.rtl  # noqa: F401 - registers Reshape (finn-plus bug)
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(model))
    with np.load(inp, allow_pickle=False) as data:
        feeds = {k: data[k] for k in data.files}
    res = execute_onnx(m, feeds)
    outs = [o.name for o in m.graph.output]
    np.savez(out, **{k: res[k] for k in outs})
    return {"ok": True, "outputs": outs}


def cmd_estimate(src: Path, out: Path, target_fps: int) -> dict:
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        estimate_only_dataflow_steps,
    )

    bdf = _builder()
    cfg = DataflowBuildConfig(
        output_dir=str(out), synth_clk_period_ns=5.0, target_fps=target_fps, board="U55C",
        shell_flow_type="vitis_alveo", generate_outputs=["estimate_reports"],
        steps=estimate_only_dataflow_steps, save_intermediate_models=True)
    rc = bdf.build_dataflow_cfg(str(src), cfg)
    folded = out / "intermediate_models" / "step_generate_estimate_reports.onnx"
    if rc != 0 or not folded.exists():
        return {"ok": False, "error": f"FINN's estimate flow returned {rc}"}
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    parent = ModelWrapper(str(folded))
    sdp = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    child = getCustomOp(sdp[0]).get_nodeattr("model") if len(sdp) == 1 else str(folded)
    shutil.copy(child, out / "folded.onnx")  # the dataflow partition: FINN's HW layers
    return {"ok": True, "path": str(out / "folded.onnx"),
            "report_dir": str(out / "report")}


FOLD_ATTRS = ("PE", "SIMD", "parallel_window", "ram_style", "mem_mode", "resType")


def cmd_setfolding(src: Path, out: Path, spec: Path) -> dict:
    _prepare()
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    runs = []
    for target, wmax in json.loads(spec.read_text()):
        m = ModelWrapper(str(src)).transform(SetFolding(
            target_cycles_per_frame=int(target), mvau_wwidth_max=int(wmax),
            two_pass_relaxation=True))
        fold, cycles = {}, {}
        for node in m.graph.node:
            try:
                inst = getCustomOp(node)
            except Exception:
                continue
            attrs = {}
            for a in FOLD_ATTRS:
                try:
                    attrs[a] = inst.get_nodeattr(a)
                except Exception:
                    continue
            fold[node.name] = {k: (v.decode() if isinstance(v, bytes) else v)
                               for k, v in attrs.items()}
            try:
                cycles[node.name] = int(inst.get_exp_cycles())
            except Exception:
                pass
        runs.append({"target_cycles": int(target), "mvau_wwidth_max": int(wmax),
                     "folding": fold, "cycles": cycles})
    out.write_text(json.dumps({"model": src.name, "runs": runs}, indent=1, sort_keys=True))
    return {"ok": True, "path": str(out), "runs": len(runs)}


def cmd_estimate_dir(d: Path) -> dict:
    _builder()
    import finn.builder.build_dataflow_steps as steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.modelwrapper import ModelWrapper

    cfg = DataflowBuildConfig.construct_from(d / "dataflow_build_config.json")
    cfg.output_dir = str(d / "output")
    (d / "output").mkdir(exist_ok=True)  # (the loop rolling writes its body template there)
    for f in ("folding_config_file", "specialize_layers_config_file"):
        setattr(cfg, f, str(d / getattr(cfg, f)))
    m = ModelWrapper(str(d / "model.onnx"))
    m = steps.step_specialize_layers(m, cfg)
    loops = []
    if cfg.mlo:  # a rolled board: finn-plus's loop rolling (FINNLoop), as the config asks
        m = steps.step_loop_rolling(m, cfg)
        from qonnx.custom_op.registry import getCustomOp

        loops = [{"node": n.name, "iteration": int(getCustomOp(n).get_nodeattr("iteration"))}
                 for n in m.get_nodes_by_op_type("FINNLoop")]
    for step in (steps.step_apply_folding_config, steps.step_minimize_bit_width):
        m = step(m, cfg)
    report = d / "output" / "report"
    report.mkdir(parents=True, exist_ok=True)
    # finn-plus's analyses (exp_cycles_per_layer, res_estimation) node by node, so that a node
    # it cannot estimate (a FINNLoop whose body keeps float ops) is named, not fatal
    from finn.util.basic import getHWCustomOp
    from finn.util.fpgadataflow import is_hls_node, is_rtl_node

    cycles, res, failed = {}, {}, {}
    for node in m.graph.node:
        if is_hls_node(node) or is_rtl_node(node):
            try:
                inst = getHWCustomOp(node)
                cycles[node.name] = int(inst.get_exp_cycles())
                res[node.name] = inst.node_res_estimation(cfg._resolve_fpga_part())
            except Exception as e:
                failed[node.name] = f"{type(e).__name__}: {str(e)[:200]}"
    (report / "estimate_layer_cycles.json").write_text(json.dumps(cycles, indent=1))
    (report / "estimate_layer_resources.json").write_text(json.dumps(res, indent=1))
    return {"ok": True, "report_dir": str(report), "loops": loops, "not_estimated": failed}


def cmd_to_finn(src: Path, out: Path) -> dict:
    _prepare()
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(src))).transform(ConvertQONNXtoFINN())
    m.save(str(out))
    return {"ok": True, "path": str(out)}


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "build":
            res = cmd_build(Path(argv[1]))
        elif argv[0] == "lower":  # lower QONNX OUT [INPUT_DTYPE|-] [residual]
            dt = argv[3] if len(argv) > 3 and argv[3] != "-" else None
            res = cmd_lower(Path(argv[1]), Path(argv[2]), dt, "residual" in argv[4:])
        elif argv[0] == "estimate":
            res = cmd_estimate(Path(argv[1]), Path(argv[2]), int(argv[3]))
        elif argv[0] == "setfolding":
            res = cmd_setfolding(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        elif argv[0] == "estimate_dir":
            res = cmd_estimate_dir(Path(argv[1]))
        elif argv[0] == "to_finn":
            res = cmd_to_finn(Path(argv[1]), Path(argv[2]))
        elif argv[0] == "exec":
            res = cmd_exec(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        else:
            res = {"ok": False, "error": f"unknown command {argv[0]!r}"}
    except Exception as e:  # report, do not crash: dse shows the message
        res = {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
               if str(e) else type(e).__name__, "traceback": traceback.format_exc()[-2000:]}
    print("DSE_RESULT " + json.dumps(res), flush=True)
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
