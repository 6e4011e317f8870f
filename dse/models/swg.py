"""ConvolutionInputGenerator (sliding-window generator, SWG): ``_hls`` (FINN main) and ``_rtl``.

FINN ``convolutioninputgenerator.py`` and its hls/rtl subclasses; formulas in
``finn_cost_formulas.md`` section 2.3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dse.exceptions import IllegalFoldingError
from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    ceil_div,
    divisors,
    ff_stand_in,
)

SCHEMA: dict[str, Any] = {
    "ConvKernelDim": [1, 1],
    "IFMChannels": 0,
    "IFMDim": [1, 1],
    "OFMDim": [1, 1],
    "SIMD": 1,
    "Stride": [1, 1],
    "Dilation": [1, 1],
    "inputDataType": "INT8",
    "outputDataType": "INT8",
    "depthwise": 0,
    "ram_style": "distributed",
    "parallel_window": 0,
    "is1D": 0,
    "M": 1,
    "dynamic_mode": 0,
}


def _geometry(a: Attrs) -> tuple[int, ...]:
    kh, kw = a["ConvKernelDim"]
    H, W = a["IFMDim"]
    OH, OW = a["OFMDim"]
    sh, sw = a["Stride"]
    dh, dw = a["Dilation"]
    return kh, kw, H, W, OH, OW, sh, sw, dh, dw


def _check(a: Attrs) -> None:
    C, S = a["IFMChannels"], a["SIMD"]
    if S < 1 or C % S:
        raise IllegalFoldingError(
            f"{a.op_type}: SIMD={S} must divide IFMChannels={C}; legal values are {divisors(C)}"
        )


# ---------------------------------------------------------------------------------------------
# RTL


def rtl_impl_style(a: Attrs) -> str:
    kh, kw = a["ConvKernelDim"]
    mmv_out = a["M"] * kh * kw if a["parallel_window"] else 1
    return "parallel" if (mmv_out > 1 or (kh == 1 and kw == 1)) else "default"


def _is_1d(a: Attrs) -> bool:
    H, W = a["IFMDim"]
    return H == 1 or W == 1


def _normalized_1d(a: Attrs) -> tuple[int, ...]:
    """Geometry with the long axis as 'w' (FINN normalizes 1D layers to [1, W])."""
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _geometry(a)
    if W == 1 and H != 1:
        return kw, kh, W, H, OW, OH, sw, sh, dw, dh
    return kh, kw, H, W, OH, OW, sh, sw, dh, dw


def rtl_buffer_depth(a: Attrs) -> int:
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _normalized_1d(a)
    cf = a["IFMChannels"] // a["SIMD"]
    if rtl_impl_style(a) == "parallel":
        return ((kh - 1) * dh * W + (kw - 1) * dw) * cf + 2
    dmin = ((kh - 1) * dh * W + (kw - 1) * dw + 1) * cf
    return dmin + max(0, (sw - 1 - kh * kw) * cf) + max(0, ((sh - 1) * W - kh * kw) * cf)


def _rtl_cycles(a: Attrs) -> int:
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _normalized_1d(a)
    cf = a["IFMChannels"] // a["SIMD"]
    dwise = a["depthwise"]
    if rtl_impl_style(a) == "parallel":
        return H * W * cf + 2
    if _is_1d(a):
        cyc = OW * kw * cf + 2
        if dwise:
            cyc += cf * (kw - 1) * (sw - 1) - (kw - 1)
        return cyc
    dmin = ((kh - 1) * dh * W + (kw - 1) * dw + 1) * cf
    block = max(OW * kw * kh * cf, sw * W * cf)
    if dwise:
        block += OW * (sw - 1) * (cf - 1)
    cyc = dmin + OH * block
    if dwise:
        cyc += (sh - 1) * W * cf
    return int(cyc)


def _ram_width(depth: int) -> int:
    for limit, width in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2)):
        if depth <= limit:
            return width
    return 1


def _rtl_memory(a: Attrs) -> tuple[int, int]:
    """(depth, number of buffers) of the RTL SWG's line buffers."""
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _normalized_1d(a)
    if rtl_impl_style(a) == "parallel":
        if _is_1d(a):
            return 0, 0
        return (W - ((kw - 1) * dw + 1)) + W * (dh - 1), kh - 1
    return rtl_buffer_depth(a), 1


def _rtl_bram(a: Attrs) -> int:
    if a["ram_style"] not in ("auto", "block"):
        return 0
    depth, nbuf = _rtl_memory(a)
    if nbuf == 0 or depth <= 0:
        return 0
    w = a["SIMD"] * bits(a["inputDataType"])
    per = ceil_div(depth, 16384) * ceil_div(w, _ram_width(depth))
    if depth > 16384:
        rem = depth % 16384
        per -= ceil_div(w, _ram_width(depth)) - ceil_div(w, _ram_width(rem))
    return per * nbuf


def _rtl_uram(a: Attrs) -> int:
    if a["ram_style"] != "ultra":
        return 0
    depth, nbuf = _rtl_memory(a)
    w = a["SIMD"] * bits(a["inputDataType"])
    return ceil_div(depth, 4096) * ceil_div(w, 72) * nbuf


def _rtl_lut(a: Attrs) -> int:
    if a["ram_style"] == "distributed":
        w = a["SIMD"] * bits(a["inputDataType"])
        return 300 + w * ceil_div(rtl_buffer_depth(a), 38)
    return 300


# ---------------------------------------------------------------------------------------------
# HLS (FINN main only)


def _hls_geometry(a: Attrs) -> tuple[int, ...]:
    return _normalized_1d(a) if a["is1D"] else _geometry(a)


def hls_variant(a: Attrs) -> str:
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    dwise = a["depthwise"]
    if a["is1D"]:
        if (
            a["parallel_window"]
            and a["SIMD"] == a["IFMChannels"]
            and not dwise
            and sw == 1
            and dw == 1
            and a["ram_style"] in ("auto", "distributed")
        ):
            return "ConvolutionInputGenerator_1D_parallel"
        if not dwise:
            return "ConvolutionInputGenerator_1D"
        if (sw > 1 and sw != 2) or dw > 1:
            return "ConvolutionInputGenerator_1D_dws_naive"
        if sw == 2:
            return "ConvolutionInputGenerator_1D_dws_stride"
        return "ConvolutionInputGenerator_1D_dws"
    name = "ConvolutionInputGenerator"
    if kh % sh != 0:
        name += "_kernel_stride"
    if dwise:
        name += "_dws"
    return name


def _hls_cycles(a: Attrs) -> int:
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    cf = a["IFMChannels"] // a["SIMD"]
    v = hls_variant(a)
    if v.endswith("1D_parallel"):
        return kw + OW
    if v.endswith("_1D"):
        return 1 + OW * kw * cf
    if v.endswith(("1D_dws", "1D_dws_stride")):
        return 1 + OW * kw * cf + cf * (kw - 1) - (kw - 1)
    if v.endswith("1D_dws_naive"):
        return W * cf + OW * kw * cf
    # 2D: FINN assumes square kernel/IFM/stride and uses index 0
    k, ifm, ofm, s, d = kh, H, OH, sh, dh
    return int(ifm * k * d * cf + ofm * max(ofm * k * k * cf, s * ifm * cf))


def _hls_1d_depth(a: Attrs) -> int:
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    cf = a["IFMChannels"] // a["SIMD"]
    v = hls_variant(a)
    if v.endswith("_1D"):
        return (kw - 1) * cf
    if v.endswith("1D_dws_naive"):
        return W * cf
    return kw * cf


def _hls_bram(a: Attrs) -> int:
    if a["ram_style"] not in ("auto", "block"):
        return 0
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    cf = a["IFMChannels"] // a["SIMD"]
    w = a["SIMD"] * bits(a["inputDataType"])
    v = hls_variant(a)
    if v.endswith("1D_parallel"):
        return 0
    if a["is1D"]:
        d = _hls_1d_depth(a)
        return ceil_div(w, _ram_width(d)) * ceil_div(d, 18432)
    d = H * cf
    return (kh + sh) * ceil_div(w, _ram_width(d))


def _hls_lut(a: Attrs) -> int:
    if a["ram_style"] != "distributed":
        return 300
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    C, S, A = a["IFMChannels"], a["SIMD"], bits(a["inputDataType"])
    cf = C // S
    v = hls_variant(a)
    if v.endswith("1D_parallel"):
        return 300 + ceil_div(S * A * (kw + 1), 64)
    if v.endswith("_1D"):
        return 300 + ceil_div(A * (kw - 1) * C, 64)
    if v.endswith("1D_dws_naive"):
        return 300 + ceil_div(A * W * C, 64)
    if a["is1D"]:
        return 300 + ceil_div(A * kw * C, 64)
    return 300 + (kh + sh) * S * A * ceil_div(H * cf, 64)


def _hls_uram(a: Attrs) -> int:
    if a["ram_style"] != "ultra":
        return 0
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _hls_geometry(a)
    cf = a["IFMChannels"] // a["SIMD"]
    w = a["SIMD"] * bits(a["inputDataType"])
    if a["is1D"]:
        return ceil_div(w, 72) * ceil_div(_hls_1d_depth(a), 4096)
    return (kh + sh) * ceil_div(w, 64) * ceil_div(H * cf, 4096)


# ---------------------------------------------------------------------------------------------


def use_parallel_window_output(a: Attrs, impl: str) -> bool:
    if impl == "rtl":
        return bool(a["parallel_window"])
    return hls_variant(a).endswith("1D_parallel")


def estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    _check(a)
    kh, kw, H, W, OH, OW, sh, sw, dh, dw = _geometry(a)
    C, S, A = a["IFMChannels"], a["SIMD"], bits(a["inputDataType"])
    cf = C // S
    parallel = use_parallel_window_output(a, impl)
    in_w = S * A
    if parallel:
        mult = a["M"] if impl == "rtl" else 1
        out_w = in_w * kh * kw * mult
        out_words = OH * OW * cf // mult
    else:
        out_w = in_w
        out_words = OH * OW * kh * kw * cf
    if impl == "rtl":
        cycles, lut, bram, uram = _rtl_cycles(a), _rtl_lut(a), _rtl_bram(a), _rtl_uram(a)
    else:
        cycles, lut, bram, uram = _hls_cycles(a), _hls_lut(a), _hls_bram(a), _hls_uram(a)
    return LayerCost(
        op_type=f"ConvolutionInputGenerator_{impl}",
        cycles=int(cycles),
        lut=int(lut),
        bram18=int(bram),
        uram=int(uram),
        dsp=0,
        ff=ff_stand_in(lut, (in_w,), (out_w,)),
        instream_widths=(in_w,),
        outstream_widths=(out_w,),
        output_words=(out_words,),
        input_words=(H * W * cf,),
    )


def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    C = a["IFMChannels"]
    kh, kw = a["ConvKernelDim"]
    styles = ("distributed", "block", "ultra")
    for S in divisors(C):
        for rs in styles:
            yield {"SIMD": S, "parallel_window": 0, "ram_style": rs}
        if impl == "rtl" and S == C and kh * kw > 1:
            for rs in styles:
                yield {"SIMD": S, "parallel_window": 1, "ram_style": rs}


MODEL = OpModel(
    name="ConvolutionInputGenerator",
    schema=SCHEMA,
    impls=("hls", "rtl"),
    estimate=estimate,
    options=options,
    doc="sliding-window generator (im2col) in front of MVAU/VVAU/Pool",
)
