"""Activation quantizers: Quant, BipolarQuant, MultiThreshold (FINN-ONNX) and Trunc.

After an MVAU/VVAU (through BatchNorm, scales, biases, ReLU) a quantizer becomes the layer's
fused thresholds, as FINN's streamlining absorbs it; elsewhere a standalone Thresholding.
A Trunc after an AveragePool makes FINN's QuantAvgPool.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.ir import bitwidth
from dse.ir.lowering.core import (
    Lowering,
    Stream,
    attr,
    bit_width,
    known,
    quant_type,
    rule,
    uniform,
    vec_channels,
)
from dse.ir.lowering.pool import emit_avgpool
from dse.models._common import dtype as qdtype
from dse.models._common import prod


@rule('Quant')
def lower_quant(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    bits = bit_width(lw, node, 3)
    signed, narrow = bool(attr(node, "signed", 1)), bool(attr(node, "narrow", 0))
    dt, steps, actval = quant_type(bits, signed, narrow)
    scale = lw.need(node.input[1]).value
    zc = lw.const(node.input[2]) if len(node.input) > 2 else None
    zp = 0.0 if zc is None or zc.value is None else zc.value
    # output actval + k from value / scale + zp >= actval + k - 1/2 (k = 1 .. steps)
    with np.errstate(all="ignore"):
        levels = [(actval + k - 0.5 - np.asarray(zp, dtype=np.float64))
                  * np.asarray(scale, dtype=np.float64) for k in range(1, steps + 1)]
    threshold(lw, node, s, dt, steps, actval, scale, values=levels)


@rule('BipolarQuant')
def lower_bipolarquant(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    threshold(lw, node, s, "BIPOLAR", 1, 0, lw.need(node.input[1]).value)


@rule('MultiThreshold')
def lower_multithreshold(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    thr = lw.const(node.input[1])
    steps = int(thr.value.shape[1]) if thr is not None and thr.value is not None else 1
    dt = attr(node, "out_dtype", "INT8")
    bias = float(attr(node, "out_bias", 0.0))
    if dt == "BIPOLAR":
        actval = 0
    elif bias:
        actval = round(bias)
    else:
        # ConvertQONNXtoFINN splits a signed quantizer's offset off into a scalar Add; FINN
        # absorbs it back into the thresholds (ActVal), so the Add is part of this quantizer
        offset = offset_add(lw, node)
        actval = int(qdtype(dt).min()) if offset is None else offset
    values = None
    if thr is not None and thr.value is not None and np.ndim(thr.value) == 2:
        values = [thr.value[:, k] for k in range(thr.value.shape[1])]
    threshold(lw, node, s, dt, steps, actval, 1.0, values=values)


def offset_add(lw: Lowering, node: Any) -> int | None:
    users = lw.ix.users.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add":
        return None
    add = users[0]
    c = lw.const(add.input[1]) if add.input[0] == node.output[0] else lw.const(
        add.input[0])
    if c is None or c.value is None or not uniform(c.value):
        return None
    v = float(np.asarray(c.value).flat[0])
    if v != round(v):
        return None
    lw.offset_adds.add(add.name)
    return round(v)


@rule('Trunc')
def lower_trunc(lw: Lowering, node: Any) -> None:
    s = lw.stream_in(node)
    out_bits = bit_width(lw, node, len(node.input) - 1)  # output_bit_width
    signed = bool(attr(node, "signed", 1))
    dt, steps, actval = quant_type(out_bits, signed, False)
    avg = [d for d in s.deferred if d[0] == "avgpool"]
    if avg:
        s = replace(s, deferred=[d for d in s.deferred if d[0] != "avgpool"])
        s = lw.emit_deferred(s, node)
        # FINN's InferQuantAvgPool2d: ibits = floor(log2(2**trunc_in_bits / k^2))
        trunc_in = bit_width(lw, node, 3)
        kh, kw = avg[-1][1]["kernel"]
        ibits = int(np.floor(np.log2(2.0**trunc_in / (kh * kw))))
        s = emit_avgpool(lw, s, {**avg[-1][1], "ibits": ibits}, dt, node)
        lw.layers[known(s.producer, "the average pool's layer")]["source_nodes"].insert(
            0, avg[-1][1]["node"].name)
        lw.put(node, s)
        return
    threshold(lw, node, s, dt, steps, actval, 1.0)


def _wire_thresholds(s: Stream, values: list, C: int) -> np.ndarray | None:
    """Per-step thresholds on the input's value (each scalar or per channel) as thresholds on
    its wire integers (value = a * wire + b), channels x steps; None where that mapping is not
    a per-channel positive scale."""
    def per_channel(x: Any) -> np.ndarray | None:
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        return np.full(C, v[0]) if v.size == 1 else (v if v.size == C else None)

    a, b = per_channel(s.a), per_channel(s.b)
    per = [per_channel(v) for v in values]
    cols = [c for c in per if c is not None]
    if a is None or b is None or len(cols) < len(per) or not np.all(a > 0):
        return None
    with np.errstate(all="ignore"):
        return (np.stack(cols, axis=1) - b[:, None]) / a[:, None]


def threshold(lw: Lowering, node: Any, s: Stream, dt: str, steps: int, actval: int,
              scale: Any, values: list | None = None) -> None:
    """An activation quantizer: fused into the producing MVAU/VVAU or a Thresholding.

    Bipolar activations travel as BINARY bits on the wire, as FINN's XNOR conversion makes
    them (same width, so the same cost). ``values``: the thresholds on the input's value, one
    per step (scalar or per channel); with bit-width minimization a standalone Thresholding
    on an integer input gets the threshold type FINN derives from them (e.g. UINT4 for the
    15 thresholds 1..15 of a 4-bit requantization of a residual sum's UINT5), else the input's.
    """
    if dt == "BIPOLAR":
        dt = "BINARY"
    p = lw.layers[s.producer] if s.producer is not None else None
    if (
        p is not None
        and p["op_type"] in ("MVAU", "VVAU")
        and p["attrs"]["noActivation"] == 1
        and s.wire == p["outputs"][0]
        and not s.forked
    ):
        p["attrs"]["noActivation"] = 0
        p["attrs"]["ActVal"] = actval
        lw.set_output_dtype(known(s.producer, "the thresholded layer"), dt)
        p["source_nodes"].append(node.name)
        out = Stream(wire=s.wire, producer=s.producer, dtype=dt, shape=s.shape, a=scale,
                      from_quant=True)
        out = lw.emit_deferred(replace(out, deferred=list(s.deferred)), node)
        lw.put(node, out)
        return
    s = lw.emit_deferred(s, node)
    nvec, C = vec_channels(s)
    in_dt = s.dtype
    w_dt = in_dt
    if lw.minimize_bit_width and values is not None and not in_dt.startswith("FLOAT"):
        t = _wire_thresholds(s, values, C)
        w_dt = (bitwidth.threshold_type(t, in_dt) if t is not None else None) or in_dt
    attrs = {
        "NumChannels": C,
        "PE": 1,
        "numSteps": steps,
        "inputDataType": in_dt,
        "weightDataType": w_dt,
        "outputDataType": dt,
        "numInputVectors": nvec,
        "ActVal": actval,
    }
    idx = lw.add_layer("Thresholding", attrs, [s.wire], node, dt, prod(s.shape))
    lw.put(node, lw.out_stream(idx, s.shape, dt, a=scale, from_quant=True, cl=s.cl))
