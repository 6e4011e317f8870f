"""A FINN folding config applied to a network: what the design it describes costs.

``dse evaluate`` (``evaluate_folding``) reads a ``folding_config.json`` as FINN's
``ApplyConfig`` does, keyed by the node names FINN gives after ``SpecializeLayers``
(``MVAU_hls_0``, ``ConvolutionInputGenerator_rtl_3``, ...). Names of FINN before 0.10
(``StreamingFCLayer_Batch_2``, ``Thresholding_Batch_0``, ...) are mapped to today's op by the
same index; ops dse has no counterpart for are refused by name. Entries FINN inserts between
layers are read too: ``StreamingFIFO_*`` (its depth and memory style, on the stream into the
next layer of the config, the order FINN writes them in) and ``StreamingDataWidthConverter_*``
(placed where FINN's InsertDWC rule puts them anyway). Layers the config leaves out keep
FINN's defaults (PE = SIMD = 1).

Every problem (an unknown node, a folding FINN would reject) is collected and reported one
per line (exit 2). The result is a plan in the format ``dse optimize`` writes (its solver
status ``GIVEN``): per-layer cycles and resources, FIFOs and converters, II, fps, latency,
host I/O, resources against the board's caps and its SLR placement.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.exceptions import DseError, SpecError
from dse.models import estimate
from dse.models.candidates import FoldingOption, enumerate_options
from dse.solver.hostio import DEFAULT_BATCH, describe, describe_batch

#: op types of FINN before 0.10 and what FINN calls them now (the generic HW op)
OLD_OPS = {
    "StreamingFCLayer_Batch": "MVAU",
    "MatrixVectorActivation": "MVAU",
    "Vector_Vector_Activate_Batch": "VVAU",
    "VectorVectorActivation": "VVAU",
    "Thresholding_Batch": "Thresholding",
    "ConvolutionInputGenerator1D": "ConvolutionInputGenerator",
    "FMPadding_Batch": "FMPadding",
    "Pool_Batch": "Pool",
    "GlobalAccPool_Batch": "GlobalAccPool",
    "LabelSelect_Batch": "LabelSelect",
    "DuplicateStreams_Batch": "DuplicateStreams",
    "StreamingMaxPool_Batch": "StreamingMaxPool",
}
#: old op types dse does not map, and why
REFUSED_OLD_OPS = {
    "AddStreams_Batch": "FINN's AddStreams; dse lowers a residual Add to ElementwiseAdd",
    "ChannelwiseOp_Batch": "FINN's ChannelwiseOp; dse lowers scales and biases to "
                           "ElementwiseMul/ElementwiseAdd",
}
INFRA_OPS = ("StreamingFIFO", "StreamingDataWidthConverter")
#: attributes of a config entry that are not the layer's folding (FIFO depths of the
#: streams around it are read separately)
NOT_FOLDING = {"inFIFODepths", "outFIFODepths"}
#: the folding attributes whose legality dse checks against FINN's divisor rules
FOLD_DIMS = ("PE", "SIMD", "parallel_window")


@dataclass(frozen=True, slots=True, kw_only=True)
class GivenFifo:
    """A FIFO of the config: its depth and style, on the stream into ``consumer``."""

    name: str
    consumer: str  # dse's layer name
    depth: int
    impl_style: str = "rtl"
    ram_style: str = "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedFolding:
    options: dict[str, FoldingOption]  # dse layer name -> the config's folding, costed
    fifos: tuple[GivenFifo, ...]
    unset: tuple[str, ...]  # layers the config leaves at FINN's defaults
    #: layers FINN's flow does not build (a Reshape of the graph input runs on the host)
    on_host: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())


_NEW = re.compile(r"^(?P<op>[A-Za-z0-9]+?)_(?P<impl>hls|rtl)_(?P<idx>\d+)$")
_OLD = re.compile(r"^(?P<op>[A-Za-z0-9_]+?)_(?P<idx>\d+)$")


def _split(name: str) -> tuple[str, str | None, int] | None:
    m = _NEW.match(name)
    if m:
        return m["op"], m["impl"], int(m["idx"])
    m = _OLD.match(name)
    if m:
        return m["op"], None, int(m["idx"])
    return None


def read_config(path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError(f"cannot read folding config {p}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"folding config {p} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SpecError(f"folding config {p}: a JSON object of node name -> attributes, as "
                        "FINN writes it (final_hw_config.json / folding_config.json)")
    return {k: v for k, v in data.items() if k != "Defaults"}


def _legal(layer: Any, impl: str, part: str | None) -> list[dict[str, Any]]:
    """The folding dimensions of every legal option of ``layer`` as ``impl``."""
    opts = enumerate_options(f"{layer.op_type}_{impl}", layer.finn_attrs(), part=part,
                             weight_bits=layer.weight_bits)
    return [{k: {**layer.finn_attrs(), **o.attrs}.get(k) for k in FOLD_DIMS} for o in opts]


def _check_folding(layer: Any, name: str, impl: str, attrs: Mapping[str, Any],
                   part: str | None) -> str | None:
    legal = _legal(layer, impl, part)
    shown = {k: attrs[k] for k in FOLD_DIMS if k in attrs}
    if not legal or any(all(x[k] == v for k, v in shown.items()) for x in legal):
        return None
    hints = []
    for k in FOLD_DIMS:
        vals = sorted({x[k] for x in legal if x[k] is not None})
        if k in attrs and vals:
            hints.append(f"{k} one of {', '.join(map(str, vals))}")
    dims = {k: layer.finn_attrs()[k] for k in ("MW", "MH", "NumChannels", "Channels",
                                                "IFMChannels", "Kernel") if k in
            layer.finn_attrs()}
    return (f"{name}: {', '.join(f'{k}={v}' for k, v in shown.items())} is not a legal "
            f"folding of this {layer.op_type} ({', '.join(f'{k}={v}' for k, v in dims.items())})"
            f"; FINN needs {'; '.join(hints) or 'another folding'}")


def apply_config(graph: Any, config: Mapping[str, Mapping[str, Any]], part: str | None
                 ) -> AppliedFolding:
    """Map every entry of a FINN folding config to the network's layers and cost it."""
    finn = graph.finn_names()  # dse name -> FINN name after SpecializeLayers
    by_finn = {v: k for k, v in finn.items()}
    order = [x.name for x in graph.layers]
    by_op: dict[str, list[str]] = {}
    for n in order:
        by_op.setdefault(graph.layer(n).op_type, []).append(n)
    problems: list[str] = []
    options: dict[str, FoldingOption] = {}
    pending_fifos: list[tuple[str, Mapping[str, Any]]] = []
    fifos: list[GivenFifo] = []
    for name, raw in config.items():
        parts = _split(name)
        op = parts[0] if parts else name
        if any(op.startswith(x) for x in INFRA_OPS):
            if op.startswith("StreamingFIFO"):
                pending_fifos.append((name, raw))
            continue
        target, impl = _resolve(name, parts, by_finn, by_op, graph, problems)
        if target is None:
            continue
        for fname, fraw in pending_fifos:  # FIFOs written before this layer feed it
            fifos.append(GivenFifo(name=fname, consumer=target,
                                   depth=int(fraw.get("depth", 2)),
                                   impl_style=str(fraw.get("impl_style", "rtl")),
                                   ram_style=str(fraw.get("ram_style", "auto"))))
        pending_fifos = []
        layer = graph.layer(target)
        attrs = {k: v for k, v in raw.items() if k not in NOT_FOLDING}
        bad = _check_folding(layer, name, impl, attrs, part)
        if bad:
            problems.append(bad)
            continue
        try:
            cost = estimate(f"{layer.op_type}_{impl}", {**layer.finn_attrs(), **attrs}, part)
        except DseError as e:
            problems.append(f"{name}: FINN would reject this folding: {e}")
            continue
        ext = layer.weight_bits if attrs.get("mem_mode") == "external" else 0
        options[target] = FoldingOption(attrs=dict(attrs), impl=impl, cost=cost,
                                        external_weight_bits=ext)
    unset = [n for n in order if n not in options]
    graph_inputs = {e.tensor for e in graph.edges if e.src is None}
    on_host = [n for n in unset if graph.layer(n).op_type == "Reshape"
               and set(graph.layer(n).inputs) <= graph_inputs]
    for n in unset:  # FINN's defaults: the layer as lowered
        layer = graph.layer(n)
        if n in on_host:  # FINN has no Reshape HW op: a reshape of the input is the host's
            options[n] = _host_option(layer, part)
            continue
        impl = finn[n].rsplit("_", 2)[-2] if _NEW.match(finn[n]) else (layer.impl or "hls")
        try:
            cost = estimate(f"{layer.op_type}_{impl}", layer.finn_attrs(), part)
        except DseError as e:
            problems.append(f"{finn[n]} (not in the config): FINN's default folding cannot be "
                            f"costed: {e}")
            continue
        options[n] = FoldingOption(attrs={}, impl=impl, cost=cost)
    return AppliedFolding(options=options, fifos=tuple(fifos),
                          unset=tuple(n for n in unset if n not in on_host),
                          on_host=tuple(on_host), problems=tuple(problems))


def _host_option(layer: Any, part: str | None) -> FoldingOption:
    """A Reshape of the graph input as FINN builds it: on the host, no cycles, no area
    (finn-plus 1.6.1 makes it a Reshape_rtl; a config without it comes from FINN's flow)."""
    from dataclasses import replace

    c = estimate(f"Reshape_{layer.impl or 'rtl'}", layer.finn_attrs(), part)
    return FoldingOption(attrs={}, impl=layer.impl or "rtl",
                         cost=replace(c, cycles=0, lut=0, ff=0, bram18=0, uram=0, dsp=0,
                                      source="host (FINN keeps a reshape of the graph "
                                             "input on the host)"))


def _resolve(name: str, parts: tuple[str, str | None, int] | None, by_finn: Mapping[str, str],
             by_op: Mapping[str, list[str]], graph: Any, problems: list[str]
             ) -> tuple[str | None, str]:
    """The dse layer a config entry names, and the HLS/RTL variant it asks for."""
    if name in by_finn:
        n = by_finn[name]
        return n, parts[1] if parts and parts[1] else (graph.layer(n).impl or "hls")
    if parts is None:
        problems.append(f"{name}: not a FINN node name (OpType_hls_N / OpType_rtl_N)")
        return None, ""
    op, impl, idx = parts
    if impl is None and op in REFUSED_OLD_OPS:
        problems.append(f"{name}: {REFUSED_OLD_OPS[op]}; this network has no such node")
        return None, ""
    generic = OLD_OPS.get(op, op) if impl is None else op
    same = by_op.get(generic, [])
    impls = {graph.finn_names()[n].rsplit("_", 2)[-2] for n in same
             if _NEW.match(graph.finn_names()[n])}
    # an old name counts per op; a new one per variant: where the network specializes
    # every such layer alike, the index is the same either way
    if same and idx < len(same) and (impl is None or len(impls) <= 1):
        n = same[idx]
        return n, impl or (impls.pop() if len(impls) == 1 else graph.layer(n).impl or "hls")
    known = ", ".join(sorted({graph.finn_names()[n] for n in same})[:6])
    problems.append(f"{name}: no such node in this network"
                    + (f" ({generic} nodes: {known})" if known else
                       f" (it has no {generic} layer)"))
    return None, ""


def _finn_maxpool(config: Mapping[str, Any], graph: Any) -> bool:
    """Whether the config comes from a flow that made StreamingMaxPool nodes: it names one, or
    it names no Pool and fewer sliding windows than the network has (the pooling SWGs)."""
    if any("StreamingMaxPool" in k for k in config):
        return True
    if any(k.startswith("Pool_") for k in config):
        return False
    swg = sum(1 for k in config if k.startswith("ConvolutionInputGenerator"))
    ours = sum(1 for x in graph.layers if x.op_type == "ConvolutionInputGenerator")
    pools = sum(1 for x in graph.layers if x.op_type == "Pool")
    return 0 < swg == ours - pools


def streaming_maxpool(graph: Any) -> Any:
    """The network as FINN's flow (``InferStreamingMaxPool``) lowers max pooling whose
    kernel equals its stride without padding: one ``StreamingMaxPool`` where finn-plus makes a
    depthwise SWG and a ``Pool`` (finn-examples' CNV configs name StreamingMaxPool nodes)."""
    from dataclasses import replace

    from dse.ir import Layer

    drop: dict[str, Layer] = {}  # SWG name -> the StreamingMaxPool replacing SWG + Pool
    pool_of: dict[str, str] = {}
    for e in graph.internal_edges():
        swg, pool = graph.layer(e.src), graph.layer(e.dst)
        a, p = swg.finn_attrs(), pool.finn_attrs()
        if (swg.op_type, pool.op_type) != ("ConvolutionInputGenerator", "Pool") or \
                p.get("Function") != "MaxPool" or not int(a.get("depthwise", 0)) or \
                list(a["ConvKernelDim"]) != list(a["Stride"]):
            continue
        k = len(drop)
        drop[swg.name] = Layer(
            name=f"StreamingMaxPool_{k}", op_type="StreamingMaxPool", impl="hls",
            attrs={"ImgDim": list(a["IFMDim"]), "PoolDim": list(a["ConvKernelDim"]),
                   "NumChannels": int(a["IFMChannels"]), "PE": 1, "CeilMode": 0,
                   "dataType": a["inputDataType"]},
            inputs=swg.inputs, outputs=pool.outputs,
            source_nodes=tuple(dict.fromkeys(swg.source_nodes + pool.source_nodes)),
            absorbed=swg.absorbed + pool.absorbed)
        pool_of[pool.name] = swg.name
    if not drop:
        return graph
    layers = tuple(drop.get(x.name, x) for x in graph.layers if x.name not in pool_of)
    rename = {**{s: drop[s].name for s in drop}, **{p: drop[s].name for p, s in pool_of.items()}}
    edges = tuple(replace(e, src=rename.get(e.src, e.src) if e.src else None,
                          dst=rename.get(e.dst, e.dst) if e.dst else None)
                  for e in graph.edges if not (e.src in drop and e.dst in pool_of))
    return replace(graph, layers=layers, edges=edges)


def _finn_separate_thresholds(config: Mapping[str, Any], graph: Any) -> bool:
    """Whether the config names a Thresholding node for (about) every MVAU/VVAU with an
    activation: a flow that lowers them apart (finn-examples' Zynq MobileNet-v1)."""
    named = sum(1 for k in config if k.startswith("Thresholding"))
    ours = sum(1 for x in graph.layers if x.op_type == "Thresholding")
    fused = sum(1 for x in graph.layers if x.op_type in ("MVAU", "VVAU")
                and not int(x.finn_attrs().get("noActivation", 0)))
    return fused > 0 and named == ours + fused


def separate_thresholds(graph: Any) -> Any:
    """The network with every MVAU/VVAU's fused activation as its own Thresholding layer
    after it (FINN's flow without AbsorbThresholdsIntoMVAU/VVAU: the MVAU outputs its
    accumulator, ``noActivation=1``)."""
    from dataclasses import replace

    from dse.ir import Layer
    from dse.models._common import bits

    layers, edges = [], list(graph.edges)
    k = 0
    for x in graph.layers:
        a = x.finn_attrs()
        if x.op_type not in ("MVAU", "VVAU") or int(a.get("noActivation", 0)):
            layers.append(x)
            continue
        acc, out = a["accDataType"], a["outputDataType"]
        mid = f"{x.outputs[0]}_acc"
        nvec = (list(a["numInputVectors"]) if x.op_type == "MVAU"
                else [1, *list(a["Dim"])])
        ch = int(a["MH"] if x.op_type == "MVAU" else a["Channels"])
        layers.append(replace(x, attrs={**a, "noActivation": 1, "outputDataType": acc},
                              outputs=(mid,)))
        th = Layer(name=f"Thresholding_sep{k}", op_type="Thresholding", impl="rtl",
                   attrs={"NumChannels": ch, "PE": 1, "numSteps": 2 ** bits(out) - 1,
                          "inputDataType": acc, "weightDataType": acc, "outputDataType": out,
                          "ActVal": int(a.get("ActVal", 0)), "numInputVectors": nvec},
                   inputs=(mid,), outputs=x.outputs, source_nodes=x.source_nodes)
        layers.append(th)
        k += 1
        old = next(e for e in graph.edges if e.src == x.name and e.tensor == x.outputs[0])
        edges = [replace(e, src=th.name) if e is old else e for e in edges]
        edges.append(replace(old, tensor=mid, src=x.name, dst=th.name, dtype=acc))
    return replace(graph, layers=tuple(layers), edges=tuple(edges))


# -- evaluate ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldingEvaluation:
    plan: Any  # dse.plan.PartitionPlan
    applied: AppliedFolding


def evaluate_folding(model: str | Path, folding: str | Path, board: str, *,
                     clock_mhz: float | None = None, input_dtype: str | None = None,
                     shell: str | None = None, caps: Mapping[str, float] | None = None,
                     board_files: Sequence[str | Path] = (), record_time: bool = True,
                     batch: int = DEFAULT_BATCH) -> FoldingEvaluation:
    """The design a FINN folding config describes, on one board, costed as a plan
    (``metrics.batch``: one call of FINN's PYNQ driver on ``batch`` frames)."""
    from dse import __version__
    from dse.examples import resolve_model
    from dse.ir import load_network
    from dse.plan import make_plan
    from dse.plan_edits import attach_slrs
    from dse.solver.evaluate import evaluate
    from dse.solver.infra import attach_infrastructure
    from dse.solver.problem import build_problem
    from dse.solver.search import SolveResult
    from dse.solver.slr import place
    from dse.specs import load_catalog

    t0 = time.monotonic()
    cfg = load_catalog(board_files).configure(board, shell=shell, caps=caps,
                                              clock_mhz=clock_mhz)
    config = read_config(folding)
    path = resolve_model(model)
    graph = load_network(path, input_dtype=input_dtype)
    if _finn_maxpool(config, graph):
        graph = streaming_maxpool(graph)
    if _finn_separate_thresholds(config, graph):
        graph = separate_thresholds(graph)
    applied = apply_config(graph, config, cfg.board.part)
    if applied.problems:
        raise SpecError(f"folding config {folding} does not match {Path(str(path)).name} "
                        f"({len(applied.problems)} problem(s)):\n  "
                        + "\n  ".join(applied.problems))
    problem = build_problem(graph, [cfg], fixed=applied.options, fifos=False)
    zeros = [0] * problem.n
    ev = evaluate(problem, zeros, zeros)
    result = SolveResult(strategy="given folding", status="GIVEN", choice=tuple(zeros),
                         boards=tuple(zeros), evaluation=ev, ii_cycles=ev.ii_cycles,
                         ii_bound=ev.ii_cycles, wall_s=time.monotonic() - t0, problem=problem,
                         phases=(("apply the folding config", time.monotonic() - t0,
                                  "done"),))
    plan = make_plan(result, model_path=str(path), model_sha256=graph.source_sha256,
                     clock_mhz=cfg.clock_mhz, dse_version=__version__, seed=0,
                     record_time=record_time, input_dtype=input_dtype,
                     minimize_bit_width=graph.minimized_bit_width, batch=batch)
    plan = attach_slrs(plan, place(problem, result))
    plan = attach_infrastructure(plan, problem, result, given_fifos=applied.fifos or None)
    d = json.loads(plan.to_json())
    d["folding_config"] = {"path": str(folding), "entries": len(config),
                           "fifos_given": len(applied.fifos),
                           "layers_at_finn_defaults": [graph.finn_names()[n]
                                                       for n in applied.unset],
                           "layers_on_host": [graph.finn_names()[n] for n in applied.on_host]}
    d["metrics"]["violations"] = list(ev.violations)
    from dse.plan import PartitionPlan

    return FoldingEvaluation(plan=PartitionPlan(d), applied=applied)


def format_report(plan: Any) -> str:
    """The text ``dse evaluate`` prints: layers, FIFOs and converters, resources, metrics."""
    d = plan.data if hasattr(plan, "data") else plan
    m = d["metrics"]
    lines = [f"model    {d['model']['path']}  ({len(d['layers'])} HW layers), folding "
             f"{d['folding_config']['path']}"]
    hdr = f"{'layer':28s} {'folding':34s} {'cycles':>10s} {'LUT':>8s} {'BRAM18':>7s} " \
          f"{'URAM':>5s} {'DSP':>5s} {'FIFO in':>8s}"
    lines += [hdr, "-" * len(hdr)]
    for lay in d["layers"]:
        fold = ",".join(f"{k}={v}" for k, v in lay["folding"].items()
                        if k in ("PE", "SIMD", "parallel_window", "mem_mode"))
        r = lay["resources"]
        lines.append(f"{lay['finn_name']:28s} {fold[:34]:34s} {lay['cycles']:>10,} "
                     f"{r['lut']:>8,} {r['bram18']:>7,} {r['uram']:>5,} {r['dsp']:>5,} "
                     f"{lay.get('fifo_in_depth', 0):>8,}")
    for b in d["boards"]:
        inf, built, cap = b["infrastructure"], b["resources_as_built"], b["capacity"]
        lines.append(f"board {b['index']}  {b['name']} at {b['clock_mhz']:g} MHz: "
                     f"{inf['fifos']} FIFOs and {inf['dwcs']} width converters add "
                     f"{inf['lut']:,} LUT, {inf['bram18']:,} BRAM18, {inf['uram']:,} URAM")
        for k in ("lut", "ff", "bram18", "uram", "dsp"):
            pct = f"{100 * built[k] / cap[k]:5.1f}% of cap" if cap[k] else "  n/a"
            lines.append(f"    {k.upper():7s} {built[k]:>12,} / {cap[k]:>12,}  {pct}")
        if b.get("slrs"):
            lines.append(f"    SLRs: {'placed' if b['slrs']['feasible'] else 'DOES NOT PLACE'}"
                         f" ({len(b['slrs']['capacity'])} SLRs)")
    lines.append(f"result   {m['fps']:,.1f} fps (II {m['ii_cycles']:,} cycles, bottleneck "
                 f"{m['bottleneck']}), latency {m['latency_s'] * 1e3:.4g} ms")
    if m.get("host_io"):
        lines.append(describe(m["host_io"]))
    if m.get("batch"):
        lines.append(describe_batch(m["batch"]))
    if not m.get("fits_as_built", True) or m.get("violations"):
        lines.append("warning  " + "; ".join(m.get("violations") or
                                             ["the design with its FIFOs exceeds the caps"]))
    fc = d["folding_config"]
    if fc["layers_at_finn_defaults"]:
        lines.append(f"note     not in the config (FINN's defaults): "
                     f"{', '.join(fc['layers_at_finn_defaults'])}")
    if fc["layers_on_host"]:
        lines.append(f"note     on the host as in FINN's flow: {', '.join(fc['layers_on_host'])}")
    return "\n".join(lines)


__all__ = ["AppliedFolding", "FoldingEvaluation", "GivenFifo", "apply_config",
           "evaluate_folding", "format_report", "read_config"]
