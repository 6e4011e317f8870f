"""VVAU (VectorVectorActivation, depthwise convolution): ``VVAU_hls`` and ``VVAU_rtl``.

FINN ``vectorvectoractivation.py``; formulas in ``finn_cost_formulas.md`` section 2.2.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dse.models._common import (
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
from dse.models.mvau import acc_bits

SCHEMA: dict[str, Any] = {
    "PE": 1,
    "SIMD": 1,
    "Dim": [1, 1],
    "Channels": 0,
    "Kernel": [1, 1],
    "inputDataType": "INT8",
    "weightDataType": "INT8",
    "outputDataType": "INT8",
    "accDataType": "INT32",
    "resType": "auto",
    "mem_mode": "internal_decoupled",
    "ram_style": "auto",
    "noActivation": 0,
    "binaryXnorMode": 0,
    "ActVal": 0,
    "runtime_writeable_weights": 0,
}


def wmem(a: Attrs) -> int:
    return prod(a["Kernel"]) * a["Channels"] // a["PE"] // a["SIMD"]


def tmem(a: Attrs) -> int:
    return 0 if a["noActivation"] == 1 else a["Channels"] // a["PE"]


def _check(a: Attrs) -> None:
    check_divides(a, a["Channels"], a["PE"], "PE", "Channels")
    check_divides(a, prod(a["Kernel"]), a["SIMD"], "SIMD", "kh*kw")


def _bram(a: Attrs, W: int) -> int:
    mm, rs, wm = a["mem_mode"], a["ram_style"], wmem(a)
    if (
        (mm == "internal_decoupled" and rs in ("distributed", "ultra"))
        or (rs == "auto" and wm <= 128)
        or (mm == "internal_embedded" and wm <= 128)
        or mm == "external"
    ):
        return 0
    return bram18_table(wm, a["PE"] * a["SIMD"] * W, divs=(4, 8, 16))


def _uram(a: Attrs, W: int) -> int:
    if a["mem_mode"] == "internal_decoupled" and a["ram_style"] == "ultra":
        return ceil_div(a["PE"] * a["SIMD"] * W, 72) * ceil_div(wmem(a), 4096)
    return 0


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
    acc = acc_bits(a, prod(a["Kernel"]), W, A)
    if mac is not None:
        mult, (adder, acc) = 0, mac
    thr = cmp = 0.0
    if a["noActivation"] == 0:
        B = bits(a["outputDataType"])
        thr = (2**B - 1) * acc * tmem(a) / 64
        cmp = (2**B - 1) * acc
    return int(300 + 1.1 * (P * (mult + adder + acc + thr + cmp)) + c2)


def estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    _check(a)
    P, S, C = a["PE"], a["SIMD"], a["Channels"]
    H, Wd = a["Dim"]
    k = prod(a["Kernel"])
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    cycles = H * Wd * C * k // (P * S)
    in_w = S * P * A
    out_w = P * bits(a["outputDataType"])
    w_w = S * P * W if a["mem_mode"] in ("internal_decoupled", "external") else 0
    if impl == "rtl":
        lut, dsp = 0, P * ceil_div(S, 3)
    else:
        lut = _lut_hls(a, W, A)
        dsp = P * ceil_div(W + A, 48) if a["resType"] == "dsp" else 0
    in_widths = (in_w,)  # the external weight stream is reported as weightstream_width
    return LayerCost(
        op_type=f"VVAU_{impl}",
        cycles=cycles,
        lut=lut,
        bram18=_bram(a, W),
        uram=_uram(a, W),
        dsp=dsp,
        ff=ff_stand_in(lut, in_widths, (out_w,)),
        instream_widths=in_widths,
        outstream_widths=(out_w,),
        weightstream_width=w_w,
        output_words=(H * Wd * C // P,),
        input_words=(H * Wd * C * k // (P * S),),
    )


def default_impl(a: Attrs, part: str | None = None) -> str:
    """SpecializeLayers: RTL only on Versal, with the MVAU_rtl bit-width conditions."""
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    ok = (
        part_family(part) == "versal"
        and a["noActivation"] == 1
        and signed(a["weightDataType"])
        and W <= 8
        and A <= (9 if signed(a["inputDataType"]) else 8)
        and A >= 4
        and W >= 4
    )
    return "rtl" if ok else "hls"


def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    res_types = ("dsp",) if impl == "rtl" else ("lut", "dsp")
    for P in divisors(a["Channels"]):
        for S in divisors(prod(a["Kernel"])):
            for mm in ("internal_decoupled", "external"):
                styles = (("block", "distributed", "ultra") if mm == "internal_decoupled"
                          else ("auto",))
                for rs in styles:
                    for rt in res_types:
                        yield {"PE": P, "SIMD": S, "mem_mode": mm, "ram_style": rs, "resType": rt}


MODEL = OpModel(
    name="VVAU",
    schema=SCHEMA,
    impls=("hls", "rtl"),
    estimate=estimate,
    options=options,
    doc="vector-vector-activation unit (depthwise convolutions)",
)
