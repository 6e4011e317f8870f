"""Layer graphs from ONNX files that already hold FINN HW layers (as FINN/finn-plus write them).

Attributes are taken as they are; generic nodes (``MVAU``) stay generic, specialized nodes
(``MVAU_hls``) keep their implementation. Non-HW nodes become host nodes. A
``StreamingDataflowPartition`` is followed into its child model when the file can be found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onnx import helper

from dse.exceptions import LayerAttributeError, ModelLoadError, UnsupportedLayerError
from dse.ir.graph import Edge, HostNode, Layer, LayerGraph
from dse.ir.onnx_io import HW_DOMAIN, read_model
from dse.ir.prepare import ModelIndex
from dse.models import split_op_type
from dse.models._common import prod
from dse.models.registry import normalize_attrs

# attributes that are FINN code-generation/runtime bookkeeping, not layer parameters
_SKIP_ATTRS = {"backend", "code_gen_dir_cppsim", "code_gen_dir_ipgen", "ipgen_path", "ip_path",
               "ip_vlnv", "executable_path", "exec_mode", "rtlsim_so", "res_estimate",
               "res_hls", "res_synth", "rtlsim_trace", "partition_id", "device_id", "slr",
               "mem_port", "cycles_estimate", "cycles_rtlsim", "gen_top_module", "inFIFODepths",
               "outFIFODepths", "output_hook", "cpp_interface", "hls_style"}


def _attrs(node: Any) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        if a.name in _SKIP_ATTRS:
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, (list, tuple)):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _child_model(node: Any, parent_path: Path) -> Path:
    ref = None
    for a in node.attribute:
        if a.name == "model":
            ref = helper.get_attribute_value(a)
            ref = ref.decode() if isinstance(ref, bytes) else ref
    if not ref:
        raise ModelLoadError(f"{parent_path}: partition {node.name!r} names no child model")
    # only files inside the model's own directory are opened: a partition's path is data
    # from the file, not a licence to read anything on the machine (FINN writes absolute
    # build-directory paths, so the file's own name is looked up next to the parent)
    home = parent_path.resolve().parent
    for cand in (home / ref, home / Path(ref).name):
        c = cand.resolve()
        if c.parent == home and c.is_file():
            if c == parent_path.resolve():
                raise ModelLoadError(f"{parent_path}: partition {node.name!r} refers to its "
                                     "own file; point it to the partition's model")
            return c
    raise ModelLoadError(
        f"{parent_path}: partition {node.name!r} points to {ref!r}, which is not a file in "
        f"{home}; put the partition's model next to the parent, or load it directly (e.g. "
        "the *_hw_folded.onnx)"
    )


def graph_from_hw_model(model: Any, path: Path, sha: str,
                        _seen: frozenset[Path] = frozenset()) -> LayerGraph:
    nodes = list(model.graph.node)
    sdps = [n for n in nodes if n.op_type == "StreamingDataflowPartition"]
    if sdps:
        if len(sdps) > 1:
            raise ModelLoadError(
                f"{path}: {len(sdps)} dataflow partitions; load each partition's model separately"
            )
        child = _child_model(sdps[0], path)
        seen = _seen | {path.resolve()}
        if child in seen:
            raise ModelLoadError(f"{path}: partition {sdps[0].name!r} leads back to {child} "
                                 "(a cycle of partitions)")
        inner = graph_from_hw_model(read_model(child), child, sha, seen)
        outside = tuple(HostNode(name=n.name, op_type=n.op_type, reason="outside the dataflow "
                                 "partition") for n in nodes if n is not sdps[0])
        return LayerGraph(name=path.stem, layers=inner.layers, edges=inner.edges,
                          host_nodes=outside + inner.host_nodes, source_path=str(path),
                          source_sha256=sha, notes=inner.notes)

    layers: list[Layer] = []
    hosts: list[HostNode] = []
    bad: list[tuple[str, str]] = []
    producer: dict[str, str] = {}
    for n in nodes:
        if not n.domain.startswith(HW_DOMAIN):
            hosts.append(HostNode(name=n.name, op_type=n.op_type, reason="not a FINN HW layer"))
            continue
        try:
            model_, impl = split_op_type(n.op_type)
        except Exception:
            bad.append((n.name, n.op_type))
            continue
        name = n.name or f"{n.op_type}_{len(layers)}"
        attrs = _attrs(n)
        try:
            normalize_attrs(n.op_type, attrs)  # FINN's required sizes present and in range
        except LayerAttributeError as e:
            raise ModelLoadError(f"{path}: HW node {name!r}: {e}") from None
        layers.append(Layer(name=name, op_type=model_.name, impl=impl, attrs=attrs,
                            inputs=tuple(n.input), outputs=tuple(n.output),
                            source_nodes=(n.name,)))
        for o in n.output:
            producer[o] = layers[-1].name
    if bad:
        raise UnsupportedLayerError(
            f"{path}: HW op types without a cost model: "
            + ", ".join(f"{op} {nm!r}" for nm, op in bad),
            bad,
        )
    if not layers:
        raise ModelLoadError(f"{path}: no FINN HW layers found")

    ix = ModelIndex(model)

    def dtype_of(t: str) -> str:
        return ix.datatype(t) or "FLOAT32"

    def elems(t: str) -> int:
        shp = ix.shape(t)
        return prod(shp) if shp else 0

    edges = []
    layer_names = {lyr.name for lyr in layers}
    for lyr in layers:
        for t in lyr.inputs:
            if model.get_initializer(t) is not None:
                continue  # weights / thresholds
            src = producer.get(t)
            edges.append(Edge(tensor=t, src=src if src in layer_names else None, dst=lyr.name,
                              dtype=dtype_of(t), elems_per_frame=elems(t)))
    consumed = {t for lyr in layers for t in lyr.inputs}
    graph_outs = {o.name for o in model.graph.output}
    for lyr in layers:
        for t in lyr.outputs:
            if t in graph_outs or t not in consumed:
                edges.append(Edge(tensor=t, src=lyr.name, dst=None, dtype=dtype_of(t),
                                  elems_per_frame=elems(t)))
    return LayerGraph(name=path.stem, layers=tuple(layers), edges=tuple(edges),
                      host_nodes=tuple(hosts), source_path=str(path), source_sha256=sha)
