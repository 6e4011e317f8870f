"""dse's minifloat MAC cost model for MVAU/VVAU layers with minifloat operands.

FINN has no minifloat MVAU/VVAU (no FINN line has one), so every number here is dse's own
structural model, flagged ``cost_source = "dse model"``. Cycles and memories are FINN's MVAU/VVAU
formulas unchanged (they depend only on the folding and the stored bits per weight, 1 + E + M);
the MAC array's LUT/DSP are the datapath below, placed into FINN's own LUT formula
``300 + 1.1 * PE * (MAC + accumulator + thresholds) + weight LUTRAM`` in place of FINN's integer
multiplier/adder terms, so integer and minifloat layers are costed on one scale.

Per PE x SIMD lane (the structure of a minifloat MAC: Aggarwal, Damsgaard, Pappalardo, Franco,
Preusser, Blott, Mitra, "Shedding the Bits: Pushing the Boundaries of Quantization with
Minifloats on FPGAs", FPL 2024, arXiv:2311.12359v3, section on the MAC library; the same
decomposition as issue 25 states):

1. decode, where the operand arrives as a FINN Thresholding code (the index of the threshold
   crossed, not a bit pattern): a 2^n-entry ROM per lane, (1 + E + M) bits wide, as LUT6
   64x1 ROMs (the way FINN books LUTRAM: width x ceil(depth / 64));
2. the hidden bit (1 unless the exponent field is 0): one LUT per minifloat operand;
3. an (Mw + 1) x (Ma + 1) mantissa multiply (FINN's own LUT multiplier term
   (2 ceil(n / 6) - 1) n for n = product bits; one DSP per lane with resType dsp);
4. an exponent add, max(Ew, Ea) + 1 bits (carry chain, one LUT per bit);
5. a shift of the mantissa product into a fixed-point product of ``product_bits`` bits: a
   barrel shifter of ceil(log2(max shift + 1)) stages, two stages per LUT6 (4:1 mux) per bit;
6. sign: a conditional two's complement, one LUT per product bit (the adder's carry-in);
7. per PE, an adder tree over the SIMD lanes growing by one bit per level
   (product_bits + ceil(log2 S) at the root), one LUT per bit per adder;
8. the accumulator: the product width + ceil(log2 fan-in) bits, or the narrower accumulator the
   lowering derived from the weight values (FINN's minimize_accumulator_width on the integers
   in subnormal units), one LUT per bit as in FINN's model.

Widths (``dse.models.minifloat_type``): a minifloat is exactly a signed integer of
``integer_bits`` = 2^E + M bits in units of its smallest subnormal (top exponent usable);
the exact product of two such integers needs ``iw + ia - 1`` bits (two's complement: the
magnitudes need (iw - 1) + (ia - 1) bits, plus a sign), i.e. 2(2^E + M) - 1 for equal formats;
issue 25's 2(2^E + M) is that plus one spare bit.

The "minifloat as an integer of 2^E + M bits" view is kept beside it as a check
(:func:`integer_view_lut`): FINN's own integer MVAU LUT model run with W = iw, A = ia.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from dse.models import mvau, vvau
from dse.models._common import (
    COST_DSE,
    Attrs,
    LayerCost,
    OpModel,
    bits,
    ceil_div,
    ff_stand_in,
    prod,
)
from dse.models._common import dtype as qdtype
from dse.models.minifloat_type import MinifloatType, is_minifloat


@dataclass(frozen=True, slots=True, kw_only=True)
class Operand:
    """One MAC operand as the datapath sees it."""

    name: str
    mantissa_bits: int  # magnitude bits entering the multiplier (M + 1 with the hidden bit)
    exponent_bits: int  # 0 for an integer operand
    integer_bits: int  # signed integer width of its exact value (subnormal units)
    max_shift: int  # largest left shift of its mantissa (exponent field - 1)
    stored_bits: int  # bits per element on the stream / in memory
    minifloat: bool


def operand(type_name: str) -> Operand:
    t = qdtype(type_name)
    if isinstance(t, MinifloatType):
        top = 2**t.exponent_bits - 1 - (0 if t.top_exponent_usable else 1)
        return Operand(name=t.name, mantissa_bits=t.mantissa_bits + 1,
                       exponent_bits=t.exponent_bits, integer_bits=t.integer_bits,
                       max_shift=max(top - 1, 0), stored_bits=t.bitwidth(), minifloat=True)
    b = t.bitwidth()
    return Operand(name=t.name, mantissa_bits=b - int(t.signed()), exponent_bits=0,
                   integer_bits=b + (0 if t.signed() else 1), max_shift=0, stored_bits=b,
                   minifloat=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MacDatapath:
    """Widths and LUT/DSP of one PE's SIMD lanes (dse's model; see the module docstring)."""

    mantissa_product_bits: int
    exponent_sum_bits: int
    shift_stages: int
    product_bits: int  # fixed-point product (two's complement)
    tree_bits: int  # adder-tree root: product_bits + ceil(log2 S)
    acc_bits: int
    lut_decode: int  # per lane
    lut_lane: int  # per lane, decode included
    lut_tree: int  # per PE
    dsp_lane: int  # per lane (resType dsp: the mantissa multiply)


def _mult_luts(n: int) -> int:
    """FINN's LUT multiplier term for an n-bit product (mvau._lut_hls: (2 ceil(n/6) - 1) n)."""
    return (2 * ceil_div(n, 6) - 1) * n


def datapath(w_type: str, a_type: str, simd: int, fan_in: int, *, acc_limit: int | None = None,
             decode_a: bool = True, res_type: str = "lut") -> MacDatapath:
    """The MAC datapath of ``simd`` lanes multiplying ``w_type`` by ``a_type`` operands,
    accumulating ``fan_in`` products."""
    w, a = operand(w_type), operand(a_type)
    mp = w.mantissa_bits + a.mantissa_bits
    ex = max(w.exponent_bits, a.exponent_bits) + 1 if (w.minifloat or a.minifloat) else 0
    shift = w.max_shift + a.max_shift
    stages = shift.bit_length()
    P = w.integer_bits + a.integer_bits - 1
    tree = P + math.ceil(math.log2(simd)) if simd > 1 else P
    acc = P + math.ceil(math.log2(fan_in)) if fan_in > 1 else P
    if acc_limit is not None:
        acc = min(acc, acc_limit)
    decode = a.stored_bits * ceil_div(2**a.stored_bits, 64) if (a.minifloat and decode_a) else 0
    hidden = int(w.minifloat) + int(a.minifloat)
    mult = 0 if res_type == "dsp" else _mult_luts(mp)
    lane = decode + hidden + mult + ex + P * ceil_div(stages, 2) + P
    lut_tree = sum(ceil_div(simd, 2**lv) * (P + lv)
                   for lv in range(1, math.ceil(math.log2(simd)) + 1)) if simd > 1 else 0
    return MacDatapath(mantissa_product_bits=mp, exponent_sum_bits=ex, shift_stages=stages,
                       product_bits=P, tree_bits=tree, acc_bits=acc, lut_decode=decode,
                       lut_lane=lane, lut_tree=lut_tree,
                       dsp_lane=ceil_div(mp, 48) if res_type == "dsp" else 0)


def applies(op: str, a: Attrs) -> bool:
    """An MVAU/VVAU with a minifloat weight or input type (dse's model, not FINN's)."""
    return op in ("MVAU", "VVAU") and (is_minifloat(a.get("weightDataType"))
                                       or is_minifloat(a.get("inputDataType")))


def _fan_in(op: str, a: Attrs) -> int:
    return int(a["MW"]) if op == "MVAU" else prod(a["Kernel"])


def layer_datapath(op: str, a: Attrs) -> MacDatapath:
    return datapath(str(a["weightDataType"]), str(a["inputDataType"]), int(a["SIMD"]),
                    _fan_in(op, a), acc_limit=bits(a["accDataType"]),
                    decode_a=bool(int(a.get("inputDecode", 1))), res_type=str(a["resType"]))


def estimate(op: str, a: Attrs, part: str | None, finn: str = "main") -> LayerCost:
    """dse's minifloat MVAU/VVAU: FINN's cycles and memories, dse's MAC datapath."""
    mod: Any = mvau if op == "MVAU" else vvau
    base = mod.estimate(a, "hls", part, finn)
    dp = layer_datapath(op, a)
    S, P = int(a["SIMD"]), int(a["PE"])
    W, A = bits(a["weightDataType"]), bits(a["inputDataType"])
    lut = mod._lut_hls(a, W, A, mac=(S * dp.lut_lane + dp.lut_tree, dp.acc_bits))
    lanes = P * S if op == "MVAU" else P * S
    dsp = lanes * dp.dsp_lane
    return replace(base, op_type=f"{op}_hls", lut=lut, dsp=dsp,
                   ff=ff_stand_in(lut, base.instream_widths, base.outstream_widths),
                   source=COST_DSE)


def integer_view_lut(op: str, a: Attrs) -> int:
    """The check model: FINN's integer MVAU/VVAU LUT estimate with each minifloat operand
    replaced by the integer of ``integer_bits`` it exactly is (2^E + M bits)."""
    mod: Any = mvau if op == "MVAU" else vvau
    W, A = operand(str(a["weightDataType"])), operand(str(a["inputDataType"]))
    return int(mod._lut_hls(a, W.integer_bits, A.integer_bits))


def with_minifloat(model: OpModel) -> OpModel:
    """``model`` (FINN's MVAU or VVAU) whose estimate takes dse's minifloat model wherever an
    operand is a minifloat; integer layers keep FINN's estimate untouched."""
    finn_estimate = model.estimate

    def est(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
        if applies(model.name, a):
            return estimate(model.name, a, part, finn)
        return finn_estimate(a, impl, part, finn)

    return replace(model, estimate=est, doc=model.doc + "; minifloat operands: dse's model")
