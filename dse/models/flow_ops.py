"""The stream ops finn-plus 1.6.1's transformer flow emits around the attention core:
HWWhere (masking), InnerShuffle / OuterShuffle (the stages a Shuffle decomposes into),
ReplicateStream (fan-out), SelectToken (ViT's class token), Squeeze / Unsqueeze.

Cycles, stream widths and output counts restate finn-plus's own ``get_exp_cycles`` /
``get_*stream_width`` / ``get_number_output_values`` (``custom_op/fpgadataflow/hwwhere.py``,
``inner_shuffle.py``, ``outer_shuffle.py``, ``replicate_stream.py``, ``selecttoken.py``,
``squeeze.py``, ``unsqueeze.py``); HWWhere's replay buffers are finn-plus's resource estimate.
The others inherit HWCustomOp's 0 resources in finn-plus, and dse books its own model
(``COST_FINN_CYCLES``): their reorder banks, registers and control. Every row of
``tests/data/finn_plus_transformer_grid.csv.gz`` is compared by
``tests/models/test_transformer_costs.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from dse.exceptions import IllegalFoldingError, LayerAttributeError
from dse.models import transformer
from dse.models._common import (
    COST_DSE,
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
    prod,
)
from dse.models.padding import simd_options
from dse.models.pool import pe_options
from dse.models.transformer import CONTROL_LUT, buffer, no_folding


def _cost(op: str, cycles: int, lut: int, bram: int, uram: int, in_w: tuple[int, ...],
          out_w: tuple[int, ...], out_words: tuple[int, ...], in_words: tuple[int, ...],
          source: str) -> LayerCost:
    """A LayerCost without DSPs (none of these ops multiplies)."""
    return transformer._cost(op, cycles, lut, bram, 0, in_w, out_w, out_words, in_words, source,
                             uram=uram)


def next_divisor(n: int, simd: int) -> int:
    """finn-plus's SIMD auto-sizing of the shuffle stages: a SIMD that does not divide the
    folded axis becomes the smallest divisor of it above SIMD."""
    if n % simd == 0:
        return simd
    above = [d for d in divisors(n) if d > simd]
    if not above:
        raise IllegalFoldingError(f"SIMD={simd}: no divisor of {n} above it; finn-plus cannot "
                                  f"size this shuffle (legal values are {divisors(n)})")
    return above[0]


# ---------------------------------------------------------------------------------------------
# HWWhere (finn-rtllib where/: select between two streams by a condition stream, each operand
# broadcast by a replay buffer, input_gen.sv)

WHERE_SCHEMA: dict[str, Any] = {
    "Shape": [1],
    "CondShape": [],
    "XShape": [],
    "YShape": [],
    "CondRank": -1,
    "XRank": -1,
    "YRank": -1,
    "PE": 1,
    "conditionDataType": "BINARY",
    "inputDataType": "INT8",
    "outputDataType": "",
    "ram_style": "auto",
}
WHERE_RAM_STYLES = ("auto", "block", "distributed", "ultra")
LUTRAM_BITS = 1024  # finn-plus: buffers under ~1 kbit stay in LUTRAM with ram_style auto


def _where_shapes(a: Attrs) -> tuple[list[int], list[list[int]]]:
    out = list(a["Shape"]) or [1]
    ins = []
    for key, rank in (("CondShape", "CondRank"), ("XShape", "XRank"), ("YShape", "YRank")):
        shp = list(a[key])
        if a[rank] >= 0 and len(shp) != a[rank]:
            raise LayerAttributeError(f"HWWhere: {key}={shp} does not have {rank}={a[rank]} axes")
        ins.append((shp if a[rank] >= 0 or shp else list(a["Shape"])) or [1])
    return out, ins


def _where_pe(shape: list[int], out: list[int], P: int) -> int:
    """An operand (or the output) with a broadcast innermost axis streams one element."""
    return 1 if shape[-1] == 1 or out[-1] == 1 else P


def _replay_depth(shape: list[int], out: list[int], P: int) -> int:
    """Depth of input_gen.sv's circular replay buffer for one operand, the occupancy bound
    finn-plus's ``_input_gen_buffer_specs`` derives: walking the output axes from the
    innermost, how far the read pointer rewinds (replays) beyond what it may free."""
    if len(shape) > len(out):
        raise LayerAttributeError(f"HWWhere: operand shape {shape} has more axes than the "
                                  f"output {out}")
    al = [1] * (len(out) - len(shape)) + shape
    n = len(out)
    od = list(out)
    od[-1] //= _where_pe([out[-1]], out, P)
    wd = [al[i] // P if i == n - 1 and al[i] != 1 else al[i] for i in range(n)]
    coef = [0 if al[i] == 1 and od[i] > 1 else prod(wd[i + 1:]) for i in range(n)]
    weight = [prod(wd)] + coef
    free = [True]
    for i in range(n):
        free.append(free[-1] and coef[i] > 0 and coef[i] * od[i] <= weight[i])
    worst = read = freed = 0
    for i in reversed(range(n)):
        inner_gap = read - freed
        read += (od[i] - 1) * coef[i]
        freed = freed + (od[i] - 1) * coef[i] if free[i + 1] else 0
        worst = max(worst, read - freed)
        if free[i]:
            worst = max(worst, inner_gap + max(weight[i] - freed, 0))
    return 1 << (worst + 3 - 1).bit_length()  # + write delay + 2 spare, a power of two


def where_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    out, ins = _where_shapes(a)
    P = a["PE"]
    if a["ram_style"] not in WHERE_RAM_STYLES:
        raise LayerAttributeError(f"HWWhere: ram_style={a['ram_style']!r}; use one of "
                                  f"{', '.join(WHERE_RAM_STYLES)}")
    if out[-1] != 1:
        check_divides(a, out[-1], P, "PE", "Shape[-1]")
    for shp in ins:
        if shp[-1] % _where_pe(shp, out, P):
            raise IllegalFoldingError(f"HWWhere: PE={P} must divide every operand's last axis "
                                      f"({shp}); legal values are {divisors(out[-1])}")
    x_t = a["inputDataType"]
    o_t = a["outputDataType"] or x_t
    in_pe = [_where_pe(s, out, P) for s in ins]
    in_w = (in_pe[0], bits(x_t) * in_pe[1], bits(x_t) * in_pe[2])
    in_words = tuple(prod(s[:-1]) * s[-1] // pe for s, pe in zip(ins, in_pe, strict=True))
    out_pe = _where_pe(out, out, P)
    words = prod(out[:-1]) * out[-1] // out_pe
    specs = [(w, _replay_depth(s, out, P)) for w, s in zip(in_w, ins, strict=True)]
    style = a["ram_style"]
    in_bram = [(w, d) for w, d in specs if style == "block" or (style == "auto"
                                                                 and w * d >= LUTRAM_BITS)]
    in_lut = [(w, d) for w, d in specs if style == "distributed" or (style == "auto"
                                                                      and w * d < LUTRAM_BITS)]
    bram = sum(bram18_table(d, w) for w, d in in_bram)
    uram = sum(ceil_div(w, 72) * ceil_div(d, 4096) for w, d in specs) if style == "ultra" else 0
    lut = 64 + P * bits(o_t) + sum(w * ceil_div(d, 64) for w, d in in_lut)
    return _cost(f"HWWhere_{impl}", max(in_words) + words + 4, lut, bram, uram, in_w,
                 (bits(o_t) * out_pe,), (words,), in_words, COST_FINN)


def where_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    out, ins = _where_shapes(a)
    for P in divisors(out[-1]):
        if all(s[-1] % _where_pe(s, out, P) == 0 for s in ins):
            for rs in ("block", "distributed", "ultra"):
                yield {"PE": P, "ram_style": rs}


HW_WHERE = OpModel("HWWhere", WHERE_SCHEMA, ("rtl",), where_estimate, where_options,
                   "select between two streams by a condition, with broadcast (finn-plus)")

# ---------------------------------------------------------------------------------------------
# InnerShuffle (finn-rtllib inner_shuffle: swap of the two innermost axes in two banks)

SHUFFLE_STAGE_SCHEMA: dict[str, Any] = {
    "data_type": "INT8",
    "in_shape": [1],
    "out_shape": [1],
    "transpose_in_shape": [1],
    "transpose_out_shape": [1],
    "perm": [],
    "loop_coeffs": [],
    "SIMD": 1,
    "NumChannels": 128,
}


def inner_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    t = list(a["transpose_in_shape"])
    if len(t) < 2:
        raise LayerAttributeError(f"InnerShuffle: transpose_in_shape={t} needs two axes")
    S = next_divisor(t[-2], a["SIMD"])
    b = bits(a["data_type"])
    words = prod(t) // S
    page = t[-2] * t[-1] // S
    # dse model: two banks of one I x J page each, plus control
    lut, bram = buffer(2 * page, S * b)
    return _cost(f"InnerShuffle_{impl}", 2 * words + page, CONTROL_LUT + lut, bram, 0,
                 (S * b,), (S * b,), (words,), (words,), COST_FINN_CYCLES)


def inner_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for S in divisors(list(a["transpose_in_shape"])[-2]):
        yield {"SIMD": S}


INNER_SHUFFLE = OpModel("InnerShuffle", SHUFFLE_STAGE_SCHEMA, ("rtl",), inner_estimate,
                        inner_options, "swap of the two innermost axes of a stream (finn-plus)")

# ---------------------------------------------------------------------------------------------
# OuterShuffle (input_gen.hpp's reorder buffer; finn-plus simulates it cycle by cycle)

WP_DELAY = 4  # write-pointer pipeline of input_gen.hpp
URAM_DEPTH = 262144  # deeper buffers go to URAM, whose read latency makes the II 3


def _loop_nest(t: list[int], perm: list[int], S: int) -> tuple[list[int], list[int]]:
    """(trip counts, read strides in words) of the output loop nest, innermost last."""
    strides = [prod(t[i + 1:]) for i in range(len(t))]
    counts = [t[p] for p in perm]
    counts[-1] //= S
    return counts, [1 if strides[p] == 1 else strides[p] // S for p in perm]


def _nest_jumps(counts: list[int], steps: list[int], total: int) -> list[tuple[int, int, int]]:
    """Per loop level (outermost first): (stride, pointer advance on its last iteration, free
    advance on its last iteration or -1 when it frees nothing itself). The read pointer of a
    level that may replay its inner data jumps back on wrap-around, freeing what it leaves."""
    levels = []
    replay = [True]
    width = [total] + steps
    for i, (n, c) in enumerate(zip(counts, steps, strict=True)):
        replay.append(replay[i] and c > 0 and c * n <= width[i])
    rp_back = [0] * (len(counts) + 1)
    fp_back = [0] * (len(counts) + 1)
    for i in reversed(range(len(counts))):
        rp_back[i] = (counts[i] - 1) * steps[i] + rp_back[i + 1]
        fp_back[i] = (counts[i] - 1) * steps[i] + fp_back[i + 1] if replay[i + 1] else 0
    for i in range(len(counts)):
        levels.append((steps[i], width[i] - rp_back[i],
                       width[i] - fp_back[i] if replay[i] else -1))
    return levels


@lru_cache(maxsize=4096)
def outer_cycles(t: tuple[int, ...], perm: tuple[int, ...], S: int) -> int:
    """finn-plus OuterShuffle.get_exp_cycles: the input_gen pipeline simulated cycle by cycle
    (one word in, one word out per cycle at most; reads wait for the delayed write pointer,
    writes for free buffer space), times the II of the buffer memory."""
    counts, steps = _loop_nest(list(t), list(perm), S)
    total = prod(counts)
    levels = _nest_jumps(counts, steps, total)
    # the buffer holds the worst read-pointer retraction plus the pipeline, a power of two
    retract = max([0] + [-jump for _, jump, _ in levels])
    buf = 1 << max(1, (max(1, retract + WP_DELAY + 2) - 1).bit_length())
    ii = 3 if buf > URAM_DEPTH else 1
    # the innermost loop steps by its stride, freeing it too where the whole nest replays
    replays = all(j >= 0 for _, _, j in levels) and all(c > 0 for c in steps) and all(
        c * n <= w for c, n, w in zip(steps, counts, [total] + steps, strict=True))
    term = (steps[-1], steps[-1] if replays else 0) if levels else (total, total)
    idx = [0] * len(levels)  # loop counters, outermost first
    wp = [0] * WP_DELAY
    rp = fp = made = taken = cycle = 0
    ready = False
    while made < total and cycle < 10 * total:
        cycle += 1
        wp[1:] = wp[:-1]
        if wp[0] - fp < buf and taken < total:
            wp[0] += 1
            taken += 1
        if ready:
            made += 1
            ready = False
        if rp < wp[-1]:
            d_rp, d_fp = term
            for lvl in reversed(range(len(levels))):  # advance the odometer from the inside
                if idx[lvl] < counts[lvl] - 1:
                    idx[lvl] += 1
                    break
                idx[lvl] = 0
                d_rp = levels[lvl][1]
                if levels[lvl][2] >= 0:
                    d_fp = levels[lvl][2]
            rp += d_rp
            fp += d_fp
            ready = True
    return cycle * ii


def outer_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    t, perm = list(a["transpose_in_shape"]), list(a["perm"])
    if sorted(perm) != list(range(len(t))):
        raise LayerAttributeError(f"OuterShuffle: perm={perm} is not a permutation of "
                                  f"{len(t)} axes (transpose_in_shape={t})")
    S = next_divisor(t[-1], a["SIMD"])
    out_shape, in_shape = list(a["out_shape"]) or t, list(a["in_shape"]) or t
    check_divides(a, out_shape[-1], S, "SIMD", "out_shape[-1]")
    check_divides(a, in_shape[-1], S, "SIMD", "in_shape[-1]")
    b = bits(a["data_type"])
    words = prod(out_shape) // S
    counts, steps = _loop_nest(t, perm, S)
    retract = max([0] + [-j for _, j, _ in _nest_jumps(counts, steps, prod(counts))])
    depth = 1 << max(1, (max(1, retract + WP_DELAY + 2) - 1).bit_length())
    lut, bram = buffer(depth, S * b)  # dse model: the reorder buffer plus control
    uram = 0
    if depth > URAM_DEPTH:
        bram, uram = 0, ceil_div(S * b, 72) * ceil_div(depth, 4096)
    return _cost(f"OuterShuffle_{impl}", outer_cycles(tuple(t), tuple(perm), S),
                 CONTROL_LUT + lut, bram, uram, (S * b,), (S * b,), (words,),
                 (prod(in_shape) // S,), COST_FINN_CYCLES)


def outer_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for S in divisors(list(a["transpose_in_shape"])[-1]):
        yield {"SIMD": S}


OUTER_SHUFFLE = OpModel("OuterShuffle", SHUFFLE_STAGE_SCHEMA, ("hls",), outer_estimate,
                        outer_options, "reorder of the outer axes of a stream (finn-plus)")

# ---------------------------------------------------------------------------------------------
# ReplicateStream, Squeeze, Unsqueeze: PE elements of the last axis per cycle

REPLICATE_SCHEMA: dict[str, Any] = {
    "num": 1,
    "dtype": "INT8",
    "num_elems": 1,
    "PE": 1,
    "num_inputs": [1],
}


def replicate_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    k, e, P = a["num"], a["num_elems"], a["PE"]
    if k < 1:
        raise LayerAttributeError(f"ReplicateStream: num={k} must be >= 1")
    check_divides(a, e, P, "PE", "num_elems")
    w = P * bits(a["dtype"])
    words = prod(a["num_inputs"]) * e // P
    # dse model: an output register per replica plus control
    return _cost(f"ReplicateStream_{impl}", words, CONTROL_LUT // 3 + k * w // 2, 0, 0, (w,),
                 (w,) * k, (words,) * k, (words,), COST_FINN_CYCLES)


REPLICATE_STREAM = OpModel("ReplicateStream", REPLICATE_SCHEMA, ("hls",), replicate_estimate,
                           pe_options("num_elems"), "copy of one stream to several (finn-plus)")

SQUEEZE_SCHEMA: dict[str, Any] = {
    "axes": [],
    "inp_dtype": "INT8",
    "out_dtype": "INT8",
    "inp_shape": [1],
    "out_shape": [1],
    "PE": 1,
}


def squeeze_estimate_for(name: str) -> Any:
    def estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
        ins, outs, P = list(a["inp_shape"]), list(a["out_shape"]), a["PE"]
        if prod(ins) != prod(outs):
            raise LayerAttributeError(f"{name}: inp_shape {ins} and out_shape {outs} hold "
                                      "different sizes")
        check_divides(a, ins[-1], P, "PE", "inp_shape[-1]")
        check_divides(a, outs[-1], P, "PE", "out_shape[-1]")
        words = prod(outs) // P
        # dse model: the data passes through; only the stream handshake
        return _cost(f"{name}_{impl}", words, 0, 0, 0, (P * bits(a["inp_dtype"]),),
                     (P * bits(a["out_dtype"]),), (words,), (prod(ins) // P,),
                     COST_FINN_CYCLES)

    return estimate


def squeeze_options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(math.gcd(a["inp_shape"][-1], a["out_shape"][-1])):
        yield {"PE": P}


SQUEEZE = OpModel("Squeeze", SQUEEZE_SCHEMA, ("hls",), squeeze_estimate_for("Squeeze"),
                  squeeze_options, "drop unit axes of a stream (finn-plus)")
UNSQUEEZE = OpModel("Unsqueeze", SQUEEZE_SCHEMA, ("hls",), squeeze_estimate_for("Unsqueeze"),
                    squeeze_options, "insert unit axes into a stream (finn-plus)")

# ---------------------------------------------------------------------------------------------
# SelectToken (finn-rtllib crop: keep one token of a sequence, e.g. ViT's class token)

SELECT_SCHEMA: dict[str, Any] = {
    "NumTokens": 0,
    "NumChannels": 0,
    "TokenIndex": 0,
    "SIMD": 1,
    "inputDataType": "INT8",
    "outputDataType": "",
}


def select_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    T, C, S = a["NumTokens"], a["NumChannels"], a["SIMD"]
    if not -T <= a["TokenIndex"] < T:
        raise LayerAttributeError(f"SelectToken: TokenIndex={a['TokenIndex']} selects no token "
                                  f"of NumTokens={T}")
    check_divides(a, C, S, "SIMD", "NumChannels")
    ib = bits(a["inputDataType"])
    ob = bits(a["outputDataType"] or a["inputDataType"])
    # dse model: a token counter and a pass/drop gate (the crop core's control)
    return _cost(f"SelectToken_{impl}", T * C // S, CONTROL_LUT // 3, 0, 0, (S * ib,),
                 (S * ob,), (C // S,), (T * C // S,), COST_FINN_CYCLES)


SELECT_TOKEN = OpModel("SelectToken", SELECT_SCHEMA, ("rtl",), select_estimate,
                       simd_options("NumChannels"),
                       "keep one token of a sequence, e.g. ViT's class token (finn-plus)")


# ---------------------------------------------------------------------------------------------
# Pad1D (finn-rtllib pad: stored pad tokens around a token sequence): FINN estimates

PAD1D_SCHEMA: dict[str, Any] = {
    "NumTokens": 0,
    "NumChannels": 0,
    "PadLeft": 0,
    "PadRight": 0,
    "SIMD": 1,
    "inputDataType": "INT8",
    "outputDataType": "",
}


def pad1d_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    T, C, S = a["NumTokens"], a["NumChannels"], a["SIMD"]
    pads = a["PadLeft"] + a["PadRight"]
    if a["PadLeft"] < 0 or a["PadRight"] < 0:
        raise LayerAttributeError(f"Pad1D: PadLeft={a['PadLeft']}, PadRight={a['PadRight']} "
                                  "must be >= 0")
    check_divides(a, C, S, "SIMD", "NumChannels")
    ib = bits(a["inputDataType"])
    ob = bits(a["outputDataType"] or a["inputDataType"])
    words = (T + pads) * C // S
    return _cost(f"Pad1D_{impl}", words, 128 + C * max(1, pads), 0, 0, (S * ib,), (S * ob,),
                 (words,), (T * C // S,), COST_FINN)


PAD1D = OpModel("Pad1D", PAD1D_SCHEMA, ("rtl",), pad1d_estimate, simd_options("NumChannels"),
                "pad a token sequence with stored tokens (finn-plus)")

# ---------------------------------------------------------------------------------------------
# Infrastructure stages finn-plus inserts around a dataflow partition. FINN estimates nothing
# for them (not even cycles): dse books a stream pass-through, one word per cycle, no logic.

PASS_SCHEMA: dict[str, Any] = {
    "folded_shape": [1],
    "normal_shape": [1],
    "dataType": "INT8",
}


def remove_datapath_estimate(a: Attrs, impl: str, part: str | None,
                             finn: str = "plus") -> LayerCost:
    fs = list(a["folded_shape"])
    w = fs[-1] * bits(a["dataType"])
    words = prod(fs[:-1])
    return _cost(f"RemoveDataPath_{impl}", words, 0, 0, 0, (w,), (w,), (words,), (words,),
                 COST_DSE)


REMOVE_DATAPATH = OpModel("RemoveDataPath", PASS_SCHEMA, ("rtl",), remove_datapath_estimate,
                          no_folding, "stream stage without a data path (finn-plus)")

TLAST_SCHEMA: dict[str, Any] = {
    "NumIters": 0,
    "DynIters": 1,
    "Direction": "out",
    "StreamWidth": 0,
    "ElemWidth": 0,
    "Protocol": "external",
    "dataType": "INT8",
    "normal_shape": [1],
    "folded_shape": [1],
}


def tlast_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    n, w = a["NumIters"], a["StreamWidth"]
    return _cost(f"TLastMarker_{impl}", n, 0, 0, 0, (w,), (w,), (n,), (n,), COST_DSE)


TLAST_MARKER = OpModel("TLastMarker", TLAST_SCHEMA, ("hls",), tlast_estimate, no_folding,
                       "AXI-Stream TLAST marking at a partition boundary (finn-plus)")

CHECKSUM_SCHEMA: dict[str, Any] = {
    "words_per_frame": 0,
    "items_per_word": 0,
    "inputDataType": "INT8",
    "folded_shape": [1],
}


def checksum_estimate(a: Attrs, impl: str, part: str | None, finn: str = "plus") -> LayerCost:
    n = a["words_per_frame"]
    w = a["items_per_word"] * bits(a["inputDataType"])
    return _cost(f"CheckSum_{impl}", n, 0, 0, 0, (w,), (w,), (n,), (n,), COST_DSE)


CHECKSUM = OpModel("CheckSum", CHECKSUM_SCHEMA, ("hls",), checksum_estimate, no_folding,
                   "stream checksum for debugging (finn-plus)")

MODELS = (HW_WHERE, INNER_SHUFFLE, OUTER_SHUFFLE, REPLICATE_STREAM, SQUEEZE, UNSQUEEZE,
          SELECT_TOKEN, PAD1D, REMOVE_DATAPATH, TLAST_MARKER, CHECKSUM)
