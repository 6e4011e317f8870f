"""Sub-models of an ONNX graph (a board's share of FINN's HW graph or of the QONNX network),
shared by the HW-level emit and the QONNX-level split."""

from __future__ import annotations

import copy

import onnx
from onnx import helper


def annotations(model: onnx.ModelProto) -> dict[str, onnx.TensorAnnotation]:
    return {a.tensor_name: a for a in model.graph.quantization_annotation}


def sub_model(model: onnx.ModelProto, node_names: list[str], name: str
               ) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """The sub-model of ``node_names`` with its boundary tensors as inputs/outputs."""
    g = model.graph
    keep = set(node_names)
    inits = {i.name for i in g.initializer}
    produced_in = {o for n in g.node if n.name in keep for o in n.output}
    graph_outputs = {o.name for o in g.output}
    inputs: list[str] = []
    outputs: list[str] = []
    for n in g.node:
        if n.name not in keep:
            continue
        for t in n.input:
            if t and t not in inits and t not in produced_in and t not in inputs:
                inputs.append(t)
    consumed_outside = {t for n in g.node if n.name not in keep for t in n.input}
    for n in g.node:
        if n.name not in keep:
            continue
        for t in n.output:
            if (t in consumed_outside or t in graph_outputs) and t not in outputs:
                outputs.append(t)
    vi = {v.name: v for v in list(g.value_info) + list(g.input) + list(g.output)}
    nodes = [copy.deepcopy(n) for n in g.node if n.name in keep]
    used = {t for n in nodes for t in list(n.input) + list(n.output)}
    sub = helper.make_graph(
        nodes, name,
        [copy.deepcopy(vi[t]) for t in inputs],
        [copy.deepcopy(vi[t]) for t in outputs],
        initializer=[copy.deepcopy(i) for i in g.initializer if i.name in used],
        value_info=[copy.deepcopy(vi[t]) for t in sorted(used)
                    if t in vi and t not in inputs and t not in outputs and t not in inits],
    )
    ann = annotations(model)
    for t in sorted(used):
        if t in ann:
            sub.quantization_annotation.append(copy.deepcopy(ann[t]))
    m = helper.make_model(sub, opset_imports=list(model.opset_import),
                          producer_name="dse.backends.finn")
    m.ir_version = min(model.ir_version, 10)  # readable by the onnxruntime FINN pins
    return m, inputs, outputs
