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
    "ext_mem_width": 32,
}


def lookup_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    n_idx = prod(a["InputShape"])
    emb_bits = a["EmbeddingDim"] * bits(a["EmbeddingType"])
    if a["mem_mode"] == "external":
        out_w = a["ext_mem_width"]
        words = n_idx * emb_bits // out_w
        bram = 0
    else:
        out_w = emb_bits
        words = n_idx
        bram = ceil_div(out_w, 16) * ceil_div(a["NumEmbeddings"], 1024)
    in_w = bits(a["InputType"])
    return LayerCost(
        op_type=f"Lookup_{impl}",
        cycles=n_idx,
        lut=0,
        bram18=bram,
        uram=0,
        dsp=0,
        ff=ff_stand_in(0, (in_w,), (out_w,)),
        instream_widths=(in_w,),
        outstream_widths=(out_w,),
        output_words=(words,),
        input_words=(n_idx,),
    )


def lookup_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    yield {"mem_mode": "internal_embedded"}
    yield {"mem_mode": "external"}


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
