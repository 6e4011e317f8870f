"""GPUs and CPUs beside the FPGA boards: a catalog, a roofline cost per transformer block,
and its calibration from measurements.

A device runs its share of an LLM as kernels; one step for a batch of ``B`` sequences
(``B`` tokens in decode, ``B`` x ``seq`` in prefill/encoder) over ``k`` blocks costs

    time = max(ops / (peak[precision] x eff_compute), bytes / (bandwidth x eff_memory))
           + kernels x kernel_overhead_s

with ops = 2 x weights x tokens + attention (2 x 2 x heads x head_dim x context per token and
layer), bytes = weights once per step + every sequence's KV cache (decode) + activations.
The efficiencies and the overhead are named parameters (``Efficiency``); the defaults are
stated in ``DEFAULT_EFFICIENCY`` with where they come from, and ``calibrate`` fits them to
a measurement file. Unlike FINN's dataflow, a GPU reads its weights once per *batch*, which
is its advantage at many sequences in flight.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dse.exceptions import SpecError

DATA = Path(__file__).parent / "data" / "devices.json"
PRECISIONS = ("int4", "int8", "fp8", "fp16", "fp32")


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """Fractions of peak a device reaches, and the fixed cost per kernel launch."""

    compute: float = 0.6
    memory: float = 0.75
    kernel_overhead_s: float = 8e-6
    kernels_per_block: int = 12  # norms, 4-7 GEMMs, attention, activations, residuals
    #: how much of the shorter of compute and memory time hides under the longer one (1: a
    #: perfect roofline max; 0: they add, as when a step's weights stream in once and its
    #: GEMMs wait for their first tiles)
    overlap: float = 1.0
    #: fraction of peak the attention kernels (QK^T, softmax, PV; fused, at fp16 unless the
    #: step is fp8) reach; 0: as ``compute``
    attention: float = 0.0
    source: str = ""


# Defaults. GPUs: the A100 fit to published measurements (benchmarks/data/published_llm.csv,
# dse.devices.published.fit_published; A100 and H100 carry their own fits in devices.json,
# with the fit error in results/README.md, section published_llm). GPUs without published
# rows here (L4, V100, RTX 4090) take the A100 fit: an ASSUMPTION. CPUs: no published rows
# either; STREAM-class bandwidth is ~80 % of DDR peak, vectorized GEMM ~50 % of the derived
# peak, and a kernel (one oneDNN primitive) ~20 us: ASSUMPTIONS. Override per device or fit
# with `dse calibrate`.
GPU_FIT = Efficiency(compute=0.775, memory=0.75, kernel_overhead_s=3e-6, overlap=0.4,
                     attention=0.375, source="A100 fit to published rows (benchmarks/data/"
                     "published_llm.csv), applied to a GPU without rows of its own: an "
                     "assumption")
DEFAULT_EFFICIENCY = {"gpu": GPU_FIT,
                      "cpu": Efficiency(compute=0.5, memory=0.8, kernel_overhead_s=20e-6,
                                        source="assumed (no published CPU rows): STREAM-class "
                                        "80 % of DDR peak, 50 % of the derived GEMM peak, "
                                        "20 us per oneDNN primitive")}


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    name: str
    kind: str  # gpu | cpu
    memory_gib: float
    memory_gbps: float
    nic_gbps: float
    host_gbps: float  # to/from host memory (PCIe for GPUs; the memory itself for CPUs)
    peak_tops: dict[str, float]
    efficiency: Efficiency
    price_per_hour: float | None = None
    source: str = ""

    def peak(self, precision: str) -> float:
        """Tera-ops/s at ``precision``, falling back to the next wider supported one."""
        order = PRECISIONS[PRECISIONS.index(precision):]
        for p in order:
            if p in self.peak_tops:
                return self.peak_tops[p] * 1e12
        return self.peak_tops["fp32"] * 1e12


REQUIRED_KEYS = ("name", "kind", "memory_gib", "memory_gbps", "nic_gbps", "peak_tops")


def _device(d: Any, where: str, board_names: tuple[str, ...] = ()) -> Device:
    """A device from a validated [[devices]] entry (``dse.schemas_llm.DeviceIn``)."""
    from dse.schemas_llm import check_device

    v = check_device(d, where, board_names)
    eff = DEFAULT_EFFICIENCY[v.kind]
    if v.efficiency is not None:
        given = {k: x for k, x in v.efficiency.model_dump().items() if x is not None}
        eff = replace(eff, **{"source": f"given in {where}", **given})
    return Device(name=v.name, kind=v.kind, memory_gib=float(v.memory_gib),
                  memory_gbps=float(v.memory_gbps), nic_gbps=float(v.nic_gbps),
                  host_gbps=float(v.host_gbps),
                  peak_tops={str(k): float(x) for k, x in v.peak_tops.items()},
                  efficiency=eff, price_per_hour=(None if v.price_per_hour is None
                                                  else float(v.price_per_hour)),
                  source=v.source)


# short names people type
ALIASES = {"a100": "A100-80GB", "h100": "H100", "epyc": "EPYC-9654x2", "xeon": "Xeon-8480x2",
           "4090": "RTX4090", "rtx-4090": "RTX4090"}


@dataclass
class DeviceCatalog:
    devices: dict[str, Device] = field(default_factory=dict)

    def get(self, name: str) -> Device | None:
        name = ALIASES.get(name.lower(), name)
        return self.devices.get(name) or next(
            (d for k, d in self.devices.items() if k.lower() == name.lower()), None)


def load_devices(files: list[str | Path] | tuple = ()) -> DeviceCatalog:
    """The shipped devices plus ``[[devices]]`` entries of the user's board files (TOML or
    JSON), which override shipped ones of the same name."""
    from dse.specs import load_catalog
    from dse.specs.board import read_board_file

    boards = tuple(load_catalog(files or ()).boards)
    cat = DeviceCatalog()
    for d in json.loads(DATA.read_text())["devices"]:
        cat.devices[d["name"]] = _device(d, str(DATA), boards)
    for f in files or ():
        p = Path(f)
        data = read_board_file(p)
        if not isinstance(data, dict):
            raise SpecError(f"{p}: a board/device file is a table (a JSON object)")
        entries = data.get("devices", [])
        if not isinstance(entries, list):
            raise SpecError(f"{p}: devices must be a list of tables ([[devices]])")
        names: set[str] = set()
        for i, d in enumerate(entries):
            dev = _device(d, f"{p}: devices[{i}]", boards)
            if dev.name.lower() in names:
                raise SpecError(f"{p}: device {dev.name!r} is defined twice; keep one")
            names.add(dev.name.lower())
            cat.devices[dev.name] = dev
    return cat


# -- roofline --------------------------------------------------------------------------------

def compute_precision(weights: str, acts: str) -> str:
    """Weight-only int4/int8 kernels compute in fp16 unless activations are integer too."""
    w, a = weights.upper(), acts.upper()
    if w.startswith("FP<4,3,") and a.startswith("FP<4,3,"):  # FP8 E4M3 weights and
        return "fp8"  # activations (dse's minifloat types): the FP8 tensor cores
    if a.startswith("FLOAT") or w.startswith("FLOAT"):
        return "fp16"
    if a.startswith("INT") or a.startswith("UINT"):
        return "int4" if w in ("INT4", "UINT4") and a in ("INT4", "UINT4") else "int8"
    return "fp16"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCost:
    time_s: float
    compute_s: float
    memory_s: float
    overhead_s: float
    ops: float
    bytes: float

    @property
    def binding(self) -> str:
        if self.memory_s >= self.compute_s and self.memory_s >= self.overhead_s:
            return "memory bandwidth"
        return "compute" if self.compute_s >= self.overhead_s else "kernel launches"


def step_cost(dev: Device, *, params: float, weight_bits: float, tokens: int,
              attn_ops: float, kv_bytes: float, act_bytes: float, blocks: float,
              precision: str, eff: Efficiency | None = None) -> StepCost:
    """One step: ``tokens`` tokens through ``blocks`` blocks of ``params`` weights."""
    e = eff or dev.efficiency
    ops = 2 * params * tokens + attn_ops
    nbytes = params * weight_bits / 8 + kv_bytes + act_bytes
    attn_prec = precision if precision in ("fp8", "fp16", "fp32") else "fp16"
    compute_s = (2 * params * tokens / (dev.peak(precision) * e.compute)
                 + attn_ops / (dev.peak(attn_prec) * (e.attention or e.compute)))
    memory_s = nbytes / (dev.memory_gbps * 1e9 * e.memory)
    overhead_s = math.ceil(blocks) * e.kernels_per_block * e.kernel_overhead_s
    busy = max(compute_s, memory_s) + (1 - e.overlap) * min(compute_s, memory_s)
    return StepCost(time_s=busy + overhead_s, compute_s=compute_s, memory_s=memory_s,
                    overhead_s=overhead_s, ops=ops, bytes=nbytes)


# -- calibration -----------------------------------------------------------------------------

#: the fit uses at most this many rows (evenly spaced through the file); the errors reported
#: cover every row. Keeps a 200,000-row file to seconds (the grid search costs rows x 5,000).
FIT_ROWS = 20_000


def read_table(path: str | Path, columns: tuple[str, ...], flag: str
               ) -> list[dict[str, str]]:
    """The rows of a CSV file given with ``flag``, which must have ``columns``."""
    p = Path(path)
    try:
        rows = list(csv.DictReader(p.open(newline="")))
    except OSError as e:
        raise SpecError(f"{flag} {p}: {e.strerror or e}") from None
    if not rows:
        raise SpecError(f"{flag} {p}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise SpecError(f"{flag} {p}: missing column(s) {', '.join(missing)} (need "
                        f"{', '.join(columns)})")
    return rows


def read_measurements(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a measurement CSV (format: docs/devices.md; a sample ships as
    ``dse/devices/data/sample_measurements.csv``), streamed and validated row by row."""
    from dse.schemas_llm import iter_measurements

    out = [{"params": float(r.params), "weight_bits": float(r.weight_bits),
            "tokens": int(r.tokens), "attn_ops": float(r.attn_gops) * 1e9,
            "kv_bytes": float(r.kv_mb) * 1e6, "act_bytes": float(r.act_mb) * 1e6,
            "blocks": float(r.blocks), "precision": str(r.precision),
            "measured_s": float(r.measured_ms) / 1e3} for r in iter_measurements(path)]
    if not out:
        raise SpecError(f"--measurements {path}: no rows (one measured step per row)")
    return out


def predict(dev: Device, m: dict[str, Any], eff: Efficiency) -> float:
    return step_cost(dev, params=m["params"], weight_bits=m["weight_bits"],
                     tokens=m["tokens"], attn_ops=m["attn_ops"], kv_bytes=m["kv_bytes"],
                     act_bytes=m["act_bytes"], blocks=m["blocks"], precision=m["precision"],
                     eff=eff).time_s


@dataclass(frozen=True, slots=True, kw_only=True)
class _Terms:
    """Per row, the parts of ``step_cost`` that do not depend on the efficiencies (arrays)."""

    compute: Any  # ops / peak: seconds at compute efficiency 1
    memory: Any  # bytes / bandwidth: seconds at memory efficiency 1
    kernels: Any  # kernel launches
    measured: Any


def _terms(dev: Device, rows: list[dict[str, Any]], kernels_per_block: int) -> _Terms:
    import numpy as np

    def col(f: Any) -> Any:
        return np.fromiter((f(m) for m in rows), dtype=np.float64, count=len(rows))

    return _Terms(
        compute=col(lambda m: (2 * m["params"] * m["tokens"] + m["attn_ops"])
                    / dev.peak(m["precision"])),
        memory=col(lambda m: (m["params"] * m["weight_bits"] / 8 + m["kv_bytes"]
                              + m["act_bytes"]) / (dev.memory_gbps * 1e9)),
        kernels=col(lambda m: math.ceil(m["blocks"]) * kernels_per_block),
        measured=col(lambda m: m["measured_s"]))


def _times(t: _Terms, c: Any, m: Any, o: Any) -> Any:
    """Predicted step times (as ``step_cost``), candidates (c, m, o) x rows."""
    import numpy as np

    return (np.maximum(t.compute / c[..., None], t.memory / m[..., None])
            + t.kernels * o[..., None])


def _best_on_grid(fit: _Terms, gc: list[float], gm: list[float], go: list[float]
                  ) -> tuple[float, float, float]:
    """The (compute, memory, overhead) of the grid with the least squared log error."""
    import numpy as np

    c, m, o = (x.ravel() for x in np.meshgrid(gc, gm, go, indexing="ij"))
    loss = np.empty(len(c))
    step = max(1, 2_000_000 // max(1, len(fit.measured)))  # candidates per chunk
    for i in range(0, len(c), step):
        t = _times(fit, c[i:i + step], m[i:i + step], o[i:i + step])
        loss[i:i + step] = (np.log(t / fit.measured) ** 2).sum(axis=-1)
    j = int(np.argmin(loss))
    return float(c[j]), float(m[j]), float(o[j])


def calibrate(dev: Device, rows: list[dict[str, Any]]) -> tuple[Efficiency, dict[str, float]]:
    """Fit compute and memory efficiency and the kernel overhead to measured step times
    (least squares on the log of the times, by a coarse-to-fine grid). Returns the fit and
    its error: median and worst relative error, before and after."""
    import numpy as np

    k = dev.efficiency.kernels_per_block
    everything = _terms(dev, rows, k)
    fit = _terms(dev, rows[::max(1, -(-len(rows) // FIT_ROWS))], k)
    grid_c = [0.05 * i for i in range(1, 21)]
    grid_m = [0.05 * i for i in range(1, 21)]
    grid_o = [0.0, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4]
    bc = bm = bo = 0.0
    for _ in range(3):
        bc, bm, bo = _best_on_grid(fit, grid_c, grid_m, grid_o)
        step_c, step_m = grid_c[1] - grid_c[0], grid_m[1] - grid_m[0]
        grid_c = [min(1.0, max(0.01, bc + step_c * (i - 5) / 5)) for i in range(11)]
        grid_m = [min(1.0, max(0.01, bm + step_m * (i - 5) / 5)) for i in range(11)]
        grid_o = sorted({max(0.0, bo * f) for f in (0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)}
                        | {bo})
    best = replace(dev.efficiency, compute=bc, memory=bm, kernel_overhead_s=bo)

    def err(e: Efficiency) -> Any:
        t = _times(everything, np.asarray(e.compute), np.asarray(e.memory),
                   np.asarray(e.kernel_overhead_s))
        return np.abs(t - everything.measured) / everything.measured

    before, after = err(dev.efficiency), err(best)
    return best, {"median_rel_error_before": float(np.median(before)),
                  "max_rel_error_before": float(before.max()),
                  "median_rel_error": float(np.median(after)),
                  "max_rel_error": float(after.max()), "rows": len(rows),
                  "rows_fitted": len(fit.measured)}


def device_rows(files: list[str | Path] | tuple = ()) -> list[dict[str, Any]]:
    """The GPUs and CPUs (shipped and the files'), as ``dse boards`` lists them."""
    out = []
    for d in load_devices(files).devices.values():
        out.append({"name": d.name, "kind": d.kind, "memory_gib": d.memory_gib,
                    "memory_gbps": d.memory_gbps, "nic_gbps": d.nic_gbps,
                    "host_gbps": d.host_gbps, "peak_tops": dict(d.peak_tops),
                    "efficiency": {"compute": d.efficiency.compute,
                                   "memory": d.efficiency.memory,
                                   "kernel_overhead_s": d.efficiency.kernel_overhead_s},
                    "price_per_hour": d.price_per_hour, "source": d.source})
    return out
