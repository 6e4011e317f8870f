"""A chain of devices from their names: FPGA boards from the board catalog (configured), GPUs
and CPUs from the device catalog."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from dse.devices import ALIASES, Device, load_devices
from dse.exceptions import SpecError
from dse.schemas_llm import check_prices
from dse.specs import BoardConfig, load_catalog
from dse.specs.parse import split_clock


def device_chain(names: list[str], board_files: Sequence[str | Path] = (), *,
                 shell: str | None = None, caps: Mapping[str, float] | None = None,
                 clock_mhz: float | None = None, prices: Mapping[str, float] | None = None
                 ) -> list[BoardConfig | Device]:
    """Board configs (FPGA) and devices (GPU/CPU) for a list of names, in order. FPGA boards
    come from the board catalog, GPUs/CPUs from the device catalog; both read the user's
    board files. ``prices``: price per hour by name (overrides the files)."""
    cat = load_catalog(board_files or ())
    devs = load_devices(list(board_files or ()))
    prices = check_prices(dict(prices or {}), [*cat.boards, *devs.devices, *ALIASES])
    out: list[BoardConfig | Device] = []
    for n in names:
        n, clock = split_clock(n, clock_mhz)
        d = devs.get(n)
        if d is not None:
            p = prices.get(d.name, prices.get(n))
            out.append(replace(d, price_per_hour=p) if p is not None else d)
            continue
        if not any(k.lower() == n.lower() for k in cat.boards):
            raise SpecError(f"--boards: {n!r} is neither a board ({', '.join(cat.boards)}) "
                            f"nor a device ({', '.join(devs.devices)}); define it in a "
                            "--board-file")
        cfg = cat.configure(n, shell=shell, caps=caps, clock_mhz=clock)  # names its own errors
        p = prices.get(cfg.board.name, prices.get(n))
        if p is not None:
            cfg = replace(cfg, board=replace(cfg.board, price_per_hour=p))
        out.append(cfg)
    return out
