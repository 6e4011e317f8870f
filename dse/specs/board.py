"""Boards, shell overhead profiles, utilization caps, and the packaged board catalog."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from dse.exceptions import SpecError
from dse.schemas import BoardFileIn, BoardIn, HostIn, LayoutIn, MemoryIn, NetworkIn, check
from dse.specs.resources import RESOURCE_NAMES, Resources

#: FINN's DEFAULT_RES_LIMITS (platforms.py): the share of each resource a design may use.
DEFAULT_CAPS: Mapping[str, float] = {"lut": 0.7, "ff": 0.5, "bram18": 0.8, "uram": 0.8, "dsp": 0.8}


def validate_caps(caps: Mapping[str, float] | None, where: str = "caps") -> dict[str, float]:
    """Caps completed with FINN's defaults; each in (0, 1]."""
    out = dict(DEFAULT_CAPS)
    for k, v in (caps or {}).items():
        if k not in RESOURCE_NAMES:
            raise SpecError(f"{where}: unknown resource {k!r}; use {', '.join(RESOURCE_NAMES)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise SpecError(f"{where}.{k} must be a fraction in (0, 1], got {v!r}")
        out[k] = float(v)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellProfile:
    """Resources a shell takes from the device, by component."""

    name: str
    doc: str = ""
    base: Resources = field(default_factory=Resources)
    memory_controller: Resources = field(default_factory=Resources)
    ddr_controller: Resources = field(default_factory=Resources)  # per DDR SLR (FINN Vitis)
    network: Resources = field(default_factory=Resources)
    cclo: Resources = field(default_factory=Resources)
    cclo_is_placeholder: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Board:
    """One FPGA card: device totals, FINN's per-SLR table, memories and network."""

    name: str
    part: str
    slrs: int
    device: Resources
    finn_slrs: tuple[Resources, ...] = ()
    hbm_gib: float = 0.0
    hbm_bandwidth_gbps: float = 0.0  # GB/s, whole HBM subsystem
    hbm_channels: int = 0
    ddr_gib: float = 0.0
    ddr_bandwidth_gbps: float = 0.0  # GB/s
    net_line_rate_gbps: float = 0.0  # Gb/s of one port
    net_ports: int = 1
    #: FINN's IODMA: the widest AXI-MM port InsertIODMA may use (its max_intfwidth)
    host_dma_bits: int = 512
    #: host link GB/s (PCIe XDMA/QDMA); 0 where the IODMA reads the host's DDR itself (Zynq)
    host_pcie_gbps: float = 0.0
    #: µs per register access of FINN's PYNQ driver on the host CPU (0: not known)
    host_mmio_us: float = 0.0
    host_mmio_source: str = ""
    finn_board: str = ""
    shell_flow_type: str = "vitis_alveo"
    vitis_platform: str | None = None
    ddr_slrs: tuple[int, ...] = ()
    hbm_slr: int | None = None
    eth_slr: int | None = None  # the SLR of the network port (FINN's platform model)
    shells: tuple[str, ...] = ("vitis",)
    source: str = ""
    price_per_hour: float | None = None  # for cost objectives; set it in a board file
    #: the clock a run uses unless one is given: FINN's builds for Zynq-7000 boards run at
    #: 100 MHz (synth_clk_period_ns 10 in finn-examples' bnn-pynq builds; its Pynq-Z1
    #: designs report fclk 100 MHz), Alveo and UltraScale+ designs at about 180-250 MHz
    default_clock_mhz: float = 200.0
    #: > 1: this is one of that many equal SLR groups of the board, holding one replica
    #: (``dse.solver.slr.slice_config``)
    slice_of: int = 1

    @property
    def default_shell(self) -> str:
        return self.shells[0]

    @property
    def external_memory_gib(self) -> float:
        return self.hbm_gib if self.hbm_gib else self.ddr_gib

    @property
    def external_memory_kind(self) -> str:
        return "HBM" if self.hbm_gib else ("DDR" if self.ddr_gib else "none")

    @property
    def external_memory_gbps(self) -> float:
        """GB/s of the memory that holds external weights (HBM where present)."""
        return self.hbm_bandwidth_gbps if self.hbm_gib else self.ddr_bandwidth_gbps

    @property
    def hbm_channel_gib(self) -> float:
        return self.hbm_gib / self.hbm_channels if self.hbm_channels else 0.0

    @property
    def hbm_channel_gbps(self) -> float:
        return self.hbm_bandwidth_gbps / self.hbm_channels if self.hbm_channels else 0.0

    def shell_overhead(self, shell: ShellProfile, multi_board: bool) -> Resources:
        over = shell.base
        if self.hbm_gib or (shell.name != "vitis" and self.ddr_gib
                            and self.shell_flow_type != "vivado_zynq"):
            over = over + shell.memory_controller
        if shell.name == "vitis":
            n_ddr = len([s for s in self.ddr_slrs if s != self.hbm_slr])
            for _ in range(n_ddr):
                over = over + shell.ddr_controller
        if multi_board:
            over = over + shell.network + shell.cclo
        return over

    def area(self, shell: ShellProfile) -> Resources:
        """The area a shell profile starts from: FINN's per-SLR sums for its own flows."""
        if shell.name in ("vitis", "zynq") and self.finn_slrs:
            return Resources.total(self.finn_slrs)
        return self.device

    def usable(self, shell: ShellProfile, multi_board: bool) -> Resources:
        return (self.area(shell) - self.shell_overhead(shell, multi_board)).clamp_nonnegative()


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardConfig:
    """A board as used in one run: shell, caps and clock chosen."""

    board: Board
    shell: ShellProfile
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    clock_mhz: float = 200.0

    def capacity(self, multi_board: bool) -> Resources:
        """What the layers on this board may use: (area - shell) x caps."""
        return self.board.usable(self.shell, multi_board).scaled(self.caps)

    def as_dict(self, multi_board: bool) -> dict[str, Any]:
        return {
            "name": self.board.name,
            "part": self.board.part,
            "shell": self.shell.name,
            "caps": dict(sorted(self.caps.items())),
            "clock_mhz": self.clock_mhz,
            "capacity": self.capacity(multi_board).as_dict(),
            "shell_overhead": self.board.shell_overhead(self.shell, multi_board).as_dict(),
        }


# ---------------------------------------------------------------------------------------------
# Catalog


def _res(d: Mapping[str, Any] | None, where: str) -> Resources:
    if d is None:
        return Resources()
    if not isinstance(d, Mapping):
        raise SpecError(f"{where} must be a table of resources, got {d!r}")
    return Resources.from_dict(d, where)


def board_from_dict(d: Mapping[str, Any], where: str = "board") -> Board:
    """A Board from its file entry, validated by :class:`dse.schemas.BoardIn`."""
    b = check(BoardIn, d, where)
    mem0 = MemoryIn()
    hbm, ddr = b.hbm or mem0, b.ddr or mem0
    net = b.network or NetworkIn(line_rate_gbps=0)
    host = b.host or HostIn()
    layout = b.layout or LayoutIn()
    return Board(
        name=b.name,
        part=b.part,
        slrs=b.slrs,
        device=_res(b.device.model_dump(), f"board {b.name!r}.device"),
        finn_slrs=tuple(_res(x.model_dump(), f"board {b.name!r}.finn_slrs[{i}]")
                        for i, x in enumerate(b.finn_slrs)),
        hbm_gib=float(hbm.gib),
        hbm_bandwidth_gbps=float(hbm.bandwidth_gbps),
        hbm_channels=int(hbm.channels),
        ddr_gib=float(ddr.gib),
        ddr_bandwidth_gbps=float(ddr.bandwidth_gbps),
        net_line_rate_gbps=float(net.line_rate_gbps),
        net_ports=int(net.ports),
        host_dma_bits=int(host.dma_bits),
        host_pcie_gbps=float(host.pcie_gbps),
        host_mmio_us=float(host.mmio_us),
        host_mmio_source=host.mmio_source,
        finn_board=b.finn_board or b.name,
        shell_flow_type=b.shell_flow_type,
        vitis_platform=b.vitis_platform,
        ddr_slrs=tuple(layout.ddr_slrs),
        hbm_slr=layout.hbm_slr,
        eth_slr=layout.eth_slr,
        shells=tuple(b.shells),
        source=b.source,
        price_per_hour=b.price_per_hour,
        default_clock_mhz=float(b.default_clock_mhz),
    )


def shell_from_dict(name: str, d: Mapping[str, Any]) -> ShellProfile:
    where = f"shell {name!r}"
    return ShellProfile(
        name=name,
        doc=str(d.get("doc", "")),
        base=_res(d.get("base"), f"{where}.base"),
        memory_controller=_res(d.get("memory_controller"), f"{where}.memory_controller"),
        ddr_controller=_res(d.get("ddr_controller"), f"{where}.ddr_controller"),
        network=_res(d.get("network"), f"{where}.network"),
        cclo=_res(d.get("cclo"), f"{where}.cclo"),
        cclo_is_placeholder=bool(d.get("cclo_is_placeholder", False)),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    boards: Mapping[str, Board]
    shells: Mapping[str, ShellProfile]

    def board(self, name: str) -> Board:
        for key, b in self.boards.items():
            if key.lower() == name.lower():
                return b
        raise SpecError(
            f"unknown board {name!r}; known boards: {', '.join(self.boards)} "
            "(or define your own with --board-file)"
        )

    def shell(self, name: str) -> ShellProfile:
        if name not in self.shells:
            raise SpecError(f"unknown shell {name!r}; known shells: {', '.join(self.shells)}")
        return self.shells[name]

    def with_file(self, path: str | Path) -> Catalog:
        """This catalog plus the boards (and shells) of a user TOML or JSON file."""
        data = read_board_file(path)
        if not isinstance(data, Mapping):
            raise SpecError(f"{path}: a board file is a table with a list 'boards' "
                            f"([[boards]] in TOML), not a {type(data).__name__}")
        check(BoardFileIn, data, str(path))
        boards = dict(self.boards)
        shells = dict(self.shells)
        for name, s in (data.get("shells") or {}).items():
            shells[name] = shell_from_dict(name, s)
        entries = data.get("boards", [])
        for i, entry in enumerate(entries):
            b = board_from_dict(entry, f"{path}: boards[{i}]")
            for s in b.shells:
                if s not in shells:
                    raise SpecError(f"{path}: board {b.name!r} names unknown shell {s!r}")
            boards[b.name] = b
        return Catalog(boards=boards, shells=shells)

    def configure(
        self,
        name: str,
        *,
        shell: str | None = None,
        caps: Mapping[str, float] | None = None,
        clock_mhz: float | None = None,
    ) -> BoardConfig:
        """``clock_mhz``: None takes the board's default clock."""
        b = self.board(name)
        if clock_mhz is None:
            clock_mhz = b.default_clock_mhz
        shell_name = shell or b.default_shell
        if shell_name not in b.shells:
            raise SpecError(
                f"board {b.name} does not support shell {shell_name!r}; "
                f"choose one of {', '.join(b.shells)}"
            )
        if not 10 <= clock_mhz <= 1000:
            raise SpecError(f"clock_mhz={clock_mhz} is out of range; give 10 to 1000 MHz")
        return BoardConfig(board=b, shell=self.shell(shell_name), caps=validate_caps(caps),
                           clock_mhz=float(clock_mhz))


def read_board_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"cannot read board file {p}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError(f"board file {p} is not UTF-8 text; save it as UTF-8") from None
    try:
        if p.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as e:
        kind = p.suffix.lstrip(".").upper()
        raise SpecError(f"board file {p} is not valid {kind}: {e}") from None


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The board catalog shipped inside the package (``dse/specs/data/boards.json``)."""
    text = importlib_resources.files("dse.specs").joinpath("data/boards.json").read_text()
    data = json.loads(text)
    shells = {n: shell_from_dict(n, s) for n, s in data["shells"].items()}
    boards = {b["name"]: board_from_dict(b) for b in data["boards"]}
    return Catalog(boards=boards, shells=shells)


def load_catalog(board_files: Iterable[str | Path] = ()) -> Catalog:
    cat = default_catalog()
    for f in board_files:
        cat = cat.with_file(f)
    return cat


__all__ = [
    "DEFAULT_CAPS",
    "Board",
    "BoardConfig",
    "Catalog",
    "ShellProfile",
    "default_catalog",
    "load_catalog",
    "validate_caps",
]
