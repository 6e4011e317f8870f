"""Other layers: LabelSelect, Lookup and Reshape (finn-plus); the transformer ops are in
``transformer``.

``finn_cost_formulas.md`` 2.8. HWSoftmax_hls follows finn-plus's ``get_exp_cycles``; Reshape
follows what finn-plus 1.6.1 reports for ``Reshape_rtl`` (one element per PE per cycle).
None of these has a resource model in FINN.
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
    ceil_div,
    check_divides,
    divisors,
    ff_stand_in,
    prod,
)
from dse.models.padding import _batch
from dse.models.pool import _no_resources, pe_options

# LabelSelect ---------------------------------------------------------------------------------

LS_SCHEMA: dict[str, Any] = {
    "Labels": 0,
    "PE": 1,
    "K": 1,
    "inputDataType": "INT8",
    "outputDataType": "",
    "numInputVectors": [1],
}


def labelselect_output_dtype(a: Attrs) -> DataType:
    if a["outputDataType"]:
        return DataType[a["outputDataType"]]
    odt = DataType.get_smallest_possible(a["Labels"] - 1)
    return DataType[f"UINT{ceil_div(odt.bitwidth(), 8) * 8}"]


def ls_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    L, P = a["Labels"], a["PE"]
    check_divides(a, L, P, "PE", "Labels")
    n = _batch(a)
    return _no_resources(f"LabelSelect_{impl}", L // P, (P * bits(a["inputDataType"]),),
                         (labelselect_output_dtype(a).bitwidth(),), (n * a["K"],), (n * L // P,))


LABEL_SELECT = OpModel("LabelSelect", LS_SCHEMA, ("hls",), ls_estimate, pe_options("Labels"),
                       "top-K label selection")

# Lookup --------------------------------------------------------------------------------------

LOOKUP_SCHEMA: dict[str, Any] = {
    "NumEmbeddings": 0,
    "EmbeddingDim": 0,
    "EmbeddingType": "INT8",
    "InputType": "UINT8",
    "InputShape": [1],
    "mem_mode": "internal_embedded",
    "ram_style": "block",
    "ext_mem_width": 32,
}


def lookup_memory(a: Attrs, width: int, finn: str) -> tuple[int, int, int]:
    """(LUT, BRAM18, URAM) of the embedding table. finn-plus books it by ``ram_style``
    (block/auto: RAMB18s, ultra: URAMs, distributed: LUTRAM); FINN main/dev have no ``ram_style``
    for Lookup and always books RAMB18s. External tables live off chip."""
    if a["mem_mode"] != "internal_embedded":
        return 0, 0, 0
    n = a["NumEmbeddings"]
    rs = a["ram_style"] if finn == "plus" else "block"
    if rs == "distributed":
        return width * ceil_div(n, 64), 0, 0
    if rs == "ultra":
        return 0, 0, ceil_div(width, 72) * ceil_div(n, 4096)
    return 0, ceil_div(width, 16) * ceil_div(n, 1024), 0


def lookup_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    n_idx = prod(a["InputShape"])
    emb_bits = a["EmbeddingDim"] * bits(a["EmbeddingType"])
    if a["mem_mode"] == "external":
        # finn-plus folds the embedding into whole AXI words of ext_mem_width bits
        out_w, b = a["ext_mem_width"], bits(a["EmbeddingType"])
        if out_w % b:
            raise LayerAttributeError(f"Lookup: ext_mem_width={out_w} must be a multiple of "
                                      f"the {a['EmbeddingType']} element width ({b} bits)")
        words = n_idx * (a["EmbeddingDim"] // (out_w // b))
    else:
        out_w = emb_bits
        words = n_idx
    lut, bram, uram = lookup_memory(a, out_w, finn)
    in_w = bits(a["InputType"])
    return LayerCost(
        op_type=f"Lookup_{impl}",
        cycles=n_idx,
        lut=lut,
        bram18=bram,
        uram=uram,
        dsp=0,
        ff=ff_stand_in(lut, (in_w,), (out_w,)),
        instream_widths=(in_w,),
        outstream_widths=(out_w,),
        output_words=(words,),
        input_words=(n_idx,),
    )


def lookup_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for rs in ("block", "distributed", "ultra"):
        yield {"mem_mode": "internal_embedded", "ram_style": rs}
    yield {"mem_mode": "external", "ram_style": "block"}


LOOKUP = OpModel("Lookup", LOOKUP_SCHEMA, ("hls",), lookup_estimate, lookup_options,
                 "embedding lookup")

# Reshape (finn-plus) ------------------------------------------------------------------------

RESHAPE_SCHEMA: dict[str, Any] = {
    "inp_shape": [1],
    "out_shape": [1],
    "dtype": "INT8",
    "PE": 1,
}


def reshape_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    n, P = prod(a["inp_shape"]), a["PE"]
    check_divides(a, a["out_shape"][-1], P, "PE", "out_shape[-1]")
    w = P * bits(a["dtype"])
    return _no_resources(f"Reshape_{impl}", n // P, (w,), (w,), (n // P,), (n // P,))


def reshape_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(math.gcd(a["inp_shape"][-1], a["out_shape"][-1])):
        yield {"PE": P}


RESHAPE = OpModel("Reshape", RESHAPE_SCHEMA, ("rtl",), reshape_estimate, reshape_options,
                  "layout reshape kept in hardware (finn-plus)")

MODELS = (LABEL_SELECT, LOOKUP, RESHAPE)
