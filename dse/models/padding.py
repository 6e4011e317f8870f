"""Padding and resampling: FMPadding, FMPadding_Pixel, DownSampler, UpsampleNearestNeighbour, Crop.

FINN ``fmpadding.py``, ``fmpadding_pixel.py``, ``downsampler.py``, ``upsampler.py``, ``crop.py``
(dev); ``finn_cost_formulas.md`` 2.6 and 2.8. No resource models in FINN (all 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    check_divides,
    divisors,
    prod,
)
from dse.models.pool import _no_resources


def simd_options(total_attr: str) -> Any:
    def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
        for S in divisors(a[total_attr]):
            yield {"SIMD": S}

    return options


def _batch(a: Attrs, name: str = "numInputVectors") -> int:
    v = a[name]
    return prod(v) if isinstance(v, list) else int(v)


# FMPadding --------------------------------------------------------------------------------------

FMP_SCHEMA: dict[str, Any] = {
    "ImgDim": [1, 1],
    "Padding": [0, 0, 0, 0],
    "NumChannels": 0,
    "SIMD": 1,
    "inputDataType": "INT8",
    "numInputVectors": [1],
}


def fmp_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, S = a["NumChannels"], a["SIMD"]
    check_divides(a, C, S, "SIMD", "NumChannels")
    H, W = a["ImgDim"]
    pt, pl, pb, pr = a["Padding"]
    n = _batch(a)
    words = n * (H + pt + pb) * (W + pl + pr) * C // S
    w = S * bits(a["inputDataType"])
    return _no_resources(f"FMPadding_{impl}", words, (w,), (w,), (words,), (n * H * W * C // S,))


FMPADDING = OpModel("FMPadding", FMP_SCHEMA, ("hls", "rtl"), fmp_estimate,
                    simd_options("NumChannels"), "zero padding in front of an SWG")

# FMPadding_Pixel ------------------------------------------------------------------------------

FMPP_SCHEMA: dict[str, Any] = {
    "ImgDim": [1, 1],
    "Stride": [1, 1],
    "NumChannels": 0,
    "SIMD": 1,
    "inputDataType": "INT8",
    "numInputVectors": [1],
}


def fmpp_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, S = a["NumChannels"], a["SIMD"]
    check_divides(a, C, S, "SIMD", "NumChannels")
    H, W = a["ImgDim"]
    sh, sw = a["Stride"]
    Ho, Wo = H + (H - 1) * (sh - 1), W + (W - 1) * (sw - 1)
    n = _batch(a)
    words = n * Ho * Wo * C // S
    w = S * bits(a["inputDataType"])
    return _no_resources(f"FMPadding_Pixel_{impl}", words, (w,), (w,), (words,),
                         (n * H * W * C // S,))


FMPADDING_PIXEL = OpModel("FMPadding_Pixel", FMPP_SCHEMA, ("hls",), fmpp_estimate,
                          simd_options("NumChannels"), "zero insertion (transposed conv)")

# DownSampler ---------------------------------------------------------------------------------

DS_SCHEMA: dict[str, Any] = {
    "ImgDim": 1,
    "NumChannels": 0,
    "SIMD": 1,
    "Stride": 2,
    "inputDataType": "INT8",
    "numInputVectors": 1,
    "is1D": 0,
    "is1D_unitx": 1,
}


def ds_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, S = a["NumChannels"], a["SIMD"]
    check_divides(a, C, S, "SIMD", "NumChannels")
    ifm, stride = a["ImgDim"], a["Stride"]
    ofm = math.floor((ifm - 1) / stride) + 1
    n = _batch(a)
    if a["is1D"]:
        cycles, words = n * ifm * C // S, n * ofm * C // S
    else:
        cycles, words = n * ifm * ifm * C // S, n * ofm * ofm * C // S
    w = S * bits(a["inputDataType"])
    return _no_resources(f"DownSampler_{impl}", cycles, (w,), (w,), (words,), (cycles,))


DOWNSAMPLER = OpModel("DownSampler", DS_SCHEMA, ("hls",), ds_estimate,
                      simd_options("NumChannels"), "strided 1x1 subsampling (FINN main)")

# UpsampleNearestNeighbour (main: IFMDim/OFMDim, unfolded; dev: HI/WI/HO/WO with SIMD) --------

UP_SCHEMA: dict[str, Any] = {
    "IFMDim": 0,
    "OFMDim": 0,
    "NumChannels": 0,
    "inputDataType": "INT8",
    "numInputVectors": 1,
    "DimMode": 0,
    "HI": 0,
    "WI": 0,
    "HO": 0,
    "WO": 0,
    "SIMD": 1,
    "batchSize": 1,
}


def up_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, A = a["NumChannels"], bits(a["inputDataType"])
    if a["HO"] > 0:  # dev form
        S = a["SIMD"]
        check_divides(a, C, S, "SIMD", "NumChannels")
        n = a["batchSize"]
        words = n * a["HO"] * a["WO"] * C // S
        return _no_resources(f"UpsampleNearestNeighbour_{impl}", words, (S * A,), (S * A,),
                             (words,), (n * a["HI"] * a["WI"] * C // S,))
    n = _batch(a)
    ofm, ifm = a["OFMDim"], a["IFMDim"]
    if a["DimMode"] == 0:
        cycles, words, in_words = ofm * ofm * n, n * ofm * ofm, n * ifm * ifm
    else:
        cycles, words, in_words = ofm, n * ofm, n * ifm
    return _no_resources(f"UpsampleNearestNeighbour_{impl}", cycles, (C * A,), (C * A,),
                         (words,), (in_words,))


def up_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    if a["HO"] > 0:
        yield from ({"SIMD": S} for S in divisors(a["NumChannels"]))
    else:
        yield {}


UPSAMPLE = OpModel("UpsampleNearestNeighbour", UP_SCHEMA, ("hls",), up_estimate, up_options,
                   "nearest-neighbour upsampling")

# Crop (dev) ----------------------------------------------------------------------------------

CROP_SCHEMA: dict[str, Any] = {
    "DataType": "INT8",
    "ImgDim": [1, 1],
    "NumChannels": 0,
    "CropNorth": 0,
    "CropSouth": 0,
    "CropWest": 0,
    "CropEast": 0,
    "SIMD": 1,
    "numInputVectors": [1],
}


def crop_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, S = a["NumChannels"], a["SIMD"]
    check_divides(a, C, S, "SIMD", "NumChannels")
    H, W = a["ImgDim"]
    n = _batch(a)
    Ho = H - a["CropNorth"] - a["CropSouth"]
    Wo = W - a["CropWest"] - a["CropEast"]
    w = S * bits(a["DataType"])
    cycles = n * H * W * C // S  # FINN counts the input size
    return _no_resources(f"Crop_{impl}", cycles, (w,), (w,), (n * Ho * Wo * C // S,), (cycles,))


CROP = OpModel("Crop", CROP_SCHEMA, ("hls", "rtl"), crop_estimate, simd_options("NumChannels"),
               "spatial crop (FINN dev)")

MODELS = (FMPADDING, FMPADDING_PIXEL, DOWNSAMPLER, UPSAMPLE, CROP)
