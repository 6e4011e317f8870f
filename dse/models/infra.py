"""Infrastructure layers FINN inserts between layers: DWC, FIFO, IODMA.

FINN ``streamingdatawidthconverter.py``, ``streamingfifo.py``, ``iodma_hls.py``;
``finn_cost_formulas.md`` section 3 and 2.8. FINN has no cycle model for any of them (0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from dse.exceptions import LayerAttributeError
from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    bram18_table,
    ceil_div,
    ff_stand_in,
    prod,
)
from dse.models.pool import _no_resources

# StreamingDataWidthConverter ----------------------------------------------------------------

DWC_SCHEMA: dict[str, Any] = {
    "shape": [1],
    "inWidth": 0,
    "outWidth": 0,
    "dataType": "INT8",
}


def dwc_lut(in_w: int, out_w: int) -> int:
    L = math.lcm(in_w, out_w)
    lut = 0
    if in_w != L:
        lut += abs(math.ceil(math.log2(in_w / L))) + L
    if L != out_w:
        lut += abs(math.ceil(math.log2(L / out_w))) + out_w
    return lut


def dwc_default_impl(a: Attrs) -> str:
    i, o = a["inWidth"], a["outWidth"]
    return "rtl" if (i % o == 0 or o % i == 0) else "hls"


def dwc_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    i, o = a["inWidth"], a["outWidth"]
    b = bits(a["dataType"])
    if i <= 0 or o <= 0 or i % b or o % b:
        raise LayerAttributeError(
            f"{a.op_type}: inWidth={i} and outWidth={o} must be positive multiples of the "
            f"element width {b} ({a['dataType']})"
        )
    if impl == "rtl" and not (i % o == 0 or o % i == 0):
        raise LayerAttributeError(
            f"{a.op_type}: the RTL DWC needs one width to divide the other ({i}, {o}); "
            "use StreamingDataWidthConverter_hls"
        )
    total_bits = prod(a["shape"]) * b
    lut = dwc_lut(i, o)
    return LayerCost(
        op_type=f"StreamingDataWidthConverter_{impl}",
        cycles=0,
        lut=lut,
        bram18=0,
        uram=0,
        dsp=0,
        ff=ff_stand_in(lut, (i,), (o,)),
        instream_widths=(i,),
        outstream_widths=(o,),
        output_words=(total_bits // o,),
        input_words=(total_bits // i,),
    )


DWC = OpModel("StreamingDataWidthConverter", DWC_SCHEMA, ("hls", "rtl"), dwc_estimate, None,
              "stream width converter (inserted by FINN)")

# StreamingFIFO ------------------------------------------------------------------------------

FIFO_SCHEMA: dict[str, Any] = {
    "depth": 2,
    "folded_shape": [1],
    "normal_shape": [1],
    "dataType": "INT8",
    "impl_style": "rtl",
    "ram_style": "auto",
    "depth_monitor": 0,
}


def fifo_adjusted_depth(a: Attrs) -> int:
    d = a["depth"]
    if a["impl_style"] == "vivado":
        return 1 << (d - 1).bit_length()
    return d


def fifo_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    D = fifo_adjusted_depth(a)
    W = a["folded_shape"][-1] * bits(a["dataType"])
    style, ram = a["impl_style"], a["ram_style"]
    addr = 2 * math.ceil(math.log2(D))
    if finn == "dev":
        # FINN dev / finn-plus regression: the style test never matches, so every FIFO books
        # the BRAM table and URAM and loses its LUTRAM term.
        bram = bram18_table(D, W)
        uram = ceil_div(D, 4096) * ceil_div(W, 72)
        lut = addr
    else:
        bram = 0 if style == "rtl" or (style == "vivado" and ram != "block") else bram18_table(D, W)
        uram = ceil_div(D, 4096) * ceil_div(W, 72) if style == "vivado" and ram == "ultra" else 0
        lutram = style == "rtl" or (style == "vivado" and ram == "distributed")
        lut = addr + (ceil_div(D, 32) * ceil_div(W, 2) if lutram else 0)
    words = prod(a["folded_shape"][:-1])
    return LayerCost(
        op_type=f"StreamingFIFO_{impl}",
        cycles=0,
        lut=int(lut),
        bram18=int(bram),
        uram=int(uram),
        dsp=0,
        ff=ff_stand_in(lut, (W,), (W,)),
        instream_widths=(W,),
        outstream_widths=(W,),
        output_words=(words,),
        input_words=(words,),
    )


def fifo_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    yield {"impl_style": "rtl", "ram_style": "auto"}
    for rs in ("block", "distributed", "ultra"):
        yield {"impl_style": "vivado", "ram_style": rs}


FIFO = OpModel("StreamingFIFO", FIFO_SCHEMA, ("rtl", "hls"), fifo_estimate, fifo_options,
               "stream FIFO (inserted by FINN)")

# IODMA --------------------------------------------------------------------------------------

IODMA_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "dataType": "INT8",
    "streamWidth": 32,
    "intfWidth": 32,
    "direction": "in",
    "numInputVectors": [1],
    "burstMode": "increment",
}


def iodma_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    v = a["numInputVectors"]
    n = prod(v) if isinstance(v, list) else int(v)
    total = n * a["NumChannels"] * bits(a["dataType"])
    sw, iw = a["streamWidth"], a["intfWidth"]
    in_w, out_w = (iw, sw) if a["direction"] == "in" else (sw, iw)
    return _no_resources(f"IODMA_{impl}", 0, (in_w,), (out_w,), (total // sw,))


IODMA = OpModel("IODMA", IODMA_SCHEMA, ("hls",), iodma_estimate, None,
                "memory-mapped <-> stream DMA at the pipeline ends")

MODELS = (DWC, FIFO, IODMA)
