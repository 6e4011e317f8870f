"""Make a QONNX / FINN-ONNX model ready for lowering, in time linear in its size.

``qonnx.util.cleanup.cleanup_model`` followed by ``InferShapes`` and ``InferDataTypes`` is
correct but quadratic: every ``ModelWrapper.transform`` deep-copies the model and re-runs
qonnx's own cleanup, and ``get_initializer`` / ``get_tensor_shape`` / ``rename_tensor`` scan
the whole graph on every call (200 layers took 209 s). Here each step runs once on the whole
graph and only where the model needs it:

* quantizer domains fixed as qonnx cleanup does (old ``onnx.brevitas`` exports);
* weights listed as graph inputs (raw exports) dropped from the inputs;
* constant subgraphs the lowering cannot evaluate itself (``Shape``, ``Constant``, ``Gather``
  on constants, ...) folded with qonnx's ``FoldConstants``, only when there are any;
* shapes inferred with qonnx's ``InferShapes``, only when some tensor has none;
* nodes sorted in qonnx SortGraph's level order (as qonnx cleanup leaves them);
* node names made unique as qonnx's ``GiveUniqueNodeNames`` does (``MatMul_0``, ...), so
  messages and the FINN backend's QONNX split see the names they always saw.

:class:`ModelIndex` then answers the lowering's look-ups (initializers, shapes, data-type
annotations, consumers) from dictionaries built once.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from dse.exceptions import ModelLoadError
from dse.ir.fwht import fold_fwht

QONNX_DOMAIN = "qonnx.custom_op.general"
_QONNX_OPS = ("Quant", "Trunc", "BipolarQuant")
# quantizers qonnx must not fold into float constants (FloatQuant: dse.ir.lowering.minifloat)
_KEEP_QUANT = ("Quant", "BipolarQuant", "FloatQuant", "QuantizeLinear", "DequantizeLinear")
# ops on constants that the lowering evaluates itself (see ``ir.lowering.core``)
CONST_OPS = ("Quant", "BipolarQuant", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
             "Identity", "Mul", "Div", "Add", "Sub", "Split", "Tile")


def _shape_of(vi: Any) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if d.dim_param or d.dim_value <= 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _known_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        s = _shape_of(vi)
        if s is not None:
            out[vi.name] = s
    for init in graph.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _needs_folding(graph: Any) -> bool:
    inits = {i.name for i in graph.initializer}
    const: set[str] = set(inits)
    for n in graph.node:
        ins = [t for t in n.input if t]
        all_const = all(t in const for t in ins)
        if n.op_type == "Shape" or n.op_type == "Constant":
            return True
        if all_const and n.op_type not in CONST_OPS and n.op_type not in _KEEP_QUANT:
            return True
        if all_const:
            const.update(n.output)
    return False


def level_order(preds: list[list[int]]) -> list[int]:
    """Topological order by levels, as qonnx's SortGraph (``toposort_flatten``) gives it: a
    node's level is the longest path to it from a source; ties keep the given order. FINN runs
    SortGraph after every transformation, so its graphs, and the names GiveUniqueNodeNames
    gives them, follow this order. Linear in nodes + edges."""
    n = len(preds)
    users: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for i, ps in enumerate(preds):
        uniq = set(ps)
        indeg[i] = len(uniq)
        for p in uniq:
            users[p].append(i)
    frontier = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while frontier:  # one level at a time, each in the given order
        frontier.sort()
        order.extend(frontier)
        nxt = []
        for i in frontier:
            for u in users[i]:
                indeg[u] -= 1
                if indeg[u] == 0:
                    nxt.append(u)
        frontier = nxt
    if len(order) != n:
        raise ModelLoadError("the ONNX graph has a cycle; ONNX graphs must be acyclic")
    return order


def sort_graph(graph: Any) -> None:
    """qonnx SortGraph's order (see :func:`level_order`), in linear time."""
    nodes = list(graph.node)
    producer = {o: i for i, nd in enumerate(nodes) for o in nd.output if o}
    preds = [[producer[t] for t in nd.input if t in producer] for nd in nodes]
    order = level_order(preds)
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)


def unique_node_names(graph: Any) -> None:
    """qonnx's GiveUniqueNodeNames: ``<op_type>_<k>`` per op type, in graph order."""
    count: dict[str, int] = {}
    for n in graph.node:
        k = count.get(n.op_type, 0)
        n.name = f"{n.op_type}_{k}"
        count[n.op_type] = k + 1


def infer_shapes(model: Any) -> None:
    """qonnx's InferShapes (custom ops hidden behind shape-compatible standard ops, then ONNX
    shape inference) in linear time; the model's value_info is replaced in place."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp, is_custom_op

    proto = onnx.ModelProto()
    proto.CopyFrom(model.model)
    wrapper = ModelWrapper(proto, fix_missing_initializer_valueinfo=False)
    nodes = []
    for n in proto.graph.node:
        if is_custom_op(n.domain):
            try:
                inst = getCustomOp(n)
            except Exception:
                raise ModelLoadError(f"node {n.name or n.op_type!r}: custom op {n.op_type!r} "
                                     f"of domain {n.domain!r} is unknown to qonnx") from None
            n = inst.make_shape_compatible_op(wrapper)
        nodes.append(n)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    inferred = onnx.shape_inference.infer_shapes(proto)
    g = model.graph
    del g.value_info[:]
    g.value_info.extend(inferred.graph.value_info)
    for out, new in zip(g.output, inferred.graph.output, strict=True):
        if _shape_of(out) is None and _shape_of(new) is not None:
            out.type.CopyFrom(new.type)


def prepare(model: Any, path: str) -> Any:
    """The model, ready for lowering (changed in place where possible, and returned)."""
    g = model.graph
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n in g.node:
                if n.op_type in _QONNX_OPS:
                    n.domain = QONNX_DOMAIN
            inits = {i.name for i in g.initializer}
            static = [i for i in g.input if i.name in inits]
            for i in static:
                g.input.remove(i)
            sort_graph(g)
            if _needs_folding(g):
                # qonnx executes these nodes with onnxruntime: imported only when needed
                from qonnx.transformation.fold_constants import FoldConstants

                infer_shapes(model)
                # qonnx folds only the first output of a node: a Split of constants would
                # leave its other outputs dangling, so the lowering folds it (visit_const)
                keep = [*_KEEP_QUANT, "Split"]
                model = model.transform(FoldConstants(exclude_op_types=keep),
                                        make_deepcopy=False, cleanup=False)
                g = model.graph
            shapes = _known_shapes(g)
            if any(o not in shapes for n in g.node for o in n.output if o):
                infer_shapes(model)
                shapes = _known_shapes(model.graph)
            fold_fwht(model, shapes)  # hand-written FWHTs -> one Hadamard MatMul each
    except ModelLoadError:
        raise
    except Exception as e:  # qonnx/onnx raise many types on malformed graphs
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelLoadError(f"{path}: qonnx cannot infer shapes / fold constants: {msg}") from None
    unique_node_names(g)
    return model


class ModelIndex:
    """Look-ups the lowering needs, from dictionaries built once (qonnx's scan the graph)."""

    def __init__(self, model: Any) -> None:
        g = model.graph
        self.graph = g
        self._init_protos = {i.name: i for i in g.initializer}
        self._init_values: dict[str, np.ndarray] = {}
        self.shapes = _known_shapes(g)
        self._annotations: dict[str, str] = {}
        for ann in g.quantization_annotation:
            for kv in ann.quant_parameter_tensor_names:
                if kv.key == "finn_datatype":
                    self._annotations[ann.tensor_name] = kv.value
        self.consumers: dict[str, int] = {}
        self.users: dict[str, list[Any]] = {}
        self.producers: dict[str, Any] = {}
        for n in g.node:
            for o in n.output:
                self.producers[o] = n
            for t in n.input:
                self.consumers[t] = self.consumers.get(t, 0) + 1
                self.users.setdefault(t, []).append(n)
        for o in g.output:
            self.consumers[o.name] = self.consumers.get(o.name, 0) + 1

    def producer(self, name: str) -> Any | None:
        return self.producers.get(name)

    def is_initializer(self, name: str) -> bool:
        return name in self._init_protos

    def initializer(self, name: str) -> np.ndarray | None:
        v = self._init_values.get(name)
        if v is None:
            p = self._init_protos.get(name)
            if p is None:
                return None
            v = numpy_helper.to_array(p)
            self._init_values[name] = v
        return v

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.shapes.get(name)

    def datatype(self, name: str) -> str | None:
        """The tensor's FINN data-type annotation, or None (float or unannotated)."""
        return self._annotations.get(name)
