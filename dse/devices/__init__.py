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
import statistics
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dse.exceptions import SpecError

DATA = Path(__file__).parent / "data" / "devices.json"
PRECISIONS = ("int4", "int8", "fp8", "fp16", "fp32")


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peak a device reaches, and the fixed cost per kernel launch."""

    compute: float = 0.6
    memory: float = 0.75
    kernel_overhead_s: float = 8e-6
    kernels_per_block: int = 12  # norms, 4-7 GEMMs, attention, activations, residuals


# Defaults: memory-bound decode kernels on data-centre GPUs reach 70-80 % of peak HBM
# bandwidth and dense GEMMs 50-70 % of tensor peak (the roofline analyses of Williams et
# al., CACM 2009, applied to LLM serving); the check against NVIDIA's published Llama-2
# latencies in results/README.md (llm_study) shows what these defaults give. CPUs: STREAM-
# class bandwidth is ~80 % of DDR peak, vectorized GEMM ~50 % of the derived peak, and a
# kernel (one oneDNN primitive) costs ~20 us. Override per device or fit with `dse
# calibrate`.
DEFAULT_EFFICIENCY = {"gpu": Efficiency(), "cpu": Efficiency(compute=0.5, memory=0.8,
                                                             kernel_overhead_s=20e-6)}


@dataclass(frozen=True)
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


def _device(d: dict[str, Any], where: str) -> Device:
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        raise SpecError(f"{where}: device {d.get('name', '?')!r} misses "
                        f"{', '.join(repr(k) for k in missing)} (a device needs "
                        f"{', '.join(REQUIRED_KEYS)})")
    try:
        kind = d["kind"]
        if kind not in DEFAULT_EFFICIENCY:
            raise SpecError(f"{where}: device {d.get('name')!r} kind {kind!r}; use gpu or cpu")
        eff = DEFAULT_EFFICIENCY[kind]
        if "efficiency" in d:
            overrides: dict[str, Any] = {k: float(v) for k, v in d["efficiency"].items()}
            eff = replace(eff, **overrides)
        peaks = {str(k): float(v) for k, v in d["peak_tops"].items()}
        bad = [k for k in peaks if k not in PRECISIONS]
        if bad or "fp32" not in peaks:
            raise SpecError(f"{where}: device {d['name']!r} peak_tops needs fp32 and only "
                            f"{', '.join(PRECISIONS)} (got {', '.join(sorted(peaks))})")
        dev = Device(name=str(d["name"]), kind=kind, memory_gib=float(d["memory_gib"]),
                     memory_gbps=float(d["memory_gbps"]), nic_gbps=float(d["nic_gbps"]),
                     host_gbps=float(d.get("host_gbps", 25.0)), peak_tops=peaks,
                     efficiency=eff, price_per_hour=(float(d["price_per_hour"])
                                                    if d.get("price_per_hour") is not None
                                                    else None), source=str(d.get("source", "")))
    except KeyError as e:
        raise SpecError(f"{where}: device {d.get('name', '?')!r} misses {e.args[0]!r} "
                        "(name, kind, memory_gib, memory_gbps, nic_gbps, peak_tops)") from None
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: device {d.get('name', '?')!r}: {e}") from None
    for f_ in ("memory_gib", "memory_gbps", "nic_gbps", "host_gbps"):
        if getattr(dev, f_) <= 0:
            raise SpecError(f"{where}: device {dev.name!r}: {f_} must be positive")
    ef = dev.efficiency
    if not (0 < ef.compute <= 1 and 0 < ef.memory <= 1 and ef.kernel_overhead_s >= 0):
        raise SpecError(f"{where}: device {dev.name!r}: efficiencies must be in (0, 1] and "
                        "the kernel overhead >= 0")
    return dev


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
    cat = DeviceCatalog()
    for d in json.loads(DATA.read_text())["devices"]:
        cat.devices[d["name"]] = _device(d, str(DATA))
    for f in files or ():
        p = Path(f)
        try:
            if p.suffix == ".toml":
                data = tomllib.loads(p.read_text())
            else:
                data = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise SpecError(f"{p}: not a readable TOML/JSON file ({e})") from None
        for d in data.get("devices", []) if isinstance(data, dict) else []:
            if not isinstance(d, dict):
                raise SpecError(f"{p}: every [[devices]] entry must be a table")
            dev = _device(d, str(p))
            cat.devices[dev.name] = dev
    return cat


# -- roofline --------------------------------------------------------------------------------

def compute_precision(weights: str, acts: str) -> str:
    """Weight-only int4/int8 kernels compute in fp16 unless activations are integer too."""
    w, a = weights.upper(), acts.upper()
    if a.startswith("FLOAT") or w.startswith("FLOAT"):
        return "fp16"
    if a.startswith("INT") or a.startswith("UINT"):
        return "int4" if w in ("INT4", "UINT4") and a in ("INT4", "UINT4") else "int8"
    return "fp16"


@dataclass(frozen=True)
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
    compute_s = ops / (dev.peak(precision) * e.compute)
    memory_s = nbytes / (dev.memory_gbps * 1e9 * e.memory)
    overhead_s = math.ceil(blocks) * e.kernels_per_block * e.kernel_overhead_s
    return StepCost(max(compute_s, memory_s) + overhead_s, compute_s, memory_s, overhead_s,
                    ops, nbytes)


# -- calibration -----------------------------------------------------------------------------

MEASUREMENT_COLUMNS = ("params", "weight_bits", "tokens", "attn_gops", "kv_mb", "act_mb",
                       "blocks", "precision", "measured_ms")


def read_measurements(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        rows = list(csv.DictReader(p.open(newline="")))
    except OSError as e:
        raise SpecError(f"--measurements {p}: {e.strerror or e}") from None
    if not rows:
        raise SpecError(f"--measurements {p}: no rows")
    missing = [c for c in MEASUREMENT_COLUMNS if c not in rows[0]]
    if missing:
        raise SpecError(f"--measurements {p}: missing column(s) {', '.join(missing)} (need "
                        f"{', '.join(MEASUREMENT_COLUMNS)})")
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append({"params": float(r["params"]), "weight_bits": float(r["weight_bits"]),
                        "tokens": int(r["tokens"]), "attn_ops": float(r["attn_gops"]) * 1e9,
                        "kv_bytes": float(r["kv_mb"]) * 1e6,
                        "act_bytes": float(r["act_mb"]) * 1e6, "blocks": float(r["blocks"]),
                        "precision": r["precision"].strip().lower(),
                        "measured_s": float(r["measured_ms"]) / 1e3})
        except ValueError as e:
            raise SpecError(f"--measurements {p}: row {i}: {e}") from None
        if out[-1]["precision"] not in PRECISIONS or out[-1]["measured_s"] <= 0:
            raise SpecError(f"--measurements {p}: row {i}: precision one of "
                            f"{', '.join(PRECISIONS)}, measured_ms > 0")
    return out


def predict(dev: Device, m: dict[str, Any], eff: Efficiency) -> float:
    return step_cost(dev, params=m["params"], weight_bits=m["weight_bits"],
                     tokens=m["tokens"], attn_ops=m["attn_ops"], kv_bytes=m["kv_bytes"],
                     act_bytes=m["act_bytes"], blocks=m["blocks"], precision=m["precision"],
                     eff=eff).time_s


def calibrate(dev: Device, rows: list[dict[str, Any]]) -> tuple[Efficiency, dict[str, float]]:
    """Fit compute and memory efficiency and the kernel overhead to measured step times
    (least squares on the log of the times, by a coarse-to-fine grid). Returns the fit and
    its error: median and worst relative error, before and after."""
    def err(e: Efficiency) -> list[float]:
        return [abs(predict(dev, m, e) - m["measured_s"]) / m["measured_s"] for m in rows]

    def loss(e: Efficiency) -> float:
        return sum(math.log(predict(dev, m, e) / m["measured_s"]) ** 2 for m in rows)

    best = dev.efficiency
    grid_c = [0.05 * i for i in range(1, 21)]
    grid_m = [0.05 * i for i in range(1, 21)]
    grid_o = [0.0, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4]
    for _ in range(3):
        cands = [replace(best, compute=c, memory=m_, kernel_overhead_s=o)
                 for c in grid_c for m_ in grid_m for o in grid_o]
        best = min(cands, key=loss)
        step_c, step_m = grid_c[1] - grid_c[0], grid_m[1] - grid_m[0]
        grid_c = [min(1.0, max(0.01, best.compute + step_c * (i - 5) / 5)) for i in range(11)]
        grid_m = [min(1.0, max(0.01, best.memory + step_m * (i - 5) / 5)) for i in range(11)]
        o = best.kernel_overhead_s
        grid_o = sorted({max(0.0, o * f) for f in (0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)} | {o})
    before, after = err(dev.efficiency), err(best)

    return best, {"median_rel_error_before": statistics.median(before),
                  "max_rel_error_before": max(before),
                  "median_rel_error": statistics.median(after), "max_rel_error": max(after),
                  "rows": len(rows)}
