"""Pooling: ``StreamingMaxPool_hls`` (main), ``Pool_hls``, ``GlobalAccPool_hls``.

FINN ``streamingmaxpool.py``, ``pool.py``, ``globalaccpool.py``; ``finn_cost_formulas.md`` 2.5.
None of them has a resource model in FINN: LUT = BRAM = URAM = DSP = 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from qonnx.core.datatype import DataType

from dse.exceptions import LayerAttributeError
from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    check_divides,
    divisors,
    dtype,
    ff_stand_in,
    prod,
)


def _no_resources(op: str, cycles: int, in_w: tuple[int, ...], out_w: tuple[int, ...],
                  out_words: tuple[int, ...], in_words: tuple[int, ...] = ()) -> LayerCost:
    return LayerCost(
        op_type=op,
        cycles=int(cycles),
        lut=0,
        bram18=0,
        uram=0,
        dsp=0,
        ff=ff_stand_in(0, in_w, out_w),
        instream_widths=in_w,
        outstream_widths=out_w,
        output_words=out_words,
        input_words=in_words,
    )


def pe_options(total_attr: str) -> Any:
    def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
        for P in divisors(a[total_attr]):
            yield {"PE": P}

    return options


# ---------------------------------------------------------------------------------------------
# StreamingMaxPool

SMP_SCHEMA: dict[str, Any] = {
    "ImgDim": [1, 1],
    "PoolDim": [1, 1],
    "NumChannels": 0,
    "PE": 1,
    "CeilMode": 0,
    "dataType": "INT8",
}


def _smp_normalized(a: Attrs) -> tuple[int, int, int, int]:
    H, W = a["ImgDim"]
    kh, kw = a["PoolDim"]
    if W == 1 and H != 1:  # FINN normalizes 1D layers to [1, W]
        H, W, kh, kw = W, H, kw, kh
    return H, W, kh, kw


def smp_is_1d(a: Attrs) -> bool:
    H, W, kh, kw = _smp_normalized(a)
    return H == 1 and kh == 1


def _smp_out_dim(a: Attrs, dim: int, k: int) -> int:
    if a["CeilMode"]:
        return math.ceil((dim - k) / k) + 1
    return math.floor((dim - k) / k) + 1


def smp_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    H, W, kh, kw = _smp_normalized(a)
    C, A = a["NumChannels"], bits(a["dataType"])
    P = a["PE"] if a["PE"] > 0 else 1
    OW = _smp_out_dim(a, W, kw)
    if smp_is_1d(a):
        check_divides(a, C, P, "PE", "NumChannels")
        cycles = OW * (C // P) * (kw + 1)
        width = P * A
        words = OW * C // P
        in_words = W * C // P
    else:
        OH = _smp_out_dim(a, H, kh)
        cycles = int(W * W * (1 + 1 / (kw * kw)))  # FINN: square image, W only
        width = C * A
        words = OH * OW
        in_words = H * W
    return _no_resources(f"StreamingMaxPool_{impl}", cycles, (width,), (width,), (words,),
                         (in_words,))


def smp_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    if smp_is_1d(a):
        yield from ({"PE": P} for P in divisors(a["NumChannels"]))
    else:
        yield {"PE": a["PE"]}


STREAMING_MAXPOOL = OpModel("StreamingMaxPool", SMP_SCHEMA, ("hls",), smp_estimate, smp_options,
                            "max pooling (FINN main)")

# ---------------------------------------------------------------------------------------------
# Pool (after a depthwise SWG)

POOL_SCHEMA: dict[str, Any] = {
    "Channels": 0,
    "PE": 1,
    "KernelSize": [1, 1],
    "Function": "MaxPool",
    "OutImgDims": [1, 1],
    "InputDataType": "INT8",
    "OutputDataType": "INT8",
    "AccumBits": 0,
    "Size": 1,
    "BatchSize": 1,
}


def pool_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["Channels"], a["PE"]
    check_divides(a, C, P, "PE", "Channels")
    k = prod(a["KernelSize"])
    opix = prod(a["OutImgDims"])
    cycles = a["BatchSize"] * opix * C * k // P
    in_w = P * bits(a["InputDataType"])
    out_w = P * bits(a["OutputDataType"])
    return _no_resources(f"Pool_{impl}", cycles, (in_w,), (out_w,),
                         (a["BatchSize"] * opix * C // P,), (a["BatchSize"] * opix * k * C // P,))


POOL = OpModel("Pool", POOL_SCHEMA, ("hls",), pool_estimate, pe_options("Channels"),
               "max / average pooling after a depthwise SWG")

# ---------------------------------------------------------------------------------------------
# GlobalAccPool

GAP_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "PE": 1,
    "inputDataType": "INT8",
    "numInputVectors": [1, 1, 1],
}


def gap_output_dtype(a: Attrs) -> DataType:
    idt = dtype(a["inputDataType"])
    vecs = a["numInputVectors"]
    npix = vecs[-1] * vecs[-2]
    extreme = npix * (idt.min() if idt.signed() else idt.max())
    try:
        return DataType.get_smallest_possible(extreme)
    except Exception:  # qonnx raises a bare Exception past 64 bits  # noqa: BLE001
        raise LayerAttributeError(
            f"GlobalAccPool: {npix:,} pixels of {idt.get_canonical_name()} sum to {extreme:g}, "
            "beyond any FINN integer type; check numInputVectors") from None


def gap_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    nvec = prod(a["numInputVectors"])
    cycles = nvec * C // P + C // P
    in_w = P * bits(a["inputDataType"])
    out_w = P * gap_output_dtype(a).bitwidth()
    return _no_resources(f"GlobalAccPool_{impl}", cycles, (in_w,), (out_w,), (C // P,),
                         (nvec * C // P,))


GLOBAL_ACC_POOL = OpModel("GlobalAccPool", GAP_SCHEMA, ("hls",), gap_estimate,
                          pe_options("NumChannels"), "global accumulate pooling")

MODELS = (STREAMING_MAXPOOL, POOL, GLOBAL_ACC_POOL)
