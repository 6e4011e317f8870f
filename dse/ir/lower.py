"""Lower a QONNX / FINN-ONNX network to the FINN HW layers FINN would create.

This is a structural lowering: it reproduces which HW layers FINN's ``step_convert_to_hw``
makes and their shape, channel, kernel, stride and bit-width attributes, without FINN's numeric
streamlining (threshold values are never needed for costing). qonnx does the ONNX work
(cleanup, shape and data-type inference); this module walks the cleaned graph once, tracking for
every activation tensor the HW stream it lives on and the float affine map (scale, bias) applied
to it since, so that:

* an activation quantizer after an MVAU/VVAU (through BatchNorm, scales, biases, ReLU) becomes
  the MVAU's fused thresholds, and a standalone ``Thresholding`` elsewhere;
* Conv -> [FMPadding] + ConvolutionInputGenerator + MVAU; depthwise Conv -> SWG + VVAU;
  MatMul/Gemm -> MVAU; MaxPool -> depthwise SWG + Pool; AveragePool + Trunc -> SWG + Pool
  (QuantAvgPool); GlobalAveragePool -> GlobalAccPool; TopK -> LabelSelect; Add of two streams ->
  ElementwiseAdd with DuplicateStreams at the fork; Softmax -> HWSoftmax; non-trivial Reshape ->
  Reshape (finn-plus); float scale/bias after the last quantizer -> ElementwiseMul/Add;
* a MatMul/Conv on a float tensor before any quantizer stays on the host, as FINN leaves it.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse.exceptions import ModelLoadError, UnsupportedLayerError
from dse.ir import bitwidth
from dse.ir.accounting import absorbed_nodes
from dse.ir.graph import Edge, HostNode, Layer, LayerGraph
from dse.ir.prepare import ModelIndex, level_order, prepare
from dse.models._common import dtype as qdtype
from dse.models._common import normalize, prod
from dse.models.eltwise import smallest_covering
from dse.models.pool import GAP_SCHEMA, gap_output_dtype

HW_DOMAIN = "finn.custom_op.fpgadataflow"
QUANT_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "Trunc")
LAYOUT_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout")
AFFINE_OPS = ("Mul", "Div", "Add", "Sub", "BatchNormalization")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading


def read_model(path: str | Path) -> Any:
    """qonnx ModelWrapper for ``path``, with one-line errors for unreadable files."""
    from qonnx.core.modelwrapper import ModelWrapper

    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelLoadError(f"{p} is a directory; give an .onnx file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModelWrapper(str(p), fix_missing_initializer_valueinfo=False)
    except Exception as e:  # protobuf raises several types for garbage input
        raise ModelLoadError(f"{p} is not a readable ONNX model ({type(e).__name__})") from None
    if len(model.graph.node) == 0:
        raise ModelLoadError(f"{p}: the ONNX graph has no nodes")
    return model


def _check_static_shapes(model: Any, path: str) -> None:
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if not dims:
            raise ModelLoadError(f"{path}: graph input {inp.name!r} has no shape; export with a "
                                 "fixed input shape")
        for d in dims:
            if d.dim_param or d.dim_value <= 0:
                shape = [d.dim_param or d.dim_value for d in dims]
                raise ModelLoadError(
                    f"{path}: graph input {inp.name!r} has a dynamic shape {shape}; FINN needs "
                    "static shapes (export with a fixed batch size 1 and image size)"
                )


def is_hw_graph(model: Any) -> bool:
    return any(n.domain.startswith(HW_DOMAIN) for n in model.graph.node)


def load_network(path: str | Path, *, input_dtype: str | None = None,
                 minimize_bit_width: bool = True) -> LayerGraph:
    """Read a QONNX, FINN-ONNX or FINN HW-layer ONNX file and return its layer graph.

    ``input_dtype`` (e.g. ``"UINT8"``) declares the graph input an integer image, as FINN users
    do with an input annotation; without it a float input feeding a MatMul/Conv leaves that layer
    on the host, as FINN does. ``minimize_bit_width`` (default, as FINN's default flow) gives
    weights and accumulators the types FINN's ``step_minimize_bit_width`` derives from the
    weight values; ``False`` keeps the data-type bounds (INT32 accumulators).
    """
    p = Path(path)
    model = read_model(p)
    _check_static_shapes(model, str(p))
    sha = file_sha256(p)
    if is_hw_graph(model):
        from dse.ir.finn_hw import graph_from_hw_model

        return graph_from_hw_model(model, p, sha)
    if input_dtype is not None:
        qdtype(input_dtype)  # validates the name
    model = prepare(model, str(p))
    return _Lowering(model, name=p.stem, input_dtype=input_dtype,
                     minimize_bit_width=minimize_bit_width).run(str(p), sha)


# ---------------------------------------------------------------------------------------------
# Lowering state


@dataclass
class _Const:
    value: np.ndarray | None
    dtype: str | None = None  # quantized type (weights)
    scale: Any = 1.0
    ints: np.ndarray | None = None  # the integer weights FINN stores (value = ints * scale)


@dataclass
class _Stream:
    wire: str  # HW tensor carrying the data
    producer: int | None  # index of the producing layer, None at a graph/host boundary
    dtype: str  # type on the wire ("FLOAT32" for float)
    shape: tuple[int, ...]  # current logical (ONNX) shape
    a: Any = 1.0  # value = a * wire + b
    b: Any = 0.0
    pending: bool = False  # float ops applied since the wire
    nonlinear: bool = False  # ReLU/Clip applied since the wire
    forked: bool = False
    deferred: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    host: bool = False  # float value computed before any HW layer
    from_quant: bool = False  # the wire is a quantizer's output (scalar offsets fold into it)


def _channels_last(shape: tuple[int, ...]) -> tuple[list[int], int]:
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


def _nhwc(shape: tuple[int, ...]) -> list[int]:
    if len(shape) == 4:
        return [shape[0], shape[2], shape[3], shape[1]]
    return list(shape)


def _squeezed(shape: tuple[int, ...]) -> list[int]:
    return [d for d in shape if d != 1]


def _uniform(x: Any) -> bool:
    arr = np.asarray(x, dtype=np.float64)
    return arr.size <= 1 or bool(np.allclose(arr, arr.flat[0]))


def _is_value(x: Any, v: float) -> bool:
    return bool(np.allclose(np.asarray(x, dtype=np.float64), v, rtol=1e-6, atol=1e-7))


def _quant_type(bits: int, signed: bool, narrow: bool) -> tuple[str, int, int]:
    """(FINN dtype name, numSteps, ActVal) of an integer quantizer."""
    if bits == 1 and not signed:
        return "BINARY", 1, 0
    lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    return (f"INT{bits}" if signed else f"UINT{bits}"), hi - lo, lo


def _quant_ints(x: np.ndarray, scale: Any, zeropt: Any, bits: int, signed: bool, narrow: bool,
                rounding: str) -> np.ndarray | None:
    """The integers a weight Quant node produces (qonnx's own quant(), divided by the scale)."""
    from qonnx.custom_op.general.intquant import int_quant

    try:
        q = int_quant(x, np.asarray(scale, dtype=np.float64), np.asarray(zeropt, dtype=np.float64),
                  np.float64(bits), signed, narrow, rounding)
        return np.round(q / np.asarray(scale, dtype=np.float64))
    except (ValueError, TypeError, ZeroDivisionError):
        return None


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


class _Lowering:
    def __init__(self, model: Any, *, name: str, input_dtype: str | None,
                 minimize_bit_width: bool = True) -> None:
        self.m = model
        self.minimize_bit_width = minimize_bit_width
        self.ix = ModelIndex(model)
        self.name = name
        self.input_dtype = input_dtype
        self.consts: dict[str, _Const] = {}
        self.streams: dict[str, _Stream] = {}
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

    # -- helpers ---------------------------------------------------------------------------

    def shape(self, t: str) -> tuple[int, ...]:
        s = self.ix.shape(t)
        if s is None:
            c = self.consts.get(t)
            if c is not None and c.value is not None:
                return tuple(c.value.shape)
            raise ModelLoadError(f"{self.name}: tensor {t!r} has no inferred shape")
        return tuple(int(d) for d in s)

    def const(self, t: str) -> _Const | None:
        if t in self.consts:
            return self.consts[t]
        if not t:
            return None
        v = self.ix.initializer(t)
        if v is None:
            return None
        dt = self.ix.datatype(t)
        name = dt if dt not in (None, "FLOAT32", "FLOAT16") else None
        c = _Const(np.asarray(v), name, 1.0, np.round(np.asarray(v)) if name else None)
        self.consts[t] = c
        return c

    def add_layer(self, op: str, attrs: dict[str, Any], inputs: list[str], node: Any,
                  out_dtype: str, out_elems: int, n_out: int = 1) -> int:
        idx = len(self.layers)
        outs = [f"L{idx}_{op}_out{i}" for i in range(n_out)]
        self.layers.append({"op_type": op, "attrs": attrs, "inputs": list(inputs),
                            "outputs": outs, "source_nodes": [node.name] if node is not None else []})
        for o in outs:
            self.tensor_dtype[o] = out_dtype
            self.tensor_elems[o] = out_elems
        return idx

    def out_stream(self, idx: int, shape: tuple[int, ...], dtype: str, **kw: Any) -> _Stream:
        self.tensor_shape[self.layers[idx]["outputs"][0]] = tuple(shape)
        return _Stream(wire=self.layers[idx]["outputs"][0], producer=idx, dtype=dtype,
                       shape=tuple(shape), **kw)

    def set_output_dtype(self, idx: int, dtype: str) -> None:
        layer = self.layers[idx]
        key = {"MVAU": "outputDataType", "VVAU": "outputDataType",
               "Thresholding": "outputDataType"}.get(layer["op_type"])
        if key:
            layer["attrs"][key] = dtype
            for o in layer["outputs"]:
                self.tensor_dtype[o] = dtype

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
            self.streams[inp.name] = _Stream(wire=inp.name, producer=None, dtype=dt, shape=shp,
                                             host=is_float, from_quant=not is_float)
            self.tensor_dtype[inp.name] = dt
            self.tensor_elems[inp.name] = prod(shp)
        for node in g.node:
            try:
                self.visit(node)
            except ModelLoadError:
                raise
            except (KeyError, IndexError, ValueError, TypeError) as e:
                self.unsupported_node(node, f"cannot be mapped ({type(e).__name__}: {e})")
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
        op = node.op_type
        ins = list(node.input)
        if op in QUANT_OPS:
            self.has_quantizer = True
        if any(t in self.poisoned for t in ins):
            # downstream of an unmapped node: report only ops FINN can never map
            if getattr(self, f"op_{op}", None) is None:
                self.unsupported_node(node, "no FINN HW layer for this op")
            elif op in ("MatMul", "Gemm") and all(self.const(t) is None for t in ins[:2]):
                self.unsupported_node(node, "activation x activation MatMul (e.g. attention)")
            self.poisoned.update(node.output)
            return
        # constant propagation (weights and their layout ops)
        if ins and all((t == "" or self.const(t) is not None) for t in ins):
            self.visit_const(node)
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            self.unsupported_node(node, "no FINN HW layer for this op")
            return
        handler(node)

    def stream_in(self, node: Any, i: int = 0) -> _Stream:
        t = node.input[i]
        s = self.streams.get(t)
        if s is None:
            raise KeyError(f"input {t!r} is not an activation stream")
        if self.consumers.get(t, 0) > 1 and s.pending:
            s = replace(s, forked=True)
        return s

    def put(self, node: Any, s: _Stream, i: int = 0) -> None:
        self.streams[node.output[i]] = s

    # -- constants -------------------------------------------------------------------------

    def visit_const(self, node: Any) -> None:
        op = node.op_type
        c0 = self.const(node.input[0])
        if op in ("Quant", "BipolarQuant"):
            x = np.asarray(c0.value, dtype=np.float64) if c0.value is not None else None
            if op == "BipolarQuant":
                dt, scale = "BIPOLAR", self.const(node.input[1]).value
                ints = None if x is None else np.where(x >= 0, 1.0, -1.0)
            else:
                bits = int(np.asarray(self.const(node.input[3]).value).flat[0])
                signed, narrow = bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))
                dt = _quant_type(bits, signed, narrow)[0]
                scale = self.const(node.input[1]).value
                ints = None if x is None else _quant_ints(
                    x, scale, self.const(node.input[2]).value, bits, signed, narrow,
                    str(_attr(node, "rounding_mode", "ROUND")))
            self.consts[node.output[0]] = _Const(c0.value, dt, scale, ints)
            return
        # layout ops and arithmetic on constants: keep dtype/scale, compute the value with numpy
        val = ints = None
        try:
            if op == "Transpose":
                perm = _attr(node, "perm")
                val = np.transpose(c0.value, perm) if c0.value is not None else None
                ints = np.transpose(c0.ints, perm) if c0.ints is not None else None
            elif op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"):
                shp = self.ix.shape(node.output[0])
                val = np.reshape(c0.value, shp) if c0.value is not None and shp else c0.value
                ints = np.reshape(c0.ints, shp) if c0.ints is not None and shp else c0.ints
            elif op in ("Mul", "Div", "Add", "Sub") and len(node.input) == 2:
                c1 = self.const(node.input[1])
                f = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}[op]
                val = f(c0.value, c1.value)
        except ValueError:
            val = ints = None
        self.consts[node.output[0]] = _Const(val, c0.dtype, c0.scale, ints)

    # -- activation quantizers -------------------------------------------------------------

    def op_Quant(self, node: Any) -> None:
        s = self.stream_in(node)
        bits = int(np.asarray(self.const(node.input[3]).value).flat[0])
        signed, narrow = bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))
        dt, steps, actval = _quant_type(bits, signed, narrow)
        scale = self.const(node.input[1]).value
        self.threshold(node, s, dt, steps, actval, scale)

    def op_BipolarQuant(self, node: Any) -> None:
        s = self.stream_in(node)
        self.threshold(node, s, "BIPOLAR", 1, 0, self.const(node.input[1]).value)

    def op_MultiThreshold(self, node: Any) -> None:
        s = self.stream_in(node)
        thr = self.const(node.input[1])
        steps = int(thr.value.shape[1]) if thr is not None and thr.value is not None else 1
        dt = _attr(node, "out_dtype", "INT8")
        bias = float(_attr(node, "out_bias", 0.0))
        if dt == "BIPOLAR":
            actval = 0
        elif bias:
            actval = round(bias)
        else:
            # ConvertQONNXtoFINN splits a signed quantizer's offset off into a scalar Add; FINN
            # absorbs it back into the thresholds (ActVal), so the Add is part of this quantizer
            offset = self._offset_add(node)
            actval = int(qdtype(dt).min()) if offset is None else offset
        self.threshold(node, s, dt, steps, actval, 1.0)

    def _offset_add(self, node: Any) -> int | None:
        users = self.ix.users.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return None
        add = users[0]
        c = self.const(add.input[1]) if add.input[0] == node.output[0] else self.const(
            add.input[0])
        if c is None or c.value is None or not _uniform(c.value):
            return None
        v = float(np.asarray(c.value).flat[0])
        if v != round(v):
            return None
        self.offset_adds.add(add.name)
        return round(v)

    def op_Trunc(self, node: Any) -> None:
        s = self.stream_in(node)
        out_bits = int(np.asarray(self.const(node.input[-1]).value).flat[0])  # output_bit_width
        signed = bool(_attr(node, "signed", 1))
        dt, steps, actval = _quant_type(out_bits, signed, False)
        avg = [d for d in s.deferred if d[0] == "avgpool"]
        if avg:
            s = replace(s, deferred=[d for d in s.deferred if d[0] != "avgpool"])
            s = self.emit_deferred(s, node)
            # FINN's InferQuantAvgPool2d: ibits = floor(log2(2**trunc_in_bits / k^2))
            trunc_in = int(np.asarray(self.const(node.input[3]).value).flat[0])
            kh, kw = avg[-1][1]["kernel"]
            ibits = int(np.floor(np.log2(2.0**trunc_in / (kh * kw))))
            s = self.emit_avgpool(s, {**avg[-1][1], "ibits": ibits}, dt, node)
            self.layers[s.producer]["source_nodes"].insert(0, avg[-1][1]["node"].name)
            self.put(node, s)
            return
        self.threshold(node, s, dt, steps, actval, 1.0)

    def threshold(self, node: Any, s: _Stream, dt: str, steps: int, actval: int,
                  scale: Any) -> None:
        """An activation quantizer: fused into the producing MVAU/VVAU or a Thresholding.

        Bipolar activations travel as BINARY bits on the wire, as FINN's XNOR conversion makes
        them (same width, so the same cost).
        """
        if dt == "BIPOLAR":
            dt = "BINARY"
        p = self.layers[s.producer] if s.producer is not None else None
        if (
            p is not None
            and p["op_type"] in ("MVAU", "VVAU")
            and p["attrs"]["noActivation"] == 1
            and s.wire == p["outputs"][0]
            and not s.forked
        ):
            p["attrs"]["noActivation"] = 0
            p["attrs"]["ActVal"] = actval
            self.set_output_dtype(s.producer, dt)
            p["source_nodes"].append(node.name)
            out = _Stream(wire=s.wire, producer=s.producer, dtype=dt, shape=s.shape, a=scale,
                          from_quant=True)
            out = self.emit_deferred(replace(out, deferred=list(s.deferred)), node)
            self.put(node, out)
            return
        s = self.emit_deferred(s, node)
        nvec, C = _channels_last(s.shape)
        in_dt = s.dtype
        attrs = {
            "NumChannels": C,
            "PE": 1,
            "numSteps": steps,
            "inputDataType": in_dt,
            "weightDataType": in_dt,
            "outputDataType": dt,
            "numInputVectors": nvec,
            "ActVal": actval,
        }
        idx = self.add_layer("Thresholding", attrs, [s.wire], node, dt, prod(s.shape))
        self.put(node, self.out_stream(idx, s.shape, dt, a=scale, from_quant=True))

    # -- affine / elementwise --------------------------------------------------------------

    def _channel_const(self, value: Any, s: _Stream) -> Any:
        """Broadcast a per-channel vector to the stream's logical layout."""
        v = np.asarray(value, dtype=np.float64)
        if v.size > 1 and len(s.shape) == 4 and v.ndim == 1:
            return v.reshape(1, -1, 1, 1)
        return v

    def apply_affine(self, node: Any, s: _Stream, mul: Any = 1.0, add: Any = 0.0) -> None:
        a = np.asarray(s.a, dtype=np.float64) * mul
        b = np.asarray(s.b, dtype=np.float64) * mul + add
        shp = self.ix.shape(node.output[0])
        out = replace(s, a=a, b=b, pending=True,
                      shape=tuple(shp) if shp else s.shape)
        if self.consumers.get(node.output[0], 0) > 1:
            out = replace(out, forked=True)
        self.put(node, out)

    def _binary_const(self, node: Any) -> tuple[_Stream, np.ndarray, bool] | None:
        c0, c1 = self.const(node.input[0]), self.const(node.input[1])
        if c1 is not None and node.input[0] in self.streams:
            return self.stream_in(node, 0), np.asarray(c1.value, dtype=np.float64), False
        if c0 is not None and node.input[1] in self.streams:
            return self.stream_in(node, 1), np.asarray(c0.value, dtype=np.float64), True
        return None

    def op_Mul(self, node: Any) -> None:
        r = self._binary_const(node)
        if r is None:
            self.unsupported_node(node, "product of two activation streams")
            return
        s, c, _ = r
        self.apply_affine(node, s, mul=c)

    def op_Div(self, node: Any) -> None:
        r = self._binary_const(node)
        if r is None or r[2]:
            self.unsupported_node(node, "division by an activation stream")
            return
        self.apply_affine(node, r[0], mul=1.0 / r[1])

    def op_Sub(self, node: Any) -> None:
        r = self._binary_const(node)
        if r is None:
            self.unsupported_node(node, "difference of two activation streams")
            return
        s, c, swapped = r
        if swapped:
            self.apply_affine(node, s, mul=-1.0, add=c)
        else:
            self.apply_affine(node, s, add=-c)

    def op_Add(self, node: Any) -> None:
        if node.name in self.offset_adds:  # already in the quantizer's ActVal
            self.put(node, self.stream_in(node))
            return
        r = self._binary_const(node)
        if r is not None:
            self.apply_affine(node, r[0], add=r[1])
            return
        s0, s1 = self.stream_in(node, 0), self.stream_in(node, 1)
        s0, s1 = self.flush(s0, node), self.flush(s1, node)
        t0, t1 = qdtype(s0.dtype), qdtype(s1.dtype)
        if s0.dtype.startswith("FLOAT") or s1.dtype.startswith("FLOAT"):
            out_dt = "FLOAT32"
        else:
            out_dt = smallest_covering(t0.min() + t1.min(), t0.max() + t1.max()).name
        shape = self.shape(node.output[0])
        nhwc = _nhwc(shape)
        attrs = {
            "lhs_dtype": s0.dtype, "rhs_dtype": s1.dtype, "out_dtype": out_dt,
            "lhs_shape": _nhwc(s0.shape), "rhs_shape": _nhwc(s1.shape), "out_shape": nhwc,
            "lhs_style": "input", "rhs_style": "input", "PE": 1,
        }
        idx = self.add_layer("ElementwiseAdd", attrs, [s0.wire, s1.wire], node, out_dt,
                             prod(shape))
        self.put(node, self.out_stream(idx, shape, out_dt))

    def op_BatchNormalization(self, node: Any) -> None:
        s = self.stream_in(node)
        g, beta, mean, var = (np.asarray(self.const(t).value, dtype=np.float64)
                              for t in node.input[1:5])
        eps = float(_attr(node, "epsilon", 1e-5))
        k = g / np.sqrt(var + eps)
        self.apply_affine(node, s, mul=self._channel_const(k, s),
                          add=self._channel_const(beta - mean * k, s))

    def op_Relu(self, node: Any) -> None:
        s = self.stream_in(node)
        self.put(node, replace(s, pending=True, nonlinear=True))

    op_Clip = op_Relu

    def op_Identity(self, node: Any) -> None:
        self.put(node, self.stream_in(node))

    op_Dropout = op_Identity

    # -- layout ----------------------------------------------------------------------------

    def _layout(self, node: Any) -> None:
        s = self.stream_in(node)
        out_shape = self.shape(node.output[0])
        if _squeezed(s.shape) == _squeezed(out_shape):
            self.put(node, replace(s, shape=out_shape))
            return
        if node.op_type == "Transpose":
            if s.producer is None:
                # the NCHW -> NHWC transpose at the input stays on the host side in FINN
                self.host.append(HostNode(name=node.name, op_type="Transpose",
                                          reason="layout change before the first HW layer"))
                self.put(node, replace(s, shape=out_shape))
                return
            self.unsupported_node(node, "transpose of an activation stream")
            return
        if s.pending and not (_uniform(s.a) and _uniform(s.b)):
            self.notes.append(f"{node.name}: per-channel float ops moved across a reshape")
        s = self.emit_deferred(s, node)
        a = np.asarray(s.a).flat[0] if np.asarray(s.a).size else 1.0
        b = np.asarray(s.b).flat[0] if np.asarray(s.b).size else 0.0
        attrs = {"inp_shape": list(s.shape), "out_shape": list(out_shape), "dtype": s.dtype,
                 "PE": 1}
        idx = self.add_layer("Reshape", attrs, [s.wire], node, s.dtype, prod(out_shape))
        self.put(node, self.out_stream(idx, out_shape, s.dtype, a=a, b=b, pending=s.pending,
                                       nonlinear=s.nonlinear, host=False))

    op_Reshape = op_Flatten = op_Squeeze = op_Unsqueeze = op_Transpose = _layout

    # -- compute layers --------------------------------------------------------------------

    def host_compute(self, node: Any, s: _Stream) -> bool:
        """A compute op on a float tensor before any HW layer stays on the host."""
        if not s.dtype.startswith("FLOAT"):
            return False
        if s.host:
            self.host.append(HostNode(
                name=node.name, op_type=node.op_type,
                reason="float input before the first quantizer (FINN leaves it on the host; "
                       "declare the input type, e.g. --input-dtype UINT8, to map it)"))
            shape = self.shape(node.output[0])
            self.put(node, _Stream(wire=node.output[0], producer=None, dtype="FLOAT32",
                                   shape=shape, host=True))
            self.tensor_dtype[node.output[0]] = "FLOAT32"
            self.tensor_elems[node.output[0]] = prod(shape)
            return True
        self.unsupported_node(node, "float activations in the middle of the network "
                              "(no quantizer in front of it)")
        return True

    def compute_input(self, node: Any, s: _Stream) -> _Stream | None:
        """The stream a MatMul/Conv reads: scalar scales move past it (FINN's streamlining),
        anything else float is materialized; float data mid-network cannot be mapped.
        Pooling held back past thresholds is emitted first: it precedes this layer."""
        s = self.emit_deferred(s, node)
        scalar_bias = _is_value(s.b, 0.0) or (s.from_quant and _uniform(s.b))
        if not (s.pending and not s.nonlinear and _uniform(s.a) and scalar_bias):
            s = self.flush(s, node)
        if s.dtype.startswith("FLOAT"):
            self.unsupported_node(node, "float activations in the middle of the network "
                                  "(no quantizer in front of it)")
            return None
        return s

    def _weights(self, node: Any, i: int) -> _Const:
        c = self.const(node.input[i])
        if c is None:
            raise KeyError(f"weight input {node.input[i]!r} is not a constant")
        if c.dtype is None:
            raise ModelLoadError(
                f"{self.name}: {node.op_type} {node.name!r} has float weights "
                f"({node.input[i]!r}); quantize them (Quant node or finn_datatype annotation)"
            )
        return c

    def _mvau(self, node: Any, s: _Stream, w: _Const, MW: int, MH: int, nvec: list[int],
              out_shape: tuple[int, ...], in_wire: str, sum_axes: tuple[int, ...]) -> None:
        """``sum_axes``: the weight axes a dot product runs over (an input offset b moves past
        the layer as b * the weights' sum over them, per output channel)."""
        xnor = w.dtype == "BIPOLAR" and s.dtype in ("BIPOLAR", "BINARY")
        in_dt = "BINARY" if xnor else s.dtype
        attrs = {
            "MW": MW, "MH": MH, "PE": 1, "SIMD": 1,
            "inputDataType": in_dt,
            "weightDataType": "BINARY" if xnor else w.dtype,
            "outputDataType": "UINT32" if xnor else "INT32",
            "noActivation": 1,
            "binaryXnorMode": int(xnor),
            "numInputVectors": nvec,
            "mem_mode": "internal_decoupled",
            "ActVal": 0,
        }
        if self.minimize_bit_width:
            matrix = None
            if w.ints is not None:
                ints = np.asarray(w.ints, dtype=np.float64)
                if sum_axes == (-1,):
                    matrix = ints.reshape(-1, ints.shape[-1]).T
                elif sum_axes == (-2,):
                    matrix = ints.reshape(-1, ints.shape[-1])
                else:  # Conv (Cout, Cin, kh, kw)
                    matrix = ints.reshape(ints.shape[0], -1).T
            bitwidth.minimize(attrs, matrix)
        out_dt = attrs["outputDataType"]
        idx = self.add_layer("MVAU", attrs, [in_wire], node, out_dt, prod(out_shape))
        s_in = np.asarray(s.a, dtype=np.float64)
        s_in = float(s_in.flat[0]) if s_in.size else 1.0
        sw = np.asarray(w.scale, dtype=np.float64).reshape(-1)
        if len(out_shape) == 4 and sw.size > 1:
            sw = sw.reshape(1, -1, 1, 1)
        a = s_in * sw
        b: Any = 0.0
        if xnor:  # FINN's XNOR-popcount: dot = 2 * popcount - MW
            a, b = 2 * a, -MW * a
        b_in = np.asarray(s.b, dtype=np.float64)
        if b_in.size and not _is_value(b_in, 0.0) and w.value is not None:
            colsum = np.sum(np.asarray(w.value, dtype=np.float64), axis=sum_axes).reshape(-1)
            if len(out_shape) == 4 and colsum.size > 1:
                colsum = colsum.reshape(1, -1, 1, 1)
            b = b + float(b_in.flat[0]) * colsum * np.asarray(w.scale, dtype=np.float64
                                                                ).reshape(np.shape(sw))
        self.put(node, self.out_stream(idx, out_shape, out_dt, a=a, b=b,
                                       pending=xnor or not _is_value(b, 0.0)))

    def _compute_operands(self, node: Any) -> tuple[_Stream, _Const] | None:
        """Activation and weights of a MatMul/Gemm/Conv; None when the node stays on the host
        or cannot be mapped (it is then already recorded)."""
        if node.input[1] in self.streams:
            self.unsupported_node(node, f"activation x activation {node.op_type} "
                                  "(e.g. attention)")
            return None
        s = self.stream_in(node)
        if self.host_compute(node, s):
            return None
        w = self._weights(node, 1)
        s = self.compute_input(node, s)
        return None if s is None else (s, w)

    def _fc(self, node: Any, s: _Stream, w: _Const, K: int, N: int,
            transposed: bool = False) -> None:
        nvec = list(s.shape[:-1]) or [1]
        self._mvau(node, s, w, K, N, nvec, self.shape(node.output[0]), s.wire,
                   (-1,) if transposed else (-2,))

    def op_MatMul(self, node: Any) -> None:
        ops = self._compute_operands(node)
        if ops is not None:
            K, N = self.shape(node.input[1])[-2:]
            self._fc(node, *ops, K, N)

    def op_Gemm(self, node: Any) -> None:
        if int(_attr(node, "transA", 0)):
            self.unsupported_node(node, "Gemm with transA=1")
            return
        ops = self._compute_operands(node)
        if ops is None:
            return
        wshape = self.shape(node.input[1])
        trans = bool(int(_attr(node, "transB", 0)))
        K, N = (wshape[1], wshape[0]) if trans else tuple(wshape)
        self._fc(node, *ops, K, N, transposed=trans)
        out = self.streams[node.output[0]]
        alpha = float(_attr(node, "alpha", 1.0))
        beta = float(_attr(node, "beta", 1.0))
        bias = 0.0
        if len(node.input) > 2 and node.input[2]:
            c = self.const(node.input[2])
            bias = beta * np.asarray(c.value, dtype=np.float64) if c is not None else 0.0
        a = np.asarray(out.a, dtype=np.float64) * alpha
        b = np.asarray(out.b, dtype=np.float64) * alpha + bias
        self.streams[node.output[0]] = replace(out, a=a, b=b,
                                               pending=out.pending or not _is_value(bias, 0.0))

    def op_Conv(self, node: Any) -> None:
        ops = self._compute_operands(node)
        if ops is None:
            return
        s, w = ops
        if len(s.shape) != 4:
            self.unsupported_node(node, f"{len(s.shape) - 2}D convolution (FINN maps 2D NCHW)")
            return
        _, C, H, W = s.shape
        wshape = self.shape(node.input[1])
        Cout, kh, kw = wshape[0], wshape[2], wshape[3]
        group = int(_attr(node, "group", 1))
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        strides = list(_attr(node, "strides", [1, 1]))
        dil = list(_attr(node, "dilations", [1, 1]))
        out_shape = self.shape(node.output[0])
        _, _, OH, OW = out_shape
        depthwise = group == C and Cout == C and C > 1
        if group != 1 and not depthwise:
            self.unsupported_node(node, f"grouped convolution (group={group})")
            return
        wire = s.wire
        Hp, Wp = H + pads[0] + pads[2], W + pads[1] + pads[3]
        if any(pads):
            pad_attrs = {"ImgDim": [H, W], "Padding": [pads[0], pads[1], pads[2], pads[3]],
                         "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype,
                         "numInputVectors": 1}
            idx = self.add_layer("FMPadding", pad_attrs, [wire], node, s.dtype, Hp * Wp * C)
            wire = self.layers[idx]["outputs"][0]
        need_swg = not (kh == 1 and kw == 1 and strides == [1, 1] and not any(pads))
        if need_swg or depthwise:
            swg = {
                "ConvKernelDim": [kh, kw], "IFMChannels": C, "IFMDim": [Hp, Wp],
                "OFMDim": [OH, OW], "SIMD": C, "Stride": strides, "Dilation": dil,
                "inputDataType": s.dtype, "outputDataType": s.dtype,
                "depthwise": int(depthwise),
                "is1D": int((Hp == 1 and kh == 1) or (Wp == 1 and kw == 1)),
            }
            idx = self.add_layer("ConvolutionInputGenerator", swg, [wire], node, s.dtype,
                                 OH * OW * kh * kw * C)
            wire = self.layers[idx]["outputs"][0]
        if depthwise:
            attrs = {
                "Channels": C, "Kernel": [kh, kw], "Dim": [OH, OW], "PE": 1, "SIMD": 1,
                "inputDataType": s.dtype, "weightDataType": w.dtype, "outputDataType": "INT32",
                "noActivation": 1, "mem_mode": "internal_decoupled", "ActVal": 0,
            }
            if self.minimize_bit_width:
                matrix = None if w.ints is None else np.asarray(
                    w.ints, dtype=np.float64).reshape(C, kh * kw).T
                bitwidth.minimize(attrs, matrix)
            vdt = attrs["outputDataType"]
            idx = self.add_layer("VVAU", attrs, [wire], node, vdt, prod(out_shape))
            sw = np.asarray(w.scale, dtype=np.float64).reshape(-1)
            a = float(np.asarray(s.a).flat[0]) * (sw.reshape(1, -1, 1, 1) if sw.size > 1 else sw)
            out = self.out_stream(idx, out_shape, vdt, a=a)
        else:
            self._mvau(node, s, w, C * kh * kw, Cout, [1, OH, OW], out_shape, wire, (1, 2, 3))
            out = self.streams[node.output[0]]
        if len(node.input) > 2 and node.input[2]:
            c = self.const(node.input[2])
            bias = self._channel_const(c.value, out) if c is not None else 0.0
            out = replace(out, b=np.asarray(out.b, dtype=np.float64) + bias,
                          pending=out.pending or not _is_value(bias, 0.0))
        self.streams[node.output[0]] = out

    # -- pooling ---------------------------------------------------------------------------

    def _pool_params(self, node: Any, s: _Stream) -> dict[str, Any]:
        k = list(_attr(node, "kernel_shape"))
        strides = list(_attr(node, "strides", k))
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        return {"kernel": k, "strides": strides, "pads": pads,
                "out_shape": self.shape(node.output[0])}

    def op_MaxPool(self, node: Any) -> None:
        s = self.stream_in(node)
        params = self._pool_params(node, s)
        p = self.layers[s.producer] if s.producer is not None else None
        if s.pending and p is not None and p["op_type"] in ("MVAU", "VVAU") \
                and not any(params["pads"]):
            # FINN moves max pooling past the (monotonic) thresholds that follow
            self.put(node, replace(s, shape=params["out_shape"],
                                   deferred=s.deferred + [("maxpool", {**params, "node": node,
                                                                       "in_shape": s.shape})]))
            return
        s = self.flush(s, node)
        if any(params["pads"]):
            # FINN: Im2Col with pad_value = the input type's minimum, which its sliding window
            # generator can only realize as FMPadding (zeros): unsigned inputs only
            if qdtype(s.dtype).min() != 0:
                self.unsupported_node(node, f"padded max pooling of signed {s.dtype} data "
                                      "(FINN pads with zeros, which is not the type minimum)")
                return
            s = self.pad(s, params["pads"], node)
        self.put(node, self.emit_pool(s, {**params, "in_shape": s.shape}, "MaxPool", s.dtype,
                                      node))

    def pad(self, s: _Stream, pads: list[int], node: Any) -> _Stream:
        """FMPadding of an NCHW stream (pads as ONNX gives them: top, left, bottom, right)."""
        _, C, H, W = s.shape
        attrs = {"ImgDim": [H, W], "Padding": [pads[0], pads[1], pads[2], pads[3]],
                 "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype, "numInputVectors": 1}
        out_shape = (s.shape[0], C, H + pads[0] + pads[2], W + pads[1] + pads[3])
        idx = self.add_layer("FMPadding", attrs, [s.wire], node, s.dtype, prod(out_shape))
        return self.out_stream(idx, out_shape, s.dtype, a=s.a, b=s.b, pending=s.pending,
                               nonlinear=s.nonlinear, from_quant=s.from_quant)

    def op_QuantAvgPool2d(self, node: Any) -> None:
        """FINN-ONNX's average pooling (ConvertQONNXtoFINN made it from AveragePool + Trunc)."""
        s = self.flush(self.stream_in(node), node)
        if _attr(node, "data_layout", "NCHW") != "NCHW":
            self.unsupported_node(node, "QuantAvgPool2d in NHWC layout")
            return
        k, st = int(_attr(node, "kernel", 1)), int(_attr(node, "stride", 1))
        obits, signed = int(_attr(node, "obits", 8)), bool(_attr(node, "signed", 0))
        dt = _quant_type(obits, signed, False)[0]
        params = {"kernel": [k, k], "strides": [st, st], "pads": [0, 0, 0, 0], "node": node,
                  "out_shape": self.shape(node.output[0]), "in_shape": s.shape,
                  "ibits": int(_attr(node, "ibits", qdtype(s.dtype).bitwidth()))}
        self.put(node, self.emit_avgpool(s, params, dt, node))

    def op_AveragePool(self, node: Any) -> None:
        s = self.stream_in(node)
        params = self._pool_params(node, s)
        self.put(node, replace(s, shape=params["out_shape"], pending=True,
                               deferred=s.deferred + [("avgpool", {**params, "node": node,
                                                                   "in_shape": s.shape})]))

    def op_GlobalAveragePool(self, node: Any) -> None:
        s = self.flush(self.stream_in(node), node)
        nvec, C = _channels_last(s.shape)
        attrs = {"NumChannels": C, "PE": 1, "inputDataType": s.dtype, "numInputVectors": nvec}
        out_dt = gap_output_dtype(normalize("GlobalAccPool", attrs, GAP_SCHEMA)).name
        out_shape = self.shape(node.output[0])
        idx = self.add_layer("GlobalAccPool", attrs, [s.wire], node, out_dt, C)
        npix = prod(nvec[1:]) or 1
        self.put(node, self.out_stream(idx, out_shape, out_dt, a=np.asarray(s.a) / npix,
                                       pending=True))

    def emit_pool(self, s: _Stream, params: dict[str, Any], func: str, out_dt: str,
                  node: Any) -> _Stream:
        _, C, H, W = params["in_shape"]
        kh, kw = params["kernel"]
        out_shape = params["out_shape"]
        _, _, OH, OW = out_shape
        swg = {
            "ConvKernelDim": [kh, kw], "IFMChannels": C, "IFMDim": [H, W], "OFMDim": [OH, OW],
            "SIMD": C, "Stride": params["strides"], "Dilation": [1, 1],
            "inputDataType": s.dtype, "outputDataType": s.dtype, "depthwise": 1,
            "is1D": int((H == 1 and kh == 1) or (W == 1 and kw == 1)),
        }
        i0 = self.add_layer("ConvolutionInputGenerator", swg, [s.wire], node, s.dtype,
                            OH * OW * kh * kw * C)
        acc = size = 0
        if func == "QuantAvgPool":  # qonnx QuantAvgPool2d.get_accum_size() / get_shifts()
            ibits = int(params.get("ibits", qdtype(s.dtype).bitwidth()))
            acc = int((2**ibits - 1) * kh * kw).bit_length()
            size = max(acc - qdtype(out_dt).bitwidth(), 0)
        pool = {
            "Channels": C, "PE": C, "KernelSize": [kh, kw], "Function": func,
            "OutImgDims": [OH, OW], "InputDataType": s.dtype, "OutputDataType": out_dt,
            "AccumBits": acc, "Size": size, "BatchSize": 1,
        }
        i1 = self.add_layer("Pool", pool, [self.layers[i0]["outputs"][0]], node, out_dt,
                            OH * OW * C)
        return self.out_stream(i1, out_shape, out_dt, a=s.a, b=s.b, pending=s.pending,
                               nonlinear=s.nonlinear, from_quant=s.from_quant)

    def emit_avgpool(self, s: _Stream, params: dict[str, Any], out_dt: str, node: Any) -> _Stream:
        return replace(self.emit_pool(s, params, "QuantAvgPool", out_dt, node), pending=True)

    def emit_deferred(self, s: _Stream, node: Any) -> _Stream:
        for kind, params in s.deferred:
            if kind == "maxpool":
                s = self.emit_pool(replace(s, deferred=[]), params, "MaxPool", s.dtype,
                                   params["node"])
            else:  # an AveragePool without Trunc: FINN has no float average pooling
                self.unsupported_node(node, "AveragePool without a Trunc quantizer after it")
        return replace(s, deferred=[])

    # -- others ----------------------------------------------------------------------------

    def op_Softmax(self, node: Any) -> None:
        s = self.flush(self.stream_in(node), node)
        shape = self.shape(node.output[0])
        attrs = {"NumChannels": shape[-1], "SIMD": 1, "ifm_dim": list(shape),
                 "input_data_type": s.dtype, "output_data_type": "FLOAT32"}
        idx = self.add_layer("HWSoftmax", attrs, [s.wire], node, "FLOAT32", prod(shape))
        self.put(node, self.out_stream(idx, shape, "FLOAT32"))

    def op_TopK(self, node: Any) -> None:
        s = self.flush(self.stream_in(node), node)
        k = int(np.asarray(self.const(node.input[1]).value).flat[0])
        nvec, C = _channels_last(s.shape)
        attrs = {"Labels": C, "PE": 1, "K": k, "inputDataType": s.dtype, "numInputVectors": nvec}
        out_bits = max(8, -(-int(np.ceil(np.log2(max(C, 2)))) // 8) * 8)
        idx = self.add_layer("LabelSelect", attrs, [s.wire], node, f"UINT{out_bits}", k)
        out = self.out_stream(idx, self.shape(node.output[-1]), f"UINT{out_bits}")
        for i in range(len(node.output)):
            self.put(node, out, i)

    def op_Pad(self, node: Any) -> None:
        s = self.flush(self.stream_in(node), node)
        pads = [int(x) for x in np.asarray(self.const(node.input[1]).value).reshape(-1)]
        if len(s.shape) != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            self.unsupported_node(node, "padding other than spatial on NCHW")
            return
        _, C, H, W = s.shape
        attrs = {"ImgDim": [H, W], "Padding": [pads[2], pads[3], pads[6], pads[7]],
                 "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype, "numInputVectors": 1}
        out_shape = self.shape(node.output[0])
        idx = self.add_layer("FMPadding", attrs, [s.wire], node, s.dtype, prod(out_shape))
        self.put(node, self.out_stream(idx, out_shape, s.dtype))

    def op_Concat(self, node: Any) -> None:
        ss = [self.flush(self.stream_in(node, i), node) for i in range(len(node.input))]
        axis = int(_attr(node, "axis", 1))
        rank = len(ss[0].shape)
        if axis % rank != (1 if rank == 4 else rank - 1):
            self.unsupported_node(node, "concatenation along a non-channel axis")
            return
        chans = [_channels_last(x.shape)[1] for x in ss]
        types = [x.dtype for x in ss]
        nvec, _ = _channels_last(ss[0].shape)
        attrs = {"SIMD": 1, "ChannelsPerStream": chans, "inputDataTypes": types,
                 "numInputVectors": nvec}
        ts = [qdtype(t) for t in types]
        out_dt = (types[0] if len(set(types)) == 1 else
                  smallest_covering(min(t.min() for t in ts), max(t.max() for t in ts)).name)
        shape = self.shape(node.output[0])
        idx = self.add_layer("StreamingConcat", attrs, [x.wire for x in ss], node, out_dt,
                             prod(shape))
        self.put(node, self.out_stream(idx, shape, out_dt))

    # -- float tail ------------------------------------------------------------------------

    def flush(self, s: _Stream, node: Any | None) -> _Stream:
        """Materialize pending float ops as ElementwiseMul/Add (FINN's float tail)."""
        s = self.emit_deferred(s, node)
        if not s.pending or s.host:
            return s
        if s.nonlinear:
            where = node.name if node is not None else "the graph output"
            self.host.append(HostNode(name=f"float ops before {where}", op_type="Relu",
                                      reason="non-linear float op after the last quantizer"))
            return replace(s, pending=False, nonlinear=False, a=1.0, b=0.0)
        nhwc = _nhwc(s.shape)
        C = nhwc[-1]
        dt = s.dtype
        wire, producer = s.wire, s.producer
        src = node if node is not None else None
        for kind, val, ident in (("Mul", s.a, 1.0), ("Add", s.b, 0.0)):
            if _is_value(val, ident):
                continue
            rhs = [1] if _uniform(val) else [C]
            attrs = {"lhs_dtype": dt, "rhs_dtype": "FLOAT32", "out_dtype": "FLOAT32",
                     "lhs_shape": nhwc, "rhs_shape": rhs, "out_shape": nhwc,
                     "lhs_style": "input", "rhs_style": "const", "PE": 1}
            producer = self.add_layer(f"Elementwise{kind}", attrs, [wire], src, "FLOAT32",
                                      prod(s.shape))
            wire, dt = self.layers[producer]["outputs"][0], "FLOAT32"
        return _Stream(wire=wire, producer=producer, dtype=dt, shape=s.shape)

    # -- forks and output ------------------------------------------------------------------

    def insert_forks(self) -> None:
        """A stream read by several layers gets a DuplicateStreams (FINN's fork)."""
        readers: dict[str, list[tuple[int, int]]] = {}
        for li, l in enumerate(self.layers):
            for pi, t in enumerate(l["inputs"]):
                readers.setdefault(t, []).append((li, pi))
        graph_outs = set(self.graph_out_wires)
        new_layers: list[dict[str, Any]] = []
        for li, l in enumerate(self.layers):
            new_layers.append(l)
            for t in l["outputs"]:
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
        return _channels_last(shape)

    def byte_align_last(self) -> None:
        """FINN rounds the accumulator output of a layer nothing follows up to whole bytes."""
        read = {t for l in self.layers for t in l["inputs"]}
        for l in self.layers:
            if l["op_type"] in ("MVAU", "VVAU") and l["attrs"]["noActivation"] == 1 \
                    and not any(o in read for o in l["outputs"]):
                dt = bitwidth.byte_aligned(l["attrs"]["outputDataType"])
                l["attrs"]["outputDataType"] = dt
                for o in l["outputs"]:
                    self.tensor_dtype[o] = dt

    def sort_layers(self) -> None:
        """Layers in the order FINN's graph has them (qonnx SortGraph's levels), so that the
        names FINN's GiveUniqueNodeNames gives (``MVAU_hls_0``, ...) follow the same order,
        branches after a fork included."""
        producer = {t: i for i, l in enumerate(self.layers) for t in l["outputs"]}
        preds = [[producer[t] for t in l["inputs"] if t in producer] for l in self.layers]
        self.layers = [self.layers[i] for i in level_order(preds)]

    def build(self, path: str, sha: str, outputs: list[_Stream]) -> LayerGraph:
        counters: dict[str, int] = {}
        names: list[str] = []
        for l in self.layers:
            k = counters.get(l["op_type"], 0)
            counters[l["op_type"]] = k + 1
            names.append(f"{l['op_type']}_{k}")
        producer = {t: names[i] for i, l in enumerate(self.layers) for t in l["outputs"]}
        producer_idx = {t: i for i, l in enumerate(self.layers) for t in l["outputs"]}
        absorbed, on_host = absorbed_nodes(
            self.m.graph, [l["source_nodes"] for l in self.layers], [h.name for h in self.host],
            [producer_idx[w] for w in self.graph_out_wires if w in producer_idx])
        self.host.extend(HostNode(name=n.name, op_type=n.op_type,
                                  reason="feeds only host nodes, so it runs there too")
                         for n in on_host)
        layers = []
        edges = []
        for i, l in enumerate(self.layers):
            layers.append(Layer(name=names[i], op_type=l["op_type"], impl=None,
                                attrs=l["attrs"], inputs=tuple(l["inputs"]),
                                outputs=tuple(l["outputs"]), source_nodes=tuple(l["source_nodes"]),
                                absorbed=tuple(absorbed.get(i, ()))))
            for t in l["inputs"]:
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
