"""MVAU (MatrixVectorActivation): ``MVAU_hls`` and ``MVAU_rtl``.

FINN ``matrixvectoractivation.py`` and its hls/rtl subclasses; formulas in
``finn_cost_formulas.md`` section 2.1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from dse.exceptions import IllegalFoldingError
from dse.models._common import (
    COST_FINN,
    COST_FINN_CYCLES,
    Attrs,
    LayerCost,
    OpModel,
    bits,
    bram18_table,
    ceil_div,
    check_divides,
    divisors,
    ff_stand_in,
    part_family,
    prod,
    signed,
)

SCHEMA: dict[str, Any] = {
    "MW": 0,
    "MH": 0,
    "PE": 1,
    "SIMD": 1,
    "inputDataType": "INT8",
    "weightDataType": "INT8",
    "outputDataType": "INT8",
    "accDataType": "INT32",
    "resType": "auto",
    "mem_mode": "internal_decoupled",
    "ram_style": "auto",
    "ram_style_thresholds": "auto",
    "noActivation": 0,
    "binaryXnorMode": 0,
    "numInputVectors": [1],
    "ActVal": 0,
    "runtime_writeable_weights": 0,
    "TH": 1,  # finn-plus: tiling height of the RTL core (mvu_tiled), 1 = untiled
}

MEM_MODES = ("internal_embedded", "internal_decoupled", "external")
# "dynamic" (both operands streamed) is set by the lowering, never chosen by the solver
RAM_STYLES = ("auto", "block", "distributed", "ultra")
RES_TYPES = ("lut", "dsp")
HLS_MAX_FOLD = 1024  # MVAU_hls codegen asserts MW/SIMD <= 1024
HLS_MAX_WIDTH = 8191  # AP_INT_MAX_W


def wmem(a: Attrs) -> int:
    return a["MW"] * a["MH"] // (a["PE"] * a["SIMD"])


def tmem(a: Attrs) -> int:
    return 0 if a["noActivation"] == 1 else a["MH"] // a["PE"]


def _check(a: Attrs) -> None:
    check_divides(a, a["MW"], a["SIMD"], "SIMD", "MW")
    check_divides(a, a["MH"], a["PE"], "PE", "MH")


def _bram(a: Attrs, W: int) -> int:
    mm, rs, wm = a["mem_mode"], a["ram_style"], wmem(a)
    if (mm == "internal_decoupled" and rs in ("distributed", "ultra")) or (
        mm == "internal_embedded" and wm <= 128
    ) or mm == "external":
        return 0
    return bram18_table(wm, a["PE"] * a["SIMD"] * W)


def _uram(a: Attrs, W: int) -> int:
    mm, rs, wm = a["mem_mode"], a["ram_style"], wmem(a)
    if (mm == "internal_decoupled" and rs != "ultra") or (
        mm == "internal_embedded" and wm <= 128
    ) or mm == "external":
        return 0
    return ceil_div(a["PE"] * a["SIMD"] * W, 72) * ceil_div(wm, 4096)


def acc_bits(a: Attrs, fan_in: int, W: int, A: int) -> int:
    """Accumulator bits FINN's LUT model uses: min(accDataType, data-type bound)."""
    alpha = math.log2(fan_in) + W + A - 1 - int(signed(a["inputDataType"]))
    bound = math.ceil(alpha + math.log2(1 + 2.0 ** (-alpha)) + 1)
    return int(min(bits(a["accDataType"]), bound))


def _lut_hls(a: Attrs, W: int, A: int, mac: tuple[float, int] | None = None) -> int:
    """FINN's LUT model; ``mac`` = (multiplier + adder-tree LUTs per PE, accumulator bits)
    replaces FINN's integer MAC terms (dse's minifloat datapath, dse.models.minifloat)."""
    P, S, wm = a["PE"], a["SIMD"], wmem(a)
    mm, rs = a["mem_mode"], a["ram_style"]
    c2 = 0
    if (mm == "internal_decoupled" and rs == "distributed") or (
        mm == "internal_embedded" and wm <= 128
    ):
        c2 = P * S * W * ceil_div(wm, 64)
    mult = 0 if a["resType"] == "dsp" else S * (2 * ceil_div(W + A, 6) - 1) * (W + A)
    adder: float = (W + A) * (2 * S - 1)
    acc = acc_bits(a, a["MW"], W, A)
    if mac is not None:
        mult, (adder, acc) = 0, mac
    thr = cmp = 0
    if a["noActivation"] == 0 and a["ram_style_thresholds"] == "distributed":
        B = bits(a["outputDataType"])
        thr = (2**B - 1) * acc * ceil_div(tmem(a), 64)
        cmp = (2**B - 1) * acc
    return int(300 + 1.1 * (P * (mult + adder + acc + thr + cmp)) + c2)


def _dsp(a: Attrs, impl: str, part: str | None, W: int, A: int) -> int:
    P, S = a["PE"], a["SIMD"]
    if impl == "rtl":
        if part_family(part) == "versal":
            return P * ceil_div(S, 3)
        return ceil_div(P, 4) * S
    return P * S * ceil_div(W + A, 48) if a["resType"] == "dsp" else 0


def estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    _check(a)
    P, S, MW, MH = a["PE"], a["SIMD"], a["MW"], a["MH"]
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    nvec = prod(a["numInputVectors"])
    # finn-plus's tiled RTL core (TH > 1) computes PE*SIMD/TH products per cycle: TH times
    # the cycles; FINN main and dev have no tiling
    tiles = a["TH"] if finn == "plus" else 1
    if tiles < 1 or P % tiles:
        raise IllegalFoldingError(f"MVAU: TH={tiles} must divide PE={P}")
    if tiles > 1 and impl != "rtl":
        raise IllegalFoldingError(f"MVAU_hls: TH={tiles}; only MVAU_rtl tiles (use TH=1)")
    cycles = nvec * (MH // P) * (MW // S) * tiles
    in_w = S * A
    out_w = P * bits(a["outputDataType"])
    w_w = P * S * W // tiles if a["mem_mode"] in ("internal_decoupled", "external") else 0
    lut = 0 if impl == "rtl" else _lut_hls(a, W, A)
    source = COST_FINN
    if impl == "rtl" and a["mem_mode"] in ("internal_decoupled", "internal_embedded") \
            and a["ram_style"] == "distributed":
        # FINN's MVAU_rtl reports 0 LUT, and its weight memory with ram_style distributed
        # is then free: dse books FINN's own LUTRAM term of the HLS model (P*S*W per 64 words)
        lut = P * S * W * ceil_div(wmem(a), 64)
        source = COST_FINN_CYCLES
    # the external weight stream is reported as weightstream_width; dynamic weights (the
    # attention MatMuls) arrive on a second activation stream, PE elements per cycle
    in_widths = (in_w, P * W) if a["mem_mode"] == "dynamic" else (in_w,)
    return LayerCost(
        op_type=f"MVAU_{impl}",
        cycles=cycles,
        lut=lut,
        bram18=_bram(a, W),
        uram=_uram(a, W),
        dsp=_dsp(a, impl, part, W, A),
        ff=ff_stand_in(lut, in_widths, (out_w,)),
        instream_widths=in_widths,
        outstream_widths=(out_w,),
        weightstream_width=w_w,
        output_words=(nvec * MH // P,),
        input_words=(nvec * MW // S,),
        source=source,
    )


def rtl_possible(a: Attrs, part: str | None = None) -> bool:
    """FINN's MVAU_rtl condition (SpecializeLayers), without the narrow-range weight check."""
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    return (
        a["noActivation"] == 1
        and a["binaryXnorMode"] == 0
        and signed(a["weightDataType"])
        and W <= 8
        and A <= (9 if signed(a["inputDataType"]) else 8)
    )


def default_impl(a: Attrs, part: str | None = None) -> str:
    """SpecializeLayers' default: rtl only for >= 4-bit operands where RTL is possible."""
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    return "rtl" if (A >= 4 and W >= 4 and rtl_possible(a, part)) else "hls"


def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    """Legal (PE, SIMD, mem_mode, ram_style, resType) choices under FINN's rules.

    ``ram_style`` only matters where FINN's model distinguishes it, so equivalent styles are not
    repeated: external weights have no on-chip memory, embedded ones ignore the style. The
    in/out stream width limit of HLS layers is checked in ``candidates``.
    """
    MW, MH = a["MW"], a["MH"]
    W = bits(a["weightDataType"])
    res_types = ("dsp",) if impl == "rtl" else RES_TYPES
    for S in divisors(MW):
        if impl == "hls" and MW // S > HLS_MAX_FOLD:
            continue
        for P in divisors(MH):
            if a["mem_mode"] == "dynamic":  # both operands are streams: no weight memory
                for rt in res_types:
                    yield {"PE": P, "SIMD": S, "mem_mode": "dynamic", "ram_style": "auto",
                           "resType": rt}
                continue
            for mm in MEM_MODES:
                # MVAU_hls counts the weight stream (decoupled/external) in AP_INT_MAX_W
                if impl == "hls" and mm != "internal_embedded" and P * S * W > HLS_MAX_WIDTH:
                    continue
                styles = (("block", "distributed", "ultra") if mm == "internal_decoupled"
                          else ("auto",))
                for rs in styles:
                    for rt in res_types:
                        yield {"PE": P, "SIMD": S, "mem_mode": mm, "ram_style": rs, "resType": rt}


MODEL = OpModel(
    name="MVAU",
    schema=SCHEMA,
    impls=("hls", "rtl"),
    estimate=estimate,
    options=options,
    doc="matrix-vector-activation unit (FC layers, lowered convolutions)",
)
