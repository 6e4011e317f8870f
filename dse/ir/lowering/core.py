"""The core of the lowering: stream tracking, affine folding, threshold absorption's state,
constant propagation, the float tail, forks, FINN's layer order and the layer graph it builds.

Per-op lowering rules live in one module per op family (``quantizers``, ``affine``,
``layout``, ``mvau``, ``pool``, ``streams``), the way FINN has one ``Infer*`` transformation per
HW op; each registers its ONNX op types with :func:`rule`. The core walks the prepared graph
once in order and hands every node to its rule; a node of an op type no rule claims is
reported as unmappable, never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from onnx import helper

from dse.exceptions import (
    DseError,
    InternalError,
    ModelLoadError,
    NodeNotMappable,
    UnsupportedLayerError,
)
from dse.ir import bitwidth
from dse.ir.accounting import absorbed_nodes
from dse.ir.graph import Edge, HostNode, Layer, LayerGraph
from dse.ir.prepare import CONST_OPS, ModelIndex, level_order
from dse.models._common import dtype as qdtype
from dse.models._common import prod

QUANT_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "Trunc", "FloatQuant")

Rule = Callable[["Lowering", Any], None]
RULES: dict[str, Rule] = {}
# how a stream still carrying un-emitted attention scores is emitted when a node other than the
# attention pattern reads it (registered by the attention rules)
HOOKS: dict[str, Callable[..., Any]] = {}


def rule(*op_types: str) -> Callable[[Rule], Rule]:
    """Register a lowering rule for ONNX op types (one rule per op type)."""
    def deco(fn: Rule) -> Rule:
        for op in op_types:
            if op in RULES:
                raise RuntimeError(f"two lowering rules for {op}: {RULES[op].__name__}, "
                                   f"{fn.__name__}")
            RULES[op] = fn
        return fn
    return deco




@dataclass
class Const:
    value: np.ndarray | None
    dtype: str | None = None  # quantized type (weights)
    scale: Any = 1.0
    ints: np.ndarray | None = None  # the integer weights FINN stores (value = ints * scale)


T = TypeVar("T")
#: a layer held back on a stream: (kind, its parameters, the rule that emits it later)
Deferred = tuple[str, dict[str, Any], Callable[..., "Stream"]]


def known(x: T | None, what: str) -> T:
    """``x``, which the rule has already established is there (InternalError if not)."""
    if x is None:
        raise InternalError(f"lowering: {what} is missing")
    return x


@dataclass
class Stream:
    wire: str  # HW tensor carrying the data
    producer: int | None  # index of the producing layer, None at a graph/host boundary
    dtype: str  # type on the wire ("FLOAT32" for float)
    shape: tuple[int, ...]  # current logical (ONNX) shape
    a: Any = 1.0  # value = a * wire + b
    b: Any = 0.0
    pending: bool = False  # float ops applied since the wire
    nonlinear: bool = False  # ReLU/Clip applied since the wire
    forked: bool = False
    deferred: list[Deferred] = field(default_factory=list)
    host: bool = False  # float value computed before any HW layer
    from_quant: bool = False  # the wire is a quantizer's output (scalar offsets fold into it)
    cl: bool = False  # the ONNX shape is already channels-last (transformer tensors)
    # a pending Reshape -> Transpose -> Reshape of the wire (one finn-plus Shuffle when it is
    # materialized): (wire shape, transpose_in_shape, perm); ``shape`` is the result
    layout: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None
    attn: dict[str, Any] | None = None  # attention scores not yet emitted (see attention.py)
    layout_nodes: tuple[str, ...] = ()  # the ONNX layout nodes of the pending layout

    def deferred_layout_nodes(self) -> tuple[str, ...]:
        return self.layout_nodes


def hw_shape(s: Stream) -> list[int]:
    """The stream's shape as FINN streams it (channels last)."""
    return list(s.shape) if s.cl else nhwc(s.shape)


def vec_channels(s: Stream) -> tuple[list[int], int]:
    """(numInputVectors, channels) of a stream, channels-last aware."""
    if s.cl and s.shape:
        return list(s.shape[:-1]) or [1], s.shape[-1]
    return channels_last(s.shape)


def channels_last(shape: tuple[int, ...]) -> tuple[list[int], int]:
    """(numInputVectors, channels) of an ONNX activation shape (NCHW, NC or N..C)."""
    if len(shape) == 4:
        return [shape[0], shape[2], shape[3]], shape[1]
    if len(shape) == 3:
        return [shape[0], shape[1]], shape[2]
    if len(shape) == 2:
        return [shape[0]], shape[1]
    if len(shape) == 1:
        return [1], shape[0]
    raise ModelLoadError(f"unsupported activation rank {len(shape)} (shape {list(shape)})")


def nhwc(shape: tuple[int, ...]) -> list[int]:
    if len(shape) == 4:
        return [shape[0], shape[2], shape[3], shape[1]]
    return list(shape)


def squeezed(shape: tuple[int, ...]) -> list[int]:
    return [d for d in shape if d != 1]


def const_shape(val: Any, s: Stream, C: int) -> list[int]:
    """rhs_shape of an ElementwiseMul/Add applying the constant ``val`` to stream ``s``: [1]
    for a scalar, [C] per channel, else the constant's own (channels-last) broadcast shape."""
    if uniform(val):
        return [1]
    v = np.asarray(val)
    if not s.cl and len(s.shape) == 4 and v.size == C:
        return [C]  # a per-channel vector of an NCHW stream
    if v.ndim <= 1:
        return [int(v.size)]
    shp = list(v.shape)  # finn-plus keeps the constant's own broadcast shape
    if not s.cl and len(shp) == 4:
        shp = [shp[0], shp[2], shp[3], shp[1]]
    return shp


def uniform(x: Any) -> bool:
    arr = np.asarray(x, dtype=np.float64)
    return arr.size <= 1 or bool(np.allclose(arr, arr.flat[0]))


def is_value(x: Any, v: float) -> bool:
    return bool(np.allclose(np.asarray(x, dtype=np.float64), v, rtol=1e-6, atol=1e-7))


def quant_type(bits: int, signed: bool, narrow: bool) -> tuple[str, int, int]:
    """(FINN dtype name, numSteps, ActVal) of an integer quantizer."""
    if bits == 1 and not signed:
        return "BINARY", 1, 0
    lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    return (f"INT{bits}" if signed else f"UINT{bits}"), hi - lo, lo


def quant_ints(x: np.ndarray, scale: Any, zeropt: Any, bits: int, signed: bool, narrow: bool,
                rounding: str) -> np.ndarray | None:
    """The integers a weight Quant node produces (qonnx's own quant(), divided by the scale)."""
    from qonnx.custom_op.general.intquant import int_quant

    try:
        q = int_quant(x, np.asarray(scale, dtype=np.float64), np.asarray(zeropt, dtype=np.float64),
                  np.float64(bits), signed, narrow, rounding)
        with np.errstate(all="ignore"):
            ints = np.round(q / np.asarray(scale, dtype=np.float64))
        return ints if np.all(np.isfinite(ints)) else None  # zero/NaN scales: no values
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):
        return None


MAX_QUANT_BITS = 32  # FINN's integer data types in HW layers


def bit_width(lw: Lowering, node: Any, index: int) -> int:
    """A quantizer's bit-width input: a constant integer 1 .. 32, else a clear error."""
    c = lw.const(node.input[index]) if len(node.input) > index else None
    if c is None or c.value is None:
        raise ModelLoadError(f"{node.op_type} {node.name!r}: the bit width (input {index}) is "
                             "not a constant; export with a fixed bit width")
    v = np.asarray(c.value, dtype=np.float64).reshape(-1)
    if v.size != 1 or not np.isfinite(v[0]) or v[0] != round(v[0]) \
            or not 1 <= v[0] <= MAX_QUANT_BITS:
        shown = v.tolist() if v.size <= 4 else f"{v.size} values"
        raise ModelLoadError(
            f"{node.op_type} {node.name!r}: bit width {shown} is not supported; FINN needs "
            f"one integer bit width 1 .. {MAX_QUANT_BITS}")
    return int(v[0])


def attr(node: Any, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def rule_failure(path: str, node: Any, e: Exception) -> InternalError:
    """The internal error for an exception a lowering rule raised: one line naming the node,
    the rule and the exception (``--debug`` shows the traceback, chained)."""
    fn = RULES.get(node.op_type)
    where = f"rule {fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}" if fn else "the lowering"
    msg = str(e).splitlines()[0][:200] if str(e) else ""
    return InternalError(
        f"{path}: {where} failed on {node.op_type} {node.name!r} ({type(e).__name__}: {msg}); "
        "this is a bug in dse, not in the model: rerun with --debug and please report it")


class Lowering:
    def __init__(self, model: Any, *, name: str, input_dtype: str | None,
                 minimize_bit_width: bool = True,
                 symbolic: dict[str, Const] | None = None) -> None:
        """``symbolic``: constants known only by type and shape (weights of an architecture
        built from its config; never materialized)."""
        self.m = model
        self.minimize_bit_width = minimize_bit_width
        self.ix = ModelIndex(model)
        self.name = name
        self.input_dtype = input_dtype
        self.consts: dict[str, Const] = dict(symbolic or {})
        self.streams: dict[str, Stream] = {}
        self.layers: list[dict[str, Any]] = []
        self.tensor_dtype: dict[str, str] = {}
        self.tensor_elems: dict[str, int] = {}
        self.unsupported: list[tuple[str, str, str]] = []
        self.host: list[HostNode] = []
        self.notes: list[str] = []
        self.consumers = self.ix.consumers
        self.offset_adds: set[str] = set()
        self.has_quantizer = False
        self.graph_out_wires: list[str] = []
        self.poisoned: set[str] = set()
        self.tensor_shape: dict[str, tuple[int, ...]] = {}
        self.tensor_cl: set[str] = set()  # wires whose recorded shape is channels-last
        self.layouts_done: dict[Any, tuple[str, int | None]] = {}
        self.claimed: set[str] = set()  # nodes a pattern rule already lowered with another

    # -- helpers ---------------------------------------------------------------------------

    def shape(self, t: str) -> tuple[int, ...]:
        s = self.ix.shape(t)
        if s is None:
            c = self.consts.get(t)
            if c is not None and c.value is not None:
                return tuple(c.value.shape)
            raise ModelLoadError(f"{self.name}: tensor {t!r} has no inferred shape")
        return tuple(int(d) for d in s)

    def const(self, t: str) -> Const | None:
        if t in self.consts:
            return self.consts[t]
        if not t:
            return None
        v = self.ix.initializer(t)
        if v is None:
            return None
        dt = self.ix.datatype(t)
        name = dt if dt not in (None, "FLOAT32", "FLOAT16") else None
        ints = None
        if name:  # FINN-ONNX: an integer type annotation on the weights themselves
            ints = np.round(np.asarray(v, dtype=np.float64))
            typ = qdtype(name)
            if ints.size and (not np.all(np.isfinite(ints)) or ints.min() < typ.min()
                              or ints.max() > typ.max()):
                raise ModelLoadError(
                    f"{self.name}: initializer {t!r} is annotated {name} but holds values "
                    f"outside {typ.min():g} .. {typ.max():g}; fix the annotation or the values")
        c = Const(np.asarray(v), name, 1.0, ints)
        self.consts[t] = c
        return c

    def need(self, t: str) -> Const:
        """The constant ``t``, where the rule has already established that it is one."""
        c = self.const(t)
        if c is None:
            raise InternalError(f"{self.name}: tensor {t!r} is not a constant")
        return c

    def add_layer(self, op: str, attrs: dict[str, Any], inputs: list[str], node: Any,
                  out_dtype: str, out_elems: int, n_out: int = 1) -> int:
        idx = len(self.layers)
        outs = [f"L{idx}_{op}_out{i}" for i in range(n_out)]
        self.layers.append({"op_type": op, "attrs": attrs, "inputs": list(inputs),
                            "outputs": outs,
                            "source_nodes": [node.name] if node is not None else []})
        for o in outs:
            self.tensor_dtype[o] = out_dtype
            self.tensor_elems[o] = out_elems
        return idx

    def out_stream(self, idx: int, shape: tuple[int, ...], dtype: str, **kw: Any) -> Stream:
        wire = self.layers[idx]["outputs"][0]
        self.tensor_shape[wire] = tuple(shape)
        if kw.get("cl"):
            self.tensor_cl.add(wire)
        return Stream(wire=wire, producer=idx, dtype=dtype, shape=tuple(shape), **kw)

    def set_output_dtype(self, idx: int, dtype: str) -> None:
        layer = self.layers[idx]
        key = {"MVAU": "outputDataType", "VVAU": "outputDataType",
               "Thresholding": "outputDataType"}.get(layer["op_type"])
        if key:
            layer["attrs"][key] = dtype
            for o in layer["outputs"]:
                self.tensor_dtype[o] = dtype

    def only_user(self, tensor: str, op_types: tuple[str, ...] | None = None) -> Any | None:
        """The single node reading ``tensor`` (of one of ``op_types``), else None."""
        users = self.ix.users.get(tensor, [])
        if len(users) == 1 and self.consumers.get(tensor) == 1 and (
                op_types is None or users[0].op_type in op_types):
            return users[0]
        return None

    def unsupported_node(self, node: Any, reason: str) -> None:
        self.unsupported.append((node.name, node.op_type, reason))
        self.poisoned.update(node.output)

    # -- main loop -------------------------------------------------------------------------

    def run(self, path: str, sha: str) -> LayerGraph:
        g = self.m.graph
        for inp in g.input:
            if self.ix.is_initializer(inp.name):
                continue
            shp = self.shape(inp.name)
            dt = self.input_dtype or self.ix.datatype(inp.name) or "FLOAT32"
            is_float = dt.startswith("FLOAT")
            self.streams[inp.name] = Stream(wire=inp.name, producer=None, dtype=dt, shape=shp,
                                             host=is_float, from_quant=not is_float)
            self.tensor_dtype[inp.name] = dt
            self.tensor_elems[inp.name] = prod(shp)
        for node in g.node:
            try:
                self.visit(node)
            except NodeNotMappable as e:
                self.unsupported_node(node, str(e))
            except DseError:
                raise
            except Exception as e:  # a rule broke: dse's bug, not the user's model
                raise rule_failure(path, node, e) from e
        if not self.has_quantizer:
            raise ModelLoadError(
                f"{path}: float-only model (no Quant, BipolarQuant, Trunc or MultiThreshold "
                "nodes); FINN maps quantized networks: export it with Brevitas/QONNX quantizers"
            )
        outputs = []
        for o in g.output:
            s = self.streams.get(o.name)
            if s is None:
                continue
            s = self.flush(s, None)
            outputs.append(s)
        self.graph_out_wires = [s.wire for s in outputs]
        if self.unsupported:
            listed = "; ".join(f"{op} {nm!r} ({why})" for nm, op, why in self.unsupported[:12])
            more = f" and {len(self.unsupported) - 12} more" if len(self.unsupported) > 12 else ""
            raise UnsupportedLayerError(
                f"{path}: {len(self.unsupported)} node(s) have no FINN hardware mapping: "
                f"{listed}{more}",
                [(nm, op) for nm, op, _ in self.unsupported],
            )
        if not self.layers:
            raise ModelLoadError(f"{path}: no node could be mapped to a FINN HW layer")
        self.insert_forks()
        self.sort_layers()
        if self.minimize_bit_width:
            self.byte_align_last()
        return self.build(path, sha, outputs)

    def visit(self, node: Any) -> None:
        if node.name in self.claimed:
            return
        op = node.op_type
        ins = list(node.input)
        if op in QUANT_OPS:
            self.has_quantizer = True
        if any(t in self.poisoned for t in ins):
            # downstream of an unmapped node: report only ops FINN can never map
            if op not in RULES:
                self.unsupported_node(node, "no FINN HW layer for this op")
            elif op in ("MatMul", "Gemm") and all(self.const(t) is None for t in ins[:2]):
                self.unsupported_node(node, "activation x activation MatMul (e.g. attention)")
            self.poisoned.update(node.output)
            return
        # constant propagation (weights and their layout ops)
        if op in CONST_OPS and ins and all((t == "" or self.const(t) is not None)
                                           for t in ins):
            self.visit_const(node)
            return
        handler = RULES.get(op)
        if handler is None:
            self.unsupported_node(node, "no FINN HW layer for this op")
            return
        handler(self, node)

    def stream_in(self, node: Any, i: int = 0, *, keep_layout: bool = False,
                  keep_attn: bool = False) -> Stream:
        """The activation stream on input ``i``. Unless the rule handles them itself, pending
        attention scores are emitted and a pending layout change becomes its Shuffle/Reshape,
        so a rule always reads data in the logical layout of its ONNX input."""
        t = node.input[i]
        s = self.streams.get(t)
        if s is None:
            raise NodeNotMappable(f"input {t!r} is not an activation stream (a tensor no "
                                  "HW layer produces)")
        if s.attn is not None and not keep_attn:
            s = HOOKS["attention"](self, s, node)
            self.streams[t] = s
        if s.layout is not None and not keep_layout:
            s = self.materialize_layout(s, node)
        if self.consumers.get(t, 0) > 1 and s.pending:
            s = replace(s, forked=True)
        return s

    def materialize_layout(self, s: Stream, node: Any) -> Stream:
        """A pending layout change as FINN lowers it: a Shuffle when it transposes, a Reshape
        when it only regroups (and nothing when the regrouping is trivial). One layer per wire
        and layout, however many readers."""
        if s.layout is None:
            return s
        key = (s.wire, s.layout)
        done = self.layouts_done.get(key)
        if done is None:
            src_shape, t_in, perm = s.layout
            if list(perm) != sorted(perm):
                t_out = [t_in[p] for p in perm]
                attrs = {"data_type": s.dtype, "in_shape": list(src_shape),
                         "transpose_in_shape": list(t_in), "perm": list(perm),
                         "transpose_out_shape": t_out, "out_shape": list(s.shape), "SIMD": 1,
                         "NumChannels": t_in[-1]}
                idx = self.add_layer("Shuffle", attrs, [s.wire], node, s.dtype, prod(s.shape))
                self.layers[idx]["source_nodes"] = list(s.deferred_layout_nodes())
                done = (self.layers[idx]["outputs"][0], idx)
            elif squeezed(src_shape) != squeezed(s.shape):
                attrs = {"inp_shape": list(src_shape), "out_shape": list(s.shape),
                         "dtype": s.dtype, "PE": 1}
                idx = self.add_layer("Reshape", attrs, [s.wire], node, s.dtype, prod(s.shape))
                self.layers[idx]["source_nodes"] = list(s.deferred_layout_nodes())
                done = (self.layers[idx]["outputs"][0], idx)
            else:
                done = (s.wire, s.producer)
            self.layouts_done[key] = done
            if done[1] is not None:
                self.tensor_shape[done[0]] = tuple(s.shape)
                self.tensor_cl.add(done[0])
        wire, producer = done
        return replace(s, wire=wire, producer=producer, layout=None, layout_nodes=(), cl=True)

    def put(self, node: Any, s: Stream, i: int = 0) -> None:
        self.streams[node.output[i]] = s

    # -- constants -------------------------------------------------------------------------

    def visit_const(self, node: Any) -> None:
        op = node.op_type
        c0 = self.need(node.input[0])
        if op in ("Quant", "BipolarQuant"):
            x = np.asarray(c0.value, dtype=np.float64) if c0.value is not None else None
            if op == "BipolarQuant":
                dt, scale = "BIPOLAR", self.need(node.input[1]).value
                ints = None if x is None else np.where(x >= 0, 1.0, -1.0)
            else:
                bits = bit_width(self, node, 3)
                signed, narrow = bool(attr(node, "signed", 1)), bool(attr(node, "narrow", 0))
                dt = quant_type(bits, signed, narrow)[0]
                scale = self.need(node.input[1]).value
                ints = None if x is None else quant_ints(
                    x, scale, self.need(node.input[2]).value, bits, signed, narrow,
                    str(attr(node, "rounding_mode", "ROUND")))
            self.consts[node.output[0]] = Const(c0.value, dt, scale, ints)
            return
        if op == "Split":
            self.split_const(node, c0)
            return
        # layout ops and arithmetic on constants: keep dtype/scale, compute the value with numpy
        val = ints = None
        try:
            if op == "Transpose":
                perm = attr(node, "perm")
                val = np.transpose(c0.value, perm) if c0.value is not None else None
                ints = np.transpose(c0.ints, perm) if c0.ints is not None else None
            elif op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"):
                shp = self.ix.shape(node.output[0])
                val = np.reshape(c0.value, shp) if c0.value is not None and shp else c0.value
                ints = np.reshape(c0.ints, shp) if c0.ints is not None and shp else c0.ints
            elif op == "Tile":  # repeats of a constant (GPT-J's sin/cos repeat_interleave)
                reps = [int(r) for r in np.asarray(self.need(node.input[1]).value).reshape(-1)]
                val = np.tile(c0.value, reps) if c0.value is not None else None
                ints = np.tile(c0.ints, reps) if c0.ints is not None else None
            elif op in ("Mul", "Div", "Add", "Sub") and len(node.input) == 2:
                c1 = self.need(node.input[1])
                f = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}[op]
                if c0.value is None or c1.value is None:
                    raise InternalError(f"{self.name}: {op} {node.name!r} of constants "
                                        "without values")
                val = f(c0.value, c1.value)
        except ValueError:
            val = ints = None
        self.consts[node.output[0]] = Const(val, c0.dtype, c0.scale, ints)

    def split_const(self, node: Any, c0: Const) -> None:
        """Split of a constant (GPT-J's sin/cos table): numpy, one Const per output."""
        axis, n = int(attr(node, "axis", 0)), len(node.output)
        sizes = attr(node, "split")
        if sizes is None and len(node.input) > 1 and node.input[1]:
            sizes = np.asarray(self.need(node.input[1]).value).reshape(-1)
        for k, o in enumerate(node.output):
            if c0.value is None:
                self.consts[o] = Const(None, c0.dtype, c0.scale, None)
                continue
            cuts = (np.cumsum([int(x) for x in sizes])[:-1] if sizes is not None
                    else n)
            parts = np.split(np.asarray(c0.value), cuts, axis=axis)
            ints = (None if c0.ints is None
                    else np.split(np.asarray(c0.ints), cuts, axis=axis)[k])
            self.consts[o] = Const(parts[k], c0.dtype, c0.scale, ints)

    def emit_deferred(self, s: Stream, node: Any) -> Stream:
        """Emit the layers held back on the stream (pooling moved past thresholds), each by
        the rule that deferred it; ``node`` is the node that needs them now."""
        for _kind, params, emit in s.deferred:
            s = emit(self, replace(s, deferred=[]), params, node)
        return replace(s, deferred=[])

    # -- float tail ------------------------------------------------------------------------

    def flush(self, s: Stream, node: Any | None, *, to_hw: bool = False,
              force: bool = False) -> Stream:
        """Materialize pending float ops as ElementwiseMul/Add (FINN's float tail). Float ops
        on the float graph input stay on the host unless ``to_hw`` (a HW layer such as a
        LayerNorm reads them: FINN then maps them to HW layers too)."""
        s = self.emit_deferred(s, node)
        if s.attn is not None:
            s = HOOKS["attention"](self, s, node)
        if s.layout is not None:
            s = self.materialize_layout(s, node)
        if to_hw and s.host:
            s = replace(s, host=False)
        if force and not is_value(s.a, 1.0):
            s = replace(s, pending=True)  # the scale itself must be applied
        if not s.pending or s.host:
            return s
        if s.nonlinear:
            where = node.name if node is not None else "the graph output"
            self.host.append(HostNode(name=f"float ops before {where}", op_type="Relu",
                                      reason="non-linear float op after the last quantizer"))
            return replace(s, pending=False, nonlinear=False, a=1.0, b=0.0)
        layout = hw_shape(s)
        C = layout[-1]
        dt = s.dtype
        wire, producer = s.wire, s.producer
        src = node if node is not None else None
        for kind, val, ident in (("Mul", s.a, 1.0), ("Add", s.b, 0.0)):
            if is_value(val, ident):
                continue
            rhs = const_shape(val, s, C)
            attrs = {"lhs_dtype": dt, "rhs_dtype": "FLOAT32", "out_dtype": "FLOAT32",
                     "lhs_shape": layout, "rhs_shape": rhs, "out_shape": layout,
                     "lhs_style": "input", "rhs_style": "const", "PE": 1}
            producer = self.add_layer(f"Elementwise{kind}", attrs, [wire], src, "FLOAT32",
                                      prod(s.shape))
            wire, dt = self.layers[producer]["outputs"][0], "FLOAT32"
            self.tensor_shape[wire] = tuple(s.shape)
            if s.cl:
                self.tensor_cl.add(wire)
        return Stream(wire=wire, producer=producer, dtype=dt, shape=s.shape, cl=s.cl)

    # -- forks and output ------------------------------------------------------------------

    def insert_forks(self) -> None:
        """A stream read by several layers gets a DuplicateStreams (FINN's fork)."""
        readers: dict[str, list[tuple[int, int]]] = {}
        for li, lyr in enumerate(self.layers):
            for pi, t in enumerate(lyr["inputs"]):
                readers.setdefault(t, []).append((li, pi))
        graph_outs = set(self.graph_out_wires)
        new_layers: list[dict[str, Any]] = []
        for lyr in self.layers:
            new_layers.append(lyr)
            for t in lyr["outputs"]:
                rs = readers.get(t, [])
                n = len(rs) + (1 if t in graph_outs else 0)
                if n < 2:
                    continue
                shape = self.tensor_elems[t]
                nvec, C = self._vec_channels(t)
                attrs = {"NumChannels": C, "PE": 1, "NumOutputStreams": n,
                         "inputDataType": self.tensor_dtype[t], "numInputVectors": nvec}
                outs = [f"{t}_dup{k}" for k in range(n)]
                dup = {"op_type": "DuplicateStreams", "attrs": attrs, "inputs": [t],
                       "outputs": outs, "source_nodes": []}
                new_layers.append(dup)
                for k, (ri, pi) in enumerate(rs):
                    self.layers[ri]["inputs"][pi] = outs[k]
                for o in outs:
                    self.tensor_dtype[o] = self.tensor_dtype[t]
                    self.tensor_elems[o] = shape
                if t in graph_outs:
                    self.graph_out_wires = [outs[-1] if w == t else w
                                            for w in self.graph_out_wires]
        self.layers = new_layers

    def _vec_channels(self, tensor: str) -> tuple[list[int], int]:
        shape = self.tensor_shape.get(tensor)
        if shape is None:
            return [1], self.tensor_elems[tensor]
        if tensor in self.tensor_cl:
            return list(shape[:-1]) or [1], shape[-1]
        return channels_last(shape)

    def byte_align_last(self) -> None:
        """FINN rounds the accumulator output of a layer nothing follows up to whole bytes."""
        read = {t for lyr in self.layers for t in lyr["inputs"]}
        for lyr in self.layers:
            if lyr["op_type"] in ("MVAU", "VVAU") and lyr["attrs"]["noActivation"] == 1 \
                    and not any(o in read for o in lyr["outputs"]):
                dt = bitwidth.byte_aligned(lyr["attrs"]["outputDataType"])
                lyr["attrs"]["outputDataType"] = dt
                for o in lyr["outputs"]:
                    self.tensor_dtype[o] = dt

    def sort_layers(self) -> None:
        """Layers in the order FINN's graph has them (qonnx SortGraph's levels), so that the
        names FINN's GiveUniqueNodeNames gives (``MVAU_hls_0``, ...) follow the same order,
        branches after a fork included."""
        producer = {t: i for i, lyr in enumerate(self.layers) for t in lyr["outputs"]}
        preds = [[producer[t] for t in lyr["inputs"] if t in producer] for lyr in self.layers]
        self.layers = [self.layers[i] for i in level_order(preds)]

    def build(self, path: str, sha: str, outputs: list[Stream]) -> LayerGraph:
        counters: dict[str, int] = {}
        names: list[str] = []
        for lyr in self.layers:
            k = counters.get(lyr["op_type"], 0)
            counters[lyr["op_type"]] = k + 1
            names.append(f"{lyr['op_type']}_{k}")
        producer = {t: names[i] for i, lyr in enumerate(self.layers) for t in lyr["outputs"]}
        producer_idx = {t: i for i, lyr in enumerate(self.layers) for t in lyr["outputs"]}
        absorbed, on_host = absorbed_nodes(
            self.m.graph, [lyr["source_nodes"] for lyr in self.layers], [h.name for h in self.host],
            [producer_idx[w] for w in self.graph_out_wires if w in producer_idx])
        self.host.extend(HostNode(name=n.name, op_type=n.op_type,
                                  reason="feeds only host nodes, so it runs there too")
                         for n in on_host)
        layers = []
        edges = []
        for i, lyr in enumerate(self.layers):
            layers.append(Layer(name=names[i], op_type=lyr["op_type"], impl=None,
                                attrs=lyr["attrs"], inputs=tuple(lyr["inputs"]),
                                outputs=tuple(lyr["outputs"]),
                                source_nodes=tuple(lyr["source_nodes"]),
                                absorbed=tuple(absorbed.get(i, ()))))
            for t in lyr["inputs"]:
                edges.append(Edge(tensor=t, src=producer.get(t), dst=names[i],
                                  dtype=self.tensor_dtype.get(t, "FLOAT32"),
                                  elems_per_frame=self.tensor_elems.get(t, 0)))
        for w in self.graph_out_wires:
            if w in producer:
                edges.append(Edge(tensor=w, src=producer[w], dst=None,
                                  dtype=self.tensor_dtype[w], elems_per_frame=self.tensor_elems[w]))
        return LayerGraph(name=self.name, layers=tuple(layers), edges=tuple(edges),
                          host_nodes=tuple(self.host), source_path=path, source_sha256=sha,
                          notes=tuple(self.notes), minimized_bit_width=self.minimize_bit_width)
