"""Emit, per board of a plan, a directory FINN's builder accepts (``build_dataflow_directory``:
``model.onnx`` + ``dataflow_build_config.json``), cut from FINN's own HW-layer graph.

Per board: the partition (plain inputs/outputs) as ``model.onnx``; the same with ACCL
boundary nodes as ``model_accl.onnx``; ``folding_config.json`` keyed by the names FINN gives
the nodes when it applies it; ``specialize_layers_config.json`` pinning hls/rtl as planned;
``dataflow_build_config.json``; ``memory_map.json`` for weights in HBM/DDR. At the top:
``manifest.json`` (boards, ranks, links, the plan's predictions) and a README.

Emitting is deterministic: the same plan and graph give byte-identical files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dse.backends.finn import qonnx_split
from dse.backends.finn.partition import sub_model
from dse.chain.channels import channel_rule
from dse.exceptions import BackendError, PlanError
from dse.ir import bitwidth, load_network
from dse.ir.finn_hw import _attrs as hw_attrs
from dse.ir.onnx_io import HW_DOMAIN
from dse.models import estimate, split_op_type
from dse.plan import PartitionPlan, finn_node_names
from dse.solver.problem import ACCL_WORD_BITS
from dse.solver.slr import floorplan_json
from dse.specs import Board, default_catalog
from dse.specs.memory import StreamDemand, allocate

#: the estimate-only flow from a HW-layer graph, with FINN's bit-width minimization (as planned)
ESTIMATE_STEPS = ["step_create_dataflow_partition", "step_specialize_layers",
                  "step_apply_folding_config", "step_minimize_bit_width",
                  "step_generate_estimate_reports"]
BITFILE_STEPS = ESTIMATE_STEPS + ["step_hw_codegen", "step_hw_ipgen", "step_set_fifo_depths",
                                  "step_create_stitched_ip", "step_synthesize_bitfile"]


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True, slots=True)
class EmitResult:
    out: Path
    boards: list[Path]
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# matching plan layers to FINN nodes


def _generic(op_type: str) -> str:
    try:
        return split_op_type(op_type)[0].name
    except Exception:
        return op_type


def minimized_attrs(node: onnx.NodeProto, attrs: dict[str, Any],
                    inits: Mapping[str, onnx.TensorProto], *, last: bool) -> None:
    """The types FINN's step_minimize_bit_width gives an MVAU/VVAU node (in place)."""
    op = _generic(node.op_type)
    if op not in ("MVAU", "VVAU") or len(node.input) < 2 or node.input[1] not in inits:
        return
    w = numpy_helper.to_array(inits[node.input[1]]).astype(float)
    if op == "VVAU":
        k = int(np.prod(attrs["Kernel"]))
        w = w.reshape(int(attrs["Channels"]), k).T
    if int(attrs.get("binaryXnorMode", 0)):
        w = 2 * w - 1  # XNOR layers store 0/1
    bitwidth.minimize(attrs, w)
    if last and int(attrs.get("noActivation", 0)):
        attrs["outputDataType"] = bitwidth.byte_aligned(attrs["outputDataType"])


def match_layers(plan: PartitionPlan, model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Plan layer name -> FINN node. By name where the costs agree, else by op type in order;
    a layer whose FINN node would not cost what the plan says is an error. FINN's bit-width
    minimization (which the emitted builds run) applies to the nodes first when the plan was
    made with it."""
    minimize = plan["model"].get("minimize_bit_width", False)
    nodes = [n for n in model.graph.node if n.domain.startswith(HW_DOMAIN)]
    by_name = {n.name: n for n in nodes}
    used: set[str] = set()
    parts = {b["index"]: b["part"] for b in plan["boards"]}

    inits = {i.name: i for i in model.graph.initializer}
    read = {t for n in nodes for t in n.input}

    def agrees(layer: Mapping[str, Any], node: onnx.NodeProto) -> bool:
        if _generic(node.op_type) != layer["op_type"]:
            return False
        attrs = {**hw_attrs(node), **layer["folding"]}
        if minimize:
            minimized_attrs(node, attrs, inits, last=not any(o in read for o in node.output))
        try:
            c = estimate(f"{layer['op_type']}_{layer['impl']}", attrs, parts[layer["board"]])
        except Exception:
            return False
        r = layer["resources"]
        return (c.cycles, c.lut, c.bram18, c.uram, c.dsp) == (
            layer["cycles"], r["lut"], r["bram18"], r["uram"], r["dsp"])

    out: dict[str, onnx.NodeProto] = {}
    for layer in plan["layers"]:
        cand = by_name.get(layer["name"])
        if cand is None or cand.name in used or not agrees(layer, cand):
            cand = next((n for n in nodes if n.name not in used and agrees(layer, n)), None)
        if cand is None:
            raise PlanError(
                f"plan layer {layer['name']} ({layer['op_type']}) has no matching node in the "
                "FINN graph; was the plan made for another model?")
        used.add(cand.name)
        out[layer["name"]] = cand
    leftover = [n.name for n in nodes if n.name not in used]
    if leftover:
        raise PlanError(f"FINN HW nodes not in the plan: {', '.join(leftover[:8])}")
    return out


# ---------------------------------------------------------------------------------------------
# partitions


def _tensor_dtype(model: onnx.ModelProto, t: str) -> str:
    for a in model.graph.quantization_annotation:
        if a.tensor_name == t:
            for kv in a.quant_parameter_tensor_names:
                if kv.key == "finn_datatype":
                    return kv.value
    return "FLOAT32"


def _peers(s: Mapping[str, Any]) -> dict[str, Any]:
    """A stream to or from a board of several copies (segment replicas) alternates over
    their ranks frame by frame: frame j goes to (comes from) ``peers[j % len(peers)]``."""
    return {"peers": list(s["peers"])} if len(s.get("peers", ())) > 1 else {}


def _with_accl(m: onnx.ModelProto, rank: int, ins: list[dict], outs: list[dict]
               ) -> onnx.ModelProto:
    """Mark the boundary streams with ACCLIn/ACCLOut nodes (FINN's ACCL integration form)."""
    m = copy.deepcopy(m)
    g = m.graph
    new_inputs, new_nodes = [], []
    for k, s in enumerate(ins):
        src = f"accl_in_{k}"
        new_inputs.append(helper.make_tensor_value_info(
            src, onnx.TensorProto.FLOAT, [1, s["words_per_frame"], ACCL_WORD_BITS // 8]))
        new_nodes.append(helper.make_node(
            "ACCLIn", [src], [s["tensor"]], name=f"ACCLIn_{k}", domain=HW_DOMAIN,
            backend="fpgadataflow", rank=rank, peer=s["peer"], streamWidth=s["stream_width"],
            wordsPerFrame=s["words_per_frame"], bitsPerFrame=s["bits_per_frame"],
            dataType=s["dtype"], tag=s["tag"], **_peers(s)))
    keep_inputs = [i for i in g.input if i.name not in {s["tensor"] for s in ins}]
    out_vis = []
    tail_nodes = []
    for k, s in enumerate(outs):
        dst = f"accl_out_{k}"
        out_vis.append(helper.make_tensor_value_info(
            dst, onnx.TensorProto.FLOAT, [1, s["words_per_frame"], ACCL_WORD_BITS // 8]))
        tail_nodes.append(helper.make_node(
            "ACCLOut", [s["tensor"]], [dst], name=f"ACCLOut_{k}", domain=HW_DOMAIN,
            backend="fpgadataflow", rank=rank, peer=s["peer"], streamWidth=s["stream_width"],
            wordsPerFrame=s["words_per_frame"], bitsPerFrame=s["bits_per_frame"],
            dataType=s["dtype"], tag=s["tag"], **_peers(s)))
    cut_out = {s["tensor"] for s in outs}
    keep_outputs = [o for o in g.output if o.name not in cut_out]
    moved = [o for o in g.output if o.name in cut_out]
    nodes = new_nodes + list(g.node) + tail_nodes
    del g.node[:]
    g.node.extend(nodes)
    del g.input[:]
    g.input.extend(new_inputs + keep_inputs)
    del g.output[:]
    g.output.extend(keep_outputs + out_vis)
    g.value_info.extend(moved)  # cut outputs are now internal (read by ACCLOut)
    return m


# ---------------------------------------------------------------------------------------------


def memory_map(board: Mapping[str, Any], layers: list[dict], names: Mapping[str, tuple],
               channels: int, channel_bytes: int, fps: float = 0.0,
               channel_gbps: float = 0.0, striped: bool = False) -> dict[str, Any]:
    """External weights to pseudo-channels: every stream gets whole channels that cover its
    bytes and its rate at the plan's frame rate (the solver's rule, ``dse.chain.channels``),
    or, on a shell that stripes card memory (Coyote), a share of every channel; no channel
    is oversubscribed. Offsets 4 KiB aligned."""
    demands = []
    for layer in layers:
        bits = layer.get("external_weight_bits", 0)
        if not bits:
            continue
        bpf = layer.get("external_bits_per_frame", bits)
        demands.append(StreamDemand(name=layer["name"], bytes_per_s=bpf / 8 * fps,
                                    bytes=math.ceil(bits / 8)))
    if not demands:
        return {"board": board["index"], "entries": []}
    n = max(1, channels)
    rate = channel_gbps * 1e9 if channel_gbps else float("inf")
    m = allocate(demands, n, rate, channel_bytes if channels else 2**40, efficiency=1.0,
                 exclusive=not striped, striped=striped)
    entries = []
    for d in demands:
        for sh in m.shares[d.name]:
            entries.append({"layer": d.name, "finn_node": names[d.name][1],
                            "memory": "HBM" if board.get("hbm") else "DDR",
                            "pseudo_channel": sh.channel, "offset": sh.offset,
                            "bytes": sh.bytes, "gbps": sh.bytes_per_s / 1e9})
    return {"board": board["index"], "entries": entries,
            "channel_gbps": channel_gbps or None, "channel_bytes": channel_bytes}


def emit(plan: PartitionPlan, hw_model: str | Path, out: str | Path, *,
         bitfile: bool = True, qonnx_model: str | Path | None = None) -> EmitResult:
    """Write the per-board FINN build directories for ``plan`` cut from ``hw_model``.

    The build configs ask for the full flow to bitstreams (``bitfile=False``: estimates only);
    ``dse build`` falls back to the estimate-only flow, and says so, where Vivado is missing.

    With ``qonnx_model`` (the QONNX network the plan was made from) each board also gets
    ``model_qonnx.onnx``, its part of the QONNX network (see ``qonnx_split``).
    """
    hw_path = Path(hw_model)
    try:
        model = onnx.load(str(hw_path))
    except Exception as e:
        raise BackendError(f"cannot read FINN HW graph {hw_path}: {type(e).__name__}") from None
    if not any(n.domain.startswith(HW_DOMAIN) for n in model.graph.node):
        raise BackendError(f"{hw_path} holds no FINN HW layers; give the graph after FINN's "
                           "step_convert_to_hw (or let 'dse emit' lower it with finn-plus)")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    node_of = match_layers(plan, model)
    layers_by_board: dict[int, list[dict]] = {}
    for layer in plan["layers"]:
        layers_by_board.setdefault(layer["board"], []).append(layer)
    catalog = default_catalog()
    clock = plan["clock_mhz"]
    cuts = []
    for c in plan["cuts"]:
        tensor = next((t for t in node_of[c["src"]].output if t in node_of[c["dst"]].input), None)
        if tensor is None:
            raise PlanError(f"cut {c['src']} -> {c['dst']}: no such stream in the FINN graph")
        cuts.append({**c, "finn_tensor": tensor})
    plan_layer = {lyr["name"]: lyr for lyr in plan["layers"]}
    qonnx_parts = _qonnx_parts(plan, qonnx_model) if qonnx_model is not None else {}

    board_dirs = []
    manifest_boards = []
    # ACCL ranks: one per copy of each board (segment replicas); one per board otherwise
    ranks_of: dict[int, list[int]] = {}
    for b in plan["boards"]:
        ranks_of[b["index"]] = list(b.get("ranks") or [sum(len(r) for r in ranks_of.values())])
    for b in plan["boards"]:
        k = b["index"]
        layers = layers_by_board.get(k, [])
        d = out_dir / f"board{k}"
        d.mkdir(exist_ok=True)
        finn_names = finn_node_names(layers)
        node_names = [node_of[lyr["name"]].name for lyr in layers]
        part, ins, outs = sub_model(model, node_names, f"dse_board{k}")
        # plain inputs/outputs: the model FINN builds without ACCL
        onnx.save(part, str(d / "model.onnx"))

        def stream(t: str, peer: int, tag: int, direction: str) -> dict:
            cut = next(c for c in cuts if c["finn_tensor"] == t)
            src = plan_layer[cut["src"]]
            attrs = {**hw_attrs(node_of[cut["src"]]), **src["folding"]}
            width = estimate(f"{src['op_type']}_{src['impl']}", attrs).outstream_width
            return {"tensor": t, "peer": ranks_of[peer][0], "peers": ranks_of[peer], "tag": tag,
                    "dtype": _tensor_dtype(model, t),
                    "stream_width": width, "bits_per_frame": cut["bits_per_frame"],
                    "words_per_frame": cut["accl_words_per_frame"], "direction": direction}

        accl_in = [stream(t, next(c["src_board"] for c in cuts if c["finn_tensor"] == t),
                          i, "in") for i, t in enumerate(ins)
                   if any(c["finn_tensor"] == t for c in cuts)]
        accl_out = [stream(t, next(c["dst_board"] for c in cuts if c["finn_tensor"] == t),
                           i, "out") for i, t in enumerate(outs)
                    if any(c["finn_tensor"] == t for c in cuts)]
        onnx.save(_with_accl(part, ranks_of[k][0], accl_in, accl_out),
                  str(d / "model_accl.onnx"))
        if k in qonnx_parts:
            onnx.save(qonnx_parts[k], str(d / "model_qonnx.onnx"))

        fold: dict[str, Any] = {"Defaults": {}}
        spec: dict[str, Any] = {"Defaults": {}}
        for lyr in layers:
            gname, sname = finn_names[lyr["name"]]
            fold[sname] = dict(sorted(lyr["folding"].items()))
            if lyr.get("fifo_in_depth", 0) > 2:  # FINN's InsertFIFO sizes the stream from it
                fold[sname]["inFIFODepths"] = [int(lyr["fifo_in_depth"])]
            spec[gname] = {"preferred_impl_style": lyr["impl"]}
        (d / "folding_config.json").write_text(dump_json(fold))
        (d / "specialize_layers_config.json").write_text(dump_json(spec))
        board = catalog.board(b["name"]) if b["name"] in catalog.boards else None
        _write_build_config(d, b, board, plan, layers, finn_names, bitfile=bitfile)
        rule = channel_rule(board, b.get("shell", "")) if board else None
        ext = memory_map({"index": k, "hbm": bool(board and board.hbm_gib)}, layers,
                         finn_names, rule.data_channels if rule else 0,
                         rule.channel_bytes if rule and rule.channel_bytes else 2**40,
                         fps=float(plan["metrics"]["fps"]),
                         channel_gbps=board.hbm_channel_gbps if board else 0.0,
                         striped=bool(rule and rule.striped))
        if ext["entries"]:
            (d / "memory_map.json").write_text(dump_json(ext))
        board_dirs.append(d)
        manifest_boards.append({
            "rank": ranks_of[k][0], "dir": d.name, "name": b["name"], "part": b["part"],
            # segment replicas: this build runs on every one of these ranks (copy j takes
            # frames j, j + r, ...; its rank is set when the communicator starts)
            "ranks": ranks_of[k],
            "shell": b["shell"], "layers": [lyr["name"] for lyr in layers],
            "finn_nodes": {lyr["name"]: finn_names[lyr["name"]][1] for lyr in layers},
            "inputs": [{"tensor": s["tensor"], "from_rank": s["peer"],
                        "from_ranks": s["peers"]} for s in accl_in],
            "outputs": [{"tensor": s["tensor"], "to_rank": s["peer"], "to_ranks": s["peers"]}
                        for s in accl_out],
            "predicted": {"ii_cycles": b["ii_cycles"], "resources": b["resources"],
                          "layers": {finn_names[lyr["name"]][1]: {"cycles": lyr["cycles"],
                                                          **lyr["resources"]} for lyr in layers}},
            "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted(d.iterdir()) if p.is_file()},
        })
    manifest = {
        "schema_version": 1,
        "model": plan["model"],
        "finn_graph": {"path": hw_path.name,
                       "sha256": hashlib.sha256(hw_path.read_bytes()).hexdigest()},
        "clock_mhz": clock,
        "world_size": sum(len(r) for r in ranks_of.values()),
        "topology": plan.data.get("topology", "chain"),
        "boards": manifest_boards,
        "links": [{"tensor": c["finn_tensor"], "src_rank": ranks_of[c["src_board"]][0],
                   "dst_rank": ranks_of[c["dst_board"]][0],
                   "src_ranks": ranks_of[c["src_board"]],
                   "dst_ranks": ranks_of[c["dst_board"]],
                   "bits_per_frame": c["bits_per_frame"],
                   "accl_words_per_frame": c["accl_words_per_frame"]} for c in cuts],
        "predicted": plan["metrics"],
    }
    (out_dir / "manifest.json").write_text(dump_json(manifest))
    (out_dir / "README.md").write_text(_readme(manifest))
    return EmitResult(out=out_dir, boards=board_dirs, manifest=manifest)


def _qonnx_parts(plan: PartitionPlan, qonnx_model: str | Path) -> dict[int, onnx.ModelProto]:
    """Per board, its part of the QONNX network the plan was made from (``qonnx_split``)."""
    graph = load_network(qonnx_model, input_dtype=plan["model"].get("input_dtype"),
                         minimize_bit_width=plan["model"].get("minimize_bit_width", False))
    qm = qonnx_split.cleaned(qonnx_model)
    boards_of = qonnx_split.node_boards(qm, graph, plan.data)
    parts: dict[int, onnx.ModelProto] = {}
    for b in {b["index"] for b in plan["boards"]}:
        names = [n.name for n in qm.graph.node if boards_of.get(n.name) == b]
        if names:
            parts[b] = sub_model(qm, names, f"dse_qonnx_board{b}")[0]
    return parts


def build_config(*, name: str, part: str, board: Board | None, clock_mhz: float,
                 minimize: bool, bitfile: bool) -> dict[str, Any]:
    """A board's ``dataflow_build_config.json`` (FINN's ``DataflowBuildConfig`` fields) for a
    build directory holding ``folding_config.json`` and ``specialize_layers_config.json``."""
    cfg: dict[str, Any] = {
        "output_dir": "output",
        "synth_clk_period_ns": round(1000.0 / clock_mhz, 6),
        "board": board.finn_board if board else name,
        "fpga_part": part,
        "shell_flow_type": board.shell_flow_type if board else "vitis_alveo",
        "folding_config_file": "folding_config.json",
        "specialize_layers_config_file": "specialize_layers_config.json",
        "minimize_bit_width": minimize,
        "auto_fifo_depths": False,
        # the plan's FIFO depths: InsertFIFO reads inFIFODepths, ApplyConfig the rest
        "fifo_config_file": "folding_config.json",
        "generate_outputs": (["estimate_reports", "stitched_ip", "bitfile"] if bitfile
                             else ["estimate_reports"]),
        "steps": BITFILE_STEPS if bitfile else ESTIMATE_STEPS,
        "save_intermediate_models": True,
        "verbose": False,
    }
    if board and board.vitis_platform and cfg["shell_flow_type"] == "vitis_alveo":
        cfg["vitis_platform"] = board.vitis_platform
    return cfg


def _write_build_config(d: Path, b: Mapping[str, Any], board: Board | None,
                        plan: PartitionPlan, layers: list[dict],
                        finn_names: Mapping[str, tuple], *, bitfile: bool) -> None:
    """The board's ``dataflow_build_config.json`` (and ``floorplan.json`` where its layers
    are placed into SLRs)."""
    k = b["index"]
    cfg = build_config(name=b["name"], part=b["part"], board=board,
                       clock_mhz=b.get("clock_mhz", plan["clock_mhz"]),
                       minimize=bool(plan["model"].get("minimize_bit_width", False)),
                       bitfile=bitfile)
    slr_info = b.get("slrs") if isinstance(b, Mapping) else None
    if slr_info and slr_info.get("feasible"):
        slr_of = {lyr["name"]: lyr["slr"] for lyr in plan["layers"]
                  if lyr["board"] == k and "slr" in lyr}
        names_k = {lyr["name"]: finn_names[lyr["name"]][1] for lyr in layers}
        fp = floorplan_json([{**lyr, "finn_name": names_k.get(lyr["name"])}
                             for lyr in plan["layers"] if lyr["board"] == k], k, slr_of)
        (d / "floorplan.json").write_text(dump_json(fp))
        cfg["vitis_floorplan_file"] = "floorplan.json"
    (d / "dataflow_build_config.json").write_text(dump_json(cfg))


def _readme(m: Mapping[str, Any]) -> str:
    lines = [
        "# FINN builds for a dse plan",
        "",
        f"{m['world_size']} board(s), {m['topology']} topology, {m['clock_mhz']:g} MHz; the plan "
        f"predicts {m['predicted']['fps']:,.1f} fps (II {m['predicted']['ii_cycles']:,} cycles).",
        "",
        "Each `boardK/` is a FINN `build_dataflow_directory`: `model.onnx` (the board's part of "
        "FINN's HW-layer graph, plain inputs/outputs) and `dataflow_build_config.json`. "
        "`model_accl.onnx` is the same partition with `ACCLIn`/`ACCLOut` nodes on the streams "
        "that cross boards (rank, peer, stream width, 512-bit words per frame), for FINN's ACCL "
        "integration. `folding_config.json` holds PE/SIMD/ram_style/resType/mem_mode under the "
        "names FINN gives the nodes; `specialize_layers_config.json` pins hls/rtl as planned; "
        "`memory_map.json` (if present) places external weights in HBM/DDR.",
        "",
        "Run them all (estimate-only without Vivado; bitstreams need Vivado/Vitis):",
        "",
        "    dse build <this directory> --jobs 2",
        "",
        "or one by one with FINN itself: `finn build boardK/dataflow_build_config.json "
        "boardK/model.onnx`.",
        "",
        *(["A board that runs as several copies (segment replicas: `ranks` lists more than "
           "one) is one build deployed on each of its ranks; copy j takes frames j, j + r, "
           "..., and a stream to or from it alternates over its ranks frame by frame "
           "(`peers`).", ""] if any(len(b.get("ranks", ())) > 1 for b in m["boards"]) else []),
        "| rank(s) | board | layers | predicted II (cycles) |",
        "|---|---|---|---|",
    ]
    for b in m["boards"]:
        rk = ", ".join(map(str, b.get("ranks") or [b["rank"]]))
        lines.append(f"| {rk} | {b['name']} | {len(b['layers'])} | "
                     f"{b['predicted']['ii_cycles']:,} |")
    lines.append("")
    return "\n".join(lines)
