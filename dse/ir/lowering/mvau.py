"""Compute layers: MatMul/Gemm -> MVAU; Conv -> [FMPadding] + ConvolutionInputGenerator + MVAU;
depthwise Conv -> SWG + VVAU. FINN's bit-width minimization comes from ``dse.ir.bitwidth``;
a MatMul/Conv on the float graph input stays on the host, as FINN leaves it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.exceptions import ModelLoadError, NodeNotMappable
from dse.ir import bitwidth
from dse.ir.graph import HostNode
from dse.ir.lowering import hadamard
from dse.ir.lowering.affine import channel_const
from dse.ir.lowering.attention import act_matmul
from dse.ir.lowering.core import (
    Const,
    Lowering,
    Stream,
    attr,
    is_value,
    rule,
    uniform,
)
from dse.models._common import prod


def host_compute(lw: Lowering, node: Any, s: Stream) -> bool:
    """A compute op on a float tensor before any HW layer stays on the host."""
    if not s.dtype.startswith("FLOAT"):
        return False
    if s.host:
        lw.host.append(HostNode(
            name=node.name, op_type=node.op_type,
            reason="float input before the first quantizer (FINN leaves it on the host; "
                   "declare the input type, e.g. --input-dtype UINT8, to map it)"))
        shape = lw.shape(node.output[0])
        lw.put(node, Stream(wire=node.output[0], producer=None, dtype="FLOAT32",
                               shape=shape, host=True))
        lw.tensor_dtype[node.output[0]] = "FLOAT32"
        lw.tensor_elems[node.output[0]] = prod(shape)
        return True
    lw.unsupported_node(node, "float activations in the middle of the network "
                          "(no quantizer in front of it)")
    return True


def compute_input(lw: Lowering, node: Any, s: Stream) -> Stream | None:
    """The stream a MatMul/Conv reads: scalar scales move past it (FINN's streamlining),
    anything else float is materialized; float data mid-network cannot be mapped.
    Pooling held back past thresholds is emitted first: it precedes this layer."""
    s = lw.emit_deferred(s, node)
    scalar_bias = is_value(s.b, 0.0) or (s.from_quant and uniform(s.b))
    if not (s.pending and not s.nonlinear and uniform(s.a) and scalar_bias):
        s = lw.flush(s, node)
    if s.dtype.startswith("FLOAT"):
        lw.unsupported_node(node, "float activations in the middle of the network "
                              "(no quantizer in front of it)")
        return None
    return s


def weights(lw: Lowering, node: Any, i: int) -> Const:
    c = lw.const(node.input[i])
    if c is None:
        raise NodeNotMappable(f"weight input {node.input[i]!r} is not a constant")
    if c.dtype is None:
        raise ModelLoadError(
            f"{lw.name}: {node.op_type} {node.name!r} has float weights "
            f"({node.input[i]!r}); quantize them (Quant node or finn_datatype annotation)"
        )
    return c


def mvau(lw: Lowering, node: Any, s: Stream, w: Const, MW: int, MH: int, nvec: list[int],
          out_shape: tuple[int, ...], in_wire: str, sum_axes: tuple[int, ...]) -> None:
    """``sum_axes``: the weight axes a dot product runs over (an input offset b moves past
    the layer as b * the weights' sum over them, per output channel)."""
    xnor = w.dtype == "BIPOLAR" and s.dtype in ("BIPOLAR", "BINARY")
    in_dt = "BINARY" if xnor else s.dtype
    attrs: dict[str, Any] = {
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
    if lw.minimize_bit_width:
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
    idx = lw.add_layer("MVAU", attrs, [in_wire], node, out_dt, prod(out_shape))
    a_in = np.asarray(s.a, dtype=np.float64)
    s_in = float(a_in.flat[0]) if a_in.size else 1.0
    sw: np.ndarray = np.asarray(w.scale, dtype=np.float64).reshape(-1)
    if len(out_shape) == 4 and sw.size > 1:
        sw = sw.reshape(1, -1, 1, 1)
    a = s_in * sw
    b: Any = 0.0
    if xnor:  # FINN's XNOR-popcount: dot = 2 * popcount - MW
        a, b = 2 * a, -MW * a
    b_in = np.asarray(s.b, dtype=np.float64)
    if b_in.size and not is_value(b_in, 0.0) and w.value is not None:
        colsum = np.sum(np.asarray(w.value, dtype=np.float64), axis=sum_axes).reshape(-1)
        if len(out_shape) == 4 and colsum.size > 1:
            colsum = colsum.reshape(1, -1, 1, 1)
        b = b + float(b_in.flat[0]) * colsum * np.asarray(w.scale, dtype=np.float64
                                                            ).reshape(np.shape(sw))
    lw.put(node, lw.out_stream(idx, out_shape, out_dt, a=a, b=b,
                                   pending=xnor or not is_value(b, 0.0)))


def compute_operands(lw: Lowering, node: Any) -> tuple[Stream, Const] | None:
    """Activation and weights of a MatMul/Gemm/Conv; None when the node stays on the host
    or cannot be mapped (it is then already recorded)."""
    if node.input[1] in lw.streams:
        if node.op_type == "MatMul":
            act_matmul(lw, node)
        else:
            lw.unsupported_node(node, f"activation x activation {node.op_type}")
        return None
    s = lw.stream_in(node)
    if host_compute(lw, node, s):
        return None
    w = weights(lw, node, 1)
    x = compute_input(lw, node, s)
    return None if x is None else (x, w)


def fc(lw: Lowering, node: Any, s: Stream, w: Const, K: int, N: int,
        transposed: bool = False) -> None:
    nvec = list(s.shape[:-1]) or [1]
    mvau(lw, node, s, w, K, N, nvec, lw.shape(node.output[0]), s.wire,
               (-1,) if transposed else (-2,))


@rule('MatMul')
def lower_matmul(lw: Lowering, node: Any) -> None:
    rot = hadamard.rotation(lw, node)
    if rot is not None:  # an online rotation: a FWHT layer, not a dense n x n MVAU
        s = lw.stream_in(node)
        if not host_compute(lw, node, s) and (x := compute_input(lw, node, s)) is not None:
            hadamard.emit_hadamard(lw, node, x, *rot)
        return
    ops = compute_operands(lw, node)
    if ops is not None:
        K, N = lw.shape(node.input[1])[-2:]
        fc(lw, node, *ops, K, N)


@rule('Gemm')
def lower_gemm(lw: Lowering, node: Any) -> None:
    if int(attr(node, "transA", 0)):
        lw.unsupported_node(node, "Gemm with transA=1")
        return
    ops = compute_operands(lw, node)
    if ops is None:
        return
    wshape = lw.shape(node.input[1])
    trans = bool(int(attr(node, "transB", 0)))
    K, N = (wshape[1], wshape[0]) if trans else tuple(wshape)
    fc(lw, node, *ops, K, N, transposed=trans)
    out = lw.streams[node.output[0]]
    alpha = float(attr(node, "alpha", 1.0))
    beta = float(attr(node, "beta", 1.0))
    bias: float | np.ndarray = 0.0
    if len(node.input) > 2 and node.input[2]:
        c = lw.const(node.input[2])
        bias = beta * np.asarray(c.value, dtype=np.float64) if c is not None else 0.0
    a = np.asarray(out.a, dtype=np.float64) * alpha
    b = np.asarray(out.b, dtype=np.float64) * alpha + bias
    lw.streams[node.output[0]] = replace(out, a=a, b=b,
                                           pending=out.pending or not is_value(bias, 0.0))


@rule('Conv')
def lower_conv(lw: Lowering, node: Any) -> None:
    ops = compute_operands(lw, node)
    if ops is None:
        return
    s, w = ops
    if len(s.shape) != 4:
        lw.unsupported_node(node, f"{len(s.shape) - 2}D convolution (FINN maps 2D NCHW)")
        return
    _, C, H, W = s.shape
    wshape = lw.shape(node.input[1])
    Cout, kh, kw = wshape[0], wshape[2], wshape[3]
    group = int(attr(node, "group", 1))
    pads = list(attr(node, "pads", [0, 0, 0, 0]))
    strides = list(attr(node, "strides", [1, 1]))
    dil = list(attr(node, "dilations", [1, 1]))
    out_shape = lw.shape(node.output[0])
    _, _, OH, OW = out_shape
    depthwise = group == C and Cout == C and C > 1
    if group != 1 and not depthwise:
        lw.unsupported_node(node, f"grouped convolution (group={group})")
        return
    wire = s.wire
    Hp, Wp = H + pads[0] + pads[2], W + pads[1] + pads[3]
    if any(pads):
        pad_attrs = {"ImgDim": [H, W], "Padding": [pads[0], pads[1], pads[2], pads[3]],
                     "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype,
                     "numInputVectors": 1}
        idx = lw.add_layer("FMPadding", pad_attrs, [wire], node, s.dtype, Hp * Wp * C)
        wire = lw.layers[idx]["outputs"][0]
    need_swg = not (kh == 1 and kw == 1 and strides == [1, 1] and not any(pads))
    if need_swg or depthwise:
        swg = {
            "ConvKernelDim": [kh, kw], "IFMChannels": C, "IFMDim": [Hp, Wp],
            "OFMDim": [OH, OW], "SIMD": C, "Stride": strides, "Dilation": dil,
            "inputDataType": s.dtype, "outputDataType": s.dtype,
            "depthwise": int(depthwise),
            "is1D": int((Hp == 1 and kh == 1) or (Wp == 1 and kw == 1)),
        }
        idx = lw.add_layer("ConvolutionInputGenerator", swg, [wire], node, s.dtype,
                             OH * OW * kh * kw * C)
        wire = lw.layers[idx]["outputs"][0]
    if depthwise:
        attrs: dict[str, Any] = {
            "Channels": C, "Kernel": [kh, kw], "Dim": [OH, OW], "PE": 1, "SIMD": 1,
            "inputDataType": s.dtype, "weightDataType": w.dtype, "outputDataType": "INT32",
            "noActivation": 1, "mem_mode": "internal_decoupled", "ActVal": 0,
        }
        if lw.minimize_bit_width:
            matrix = None if w.ints is None else np.asarray(
                w.ints, dtype=np.float64).reshape(C, kh * kw).T
            bitwidth.minimize(attrs, matrix)
        vdt = attrs["outputDataType"]
        idx = lw.add_layer("VVAU", attrs, [wire], node, vdt, prod(out_shape))
        sw = np.asarray(w.scale, dtype=np.float64).reshape(-1)
        a = float(np.asarray(s.a).flat[0]) * (sw.reshape(1, -1, 1, 1) if sw.size > 1 else sw)
        out = lw.out_stream(idx, out_shape, vdt, a=a)
    else:
        mvau(lw, node, s, w, C * kh * kw, Cout, [1, OH, OW], out_shape, wire, (1, 2, 3))
        out = lw.streams[node.output[0]]
    if len(node.input) > 2 and node.input[2]:
        c = lw.const(node.input[2])
        bias = channel_const(lw, c.value, out) if c is not None else 0.0
        out = replace(out, b=np.asarray(out.b, dtype=np.float64) + bias,
                      pending=out.pending or not is_value(bias, 0.0))
    lw.streams[node.output[0]] = out
