"""Split the (cleaned) QONNX network by a plan's boards.

Every QONNX node goes to the board of the last HW layer made from it; nodes no layer owns
(BatchNorm, scales, ReLU, layout ops) follow their producers; weight quantizers follow their
consumer. Where a plan cuts between HW layers made from one QONNX node (say, between a
convolution's padding and its sliding window), the node goes to the later board: the QONNX
partition then carries that padding to the next board, which changes no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from dse.backends.finn.partition import sub_model
from dse.exceptions import PlanError
from dse.ir import LayerGraph
from dse.ir.onnx_io import read_model
from dse.ir.prepare import prepare


def node_boards(model: onnx.ModelProto, graph: LayerGraph, plan: Mapping[str, Any]
                ) -> dict[str, int]:
    board_of_layer = {lyr["name"]: lyr["board"] for lyr in plan["layers"]}
    missing = [lyr.name for lyr in graph.layers if lyr.name not in board_of_layer]
    if missing:
        raise PlanError(f"the plan does not place layer(s) {', '.join(missing[:5])}")
    owner: dict[str, int] = {}
    for layer in graph.layers:
        for src in layer.source_nodes:
            owner[src] = max(owner.get(src, 0), board_of_layer[layer.name])
    g = model.graph
    inits = {i.name for i in g.initializer}
    graph_inputs = {i.name for i in g.input}
    produced_by: dict[str, str] = {}
    boards: dict[str, int] = {}
    const_nodes: list[onnx.NodeProto] = []
    const_names: set[str] = set()
    for n in g.node:
        dyn = [t for t in n.input if t and t not in inits]
        srcs = [produced_by[t] for t in dyn if t in produced_by]
        if (n.name not in owner and all(s in const_names for s in srcs)
                and not any(t in graph_inputs for t in dyn)):
            const_names.add(n.name)
            const_nodes.append(n)
        else:
            boards[n.name] = max([boards[s] for s in srcs if s in boards]
                                 + [owner.get(n.name, 0)])
        for o in n.output:
            produced_by[o] = n.name
    consumers: dict[str, list[str]] = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n.name)
    for c in reversed(const_nodes):  # a constant goes where it is first used
        users = [u for o in c.output for u in consumers.get(o, []) if u in boards]
        boards[c.name] = min((boards[u] for u in users), default=0)
    return boards


def partitions(model: onnx.ModelProto, boards: Mapping[str, int], n_boards: int
               ) -> list[tuple[onnx.ModelProto, list[str], list[str]]]:
    out = []
    for b in range(n_boards):
        names = [n.name for n in model.graph.node if boards.get(n.name) == b]
        if not names:
            continue
        out.append(sub_model(model, names, f"dse_qonnx_board{b}"))
    return out


def cleaned(path: str | Path) -> onnx.ModelProto:
    """The model as dse's lowering sees it (qonnx cleanup, shapes, datatypes)."""
    return prepare(read_model(path), str(path)).model
