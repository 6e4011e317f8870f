"""Published LLM measurements (a CSV of rows with their sources) against dse's predictions,
and a fit of a device's efficiencies to them (``dse calibrate --published``).

A row is one published figure on one device: model, precision, batch, input and output
lengths, which metric, the value and where it comes from. dse predicts the same metric with
the GPU/CPU stage model of ``dse.llm.hetero`` (one device holding the whole network):

* ``encoder_latency_ms``: one encoder step of ``batch`` sequences of ``input_len`` tokens;
* ``ttft_ms``: one prefill step of ``batch`` prompts of ``input_len`` tokens;
* ``e2e_latency_ms``: the prefill step plus ``output_len`` decode steps of the batch (each
  at the mean context, ``input_len + output_len / 2``; attention is linear in it);
* ``out_tokens_per_s``: ``batch x output_len`` over that end-to-end time (static batching);
* ``decode_tokens_per_s``: ``dse optimize`` on the device (FPGA boards too) at ``batch``
  sequences in flight, ``input_len`` cached tokens.

``floor`` is the same prediction at 100 % of peak compute and bandwidth and no launch
overhead: a published figure better than it is physically impossible on that device (the
row stays, flagged).
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dse.devices import Device, Efficiency, read_table
from dse.exceptions import SpecError

#: the most of peak HBM/DRAM bandwidth a fit may assume: STREAM-class kernels on A100/H100
#: reach about 90 % (NVIDIA's published bandwidthTest/STREAM figures), never 100 %
MAX_MEMORY = 0.92
METRICS = {"encoder_latency_ms": "lower", "ttft_ms": "lower", "e2e_latency_ms": "lower",
           "out_tokens_per_s": "higher", "decode_tokens_per_s": "higher"}
COLUMNS = ("id", "device", "model", "weights", "acts", "kv", "batch", "input_len",
           "output_len", "metric", "published", "source", "table")


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedRow:
    id: str
    device: str
    model: str
    weights: str
    acts: str
    kv: str
    batch: int
    input_len: int
    output_len: int
    metric: str
    published: float
    source: str
    table: str
    note: str = ""


def read_published(path: str | Path) -> list[PublishedRow]:
    p = Path(path)
    rows = read_table(p, COLUMNS, "--published")
    out = []
    for i, r in enumerate(rows, start=2):
        if r["metric"] not in METRICS:
            raise SpecError(f"--published {p}: row {i}: metric {r['metric']!r}; use one of "
                            f"{', '.join(METRICS)}")
        try:
            out.append(PublishedRow(
                id=r["id"], device=r["device"], model=r["model"], weights=r["weights"],
                acts=r["acts"], kv=r["kv"], batch=int(r["batch"]),
                input_len=int(r["input_len"]), output_len=int(r["output_len"]),
                metric=r["metric"], published=float(r["published"]), source=r["source"],
                table=r["table"], note=r.get("note") or ""))
        except ValueError as e:
            raise SpecError(f"--published {p}: row {i}: {e}") from None
        if out[-1].published <= 0 or out[-1].batch < 1:
            raise SpecError(f"--published {p}: row {i}: published value and batch must be "
                            "positive")
    return out


@functools.lru_cache(maxsize=256)
def _network(model: str, weights: str, acts: str, kv: str, mode: str, seq: int,
             context: int) -> Any:
    from dse.llm.config import load_arch, quant_spec
    from dse.llm.network import build_network

    return build_network(load_arch(model), quant_spec(weights, acts, kv), mode, seq=seq,
                         context=context)


def _step_s(row: PublishedRow, dev: Device, mode: str, seq: int, context: int,
            batch: int) -> float:
    """One step of ``batch`` sequences through the whole network on ``dev``."""
    from dse.llm.hetero import device_stage

    net = _network(row.model, row.weights, row.acts, row.kv, mode, seq, context)
    st = device_stage(net, dev, net.n_blocks, False, False, True, batch, prompt=seq)
    if st is None:
        raise SpecError(f"published row {row.id}: {row.model} at batch {batch} does not fit "
                        f"the {dev.name}'s {dev.memory_gib:g} GiB")
    return float(st.latency_s)


def predict_row(row: PublishedRow, dev: Device) -> float:
    """dse's prediction of ``row.metric`` on ``dev`` (a GPU or CPU)."""
    a = _network(row.model, row.weights, row.acts, row.kv,
                 "encoder" if row.metric == "encoder_latency_ms" else "prefill",
                 max(1, row.input_len), max(1, row.input_len)).arch
    if row.metric == "encoder_latency_ms":
        return 1e3 * _step_s(row, dev, "encoder", row.input_len, row.input_len, row.batch)
    prefill = _step_s(row, dev, "prefill", max(1, row.input_len), max(1, row.input_len),
                      row.batch) if a.causal else 0.0
    if row.metric == "ttft_ms":
        return 1e3 * prefill
    ctx = min(a.max_positions, row.input_len + max(1, row.output_len) // 2)
    step = _step_s(row, dev, "decode", max(1, row.input_len), ctx, row.batch)
    total = prefill + row.output_len * step
    if row.metric == "e2e_latency_ms":
        return 1e3 * total
    if row.metric == "out_tokens_per_s":
        return row.batch * row.output_len / total
    return row.batch / step  # decode_tokens_per_s


def floor_row(row: PublishedRow, dev: Device) -> float:
    """The prediction at 100 % of peak and no overhead: no device does better."""
    return predict_row(row, replace(dev, efficiency=replace(
        dev.efficiency, compute=1.0, memory=1.0, kernel_overhead_s=0.0, overlap=1.0,
        attention=1.0)))


def impossible(row: PublishedRow, floor: float) -> bool:
    better = METRICS[row.metric]
    return row.published < floor * 0.999 if better == "lower" else \
        row.published > floor * 1.001


def log_error(row: PublishedRow, pred: float) -> float:
    return math.log(pred / row.published)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit:
    efficiency: Efficiency
    rows: int
    median_abs_log_error_before: float
    max_abs_log_error_before: float
    median_abs_log_error: float
    max_abs_log_error: float


def fit_published(devices: dict[str, Device], rows: list[PublishedRow]) -> Fit:
    """One set of compute and memory efficiency and kernel overhead, for every device of
    ``devices`` (by name), that minimizes the summed absolute log error over the ``rows`` on them
    (physically impossible rows excluded), by a coarse grid then a fine one around its
    best."""
    use = [r for r in rows if r.device in devices
           and not impossible(r, floor_row(r, devices[r.device]))]
    if not use:
        raise SpecError(f"calibrate: no usable published rows for {', '.join(devices)}")
    start = next(iter(devices.values())).efficiency

    def errors(e: Efficiency) -> list[float]:
        return [log_error(r, predict_row(r, replace(devices[r.device], efficiency=e)))
                for r in use]

    def loss(e: Efficiency) -> float:
        return sum(abs(x) for x in errors(e))  # L1: the median error is the target

    best, best_loss = start, float("inf")  # the grid alone decides (reproducible)
    cs = [0.4 + 0.1 * i for i in range(6)]
    ms = [0.6, 0.7, 0.8, 0.9]
    os_ = [0.0, 2e-6, 4e-6, 6e-6, 8e-6]
    hs = [0.0, 0.25, 0.5, 0.75, 1.0]
    ats = [0.1, 0.2, 0.3, 0.5]
    for _ in range(2):
        for c, m, o, h, a in itertools.product(cs, ms, os_, hs, ats):
            e = replace(start, compute=min(1.0, c), memory=min(MAX_MEMORY, m),
                        kernel_overhead_s=o, overlap=h, attention=a)
            v = loss(e)
            if v < best_loss:
                best, best_loss = e, v
        cs = [best.compute + d for d in (-0.05, -0.025, 0.0, 0.025, 0.05) if
              0.05 <= best.compute + d <= 1.0]
        ms = [best.memory + d for d in (-0.05, -0.025, 0.0, 0.025, 0.05) if
              0.05 <= best.memory + d <= 1.0]
        os_ = sorted({max(0.0, best.kernel_overhead_s + d) for d in (-1e-6, 0.0, 1e-6)})
        hs = sorted({min(1.0, max(0.0, best.overlap + d)) for d in (-0.1, 0.0, 0.1)})
        ats = sorted({min(1.0, best.attention * f) for f in (0.8, 1.0, 1.25)})
    before = [abs(x) for x in errors(start)]
    after = [abs(x) for x in errors(best)]
    return Fit(efficiency=best, rows=len(use),
               median_abs_log_error_before=statistics.median(before),
               max_abs_log_error_before=max(before),
               median_abs_log_error=statistics.median(after), max_abs_log_error=max(after))
