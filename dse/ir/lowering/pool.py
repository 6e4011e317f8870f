"""Pooling: MaxPool -> [FMPadding] + depthwise SWG + Pool; AveragePool (+ Trunc) and
QuantAvgPool2d -> SWG + Pool(QuantAvgPool); GlobalAveragePool -> GlobalAccPool. Max pooling
right after an MVAU is held back past the thresholds that follow, as FINN moves it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir.lowering.core import (
    Lowering,
    Stream,
    attr,
    channels_last,
    quant_type,
    rule,
)
from dse.models._common import dtype as qdtype
from dse.models._common import normalize, prod
from dse.models.pool import GAP_SCHEMA, gap_output_dtype


def pool_params(lw: Lowering, node: Any, s: Stream) -> dict[str, Any]:
    k = list(attr(node, "kernel_shape"))
    strides = list(attr(node, "strides", k))
    pads = list(attr(node, "pads", [0, 0, 0, 0]))
    return {"kernel": k, "strides": strides, "pads": pads,
            "out_shape": lw.shape(node.output[0])}


@rule('MaxPool')
def lower_maxpool(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    params = pool_params(lw, node, s)
    p = lw.layers[s.producer] if s.producer is not None else None
    if s.pending and p is not None and p["op_type"] in ("MVAU", "VVAU") \
            and not any(params["pads"]):
        # FINN moves max pooling past the (monotonic) thresholds that follow
        held = {**params, "node": node, "in_shape": s.shape}
        lw.put(node, replace(s, shape=params["out_shape"],
                             deferred=[*s.deferred, ("maxpool", held, _emit_held_maxpool)]))
        return
    s = lw.flush(s, node)
    if any(params["pads"]):
        # FINN: Im2Col with pad_value = the input type's minimum, which its sliding window
        # generator can only realize as FMPadding (zeros): unsigned inputs only
        if qdtype(s.dtype).min() != 0:
            lw.unsupported_node(node, f"padded max pooling of signed {s.dtype} data "
                                  "(FINN pads with zeros, which is not the type minimum)")
            return
        s = pad(lw, s, params["pads"], node)
    lw.put(node, emit_pool(lw, s, {**params, "in_shape": s.shape}, "MaxPool", s.dtype,
                                  node))


def pad(lw: Lowering, s: Stream, pads: list[int], node: Any) -> Stream:
    """FMPadding of an NCHW stream (pads as ONNX gives them: top, left, bottom, right)."""
    _, C, H, W = s.shape
    attrs = {"ImgDim": [H, W], "Padding": [pads[0], pads[1], pads[2], pads[3]],
             "NumChannels": C, "SIMD": 1, "inputDataType": s.dtype, "numInputVectors": 1}
    out_shape = (s.shape[0], C, H + pads[0] + pads[2], W + pads[1] + pads[3])
    idx = lw.add_layer("FMPadding", attrs, [s.wire], node, s.dtype, prod(out_shape))
    return lw.out_stream(idx, out_shape, s.dtype, a=s.a, b=s.b, pending=s.pending,
                           nonlinear=s.nonlinear, from_quant=s.from_quant)


@rule('QuantAvgPool2d')
def lower_quantavgpool2d(lw: Lowering, node: Any) -> None:
    """FINN-ONNX's average pooling (ConvertQONNXtoFINN made it from AveragePool + Trunc)."""
    s = lw.flush(lw.stream_in(node), node)
    if attr(node, "data_layout", "NCHW") != "NCHW":
        lw.unsupported_node(node, "QuantAvgPool2d in NHWC layout")
        return
    k, st = int(attr(node, "kernel", 1)), int(attr(node, "stride", 1))
    obits, signed = int(attr(node, "obits", 8)), bool(attr(node, "signed", 0))
    dt = quant_type(obits, signed, False)[0]
    params = {"kernel": [k, k], "strides": [st, st], "pads": [0, 0, 0, 0], "node": node,
              "out_shape": lw.shape(node.output[0]), "in_shape": s.shape,
              "ibits": int(attr(node, "ibits", qdtype(s.dtype).bitwidth()))}
    lw.put(node, emit_avgpool(lw, s, params, dt, node))


@rule('AveragePool')
def lower_averagepool(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    params = pool_params(lw, node, s)
    held = {**params, "node": node, "in_shape": s.shape}
    lw.put(node, replace(s, shape=params["out_shape"], pending=True,
                         deferred=[*s.deferred, ("avgpool", held, _avgpool_without_trunc)]))


def _emit_held_maxpool(lw: Lowering, s: Stream, params: dict[str, Any], node: Any) -> Stream:
    return emit_pool(lw, s, params, "MaxPool", s.dtype, params["node"])


def _avgpool_without_trunc(lw: Lowering, s: Stream, params: dict[str, Any],
                           node: Any) -> Stream:
    # a Trunc after the AveragePool takes it (see quantizers); FINN has no float average pool
    lw.unsupported_node(params["node"], "AveragePool without a Trunc quantizer after it")
    return s


@rule('GlobalAveragePool')
def lower_globalaveragepool(lw: Lowering, node: Any) -> None:
    s = lw.flush(lw.stream_in(node), node)
    nvec, C = channels_last(s.shape)
    attrs = {"NumChannels": C, "PE": 1, "inputDataType": s.dtype, "numInputVectors": nvec}
    out_dt = gap_output_dtype(normalize("GlobalAccPool", attrs, GAP_SCHEMA)).name
    out_shape = lw.shape(node.output[0])
    idx = lw.add_layer("GlobalAccPool", attrs, [s.wire], node, out_dt, C)
    npix = prod(nvec[1:]) or 1
    lw.put(node, lw.out_stream(idx, out_shape, out_dt, a=np.asarray(s.a) / npix,
                                   pending=True))


def emit_pool(lw: Lowering, s: Stream, params: dict[str, Any], func: str, out_dt: str,
              node: Any) -> Stream:
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
    i0 = lw.add_layer("ConvolutionInputGenerator", swg, [s.wire], node, s.dtype,
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
    i1 = lw.add_layer("Pool", pool, [lw.layers[i0]["outputs"][0]], node, out_dt,
                        OH * OW * C)
    return lw.out_stream(i1, out_shape, out_dt, a=s.a, b=s.b, pending=s.pending,
                           nonlinear=s.nonlinear, from_quant=s.from_quant)


def emit_avgpool(lw: Lowering, s: Stream, params: dict[str, Any], out_dt: str, node: Any) -> Stream:
    return replace(emit_pool(lw, s, params, "QuantAvgPool", out_dt, node), pending=True)
