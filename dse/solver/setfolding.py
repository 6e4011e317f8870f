"""FINN's SetFolding heuristic (``step_target_fps_parallelization``), as finn-plus runs it.

Per layer in graph order: MVAUs walk SIMD over the divisors of MW (stop when fast enough, or
revert one step when W*SIMD exceeds ``mvau_wwidth_max``), then PE over the divisors of MH;
PE-folded ops walk PE; depthwise consumers (VVAU, Pool) walk PE (then VVAU SIMD) and set their
SWG's SIMD; SIMD-folded ops walk SIMD (an RTL SWG switches to parallel_window at SIMD = C).
With two-pass relaxation a second pass targets the slowest layer of the first. Rules that
finn-plus 1.6.1 adds and dse follows: an HLS MVAU's PE stops where its weight stream would pass
AP_INT_MAX_W (8,191 bits); a depthwise SWG slower than the target raises the PE/SIMD it shares
with its consumer; StreamingConcat/Split walk their channels' common divisors (stopping at
``< target``); a PE op without NumChannels (Reshape) walks its output's last dimension;
HWSoftmax is left alone. SetFolding never touches ram_style, mem_mode or resType and never
looks at resources (finn_cost_formulas.md 5). tests/backends/test_setfolding_sweep.py checks every
attribute against finn-plus's own SetFolding on 168 settings of the shared models.

finn-plus stops a walk at ``cycles <= target`` (FINN main/dev at ``<``; ``strict=True``).
"""

from __future__ import annotations

import math
from typing import Any

from dse.ir import Layer, LayerGraph
from dse.models import estimate
from dse.models._common import bits, divisors, prod
from dse.models.registry import default_impl, normalize_attrs

MAX_AP_INT_W = 8191  # finn.util.basic.MAX_ALLOWED_AP_INT_W (HLS ap_int width limit)
PE_OPS = ("Thresholding", "GlobalAccPool", "AddStreams", "ChannelwiseOp", "DuplicateStreams")
SIMD_OPS = ("FMPadding", "FMPadding_Pixel", "DownSampler", "ConvolutionInputGenerator")


def _impl(layer: Layer, part: str | None) -> str:
    return layer.impl or default_impl(layer.op_type, normalize_attrs(layer.op_type,
                                                                    layer.finn_attrs()), part)


def set_folding(
    graph: LayerGraph,
    target_cycles: int,
    *,
    mvau_wwidth_max: int = 36,
    two_pass_relaxation: bool = True,
    strict: bool = False,
    part: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The folding attributes SetFolding sets, per layer name (only the attributes it sets)."""
    fold = _one_pass(graph, target_cycles, mvau_wwidth_max, strict, part)
    if two_pass_relaxation:
        worst = max(_cycles(lyr, fold[lyr.name], part) for lyr in graph.layers)
        if worst > target_cycles:
            fold = _one_pass(graph, worst, mvau_wwidth_max, strict, part)
    return fold


def _cycles(layer: Layer, fold: dict[str, Any], part: str | None) -> int:
    return estimate(f"{layer.op_type}_{_impl(layer, part)}", {**layer.finn_attrs(), **fold},
                    part).cycles


def _one_pass(graph: LayerGraph, target: int, wmax: int, strict: bool, part: str | None
              ) -> dict[str, dict[str, Any]]:
    fold: dict[str, dict[str, Any]] = {lyr.name: {} for lyr in graph.layers}
    producer = {e.tensor: e.src for e in graph.edges if e.src is not None}

    def fast(layer: Layer) -> bool:
        c = _cycles(layer, fold[layer.name], part)
        return c < target if strict else c <= target

    def walk(layer: Layer, attr: str, maxval: int) -> None:
        f = fold[layer.name]
        f[attr] = 1
        for d in divisors(maxval):
            f[attr] = d
            if fast(layer):
                return
        f[attr] = maxval

    for layer in graph.layers:
        op, a, f = layer.op_type, layer.attrs, fold[layer.name]
        if op == "MVAU":
            f["PE"], f["SIMD"] = 1, 1
            W = bits(a["weightDataType"])
            prev = 1
            for d in divisors(int(a["MW"])):
                f["SIMD"] = d
                if fast(layer):
                    break
                if W * d > wmax:
                    f["SIMD"] = prev
                    break
                prev = d
            if a.get("mem_mode", "internal_decoupled") == "internal_decoupled":
                # finn-plus: PE stops where the weight stream (PE x SIMD x W / TH bits) would
                # exceed AP_INT_MAX_W (HLS: revert one step; RTL: allowed, FINN only warns)
                hls = _impl(layer, part) == "hls"
                th = int(a.get("TH", 1) or 1)
                prev = 1
                for d in divisors(int(a["MH"])):
                    f["PE"] = d
                    if hls and d * f["SIMD"] * W // th > MAX_AP_INT_W:
                        f["PE"] = prev
                        break
                    if fast(layer):
                        break
                    prev = d
            else:
                walk(layer, "PE", int(a["MH"]))
        elif op in PE_OPS:
            walk(layer, "PE", int(a["NumChannels"]))
        elif op.startswith("Elementwise") and _impl(layer, part) == "hls":
            walk(layer, "PE", int(list(a["out_shape"])[-1]))
        elif op == "LabelSelect":
            walk(layer, "PE", int(a["Labels"]))
        elif op == "Reshape":
            # finn-plus: a PE op without NumChannels walks its output's last dimension
            walk(layer, "PE", int(list(a["out_shape"])[-1]))
        elif op in ("VVAU", "Pool"):
            if op == "VVAU":
                f["SIMD"] = 1
            walk(layer, "PE", int(a["Channels"]))
            if op == "VVAU" and f["PE"] == int(a["Channels"]) and not fast(layer):
                walk(layer, "SIMD", prod(a["Kernel"]))
            src = next((producer.get(t) for t in layer.inputs if producer.get(t)), None)
            if src is not None and graph.layer(src).op_type == "ConvolutionInputGenerator":
                swg = graph.layer(src)
                fold[src]["SIMD"] = f["PE"]
                # finn-plus 1.6.1: the depthwise SWG replays its window once per channel
                # fold, so it may be slower than its consumer (a global pooling window):
                # the shared PE/SIMD keeps rising until the SWG meets the target too
                if not fast(swg):
                    for d in divisors(int(a["Channels"])):
                        if d <= f["PE"]:
                            continue
                        f["PE"] = fold[src]["SIMD"] = d
                        if fast(swg):
                            break
                if _impl(swg, part) == "rtl":
                    fold[src]["parallel_window"] = int(f.get("SIMD", 1) > 1)
        elif op in ("StreamingConcat", "StreamingSplit"):
            # finn-plus walks the channels' common divisors and stops at cycles < target
            # (strictly, unlike its other walks)
            per = [int(c) for c in a["ChannelsPerStream"]]
            common = [d for d in divisors(math.gcd(*per))]
            for d in common:
                f["SIMD"] = d
                if _cycles(layer, f, part) < target:
                    break
        elif op in SIMD_OPS:
            if op == "ConvolutionInputGenerator" and int(a.get("depthwise", 0)):
                continue  # its consumer sets it
            C = int(a["IFMChannels"] if op == "ConvolutionInputGenerator" else a["NumChannels"])
            walk(layer, "SIMD", C)
            if op == "ConvolutionInputGenerator":
                if _impl(layer, part) == "rtl":
                    f["parallel_window"] = 0
                    if f["SIMD"] == C and not fast(layer):
                        kh, kw = a["ConvKernelDim"]
                        if kh * kw > 1:
                            f["parallel_window"] = 1
        # anything else keeps its folding (FINN warns and moves on)
    return fold


def apply_folding(graph: LayerGraph, fold: dict[str, dict[str, Any]]) -> LayerGraph:
    layers = tuple(lyr.with_attrs(**fold.get(lyr.name, {})) for lyr in graph.layers)
    return LayerGraph(name=graph.name, layers=layers, edges=graph.edges,
                      host_nodes=graph.host_nodes, source_path=graph.source_path,
                      source_sha256=graph.source_sha256, notes=graph.notes)
