"""Sub-models of an ONNX graph (a board's share of FINN's HW graph or of the QONNX network),
shared by the HW-level emit and the QONNX-level split."""

from __future__ import annotations

import copy
from typing import Any

import onnx
from onnx import helper

from dse.ir.onnx_io import HW_DOMAIN


def quant_annotations(model: onnx.ModelProto) -> dict[str, onnx.TensorAnnotation]:
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
    ann = quant_annotations(model)
    for t in sorted(used):
        if t in ann:
            sub.quantization_annotation.append(copy.deepcopy(ann[t]))
    m = helper.make_model(sub, opset_imports=list(model.opset_import),
                          producer_name="dse.backends.finn")
    m.ir_version = min(model.ir_version, 10)  # readable by the onnxruntime FINN pins
    return m, inputs, outputs


def canonical_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with tensor names derived from the (deterministic) node names.

    qonnx and FINN name new tensors with random strings (``util.random_string``), so two
    lowerings of one network differ byte for byte; renaming every tensor but the graph's
    inputs and outputs after its producer (or, for initializers, its first consumer) makes
    emitted files reproducible. Values, shapes and annotations are untouched."""
    g = model.graph
    keep = {i.name for i in g.input} | {o.name for o in g.output}
    new: dict[str, str] = {}
    for n in g.node:
        for k, t in enumerate(n.output):
            if t and t not in keep:
                new[t] = f"{n.name}_out{k}"
    inits = {i.name for i in g.initializer}
    for n in g.node:
        for k, t in enumerate(n.input):
            if t in inits and t not in new and t not in keep:
                new[t] = f"{n.name}_param{k}"
    taken = set(keep)
    for old, name in list(new.items()):  # node names are unique, but be safe
        while name in taken:
            name += "_"
        new[old] = name
        taken.add(name)

    def ren(t: str) -> str:
        return new.get(t, t)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    og = out.graph
    for n in og.node:
        n.input[:] = [ren(t) for t in n.input]
        n.output[:] = [ren(t) for t in n.output]
    for coll in (og.initializer, og.value_info):
        for item in coll:
            item.name = ren(item.name)
    for a in og.quantization_annotation:
        a.tensor_name = ren(a.tensor_name)
    vi = sorted(og.value_info, key=lambda v: v.name)
    del og.value_info[:]
    og.value_info.extend(vi)
    return out


def unmapped_between(model: Any) -> list[Any]:
    """Non-HW nodes with HW layers both before and after them: FINN's dataflow partition
    refuses these ("Unsupported/unmapped layer(s) found in between FINN operators")."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    users: dict[str, list[Any]] = {}
    for n in g.node:
        for t in n.input:
            users.setdefault(t, []).append(n)

    def is_hw(n: Any) -> bool:
        return n.domain.startswith(HW_DOMAIN)

    after_hw: set[str] = set()  # nodes downstream of some HW layer
    for n in g.node:  # graph order is topological
        if any(t in producer and (is_hw(producer[t]) or producer[t].name in after_hw)
               for t in n.input):
            after_hw.add(n.name)
    before_hw: set[str] = set()
    for n in reversed(g.node):
        if any(is_hw(u) or u.name in before_hw for o in n.output for u in users.get(o, [])):
            before_hw.add(n.name)
    return [n for n in g.node if not is_hw(n) and n.name in after_hw and n.name in before_hw]
