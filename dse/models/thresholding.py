"""Thresholding (standalone multi-threshold activation): ``_hls`` and ``_rtl``.

FINN ``thresholding.py`` and its hls/rtl subclasses; formulas in ``finn_cost_formulas.md`` 2.4.
The threshold memory of ``Thresholding_hls`` depends on the FINN line (``hls_memory``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dse.exceptions import LayerAttributeError
from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    ceil_div,
    check_divides,
    divisors,
    dtype,
    ff_stand_in,
    prod,
)

SCHEMA: dict[str, Any] = {
    "PE": 1,
    "NumChannels": 0,
    "numSteps": 1,
    "inputDataType": "INT8",
    "weightDataType": "INT8",
    "outputDataType": "INT8",
    "numInputVectors": [1],
    "ActVal": 0,
    "runtime_writeable_weights": 0,
    "mem_mode": "internal_decoupled",
    "ram_style": "distributed",
    "depth_trigger_uram": 0,
    "depth_trigger_bram": 0,
    "uniform_thres": 0,
    "deep_pipeline": 1,
}

# FINN util/basic.py mem_primitives_versal, in FINN's order (ties go to the first entry).
VERSAL_PRIMITIVES: tuple[tuple[str, int, int], ...] = (
    ("URAM", 72, 4096),
    ("URAM", 36, 8192),
    ("URAM", 18, 16384),
    ("URAM", 9, 32768),
    ("BRAM18", 36, 512),
    ("BRAM18", 18, 1024),
    ("BRAM18", 9, 2048),
    ("LUTRAM", 1, 64),
)


def _roundup(x: float, m: int) -> float:
    return -(-x // m) * m


def _memutil(width: float, depth: float, pw: int, pd: int) -> tuple[float, float]:
    """(count, waste) of primitives (pw x pd) needed for a width x depth memory."""
    count = (_roundup(width, pw) // pw) * (_roundup(depth, pd) // pd)
    waste = count * pw * pd - width * depth
    return count, waste


def rtl_memory(a: Attrs) -> dict[str, float]:
    """Thresholding_rtl's memory model: primitive kind -> count (may be fractional)."""
    P = a["PE"]
    T = bits(a["weightDataType"])
    B = bits(a["outputDataType"])
    cf = a["NumChannels"] / P
    if a["uniform_thres"]:
        geoms = [(B - x, cf * 2**x) for x in range(1, B)]
    else:
        geoms = [(T, cf * 2**x) for x in range(B)]
    trig_b, trig_u = a["depth_trigger_bram"], a["depth_trigger_uram"]
    out: dict[str, float] = {}
    for width, depth in geoms:
        prims = VERSAL_PRIMITIVES
        if trig_b != 0 or trig_u != 0:
            if trig_b <= depth < trig_u:
                prims = tuple(p for p in VERSAL_PRIMITIVES if p[0] == "BRAM18")
            elif depth >= trig_u:
                prims = tuple(p for p in VERSAL_PRIMITIVES if p[0] == "URAM")
        best = min(
            ((name, *_memutil(width, depth, pw, pd)) for name, pw, pd in prims),
            key=lambda t: t[2],
        )
        out[best[0]] = out.get(best[0], 0) + P * best[1]
    return out


def hls_memory(a: Attrs, tm: int, finn: str) -> tuple[int, int, int]:
    """(LUT, BRAM18, URAM) of Thresholding_hls: A x PE comparator LUTs plus the threshold
    memory (TMEM = NumChannels/PE words deep), booked by ``ram_style`` only when TMEM > 1.

    FINN main/dev book a word of A x PE bits (A: input bits): block
    ceil(A*PE/16)*ceil(TMEM/1024) BRAM18, distributed PE*A*ceil(TMEM/64) LUTs.
    finn-plus 1.6.1 books a word of PE x T x numSteps bits (T: threshold bits;
    ``_threshold_mem_width``): block ceil(word/16)*ceil(TMEM/1024) BRAM18, distributed
    word*ceil(TMEM/64) LUTs, ultra ceil(word/72)*ceil(TMEM/4096) URAM (a style only finn-plus
    has). Source: finn-plus 1.6.1, finn/custom_op/fpgadataflow/hls/thresholding_hls.py,
    ``_threshold_mem_width`` (l. 92-97), ``bram_estimation`` (l. 99-108),
    ``uram_estimation`` (l. 110-117), ``lut_estimation`` (l. 140-156); TMEM is
    ``Thresholding.calc_tmem`` (thresholding.py l. 384-388).
    """
    P, A = a["PE"], bits(a["inputDataType"])
    style = a["ram_style"] if tm > 1 else ""
    if finn != "plus":
        if a["ram_style"] == "ultra":
            raise LayerAttributeError(f"Thresholding_hls: ram_style='ultra' is finn-plus's; "
                                      f"FINN {finn} has distributed and block only")
        word = A * P
    else:
        word = P * bits(a["weightDataType"]) * a["numSteps"]
    lut = A * P + (word * ceil_div(tm, 64) if style == "distributed" else 0)
    bram = ceil_div(word, 16) * ceil_div(tm, 1024) if style == "block" else 0
    uram = ceil_div(word, 72) * ceil_div(tm, 4096) if style == "ultra" else 0
    return lut, bram, uram


def estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    A, B = bits(a["inputDataType"]), bits(a["outputDataType"])
    T = bits(a["weightDataType"])
    nvec = prod(a["numInputVectors"])
    tm = C // P
    if impl == "rtl":
        mem = rtl_memory(a)
        lut = int(mem.get("LUTRAM", 0))
        uram = int(mem.get("URAM", 0))
        bram = 0  # FINN books "BRAM18" but bram_estimation reads "BRAM" (known quirk)
        w_w = P * T * a["numSteps"]
    else:
        lut, bram, uram = hls_memory(a, tm, finn)
        w_w = P * T * a["numSteps"] if a["mem_mode"] == "internal_decoupled" else 0
    out_w = P * B
    return LayerCost(
        op_type=f"Thresholding_{impl}",
        cycles=nvec * C // P,
        lut=lut,
        bram18=bram,
        uram=uram,
        dsp=0,
        ff=ff_stand_in(lut, (P * A,), (out_w,)),
        instream_widths=(P * A,),
        outstream_widths=(out_w,),
        weightstream_width=w_w,
        output_words=(nvec * C // P,),
        input_words=(nvec * C // P,),
    )


def ultra_offered(a: Attrs) -> bool:
    """Whether to offer finn-plus's URAM thresholds (``ram_style`` ultra): its Thresholding_hls
    builds them on UltraScale+ only in ``internal_decoupled`` mode with
    ``runtime_writeable_weights=1`` (URAM is not initialized from the bitstream there: the
    host writes the thresholds over AXI-lite; finn-plus 1.6.1 thresholding_hls.py
    ``code_generation_ipgen``, l. 168-190), and runtime-writeable thresholds keep their type
    where finn-plus would minimize it, so only a float input (whose thresholds finn-plus
    keeps as they are, thresholding.py ``minimize_weight_bit_width``, l. 155-205) costs what
    dse books."""
    return a["mem_mode"] == "internal_decoupled" and not dtype(a["inputDataType"]).is_integer()


def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(a["NumChannels"]):
        if impl == "hls":
            for rs in ("distributed", "block"):
                yield {"PE": P, "ram_style": rs}
            if ultra_offered(a):
                yield {"PE": P, "ram_style": "ultra", "runtime_writeable_weights": 1}
        else:
            yield {"PE": P}


MODEL = OpModel(
    name="Thresholding",
    schema=SCHEMA,
    impls=("hls", "rtl"),
    estimate=estimate,
    options=options,
    doc="standalone multi-threshold activation",
)
MODELS = (MODEL,)
