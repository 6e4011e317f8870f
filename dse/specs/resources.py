"""Resources: named FPGA resource counts (no positional arrays)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dse.exceptions import SpecError

RESOURCE_NAMES = ("lut", "ff", "bram18", "uram", "dsp")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    lut: int = 0
    ff: int = 0
    bram18: int = 0
    uram: int = 0
    dsp: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(**{n: getattr(self, n) + getattr(other, n) for n in RESOURCE_NAMES})

    def __sub__(self, other: Resources) -> Resources:
        return Resources(**{n: getattr(self, n) - getattr(other, n) for n in RESOURCE_NAMES})

    def scaled(self, caps: Mapping[str, float]) -> Resources:
        """Each resource times its cap, rounded down (what a plan may use)."""
        return Resources(**{n: int(getattr(self, n) * caps.get(n, 1.0)) for n in RESOURCE_NAMES})

    def clamp_nonnegative(self) -> Resources:
        return Resources(**{n: max(0, getattr(self, n)) for n in RESOURCE_NAMES})

    def fits(self, limit: Resources) -> bool:
        return all(getattr(self, n) <= getattr(limit, n) for n in RESOURCE_NAMES)

    def over(self, limit: Resources) -> list[str]:
        """Names of the resources exceeding ``limit``."""
        return [n for n in RESOURCE_NAMES if getattr(self, n) > getattr(limit, n)]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in RESOURCE_NAMES}

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
    def total(cls, items: Iterable[Resources]) -> Resources:
        acc = cls()
        for r in items:
            acc = acc + r
        return acc


