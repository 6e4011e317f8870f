"""Hadamard: a streaming fast Walsh-Hadamard transform layer (dse's own model; no FINN op).

Rotated networks (QuaRot, arXiv:2404.00456; SpinQuant, arXiv:2405.16406) multiply activations
online by a Hadamard matrix H (H H^T = n I, entries +-1, a 1/sqrt(n) scale folded into the next
quantizer). A dense MVAU would spend n^2 MACs per vector; the fast Walsh-Hadamard transform
needs n log2 n additions/subtractions (log2 n butterfly stages of n/2 add-sub pairs). Sizes
that are not a power of two are ``2^k * m`` with an m x m Hadamard block (QuaRot uses m = 12,
20, 28, 40, 172 for Llama's 11008 = 64 * 172): n k additions for the butterflies plus n (m - 1)
for the dense blocks, as the Kronecker product H_2^k (x) H_m factors.

Hardware (a pipelined single-path butterfly, as streaming FFTs are built): ``PE`` elements
enter per cycle; every stage has PE/2 add-sub pairs (PE adders) widening the data by one bit;
a stage whose butterfly stride 2^(s-1) is at least PE pairs elements that arrive on different
cycles and needs a delay line of stride/PE words of PE elements; strides below PE are wires.

* cycles = numInputVectors * NumChannels / PE (one PE-wide word per cycle, fully pipelined);
* LUT = sum over stages of PE * (in bits + stage) (one LUT per bit per adder, carry chains)
  + the dense m-blocks' adder trees + delay lines in LUTRAM (FINN's rule: width * ceil(depth/64))
  when at most 64 words deep, else in BRAM (FINN's BRAM18 table);
* DSP = 0; output type = input bits + log2 of the transform length (exact integer sum).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from dse.exceptions import LayerAttributeError
from dse.models._common import (
    COST_DSE,
    Attrs,
    LayerCost,
    OpModel,
    bits,
    bram18_table,
    ceil_div,
    check_divides,
    divisors,
    ff_stand_in,
    prod,
)

SCHEMA: dict[str, Any] = {
    "NumChannels": 0,  # elements per vector (a multiple of Size)
    "Size": 0,  # transform length (0: NumChannels): 2^k * m
    "PE": 1,
    "inputDataType": "INT8",
    "outputDataType": "INT16",
    "numInputVectors": [1],
    "ram_style": "auto",
}

# QuaRot's dense Hadamard blocks besides powers of two (its hadamard_utils: 12, 20, 28, 40, 172)
DENSE_BLOCKS = (1, 12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172)


def factor(n: int) -> tuple[int, int]:
    """(k, m) with n = 2^k * m and m a known Hadamard block size (1 = pure power of two)."""
    for m in DENSE_BLOCKS:
        if n % m == 0 and (n // m) & (n // m - 1) == 0:
            return (n // m).bit_length() - 1, m
    raise LayerAttributeError(
        f"Hadamard: no Hadamard matrix of size {n} dse knows (2^k times one of "
        f"{', '.join(map(str, DENSE_BLOCKS[1:]))}); pad the dimension (--expand)")


def additions(n: int) -> int:
    """Additions/subtractions of one length-n fast transform: n k + n (m - 1)."""
    k, m = factor(n)
    return n * k + n * (m - 1)


def _in_bits(a: Attrs) -> int:
    """Adder input width: the input's exact integer (a minifloat's 2^E + M bits)."""
    from dse.models.minifloat import operand

    return operand(str(a["inputDataType"])).integer_bits


def _size(a: Attrs) -> int:
    return int(a["Size"]) or int(a["NumChannels"])


def _stages(a: Attrs) -> list[tuple[int, int]]:
    """(stride, width in bits) of every butterfly stage."""
    k, _ = factor(_size(a))
    B = _in_bits(a)
    return [(2 ** (s - 1), B + s) for s in range(1, k + 1)]


def estimate(a: Attrs, impl: str, part: str | None, finn: str = "main") -> LayerCost:
    n, C, P = _size(a), int(a["NumChannels"]), int(a["PE"])
    if C % n:
        raise LayerAttributeError(f"Hadamard: Size={n} must divide NumChannels={C}")
    check_divides(a, C, P, "PE", "NumChannels")
    nvec = prod(a["numInputVectors"])
    k, m = factor(n)
    lut = bram = 0
    for stride, width in _stages(a):
        lut += P * width  # PE adders (PE/2 add-sub pairs)
        depth = stride // P
        if depth >= 1:  # a delay line of `depth` PE-wide words
            if depth <= 64 or a["ram_style"] == "distributed":
                lut += P * width * ceil_div(depth, 64)
            else:
                bram += bram18_table(depth, P * width)
    if m > 1:  # dense m-blocks: m - 1 adds per output at the stage-k width, plus an m-deep buffer
        w = _in_bits(a) + k + math.ceil(math.log2(m))
        lut += P * (m - 1) * w + P * w * ceil_div(ceil_div(m, P), 64)
    in_w = P * bits(a["inputDataType"])
    out_w = P * bits(a["outputDataType"])
    return LayerCost(op_type="Hadamard_hls", cycles=nvec * C // P, lut=lut, bram18=bram, uram=0,
                     dsp=0, ff=ff_stand_in(lut, (in_w,), (out_w,)), instream_widths=(in_w,),
                     outstream_widths=(out_w,), output_words=(nvec * C // P,),
                     input_words=(nvec * C // P,), source=COST_DSE)


def options(a: Attrs, impl: str) -> Iterator[dict[str, Any]]:
    for P in divisors(int(a["NumChannels"])):
        yield {"PE": P}


MODEL = OpModel(name="Hadamard", schema=SCHEMA, impls=("hls",), estimate=estimate,
                options=options, doc="fast Walsh-Hadamard transform (rotations; dse's model)")
