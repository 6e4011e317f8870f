"""Element-wise, branching and merging ops.

AddStreams, StreamingEltwise, ChannelwiseOp (FINN main), DuplicateStreams, the dev
``Elementwise*`` family, StreamingConcat (main and dev forms), StreamingSplit and Requant (dev).
``finn_cost_formulas.md`` 2.7. Only ChannelwiseOp has a resource model in FINN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qonnx.core.datatype import DataType

from dse.exceptions import LayerAttributeError
from dse.models._common import (
    Attrs,
    LayerCost,
    OpModel,
    bits,
    bram18_table,
    ceil_div,
    check_divides,
    divisors,
    dtype,
    ff_stand_in,
    prod,
)
from dse.models.padding import _batch
from dse.models.pool import _no_resources, pe_options

# AddStreams (main) ---------------------------------------------------------------------------

ADD_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "PE": 1,
    "inputDataType": "INT8",
    "numInputVectors": [1],
}


def _sum_dtype(name: str) -> DataType:
    """Smallest type holding the sum of two values of type ``name``."""
    t = dtype(name)
    return DataType.get_smallest_possible(2 * (t.min() if t.signed() else t.max()))


def add_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    n = _batch(a)
    w = P * bits(a["inputDataType"])
    ow = P * _sum_dtype(a["inputDataType"]).bitwidth()
    words = n * C // P
    return _no_resources(f"AddStreams_{impl}", words, (w, w), (ow,), (words,), (words, words))


ADD_STREAMS = OpModel("AddStreams", ADD_SCHEMA, ("hls",), add_estimate,
                      pe_options("NumChannels"), "residual add of two streams (FINN main)")

# StreamingEltwise (main) ---------------------------------------------------------------------

ELT_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "PE": 1,
    "inputDataType0": "INT8",
    "inputDataType1": "INT8",
    "eltwiseOp": "Add",
    "numInputVectors": [1],
}


def smallest_covering(lo: float, hi: float) -> DataType:
    """Smallest integer type holding every value in [lo, hi] (64 bits at most)."""
    if not (-(2.0**63) <= lo <= hi < 2.0**64):
        raise LayerAttributeError(f"values {lo:g} .. {hi:g} need more than 64 bits; no FINN "
                                  "integer type holds them")
    if lo >= 0:
        return DataType.get_smallest_possible(hi)
    a, b = DataType.get_smallest_possible(lo), DataType.get_smallest_possible(-hi - 1)
    return a if a.bitwidth() >= b.bitwidth() else b


def eltwise_output_dtype(a: Attrs) -> DataType:
    op = a["eltwiseOp"]
    t0, t1 = dtype(a["inputDataType0"]), dtype(a["inputDataType1"])
    if op == "Add":
        return smallest_covering(t0.min() + t1.min(), t0.max() + t1.max())
    if op == "Sub":
        return smallest_covering(t0.min() - t1.max(), t0.max() - t1.min())
    # AbsDiff
    return smallest_covering(0, max(abs(t0.max() - t1.min()), abs(t1.max() - t0.min())))


def elt_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    n = _batch(a)
    w0, w1 = P * bits(a["inputDataType0"]), P * bits(a["inputDataType1"])
    ow = P * eltwise_output_dtype(a).bitwidth()
    words = n * C // P
    return _no_resources(f"StreamingEltwise_{impl}", words, (w0, w1), (ow,), (words,),
                         (words, words))


STREAMING_ELTWISE = OpModel("StreamingEltwise", ELT_SCHEMA, ("hls",), elt_estimate,
                            pe_options("NumChannels"), "Add/Sub/AbsDiff of two streams (main)")

# DuplicateStreams ----------------------------------------------------------------------------

DUP_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "PE": 1,
    "NumOutputStreams": 2,
    "inputDataType": "INT8",
    "numInputVectors": [1],
}


def dup_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    n = _batch(a)
    w = P * bits(a["inputDataType"])
    k = a["NumOutputStreams"]
    words = n * C // P
    return _no_resources(f"DuplicateStreams_{impl}", words, (w,), (w,) * k, (words,) * k,
                         (words,))


DUPLICATE_STREAMS = OpModel("DuplicateStreams", DUP_SCHEMA, ("hls",), dup_estimate,
                            pe_options("NumChannels"), "fork of one stream into several")

# ChannelwiseOp (main) ------------------------------------------------------------------------

CW_SCHEMA: dict[str, Any] = {
    "Func": "cmp_le",
    "PE": 1,
    "NumChannels": 0,
    "ram_style": "distributed",
    "inputDataType": "INT8",
    "paramDataType": "INT8",
    "outputDataType": "INT8",
    "numInputVectors": [1],
}


def cw_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    A = bits(a["inputDataType"])
    n = _batch(a)
    tm = C // P
    bram = ceil_div(A * P, 16) * ceil_div(tm, 1024) if a["ram_style"] == "block" and tm > 1 else 0
    lut = A * P + (P * A * ceil_div(tm, 64) if a["ram_style"] == "distributed" and tm > 1 else 0)
    ow = P * bits(a["outputDataType"])
    words = n * C // P
    return LayerCost(
        op_type=f"ChannelwiseOp_{impl}",
        cycles=words,
        lut=lut,
        bram18=bram,
        uram=0,
        dsp=0,
        ff=ff_stand_in(lut, (P * A,), (ow,)),
        instream_widths=(P * A,),
        outstream_widths=(ow,),
        output_words=(words,),
        input_words=(words,),
    )


def cw_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(a["NumChannels"]):
        for rs in ("distributed", "block"):
            yield {"PE": P, "ram_style": rs}


CHANNELWISE = OpModel("ChannelwiseOp", CW_SCHEMA, ("hls",), cw_estimate, cw_options,
                      "per-channel add/mul/compare with parameters (FINN main)")

# Elementwise* (dev; finn-plus) ---------------------------------------------------------------

EW_SCHEMA: dict[str, Any] = {
    "lhs_dtype": "INT8",
    "rhs_dtype": "INT8",
    "out_dtype": "INT8",
    "lhs_shape": [1],
    "rhs_shape": [1],
    "out_shape": [1],
    "lhs_style": "input",
    "rhs_style": "input",
    "PE": 1,
    "ram_style": "auto",
    "mem_mode": "",  # finn-plus: internal_embedded (HLS), internal_decoupled (RTL)
}


def _ew_broadcast_last(a: Attrs) -> bool:
    """finn-plus: exactly one operand broadcasts the innermost axis."""
    return (a["lhs_shape"][-1] == 1) != (a["rhs_shape"][-1] == 1)


def _ew_mem_mode(a: Attrs, impl: str) -> str:
    # the RTL cores always stream their constant (finn-plus's default for them)
    return a["mem_mode"] or ("internal_decoupled" if impl == "rtl" else "internal_embedded")


def _ew_words(a: Attrs, ind: int) -> int:
    """Words of operand ``ind`` (finn-plus get_folded_input_shape without the PE axis)."""
    shape = a["lhs_shape" if ind == 0 else "rhs_shape"]
    if _ew_broadcast_last(a) and shape[-1] == 1:
        return prod(shape[:-1])
    check_divides(a, shape[-1], a["PE"], "PE", f"{'lhs' if ind == 0 else 'rhs'}_shape[-1]")
    return prod(shape) // a["PE"]


def _ew_in_width(a: Attrs, ind: int, impl: str, finn: str) -> int:
    """Every operand carries PE elements, a broadcast one repeated; in finn-plus an embedded
    constant is no stream (0), in FINN dev it is reported as one."""
    side = "lhs" if ind == 0 else "rhs"
    if finn == "plus" and a[f"{side}_style"] == "const" \
            and _ew_mem_mode(a, impl) == "internal_embedded":
        return 0
    _ew_words(a, ind)  # checks the folding
    return a["PE"] * bits(a[f"{side}_dtype"])


def _ew_memory(a: Attrs, impl: str, finn: str) -> tuple[int, int, int]:
    """(LUT, BRAM18, URAM) of the constant operand's memory by ram_style: finn-plus books it
    only for a streamed constant (internal_decoupled, always the right-hand side); FINN dev
    books none."""
    if finn != "plus" or _ew_mem_mode(a, impl) != "internal_decoupled" \
            or a["rhs_style"] != "const":
        return 0, 0, 0
    w, d = _ew_in_width(a, 1, impl, finn), _ew_words(a, 1)
    rs = a["ram_style"]
    if w == 0 or d == 0:
        return 0, 0, 0
    if rs == "distributed":
        return w * ceil_div(d, 64), 0, 0
    if rs == "ultra":
        return 0, 0, ceil_div(w, 72) * ceil_div(d, 4096)
    return 0, bram18_table(d, w), 0


def ew_estimate_for(name: str) -> Any:
    def estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
        out_shape = a["out_shape"]
        P = a["PE"]
        check_divides(a, out_shape[-1], P, "PE", "out_shape[-1]")
        words = prod(out_shape) // P
        in_w = (_ew_in_width(a, 0, impl, finn), _ew_in_width(a, 1, impl, finn))
        ow = P * bits(a["out_dtype"])
        lut, bram, uram = _ew_memory(a, impl, finn)
        return LayerCost(op_type=f"{name}_{impl}", cycles=words, lut=lut, bram18=bram,
                         uram=uram, dsp=0, ff=ff_stand_in(lut, in_w, (ow,)),
                         instream_widths=in_w, outstream_widths=(ow,), output_words=(words,),
                         input_words=(_ew_words(a, 0), _ew_words(a, 1)))

    return estimate


def ew_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(a["out_shape"][-1]):
        yield {"PE": P}


ELEMENTWISE_OPS = (
    "Add", "Sub", "Mul", "Div", "Max", "AbsDiff", "And", "Or", "Xor", "BitwiseAnd", "BitwiseOr",
    "BitwiseXor", "BitShift", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
)
ELEMENTWISE_RTL = ("Add", "Sub", "Mul")
ELEMENTWISE = tuple(
    OpModel(
        f"Elementwise{op}",
        EW_SCHEMA,
        ("hls", "rtl") if op in ELEMENTWISE_RTL else ("hls",),
        ew_estimate_for(f"Elementwise{op}"),
        ew_options,
        f"element-wise {op} of a stream with a stream or constant (FINN dev)",
    )
    for op in ELEMENTWISE_OPS
)

# StreamingConcat (main: ElemsPerStream, unfolded; dev: SIMD + ChannelsPerStream) ---------------

CONCAT_SCHEMA: dict[str, Any] = {
    "ElemsPerStream": [],
    "inputDataType": "INT8",
    "numInputVectors": [1],
    "SIMD": 1,
    "ChannelsPerStream": [],
    "inputDataTypes": [],
}


def _widest(types: list[str]) -> DataType:
    ts = [dtype(t) for t in types]
    if all(t == ts[0] for t in ts):
        return ts[0]
    floats = [t for t in ts if not t.is_integer()]
    if floats:  # a float operand makes the concatenation float
        return max(floats, key=lambda t: t.bitwidth())
    lo, hi = min(t.min() for t in ts), max(t.max() for t in ts)
    return DataType.get_smallest_possible(lo if lo < 0 and -lo > hi else hi) if lo >= 0 else (
        DataType.get_smallest_possible(min(lo, -hi - 1)))


def concat_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    n = _batch(a)
    if a["ChannelsPerStream"]:  # dev form
        S = a["SIMD"]
        chans = a["ChannelsPerStream"]
        types = a["inputDataTypes"] or [a["inputDataType"]] * len(chans)
        for c in chans:
            check_divides(a, c, S, "SIMD", "every ChannelsPerStream entry")
        in_w = tuple(S * bits(t) for t in types)
        ow = S * _widest(types).bitwidth()
        words = n * sum(chans) // S
        return _no_resources(f"StreamingConcat_{impl}", words, in_w, (ow,), (words,),
                             tuple(n * c // S for c in chans))
    A = bits(a["inputDataType"])
    elems = a["ElemsPerStream"]
    in_w = tuple(e * A for e in elems)
    return _no_resources(f"StreamingConcat_{impl}", n, in_w, (sum(elems) * A,), (n,),
                         (n,) * len(elems))


def concat_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    chans = a["ChannelsPerStream"]
    if not chans:
        yield {}
        return
    for S in divisors(min(chans)):
        if all(c % S == 0 for c in chans):
            yield {"SIMD": S}


STREAMING_CONCAT = OpModel("StreamingConcat", CONCAT_SCHEMA, ("hls",), concat_estimate,
                           concat_options, "channel concatenation of several streams")

# StreamingSplit (dev) ------------------------------------------------------------------------

SPLIT_SCHEMA: dict[str, Any] = {
    "SIMD": 1,
    "ChannelsPerStream": [],
    "inputDataType": "INT8",
    "numInputVectors": [1],
}


def split_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    S, chans, n = a["SIMD"], a["ChannelsPerStream"], _batch(a)
    for c in chans:
        check_divides(a, c, S, "SIMD", "every ChannelsPerStream entry")
    w = S * bits(a["inputDataType"])
    words = n * sum(chans) // S
    return _no_resources(f"StreamingSplit_{impl}", words, (w,), (w,) * len(chans),
                         tuple(n * c // S for c in chans), (words,))


STREAMING_SPLIT = OpModel("StreamingSplit", SPLIT_SCHEMA, ("hls",), split_estimate,
                          concat_options, "channel split into several streams (FINN dev)")

# Requant (dev) -------------------------------------------------------------------------------

REQUANT_SCHEMA: dict[str, Any] = {
    "NumChannels": 0,
    "PE": 1,
    "numInputVectors": [1],
    "inputDataType": "INT8",
    "outputDataType": "INT8",
}


def requant_estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    C, P = a["NumChannels"], a["PE"]
    check_divides(a, C, P, "PE", "NumChannels")
    words = _batch(a) * C // P
    cycles = words + (10 if impl == "hls" else 0)
    return _no_resources(f"Requant_{impl}", cycles, (P * bits(a["inputDataType"]),),
                         (P * bits(a["outputDataType"]),), (words,), (words,))


REQUANT = OpModel("Requant", REQUANT_SCHEMA, ("hls", "rtl"), requant_estimate,
                  pe_options("NumChannels"), "re-quantization (FINN dev)")

MODELS = (
    ADD_STREAMS,
    STREAMING_ELTWISE,
    DUPLICATE_STREAMS,
    CHANNELWISE,
    *ELEMENTWISE,
    STREAMING_CONCAT,
    STREAMING_SPLIT,
    REQUANT,
)
