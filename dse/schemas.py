"""One validation schema per kind of input (pydantic): board/device files, plans, command-line
options and exploration parameters. Everything a user hands to dse is checked here, at the
boundary, and a failure becomes one line naming the file, the field, the value and the fix
(:func:`check`); code behind the boundary trusts its inputs.

Numbers are finite (no NaN or infinity) and bounded to what the hardware can mean, so a
``1e300`` LUT board or a ``2**40`` seed is refused before it reaches a solver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from dse.exceptions import DseError, PlanError, SpecError

M = TypeVar("M", bound=BaseModel)

# bounds: far above any real device, far below anything that overflows a solver
MAX_RESOURCE = 10**12         # LUT/FF/BRAM/URAM/DSP of one device or shell (1e300 is refused)
MAX_GIB = 10**5
MAX_GBPS = 10**6
MAX_BOARDS = 64

Number = Annotated[float, Strict(), AllowInfNan(False)]  # ints accepted, bools and text not
Count = Annotated[StrictInt, Field(ge=0, le=MAX_RESOURCE)]
Amount = Annotated[Number, Field(ge=0, le=MAX_RESOURCE, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              str_min_length=0)


# ---------------------------------------------------------------------------------------------
# board / shell files (TOML or JSON), and the packaged catalog


class ResourcesIn(_Strict):
    lut: Amount = 0
    ff: Amount = 0
    bram18: Amount = 0
    uram: Amount = 0
    dsp: Amount = 0


class MemoryIn(_Strict):
    gib: Annotated[Number, Field(ge=0, le=MAX_GIB)] = 0
    bandwidth_gbps: Annotated[Number, Field(ge=0, le=MAX_GBPS)] = 0
    channels: Annotated[StrictInt, Field(ge=0, le=4096)] = 0


class NetworkIn(_Strict):
    line_rate_gbps: Annotated[Number, Field(ge=0, le=MAX_GBPS)] = 0
    ports: Annotated[StrictInt, Field(ge=1, le=64)] = 1


class HostIn(_Strict):
    """The board's path to the host: FINN's IODMA width and the host link."""

    #: widest AXI-MM port FINN's InsertIODMA may use (pynq_native_port_width on Zynq,
    #: vitis_iodma_intf_max_width on Alveo)
    dma_bits: Annotated[StrictInt, Field(ge=8, le=4096)] = 512
    #: host link (PCIe) GB/s, 0 where the DMA reads the host's own memory (Zynq HP ports)
    pcie_gbps: Annotated[Number, Field(ge=0, le=MAX_GBPS)] = 0
    source: str = ""
    #: microseconds one register access of FINN's PYNQ driver takes on the board's host CPU
    #: (Python MMIO); 0: not known, the driver's call is left out (dse.solver.hostio)
    mmio_us: Annotated[Number, Field(ge=0, le=1e6)] = 0
    mmio_source: str = ""


class LayoutIn(_Strict):
    ddr_slrs: list[Annotated[StrictInt, Field(ge=0, le=15)]] = []
    hbm_slr: Annotated[StrictInt, Field(ge=0, le=15)] | None = None
    eth_slr: Annotated[StrictInt, Field(ge=0, le=15)] | None = None


class BoardIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    part: Annotated[str, Field(min_length=1, max_length=128)]
    slrs: Annotated[StrictInt, Field(ge=1, le=16)] = 1
    device: ResourcesIn
    finn_slrs: list[ResourcesIn] = []
    hbm: MemoryIn | None = None
    ddr: MemoryIn | None = None
    network: NetworkIn | None = None
    host: HostIn | None = None
    layout: LayoutIn | None = None
    shells: Annotated[list[Annotated[str, Field(min_length=1)]],
                      Field(min_length=1)] = ["vitis"]
    finn_board: str | None = None
    shell_flow_type: Literal["vitis_alveo", "vivado_zynq"] = "vitis_alveo"
    vitis_platform: str | None = None
    source: str = ""
    price_per_hour: float | None = Field(default=None, ge=0)
    #: the clock a run uses unless one is given (--clock-mhz, or NAME@MHZ)
    default_clock_mhz: float = Field(default=200.0, ge=10, le=1000)

    @field_validator("device")
    @classmethod
    def _device_has_luts(cls, v: ResourcesIn) -> ResourcesIn:
        if v.lut <= 0:
            raise ValueError("a device needs a positive LUT count")
        return v


class ShellIn(_Strict):
    doc: str = ""
    base: ResourcesIn | None = None
    memory_controller: ResourcesIn | None = None
    ddr_controller: ResourcesIn | None = None
    network: ResourcesIn | None = None
    cclo: ResourcesIn | None = None
    cclo_is_placeholder: StrictBool = False


class BoardFileIn(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_version: StrictInt | None = None
    default_caps: dict[str, Annotated[Number, Field(gt=0, le=1)]] | None = None
    boards: list[BoardIn] = []
    shells: dict[str, ShellIn] = {}
    # GPUs and CPUs (validated by dse.devices; one file may hold boards and devices)
    devices: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _not_empty(self) -> "BoardFileIn":
        if not self.boards and not self.devices:
            raise ValueError("the file defines no [[boards]] and no [[devices]]")
        return self


# ---------------------------------------------------------------------------------------------
# plans (docs/plan-format.md)

FINN_RAM_STYLES = ("auto", "block", "distributed", "ultra")
FINN_RES_TYPES = ("auto", "lut", "dsp")
FINN_MEM_MODES = ("internal_embedded", "internal_decoupled", "external")


class FoldingIn(BaseModel):
    """FINN's folding attributes; other FINN attributes pass through unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    PE: Annotated[StrictInt, Field(ge=1, le=1 << 20)] | None = None
    SIMD: Annotated[StrictInt, Field(ge=1, le=1 << 20)] | None = None
    ram_style: Literal[FINN_RAM_STYLES] | None = None  # type: ignore[valid-type]
    ram_style_thresholds: Literal[FINN_RAM_STYLES] | None = None  # type: ignore[valid-type]
    resType: Literal[FINN_RES_TYPES] | None = None  # type: ignore[valid-type]  # noqa: N815
    mem_mode: Literal[FINN_MEM_MODES] | None = None  # type: ignore[valid-type]
    parallel_window: Annotated[StrictInt, Field(ge=0, le=1)] | None = None


class PlanResourcesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lut: Amount
    ff: Amount
    bram18: Amount
    uram: Amount
    dsp: Amount


class PlanLayerIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    name: Annotated[str, Field(min_length=1)]
    op_type: Annotated[str, Field(min_length=1)]
    impl: Literal["hls", "rtl"]
    board: Annotated[StrictInt, Field(ge=0)]  # < number of boards: checked by the plan
    folding: FoldingIn
    cycles: Annotated[StrictInt, Field(ge=0)]
    resources: PlanResourcesIn
    external_weight_bits: Annotated[StrictInt, Field(ge=0)] = 0


Fraction = Annotated[Number, Field(gt=0, le=1)]


class PlanBoardIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    index: Annotated[StrictInt, Field(ge=0, lt=MAX_BOARDS)]
    name: Annotated[str, Field(min_length=1)]
    part: Annotated[str, Field(min_length=1)]
    resources: PlanResourcesIn
    capacity: PlanResourcesIn
    caps: dict[Literal["lut", "ff", "bram18", "uram", "dsp"], Fraction]
    ii_cycles: Annotated[StrictInt, Field(ge=0)]


class PlanMetricsIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    ii_cycles: Annotated[StrictInt, Field(ge=1)]
    fps: Annotated[Number, Field(ge=0)]
    latency_s: Annotated[Number, Field(ge=0)]
    bottleneck: str
    boards_used: Annotated[StrictInt, Field(ge=1, le=MAX_BOARDS)]


class PlanCutIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    src: str
    dst: str
    src_board: Annotated[StrictInt, Field(ge=0, lt=MAX_BOARDS)]
    dst_board: Annotated[StrictInt, Field(ge=0, lt=MAX_BOARDS)]
    bits_per_frame: Annotated[StrictInt, Field(ge=0)]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    schema_version: Literal[1]
    model: dict[str, Any]
    clock_mhz: Annotated[Number, Field(ge=10, le=1000)]
    boards: Annotated[list[PlanBoardIn], Field(min_length=1)]
    layers: Annotated[list[PlanLayerIn], Field(min_length=1)]
    cuts: list[PlanCutIn]
    metrics: PlanMetricsIn
    solver: dict[str, Any]


CNN_PLAN_REQUIRED = ("schema_version", "model", "boards", "clock_mhz", "layers", "cuts",
                     "metrics", "solver")


def check_cnn_plan(data: Any, where: str) -> Any:
    """A CNN plan (schema_version 1, the payload ``dse emit`` reads) checked field by field
    and across fields; ``PlanError`` in one line naming what is wrong."""
    if not isinstance(data, Mapping):
        raise PlanError(f"{where}: a plan is a JSON object")
    missing = [k for k in CNN_PLAN_REQUIRED if k not in data]
    if missing:
        raise PlanError(f"{where}: missing field(s) {missing}")
    if data["schema_version"] != 1:
        raise PlanError(f"{where}: schema_version {data['schema_version']} is not supported "
                        "(this dse reads version 1)")
    plan = check(PlanIn, data, where, PlanError)
    nb = len(plan.boards)
    for i, b in enumerate(plan.boards):
        if b.index != i:
            raise PlanError(f"{where}: boards[{i}].index = {b.index}: boards must be "
                            "listed in pipeline order, indexed 0, 1, ...")
    names = set()
    for i, layer in enumerate(plan.layers):
        if layer.board >= nb:
            raise PlanError(f"{where}: layers[{i}] ({layer.name}) names board "
                            f"{layer.board}, but the plan has {nb} board(s)")
        if layer.name in names:
            raise PlanError(f"{where}: layers[{i}]: layer name {layer.name!r} appears twice")
        names.add(layer.name)
    for i, c in enumerate(plan.cuts):
        if c.src not in names or c.dst not in names:
            raise PlanError(f"{where}: cuts[{i}] {c.src} -> {c.dst} names a layer the plan "
                            "does not have")
    return data


# ---------------------------------------------------------------------------------------------
# command-line options and exploration parameters

Seed = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class OptimizeOptions(_Strict):
    """What ``dse optimize`` / ``dse.api.optimize`` accept, beyond the model and boards."""

    time_limit: Annotated[Number, Field(gt=0, le=10**6)] = 60.0
    clock_mhz: Annotated[Number, Field(ge=10, le=1000)] | None = None  # None: per board
    #: at least 1 Mb/s (a link of 1e-9 Gb/s carries under a bit per clock cycle)
    link_gbps: Annotated[Number, Field(ge=1e-3, le=MAX_GBPS)] | None = None
    link_efficiency: Annotated[Number, Field(gt=0, le=1)] = 0.88
    rx_buffer_bytes: Annotated[StrictInt, Field(ge=64, le=2**32)] | None = None
    rx_buffers: Annotated[StrictInt, Field(ge=1, le=4096)] | None = None
    seed: Seed = 0
    workers: Annotated[StrictInt, Field(ge=1, le=256)] = 1
    mvau_wwidth_max: Annotated[StrictInt, Field(ge=1, le=8192)] | None = None
    #: frames of the one driver call metrics.batch reports (dse.solver.hostio.DriverCall)
    batch: Annotated[StrictInt, Field(ge=1, le=10**9)] = 1000


class ExploreOptions(_Strict):
    trials: Annotated[StrictInt, Field(ge=1, le=10**6)]
    max_boards: Annotated[StrictInt, Field(ge=1, le=MAX_BOARDS)]
    trial_time_limit: Annotated[Number, Field(gt=0, le=10**5)] = 20.0
    clock_lo: Annotated[Number, Field(ge=10, le=1000)] = 150.0
    clock_hi: Annotated[Number, Field(ge=10, le=1000)] = 300.0
    seed: Seed = 0


# ---------------------------------------------------------------------------------------------
# turning a validation error into one line


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _value(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def describe(err: ValidationError, where: str) -> str:
    """The first problem of a pydantic error as one line: where, field, value, what to do."""
    e = err.errors(include_url=False)[0]
    field = _loc(tuple(e.get("loc", ())))
    msg = str(e.get("msg", "invalid")).replace("Value error, ", "")
    typ = e.get("type", "")
    if typ == "extra_forbidden":
        msg = "unknown field (check the spelling; see the documented fields)"
    elif typ == "missing":
        msg = "missing (this field is required)"
    elif typ in ("model_type", "dict_type"):
        msg = "should be a table of fields (an object in JSON)"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    value = "" if typ == "missing" else f" = {_value(e.get('input'))}"
    return f"{where}: {field or 'value'}{value}: {msg}{tail}"


def check(model: type[M], data: Any, where: str, error: type[DseError] = SpecError) -> M:
    """``model`` validated from ``data``, or ``error`` with one line naming what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(describe(e, where)) from None


def check_options(model: type[M], values: Mapping[str, Any]) -> M:
    """Command options: the error names the option as typed (``--link-gbps``)."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        opt = "--" + str(first["loc"][0]).replace("_", "-") if first.get("loc") else "option"
        aliases = {"--max-boards": "--boards", "--clock-lo": "--clock-mhz",
                   "--clock-hi": "--clock-mhz"}
        opt = aliases.get(opt, opt)
        msg = str(first.get("msg", "invalid")).replace("Value error, ", "")
        raise SpecError(f"{opt} {_value(first.get('input'))}: {msg}") from None
