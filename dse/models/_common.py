"""Shared pieces of the FINN cost models: attribute parsing, data types, memory tables.

Everything here is pure and cheap. Formulas restate FINN's own estimate functions
(FINN ``main`` 39f0c9a6, finn-plus 1.6.1); see ``shared/reference/finn_cost_formulas.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from qonnx.core.datatype import DataType

from dse.exceptions import IllegalFoldingError, LayerAttributeError

REQUIRED = object()  # marker for attributes without a FINN default


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def divisors(n: int) -> list[int]:
    """Ascending divisors of ``n`` (FINN's folding candidates)."""
    n = int(n)
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
        d += 1
    return small + large[::-1]


@lru_cache(maxsize=None)
def dtype(name: str) -> DataType:
    """A FINN/qonnx data type, or one of dse's minifloat types (``FP<E,M,B[,conv]>``, see
    ``dse.models.minifloat_type``; it answers bitwidth/signed/min/max like a DataType)."""
    from dse.models.minifloat_type import parse

    mf = parse(name) if isinstance(name, str) and name.startswith("FP<") else None
    if mf is not None:
        return mf
    try:
        return DataType[name]
    except (KeyError, ValueError):
        raise LayerAttributeError(
            f"unknown data type {name!r}; use a FINN/qonnx name such as INT4, UINT8, BIPOLAR, "
            "or a minifloat FP<E,M,B[,fn|ieee]> such as FP<4,3,7,fn> (OCP FP8 E4M3)"
        ) from None


def bits(name: str) -> int:
    return dtype(name).bitwidth()


def signed(name: str) -> bool:
    return dtype(name).signed()


# ---------------------------------------------------------------------------------------------
# Attributes


def _parse_list(value: Any, name: str, op: str) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise LayerAttributeError(
                f"{op}: attribute {name}={value!r} is not a list; give a list or a JSON string "
                "such as \"[1, 28, 28]\""
            ) from None
    if isinstance(value, (int, float)):
        return [int(value)]
    if not isinstance(value, (list, tuple)):
        raise LayerAttributeError(f"{op}: attribute {name} must be a list, got {value!r}")
    return list(value)


def _coerce(value: Any, default: Any, name: str, op: str) -> Any:
    if isinstance(default, bool) or isinstance(default, int):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise LayerAttributeError(
                    f"{op}: attribute {name}={value!r} must be an integer"
                ) from None
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise LayerAttributeError(f"{op}: attribute {name}={value!r} must be an integer")
            value = int(value)
        if not isinstance(value, int):
            raise LayerAttributeError(f"{op}: attribute {name}={value!r} must be an integer")
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list):
        return _parse_list(value, name, op)
    if isinstance(default, str):
        if isinstance(value, bytes):
            value = value.decode()
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class Attrs:
    """Normalized node attributes: FINN names, FINN defaults filled in, values typed."""

    op_type: str
    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


# sizes FINN needs >= 1 (a zero or negative one is a malformed node, not a cheap layer)
POSITIVE = frozenset({
    "MW", "MH", "PE", "SIMD", "NumChannels", "Channels", "IFMChannels", "Labels", "K",
    "numSteps", "NumOutputStreams", "EmbeddingDim", "NumEmbeddings", "inWidth", "outWidth",
})
POSITIVE_LISTS = frozenset({
    "ConvKernelDim", "Dilation", "Dim", "IFMDim", "ImgDim", "Kernel", "KernelSize", "OFMDim",
    "OutImgDims", "PoolDim", "Stride", "numInputVectors", "ifm_dim", "inp_shape", "out_shape",
    "lhs_shape", "rhs_shape", "shape", "folded_shape", "normal_shape", "InputShape",
    "ChannelsPerStream", "ElemsPerStream",
})
NONNEG_LISTS = frozenset({"Padding"})
MAX_DIM = 2**31 - 1


def _check_range(op: str, name: str, value: Any) -> None:
    if name in POSITIVE and isinstance(value, int) and not 1 <= value <= MAX_DIM:
        raise LayerAttributeError(f"{op}: attribute {name}={value} must be 1 .. {MAX_DIM}")
    if (name in POSITIVE_LISTS or name in NONNEG_LISTS) and isinstance(value, (list, tuple, int)):
        lo = 0 if name in NONNEG_LISTS else 1
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v \
                    or not lo <= v <= MAX_DIM or (isinstance(v, float) and not v.is_integer()):
                raise LayerAttributeError(
                    f"{op}: attribute {name}={value} needs integers {lo} .. {MAX_DIM}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62:
        raise LayerAttributeError(f"{op}: attribute {name}={value} is out of range")


def normalize(op_type: str, raw: Mapping[str, Any], schema: Mapping[str, Any]) -> Attrs:
    """Fill FINN defaults and coerce types, checking that sizes are in range; unknown
    attributes are kept as given."""
    out: dict[str, Any] = {}
    for name, default in schema.items():
        if name in raw and raw[name] is not None and raw[name] != "":
            out[name] = _coerce(raw[name], default if default is not REQUIRED else None, name,
                                op_type) if default is not REQUIRED else raw[name]
            _check_range(op_type, name, out[name])
        elif default is REQUIRED:
            raise LayerAttributeError(
                f"{op_type}: required attribute {name!r} is missing "
                f"(give it under FINN's attribute name)"
            )
        elif name in POSITIVE and default == 0:  # a size FINN has no default for
            raise LayerAttributeError(f"{op_type}: required attribute {name!r} is missing "
                                      "(give it under FINN's attribute name)")
        else:
            out[name] = list(default) if isinstance(default, list) else default
    for name, value in raw.items():
        if name not in out:
            out[name] = value
    return Attrs(op_type, out)


def req_int(a: Attrs, name: str) -> int:
    return _coerce(a[name], 0, name, a.op_type)


def req_list(a: Attrs, name: str) -> list:
    return _parse_list(a[name], name, a.op_type)


def req_str(a: Attrs, name: str) -> str:
    v = a[name]
    return v.decode() if isinstance(v, bytes) else str(v)


def check_divides(a: Attrs, total: int, fold: int, what: str, total_name: str) -> None:
    if fold < 1 or total % fold != 0:
        raise IllegalFoldingError(
            f"{a.op_type}: {what}={fold} must divide {total_name}={total}; "
            f"legal values are {divisors(total)}"
        )


# ---------------------------------------------------------------------------------------------
# Part families


def part_family(part: str | None) -> str:
    """'versal' (DSP58), '7series' (DSP48E1) or 'usplus' (DSP48E2), as FINN decides it."""
    if not part:
        return "usplus"
    p = part.lower()
    if p.startswith(("xcvc", "xcve", "xcvp", "xcvm", "xqvc", "xqvm", "xqrvc", "xcv80")):
        return "versal"
    if len(p) > 2 and p[2] == "7":
        return "7series"
    return "usplus"


# ---------------------------------------------------------------------------------------------
# Memory tables


def bram18_table(depth: int, width: int, divs: tuple[int, int, int] = (4, 9, 18)) -> int:
    """FINN's RAMB18 count for a memory of ``depth`` words of ``width`` bits.

    ``divs`` are the width steps of the 4/9/18/36-bit modes (the VVAU uses 4/8/16/32).
    """
    d4, d9, d18 = divs
    d36 = 2 * d18
    if width == 1:
        return ceil_div(depth, 16384)
    if width == 2:
        return ceil_div(depth, 8192)
    if width <= 4:
        return ceil_div(depth, 4096) * ceil_div(width, d4)
    if width <= 9:
        return ceil_div(depth, 2048) * ceil_div(width, d9)
    if width <= 18 or depth > 512:
        return ceil_div(depth, 1024) * ceil_div(width, d18)
    return ceil_div(depth, 512) * ceil_div(width, d36)


def log2(x: float) -> float:
    return math.log2(x)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerCost:
    """FINN's estimates for one HW layer at one folding.

    ``cycles`` is FINN's ``get_exp_cycles`` (cycles per frame, the layer's II); resources follow
    ``node_res_estimation`` (``bram18`` counts RAMB18 blocks). FINN has no FF model; ``ff`` is
    our own conservative stand-in (see :func:`ff_stand_in`), reported apart from FINN's numbers.
    """

    op_type: str
    cycles: int
    lut: int
    bram18: int
    uram: int
    dsp: int
    ff: int = 0
    instream_widths: tuple[int, ...]
    outstream_widths: tuple[int, ...]
    weightstream_width: int = 0
    output_words: tuple[int, ...] = field(default=())
    input_words: tuple[int, ...] = field(default=())
    source: str = "FINN estimate"  # where the numbers come from: see COST_SOURCES

    @property
    def instream_width(self) -> int:
        return self.instream_widths[0] if self.instream_widths else 0

    @property
    def outstream_width(self) -> int:
        return self.outstream_widths[0] if self.outstream_widths else 0

    @property
    def instream_widths_padded(self) -> tuple[int, ...]:
        return tuple(ceil_div(w, 8) * 8 for w in self.instream_widths)

    @property
    def outstream_widths_padded(self) -> tuple[int, ...]:
        return tuple(ceil_div(w, 8) * 8 for w in self.outstream_widths)

    @property
    def number_output_values(self) -> int:
        return self.output_words[0] if self.output_words else 0

    @property
    def out_bits_per_frame(self) -> int:
        """Bits per frame on output 0 (unpadded stream words x width)."""
        return self.outstream_width * self.number_output_values

    def as_dict(self) -> dict[str, Any]:
        return {
            "op_type": self.op_type,
            "cycles": self.cycles,
            "lut": self.lut,
            "ff": self.ff,
            "bram18": self.bram18,
            "uram": self.uram,
            "dsp": self.dsp,
            "instream_widths": list(self.instream_widths),
            "outstream_widths": list(self.outstream_widths),
            "weightstream_width": self.weightstream_width,
            "output_words": list(self.output_words),
            "source": self.source,
        }


# Where a layer's numbers come from. FINN's own estimate functions wherever finn-plus 1.6.1
# implements them; dse's structural models (docs/transformer-cost-models.md) where FINN returns
# its HWCustomOp default (0 resources, 0 cycles).
COST_FINN = "FINN estimate"
COST_FINN_CYCLES = "FINN cycles + dse resource model"
COST_DSE = "dse model"
COST_SOURCES = (COST_FINN, COST_FINN_CYCLES, COST_DSE)


def ff_stand_in(lut: int, in_widths: Iterable[int], out_widths: Iterable[int]) -> int:
    """FINN has no FF estimate. We book one FF per LUT plus the stream registers.

    This is a stand-in so FF caps can be checked at all; it is not one of FINN's numbers.
    """
    return int(lut + sum(in_widths) + sum(out_widths))


@dataclass(frozen=True, slots=True)
class OpModel:
    """One FINN op type: its attribute schema, its estimate function and its folding options."""

    name: str  # generic op type, e.g. "MVAU"
    schema: Mapping[str, Any]
    impls: tuple[str, ...]  # "hls", "rtl"
    estimate: Callable[[Attrs, str, str | None, str], LayerCost]  # (attrs, impl, part, finn)
    options: Callable[[Attrs, str], Iterable[dict[str, Any]]] | None = None
    doc: str = ""
