"""Resources: named FPGA resource counts and external-memory use (no positional arrays,
no string-keyed dicts inside the solver; ``as_dict``/``from_dict`` at the file boundary)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dse.exceptions import SpecError

#: the five FPGA resources (board specs and plan files name these)
RESOURCE_NAMES = ("lut", "ff", "bram18", "uram", "dsp")
#: external memory (HBM/DDR): bits stored, bits read per frame, pseudo-channels
EXTERNAL_NAMES = ("ext_bits", "ext_bpf", "ext_channels")
#: every kind a solver books, in the order the solver walks them
KINDS = RESOURCE_NAMES + EXTERNAL_NAMES


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What a layer, a board or a plan uses or may use: FPGA resources and external memory."""

    lut: int = 0
    ff: int = 0
    bram18: int = 0
    uram: int = 0
    dsp: int = 0
    ext_bits: int = 0
    ext_bpf: int = 0
    ext_channels: int = 0

    # (the solvers add and compare these per layer and option: spelled out, not looped)
    def __add__(self, other: Resources) -> Resources:
        return Resources(lut=self.lut + other.lut, ff=self.ff + other.ff,
                         bram18=self.bram18 + other.bram18, uram=self.uram + other.uram,
                         dsp=self.dsp + other.dsp, ext_bits=self.ext_bits + other.ext_bits,
                         ext_bpf=self.ext_bpf + other.ext_bpf,
                         ext_channels=self.ext_channels + other.ext_channels)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(lut=self.lut - other.lut, ff=self.ff - other.ff,
                         bram18=self.bram18 - other.bram18, uram=self.uram - other.uram,
                         dsp=self.dsp - other.dsp, ext_bits=self.ext_bits - other.ext_bits,
                         ext_bpf=self.ext_bpf - other.ext_bpf,
                         ext_channels=self.ext_channels - other.ext_channels)

    @classmethod
    def of(cls, cost: Any) -> Resources:
        """The FPGA resources of a cost estimate (anything with ``lut`` ... ``dsp``)."""
        return cls(lut=int(cost.lut), ff=int(cost.ff), bram18=int(cost.bram18),
                   uram=int(cost.uram), dsp=int(cost.dsp))

    @classmethod
    def uniform(cls, value: int) -> Resources:
        """Every kind at ``value`` (e.g. a use that fits nowhere)."""
        return cls(**dict.fromkeys(KINDS, value))

    def get(self, kind: str, default: int = 0) -> int:
        """The count of ``kind`` (one of ``KINDS``); ``default`` for any other name, so that
        code walking the kinds of a table reads a record and a mapping alike."""
        return getattr(self, kind) if kind in KINDS else default

    def items(self, kinds: Iterable[str] = KINDS) -> Iterator[tuple[str, int]]:
        """(kind, count) in ``kinds`` order: for the code that genuinely loops over kinds."""
        return ((n, getattr(self, n)) for n in kinds)

    def weighted(self, w: Mapping[str, float]) -> float:
        """Each kind times its weight in ``w`` (every kind), summed in ``KINDS`` order:
        spelled out, as the greedy search calls it per layer and option."""
        return (w["lut"] * self.lut + w["ff"] * self.ff + w["bram18"] * self.bram18
                + w["uram"] * self.uram + w["dsp"] * self.dsp + w["ext_bits"] * self.ext_bits
                + w["ext_bpf"] * self.ext_bpf + w["ext_channels"] * self.ext_channels)

    def values(self, kinds: Iterable[str] = KINDS) -> list[int]:
        return [getattr(self, n) for n in kinds]

    def with_counts(self, **counts: int) -> Resources:
        """A copy with the given kinds set."""
        return replace(self, **counts)

    def plus(self, kind: str, amount: int) -> Resources:
        """A copy with ``amount`` more of ``kind``."""
        return replace(self, **{kind: getattr(self, kind) + amount})

    def times(self, factor: int) -> Resources:
        return Resources(**{n: getattr(self, n) * factor for n in KINDS})

    def scaled(self, caps: Mapping[str, float]) -> Resources:
        """Each FPGA resource times its cap, rounded down (what a plan may use)."""
        return Resources(**{n: int(getattr(self, n) * caps.get(n, 1.0)) for n in RESOURCE_NAMES})

    def clamp_nonnegative(self) -> Resources:
        return Resources(**{n: max(0, getattr(self, n)) for n in KINDS})

    def fits(self, limit: Resources, kinds: Iterable[str] = KINDS) -> bool:
        """Every kind of ``kinds`` within ``limit``."""
        if kinds is KINDS:
            return (self.lut <= limit.lut and self.ff <= limit.ff
                    and self.bram18 <= limit.bram18 and self.uram <= limit.uram
                    and self.dsp <= limit.dsp and self.ext_bits <= limit.ext_bits
                    and self.ext_bpf <= limit.ext_bpf and self.ext_channels <= limit.ext_channels)
        return all(getattr(self, n) <= getattr(limit, n) for n in kinds)

    def over(self, limit: Resources, kinds: Iterable[str] = KINDS) -> list[str]:
        """Names of the kinds exceeding ``limit``."""
        return [n for n in kinds if getattr(self, n) > getattr(limit, n)]

    def fraction_of(self, cap: Resources, kind: str) -> float:
        """This use of ``kind`` over ``cap``'s (against 1 where the capacity is 0)."""
        return getattr(self, kind) / max(1, getattr(cap, kind))

    def as_dict(self, *, external: bool = False) -> dict[str, int]:
        """The plan/spec file form: the FPGA resources (and the external kinds if asked)."""
        return {n: getattr(self, n) for n in (KINDS if external else RESOURCE_NAMES)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "resources") -> Resources:
        unknown = set(d) - set(RESOURCE_NAMES)
        if unknown:
            raise SpecError(
                f"{where}: unknown resource(s) {sorted(unknown)}; use {', '.join(RESOURCE_NAMES)}"
            )
        out = {}
        for n in RESOURCE_NAMES:
            v = d.get(n, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise SpecError(f"{where}.{n} must be a non-negative number, got {v!r}")
            out[n] = int(v)
        return cls(**out)

    @classmethod
    def least(cls, items: Iterable[Resources], kinds: Iterable[str] = KINDS) -> Resources:
        """Kind by kind, the least of ``items`` (the other kinds 0)."""
        rows = list(items)
        return cls(**{n: min(getattr(r, n) for r in rows) for n in kinds})

    @classmethod
    def most(cls, items: Iterable[Resources], kinds: Iterable[str] = KINDS) -> Resources:
        """Kind by kind, the most of ``items`` (the other kinds 0)."""
        rows = list(items)
        return cls(**{n: max(getattr(r, n) for r in rows) for n in kinds})

    @classmethod
    def total(cls, items: Iterable[Resources]) -> Resources:
        acc = cls()
        for r in items:
            acc = acc + r
        return acc

