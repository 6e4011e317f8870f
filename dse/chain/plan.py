"""One plan for every network on every device: a chain of stages joined by links.

A ``PipelinePlan`` is what ``dse optimize`` writes for a CNN (CP-SAT over layers) and for an
LLM (the block DP) alike: stages in chain order, each a device (FPGA board, GPU, CPU) with
its segment (layers, or blocks of an LLM), its build (folding, spatial / rolled / dataflow,
where the weights live), resources against capacity, frame time, latency, binding limit and
replicas; links between neighbours (``dse.chain.links``); metrics of the whole chain. The
solver's own record of the plan (the CNN ``plan.json`` of schema_version 1 that ``dse emit``
reads, or the LLM planner's ``dse-llm-plan/1``) travels along as ``payload``.

Files are validated when loaded (pydantic over these frozen dataclasses); the two older
formats load migrated; anything else is refused in one line (``PlanError``, exit 2). The
format is documented in ``docs/plan-format.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from dse.chain.links import ACCL_LINE_GBPS, HOP_LATENCY_S, LINK_EFFICIENCY, fpga_link
from dse.exceptions import PlanError
from dse.outdir import write_file_atomic
from dse.schemas import check_cnn_plan, describe

PLAN_FORMAT: Final = "dse-plan/2"
CNN_SCHEMA_VERSION = 1  # the CNN plan.json before the chain format (the CNN payload's own)
LLM_FORMAT = "dse-llm-plan/1"
_CFG = ConfigDict(extra="forbid", allow_inf_nan=False)

DeviceKind = Literal["fpga", "gpu", "cpu"]
LinkKind = Literal["accl-rdma", "stream", "host-tcp", "host-dma"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    __pydantic_config__ = _CFG
    kind: DeviceKind
    name: str
    clock_mhz: float | None = None  # FPGA boards
    shell: str | None = None  # FPGA boards: coyote | vitis | zynq


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """What a stage runs: CNN layers (by name, in order) or LLM blocks (``label`` such as
    "4.5-8.5": the MLP half of block 4, blocks 5-7, the attention half of block 8)."""

    __pydantic_config__ = _CFG
    unit: Literal["layers", "blocks"]
    layers: tuple[str, ...] = ()
    label: str = ""
    parts: tuple[str, ...] = ()  # LLM: partial blocks ("mlp", "attn") and "head"


@dataclass(frozen=True, slots=True, kw_only=True)
class Build:
    """How a stage builds its segment: ``dataflow`` (every layer its own FINN hardware),
    ``spatial`` / ``rolled`` (LLM blocks: k copies, or one iterated k times, FINNLoop),
    ``kernels`` (GPU/CPU); where its weights live; per layer its FINN folding."""

    __pydantic_config__ = _CFG
    style: Literal["dataflow", "spatial", "rolled", "kernels"]
    weights: Literal["on-chip", "external", "mixed", "device memory"]
    folding: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    __pydantic_config__ = _CFG
    index: int
    device: Device
    segment: Segment
    build: Build
    resources: Mapping[str, float]
    capacity: Mapping[str, float]
    frame_s: float  # time per frame of this stage (with its replicas)
    latency_s: float
    binding: str
    replicas: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """Between stage ``src`` and stage ``src + 1``: one frame's traffic and its time."""

    __pydantic_config__ = _CFG
    src: int
    dst: int
    kind: LinkKind
    bytes_per_frame: int
    frame_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    __pydantic_config__ = _CFG
    frame_s: float
    frames_per_s: float
    latency_s: float
    binding: str
    stages: int
    devices: int  # every copy counted
    tokens_per_s: float | None = None  # LLMs


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelinePlan:
    __pydantic_config__ = _CFG
    format: Literal["dse-plan/2"]
    network: Literal["cnn", "llm"]
    model: Mapping[str, Any]
    stages: tuple[Stage, ...]
    links: tuple[Link, ...]
    metrics: Metrics
    payload: Mapping[str, Any]  # the solver's own record (CNN schema 1 / dse-llm-plan/1)
    migrated_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(p, self.to_json())
        return p

    @property
    def fpga_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.device.kind == "fpga")


_ADAPTER: TypeAdapter[PipelinePlan] = TypeAdapter(PipelinePlan)


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def validate(data: Any, where: str) -> PipelinePlan:
    """A chain plan from its JSON form, or ``PlanError`` in one line naming the field."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        raise PlanError(describe(e, where)) from None


MAX_PLAN_BYTES = 256 << 20  # a plan of 64 boards and thousands of layers is a few MB


def load_plan(path: str | Path) -> PipelinePlan:
    """Any plan file dse wrote: the chain format, or a CNN ``plan.json`` (schema_version 1)
    or an LLM ``llm_plan.json`` (``dse-llm-plan/1``), migrated. Anything else: one line."""
    p = Path(path)
    where = str(p)
    try:
        if p.is_dir():
            raise PlanError(f"plan {p} is a directory; give the plan.json in it")
        if p.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError(f"plan {p}: {p.stat().st_size:,} bytes is not a plan (at most "
                            f"{MAX_PLAN_BYTES:,})")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PlanError(f"cannot read plan {p}: {e.strerror} (write one with dse optimize)"
                        ) from None
    except UnicodeDecodeError:
        raise PlanError(f"plan {p} is not UTF-8 text (an ONNX model? --plan takes the "
                        "plan.json dse optimize wrote)") from None
    except RecursionError:
        raise PlanError(f"plan {p} is nested too deeply to be a plan") from None
    except json.JSONDecodeError as e:
        raise PlanError(f"plan {p} is not valid JSON: {e}") from None
    return from_any(data, where)


def from_any(data: Any, where: str) -> PipelinePlan:
    if not isinstance(data, dict):
        raise PlanError(f"{where}: a plan is a JSON object, got {type(data).__name__}")
    if data.get("format") == PLAN_FORMAT:
        plan = validate(data, where)
        if plan.network == "cnn":  # the payload emit reads: checked like a schema-1 file
            _check_cnn(dict(plan.payload), where + " (payload)")
        return plan
    if "schema_version" in data:
        if data["schema_version"] != CNN_SCHEMA_VERSION:
            raise PlanError(f"{where}: CNN plan schema_version {data['schema_version']!r} is "
                            f"not supported (this dse reads {CNN_SCHEMA_VERSION} and "
                            f"{PLAN_FORMAT}); rerun dse optimize")
        return from_cnn(_check_cnn(data, where), migrated=True)
    if data.get("schema") == LLM_FORMAT:
        return from_llm(data, migrated=True)
    found = data.get("format") or data.get("schema")
    raise PlanError(f"{where}: not a dse plan (format {found!r}; this dse reads {PLAN_FORMAT}, "
                    f"CNN schema_version {CNN_SCHEMA_VERSION} and {LLM_FORMAT}); rerun dse "
                    "optimize")


def _check_cnn(data: dict[str, Any], where: str) -> dict[str, Any]:
    return dict(check_cnn_plan(data, where))


# ---------------------------------------------------------------------------------------------
# the CNN plan (schema_version 1) as a chain


def _weights_at(layers: list[Mapping[str, Any]]) -> Literal["on-chip", "external", "mixed"]:
    ext = [bool(lay.get("external_weight_bits")) for lay in layers]
    return "external" if ext and all(ext) else ("mixed" if any(ext) else "on-chip")


def _cnn_link(data: Mapping[str, Any]) -> Any:
    link = data.get("link") or {}
    gbps = float(link.get("bandwidth_gbps", ACCL_LINE_GBPS))
    coyote = all(b.get("shell") == "coyote" for b in data["boards"])
    accl = bool((data.get("accl") or {}).get("enabled", True)) and coyote
    return fpga_link(accl=accl, gbps=gbps, efficiency=float(link.get("efficiency",
                                                                     LINK_EFFICIENCY)),
                     latency_s=float(link.get("latency_s", HOP_LATENCY_S)))


def _fpga_stage(b: Mapping[str, Any], layers: list[Mapping[str, Any]], index: int,
                clock_mhz: float) -> Stage:
    mine = [lay for lay in layers if lay["board"] == b["index"]]
    clock = float(b.get("clock_mhz") or clock_mhz)
    reps = int(b.get("replicas", 1))
    ii = int(b.get("ii_cycles") or max([lay["cycles"] for lay in mine] or [0]))
    slow = max(mine, key=lambda lay: lay["cycles"])["name"] if mine else ""
    return Stage(
        index=index,
        device=Device(kind="fpga", name=b["name"], clock_mhz=clock, shell=b.get("shell")),
        segment=Segment(unit="layers", layers=tuple(lay["name"] for lay in mine)),
        build=Build(style="dataflow", weights=_weights_at(mine),
                    folding={lay["name"]: dict(lay.get("folding") or {}) for lay in mine}),
        resources=dict(b.get("resources") or {}), capacity=dict(b.get("capacity") or {}),
        frame_s=ii / (clock * 1e6) / reps,
        latency_s=sum(lay["cycles"] for lay in mine) / (clock * 1e6),
        binding=f"compute ({slow}, II {ii} cycles)" if slow else "", replicas=reps)


def from_cnn(data: Mapping[str, Any], *, migrated: bool = False) -> PipelinePlan:
    """The CNN solver's plan (``dse.plan.make_plan``) as a chain: one stage per board, and
    the GPU/CPU stages of the layers FINN leaves on the host (``dse.chain.host``) before or
    after them."""
    hosts = list(data.get("host_stages", []))
    head = [h for h in hosts if h.get("position") == "head"]
    tail = [h for h in hosts if h.get("position") != "head"]
    layers = list(data["layers"])
    stages = [_host_stage(h, i) for i, h in enumerate(head)]
    stages += [_fpga_stage(b, layers, len(head) + k, float(data["clock_mhz"]))
               for k, b in enumerate(data["boards"])]
    stages += [_host_stage(h, len(stages) + i) for i, h in enumerate(tail)]
    link = _cnn_link(data)
    by_link = {int(x["index"]): x for x in data.get("links", [])}
    links = [Link(src=i, dst=i + 1, kind="host-dma", bytes_per_frame=int(h["in_bytes"]),
                  frame_s=float(h["link_s"])) for i, h in enumerate(head)]
    for k in range(len(data["boards"]) - 1):
        i = len(head) + k
        bits = int(by_link.get(k, {}).get("bits_per_frame", 0))
        links.append(Link(src=i, dst=i + 1, kind="accl-rdma" if link.accl_rdma else "stream",
                          bytes_per_frame=bits // 8, frame_s=_cut_s(data, k, link)))
    last = len(head) + len(data["boards"]) - 1
    links += [Link(src=last + i, dst=last + i + 1, kind="host-dma",
                   bytes_per_frame=int(h["in_bytes"]), frame_s=float(h["link_s"]))
              for i, h in enumerate(tail)]
    m = data["metrics"]
    fps = float(m["fps"])
    host_s = [(s.frame_s, s.binding) for s in stages if s.device.kind != "fpga"]
    host_s += [(x.frame_s, "host staging") for x in links if x.kind == "host-dma"]
    frame_s, binding = max([(1 / fps if fps else math.inf, str(m.get("bottleneck", "")))]
                           + host_s, key=lambda t: t[0])
    devices = int(m.get("boards_used_total", m.get("boards_used", 1))) + len(hosts)
    return PipelinePlan(
        format=PLAN_FORMAT, network="cnn", model=dict(data["model"]), stages=tuple(stages),
        links=tuple(links),
        metrics=Metrics(frame_s=frame_s, frames_per_s=1 / frame_s if frame_s else 0.0,
                        latency_s=float(m["latency_s"]) + sum(t for t, _ in host_s),
                        binding=binding, stages=len(stages), devices=devices),
        payload=dict(data), migrated_from="schema_version 1" if migrated else None)


def _cut_s(data: Mapping[str, Any], k: int, link: Any) -> float:
    """A CNN link's time per frame: one ACCL message per stream cut at that boundary."""
    cuts = [c for c in data.get("cuts", []) if c["src_board"] <= k < c["dst_board"]]
    if link.accl_rdma:
        return sum(link.frame_s(int(c.get("accl_bits_per_frame", c["bits_per_frame"])) // 8)
                   for c in cuts)
    return link.frame_s(sum(int(c.get("accl_bits_per_frame", c["bits_per_frame"]))
                            for c in cuts) // 8)


def _host_stage(h: Mapping[str, Any], index: int) -> Stage:
    return Stage(index=index, device=Device(kind=h["kind"], name=h["device"]),
                 segment=Segment(unit="layers", layers=tuple(h["layers"])),
                 build=Build(style="kernels", weights="device memory"),
                 resources={}, capacity={}, frame_s=float(h["frame_s"]),
                 latency_s=float(h["latency_s"]), binding=str(h["binding"]))


# ---------------------------------------------------------------------------------------------
# the LLM plan (dse-llm-plan/1) as a chain


def _llm_build(s: Mapping[str, Any]) -> Build:
    kind = s.get("kind", "fpga")
    if kind != "fpga":
        return Build(style="kernels", weights="device memory")
    weights = {"onchip": "on-chip", "hbm": "external"}.get(s.get("weights", ""), "mixed")
    fold = {f["layer"]: {k: v for k, v in f.items() if k != "layer"}
            for f in s.get("folding", [])}
    return Build(style=s["style"], weights=weights, folding=fold)  # type: ignore[arg-type]


def from_llm(data: Mapping[str, Any], *, migrated: bool = False) -> PipelinePlan:
    """The LLM planner's plan (``dse.llm.pipeline.plan_dict``) as a chain."""
    where = "LLM plan"
    try:
        stages = tuple(Stage(
            index=i,
            device=Device(kind=s.get("kind", "fpga"), name=s["board"],
                          clock_mhz=s.get("clock_mhz")),
            segment=Segment(unit="blocks", label=str(s["blocks"]),
                            parts=tuple(s.get("parts", ()))),
            build=_llm_build(s), resources=dict(s.get("resources") or {}),
            capacity=dict(s.get("capacity") or {}), frame_s=float(s["frame_s"]),
            latency_s=float(s["latency_s"]), binding=str(s["binding"]))
            for i, s in enumerate(data["stages"]))
        m = data["metrics"]
        hops = list(m.get("hops_s", []))
        nbytes = int(m.get("frame_bytes", 0))
        links = tuple(Link(src=i, dst=i + 1, kind=_llm_link_kind(stages[i], stages[i + 1]),
                           bytes_per_frame=nbytes,
                           frame_s=float(hops[i]) if i < len(hops) else 0.0)
                      for i in range(len(stages) - 1))
        frame_s = max([s.frame_s for s in stages] + [x.frame_s for x in links])
        tps = m.get("tokens_per_s")
        metrics = Metrics(frame_s=frame_s, frames_per_s=1 / frame_s if frame_s else 0.0,
                          latency_s=float(m["latency_s"]), binding=str(m["binding"]),
                          stages=len(stages), devices=len(stages),
                          tokens_per_s=float(tps) if tps is not None else None)
    except (KeyError, TypeError, ValueError) as e:
        raise PlanError(f"{where}: field {e} missing or invalid; rerun dse optimize") from None
    plan = PipelinePlan(format=PLAN_FORMAT, network="llm", model=dict(data["model"]),
                        stages=stages, links=links, metrics=metrics, payload=dict(data),
                        migrated_from=LLM_FORMAT if migrated else None)
    return validate(plan.to_dict(), where)


def _llm_link_kind(a: Stage, b: Stage) -> LinkKind:
    if a.device.kind == b.device.kind == "fpga":
        return "accl-rdma"
    return "host-tcp"


__all__ = ["PLAN_FORMAT", "Build", "Device", "Link", "Metrics", "PipelinePlan", "Segment",
           "Stage", "from_any", "from_cnn", "from_llm", "load_plan", "validate"]
