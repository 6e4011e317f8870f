"""Text rendering shared by the commands: tables, numbers, cost-source tags."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

Progress = Callable[[str], None]


def progress_to_stderr(msg: str) -> None:
    """Progress lines go to stderr, flushed at once (the result goes to stdout)."""
    print(msg, file=sys.stderr, flush=True)


def cost_tag(source: str) -> str:
    """Short column tag of a cost source (dse.models._common.COST_SOURCES)."""
    return {"FINN estimate": "FINN", "FINN cycles + dse resource model": "FINN+dse",
            "dse model": "dse"}.get(source, source)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] | None = None
          ) -> str:
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pct(used: int, cap: int) -> str:
    return f"{100 * used / cap:5.1f}% of cap" if cap else "  n/a"
