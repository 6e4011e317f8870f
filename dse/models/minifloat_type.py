"""Minifloat operand types: dse's descriptor of a (sign, E exponent bits, M mantissa bits,
exponent bias) floating-point format with its special-value convention.

FINN and qonnx's ``DataType`` have no minifloat HW type (qonnx's ``FLOAT<E,M,B>`` is a
software type; no FINN HW op accepts it), so dse names them itself, ``FP<E,M,B[,conv]>``:

* ``FP<2,1,1>``, ``FP<3,2,3>``: every code is a finite number (OCP MX FP4 E2M1 and FP6 E3M2,
  OCP Microscaling Formats spec v1.0, section 5.3.3; brevitas ``FpOCPMixin`` gives them no
  inf/NaN values);
* ``FP<4,3,7,fn>``: only the all-ones code is NaN, no infinities (OCP 8-bit Floating Point
  spec v1.0, E4M3: max normal 448; brevitas ``FpOCPMixin``: ``nan_values=('111',)``,
  ``inf_values=None``);
* ``FP<5,2,15,ieee>``: the top exponent holds inf and NaN, as IEEE 754 (OCP FP8 E5M2: max
  normal 57344);
* ``FP<E,M,B,max=V>``: any other largest finite value ``V`` (qonnx ``FloatQuant``'s
  ``max_val`` input clamps to ``min(V, all-codes max)``).

dse streams and accumulates a minifloat as what it exactly is: an integer ``k`` in units of
the smallest subnormal ``u = 2^(1 - B - M)``. A normal value ``1.m * 2^(e - B)`` is
``(2^M + m) << (e - 1)`` such units, a subnormal ``0.m * 2^(1 - B)`` is ``m`` units, so the
largest magnitude needs ``M + 1 + (e_max - 1)`` bits: with the top exponent usable
(``e_max = 2^E - 1``) the signed integer has ``2^E + M`` bits (E4M3 -> 19, E2M1 -> 5,
E3M2 -> 10); with it reserved (IEEE/OCP E5M2, ``e_max = 2^E - 2``) one bit less (34 - 1 = 33).
``min()``/``max()`` of this type are the bounds of that integer (the value dse's streams and
accumulators carry; the real value is ``k * u * scale``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CONVENTIONS = ("", "fn", "ieee")  # all codes finite / OCP E4M3 NaN code / IEEE top exponent
_NAME = re.compile(r"^FP<(\d+),(\d+),(-?\d+)(?:,(fn|ieee|max=[0-9.eE+-]+))?>$")


@dataclass(frozen=True, slots=True, kw_only=True)
class MinifloatType:
    """A signed minifloat format (``has_subnormal`` always: brevitas exports only those)."""

    exponent_bits: int
    mantissa_bits: int
    bias: int
    convention: str = ""  # "", "fn", "ieee"
    max_override: float | None = None  # a FloatQuant max_val below the convention's

    # -- qonnx DataType protocol (what dse's cost models and streams call) --------------

    @property
    def name(self) -> str:
        tail = f",{self.convention}" if self.convention else ""
        if self.max_override is not None:
            tail = f",max={self.max_override:g}"
        return f"FP<{self.exponent_bits},{self.mantissa_bits},{self.bias}{tail}>"

    def get_canonical_name(self) -> str:
        return self.name

    def bitwidth(self) -> int:
        """Bits of one stored/streamed element: sign + exponent + mantissa."""
        return 1 + self.exponent_bits + self.mantissa_bits

    def signed(self) -> bool:
        return True

    def is_integer(self) -> bool:
        return False

    def min(self) -> int:
        return -self.max_int

    def max(self) -> int:
        return self.max_int

    def __str__(self) -> str:
        return self.name

    # -- the format ------------------------------------------------------------------------

    @property
    def unit(self) -> float:
        """The smallest subnormal, 2^(1 - bias - M): the unit of dse's integer view."""
        return 2.0 ** (1 - self.bias - self.mantissa_bits)

    @property
    def max_value(self) -> float:
        """Largest finite value (OCP/IEEE conventions as in the module docstring)."""
        E, M, B = self.exponent_bits, self.mantissa_bits, self.bias
        top = 2**E - 1 - (1 if self.convention == "ieee" else 0)
        mant = 2.0 - 2.0 ** (1 - M) if self.convention == "fn" else 2.0 - 2.0**-M
        full = mant * 2.0 ** (top - B)
        return full if self.max_override is None else min(full, self.max_override)

    @property
    def max_int(self) -> int:
        """Largest magnitude as an integer in subnormal units."""
        return int(self.max_value / self.unit)

    @property
    def integer_bits(self) -> int:
        """Bits of the signed integer (two's complement) holding every value exactly."""
        return int(self.max_int).bit_length() + 1

    @property
    def top_exponent_usable(self) -> bool:
        return self.convention != "ieee"

    def magnitudes(self) -> np.ndarray:
        """Every representable magnitude in subnormal units, ascending (0 included)."""
        return _magnitudes(self.exponent_bits, self.mantissa_bits, self.max_int)

    def levels(self) -> np.ndarray:
        """Every finite value in subnormal units, ascending (-0 = +0 counted once)."""
        m = self.magnitudes()
        return np.concatenate([-m[:0:-1], m])


@lru_cache(maxsize=None)
def _magnitudes(E: int, M: int, max_int: int) -> np.ndarray:
    ks = {m for m in range(2**M)}  # exponent field 0: subnormals m * u
    for e in range(1, 2**E):
        ks.update((2**M + m) << (e - 1) for m in range(2**M))
    out = np.array(sorted(k for k in ks if k <= max_int), dtype=np.int64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def parse(name: str) -> MinifloatType | None:
    """The minifloat type named ``name`` (``FP<E,M,B[,conv]>``), None if it is not one."""
    m = _NAME.match(name.strip()) if isinstance(name, str) else None
    if m is None:
        return None
    E, M, B = int(m.group(1)), int(m.group(2)), int(m.group(3))
    tail = m.group(4) or ""
    if not (1 <= E <= 8 and 0 <= M <= 10):
        return None
    if tail.startswith("max="):
        return MinifloatType(exponent_bits=E, mantissa_bits=M, bias=B,
                             max_override=float(tail[4:]))
    return MinifloatType(exponent_bits=E, mantissa_bits=M, bias=B, convention=tail)


def is_minifloat(name: object) -> bool:
    return isinstance(name, str) and name.startswith("FP<") and parse(name) is not None


def from_float_quant(E: int, M: int, bias: float, max_val: float, has_inf: bool,
                     has_nan: bool) -> MinifloatType:
    """The format a qonnx ``FloatQuant`` quantizes to: its (E, M, bias) and the convention
    whose largest finite value equals ``max_val`` (brevitas exports OCP's), else ``max=``."""
    if bias != round(bias):
        raise ValueError(f"exponent bias {bias} is not an integer")
    for conv in (("ieee",) if has_inf else ()) + (("fn", "") if has_nan else ("", "fn")):
        t = MinifloatType(exponent_bits=E, mantissa_bits=M, bias=int(bias), convention=conv)
        if math.isclose(t.max_value, max_val, rel_tol=0, abs_tol=t.unit / 4):
            return t
    base = MinifloatType(exponent_bits=E, mantissa_bits=M, bias=int(bias))
    if not 0 < max_val < base.max_value:
        raise ValueError(f"max_val {max_val} outside (0, {base.max_value}] of E{E}M{M}")
    return MinifloatType(exponent_bits=E, mantissa_bits=M, bias=int(bias),
                         max_override=float(max_val))


# the formats the LLM options and the exploration name (OCP 8-bit FP spec v1.0; OCP MX v1.0)
NAMED = {
    "fp8": "FP<4,3,7,fn>", "fp8e4m3": "FP<4,3,7,fn>", "fp8e5m2": "FP<5,2,15,ieee>",
    "fp6": "FP<3,2,3>", "fp6e3m2": "FP<3,2,3>", "fp6e2m3": "FP<2,3,1>",
    "fp4": "FP<2,1,1>", "fp4e2m1": "FP<2,1,1>",
}
