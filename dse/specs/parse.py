"""The board and option strings of the command line and the library: ``--boards`` counts and
lists, ``NAME@MHZ`` clocks, ``--cap`` and ``--price`` lists."""

from __future__ import annotations

import re

from dse.exceptions import SpecError
from dse.schemas import MAX_BOARDS

#: a board or device name (with a letter; ASCII), optionally @MHZ (checked by split_clock)
BOARD_NAME = re.compile(r"(?=[^@]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_.+-]*(@[^,@\s]*)?", re.ASCII)


def parse_boards(boards: str | int | None, board: str | None = None) -> list[str]:
    """``4`` (with ``board``) or ``"U55C,U55C,U280"`` -> list of board names."""
    board = board or "U55C"
    if boards is None:
        return [board]
    if isinstance(boards, int):
        n = boards
    elif re.fullmatch(r"\s*[0-9]+\s*", str(boards), re.ASCII):
        n = int(str(boards).strip())
    else:
        names = [b.strip() for b in str(boards).split(",") if b.strip()]
        if not names or not all(BOARD_NAME.fullmatch(b) for b in names):
            raise SpecError(f"--boards {boards!r}: give a count (4) or a comma-separated list "
                            "of board/device names, each optionally NAME@MHZ (U55C,U280@250)")
        if len(names) > MAX_BOARDS:
            raise SpecError(f"--boards: {len(names)} boards listed; give 1 to {MAX_BOARDS}")
        return names
    if not 1 <= n <= MAX_BOARDS:
        raise SpecError(f"--boards {n}: give 1 to {MAX_BOARDS} boards")
    return [board] * n


def split_clock(name: str, default_mhz: float | None) -> tuple[str, float | None]:
    """``NAME@MHZ`` (a board's own clock) -> (NAME, MHz); a bare name keeps the default
    (None: the board's own default clock, ``Board.default_clock_mhz``)."""
    if "@" not in name:
        return name, default_mhz
    n, _, mhz = name.partition("@")
    try:
        clock = float(mhz)
    except ValueError:
        raise SpecError(f"--boards {n}@{mhz}: give the clock in MHz, e.g. U55C@250") from None
    if not 10 <= clock <= 1000:
        raise SpecError(f"--boards {n}@{mhz}: clock must be 10 .. 1000 MHz")
    return n, clock


def parse_caps(items: list[str] | None) -> dict[str, float]:
    caps: dict[str, float] = {}
    for it in items or []:
        for part in it.split(","):
            if "=" not in part:
                raise SpecError(f"--cap {part!r}: use RESOURCE=FRACTION, e.g. lut=0.8")
            k, v = part.split("=", 1)
            try:
                caps[k.strip().lower()] = float(v)
            except ValueError:
                raise SpecError(f"--cap {part!r}: {v!r} is not a number") from None
    return caps


def parse_prices(items: list[str] | None) -> dict[str, float]:
    """``--price U55C=1.65,A100-80GB=3.67`` -> {name: USD per hour}."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, _, v = part.partition("=")
            try:
                val = float(v)
            except ValueError:
                raise SpecError(f"--price {part!r}: use NAME=USD_PER_HOUR") from None
            if val < 0 or not name.strip():
                raise SpecError(f"--price {part!r}: use NAME=USD_PER_HOUR (>= 0)")
            out[name.strip()] = val
    return out
