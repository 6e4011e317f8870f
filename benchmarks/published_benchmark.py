"""dse's LLM predictions against published measurements (benchmarks/data/published_llm.csv).

Every row is a figure someone published for one device (NVIDIA's TensorRT BERT demo and
TensorRT-LLM performance tables, lmdeploy's A100 benchmark, NVIDIA NeMo, FlightLLM on a
U280), with its source. For each GPU row dse predicts the same metric with its GPU roofline
(``dse.devices.published``); the FPGA row goes through ``dse optimize`` and is explained
(which bound, which efficiency), not fitted.

The GPU efficiencies (compute, memory, kernel overhead) are fitted to two thirds of the GPU
rows (``split = train``) and checked on the rest (``held-out``), both reported. Rows whose
published value beats the device's physical floor (100 % of peak, no overhead) stay in the
table, flagged.

    python benchmarks/published_benchmark.py

Writes results/published_llm.csv and the ``published_llm`` section of results/README.md.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dse.devices import DEFAULT_EFFICIENCY, load_devices  # noqa: E402
from dse.devices.published import (  # noqa: E402
    PublishedRow,
    fit_published,
    floor_row,
    impossible,
    predict_row,
    read_published,
)

DATA = REPO / "benchmarks" / "data" / "published_llm.csv"
OUT = REPO / "results" / "published_llm.csv"
README = REPO / "results" / "README.md"
SECTION = "## published_llm"


#: chips whose efficiencies are fitted here (and shipped in devices.json); the rows of other
#: GPUs (V100) are all held out: they test the A100 fit that GPUs without rows take
FIT_CHIPS = ("A100", "H100")


def split(i: int, device: str = "A100") -> str:
    if device.split("-")[0] not in FIT_CHIPS:
        return "held-out"
    return "held-out" if i % 3 == 2 else "train"


def fpga_row(r: PublishedRow) -> dict:
    """dse on the FPGA board, and what bounds it: the board's HBM bound for the model's
    bytes per token, and what FINN's dataflow as dse models it needs."""
    from dse import api
    from dse.exceptions import InfeasibleError
    from dse.llm.config import load_arch, quant_spec
    from dse.llm.network import build_network
    from dse.specs import default_catalog
    from dse.specs.memory import DEFAULT_EFFICIENCY

    net = build_network(load_arch(r.model), quant_spec(r.weights, r.acts, r.kv), "decode",
                        context=r.input_len)
    blk = net.stacks[0].block
    per_token = net.n_blocks * (net.block_weight_bits(blk) + net.kv_bits_per_token(blk)) / 8
    board = default_catalog().configure(r.device).board
    bound = board.external_memory_gbps * 1e9 * DEFAULT_EFFICIENCY / per_token
    implied = DEFAULT_EFFICIENCY * r.published / bound
    kw = dict(sequences=r.batch, context=r.input_len, seq=r.input_len, weights=r.weights,
              acts=r.acts, kv=r.kv)
    last = ""
    for n in (1, 2, 4, 8, 16):
        try:
            m = api.optimize_llm(r.model, boards=",".join([r.device] * n), **kw).data["metrics"]
        except InfeasibleError as e:
            last = str(e).splitlines()[0]
            continue
        finn = (f"FINN's dataflow as dse models it needs {m['boards_used']} x {r.device} "
                f"({m['tokens_per_s']:.1f} tokens/s at batch {r.batch}, {m['binding']})")
        break
    else:
        finn = f"FINN's dataflow as dse models it does not fit 16 x {r.device} ({last})"
    why = (f"one {r.device}'s HBM bound at efficiency {DEFAULT_EFFICIENCY:g} is {bound:.1f} "
           f"tokens/s ({per_token / 1e9:.2f} GB per token); the published figure is "
           f"{r.published / bound:.0%} of it, an effective HBM efficiency of {implied:.2f}. "
           f"{finn}")
    return {"pred": bound, "floor": bound / DEFAULT_EFFICIENCY, "why": why}


def main() -> None:
    rows = read_published(DATA)
    cat = load_devices()
    gpus = {r.device: cat.get(r.device) for r in rows if cat.get(r.device) is not None}
    train = [r for i, r in enumerate(rows) if r.device in gpus
             and split(i, r.device) == "train"]
    fits, fitted = {}, dict(gpus)  # chips without a fit keep their shipped efficiencies
    for chip in FIT_CHIPS:  # A100-40GB and -80GB: one chip
        devs = {n: d for n, d in gpus.items() if chip_of(n) == chip}
        fits[chip] = fit_published(devs, train)
        fitted.update({n: replace(d, efficiency=fits[chip].efficiency)
                       for n, d in devs.items()})
    out = []
    for i, r in enumerate(rows):
        rec = {"id": r.id, "device": r.device, "model": r.model,
               "precision": f"{r.weights}/{r.acts}/{r.kv}", "batch": r.batch,
               "input_len": r.input_len, "output_len": r.output_len, "metric": r.metric,
               "published": r.published, "source": r.source, "table": r.table}
        if r.device in gpus:
            dev = gpus[r.device]
            floor = floor_row(r, dev)
            rec.update(split=split(i, r.device), pred_shipped=predict_row(r, dev),
                       pred=predict_row(r, fitted[r.device]), floor=floor,
                       flag=("physically impossible: beats the device's floor (100 % of peak, "
                             "no overhead)" if impossible(r, floor) else ""))
        else:
            x = fpga_row(r)
            rec.update(split="fpga (HBM bound)", pred_shipped=x["pred"], pred=x["pred"],
                       floor=x["floor"], flag=x["why"])
        rec["ratio"] = rec["pred"] / r.published
        out.append(rec)
    write_csv(out)
    write_readme(out, fits)


def chip_of(device: str) -> str:
    return device.split("-")[0]


def write_csv(out: list[dict]) -> None:
    cols = ["id", "split", "device", "model", "precision", "batch", "input_len", "output_len",
            "metric", "published", "pred", "ratio", "pred_shipped", "floor", "flag", "source",
            "table"]
    with OUT.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for rec in out:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v)
                        for k, v in rec.items() if k in cols})


def stats(recs: list[dict], key: str = "pred") -> tuple[float, float, int]:
    errs = [abs(math.log(r[key] / r["published"])) for r in recs]
    return statistics.median(errs), max(errs), len(errs)


def write_readme(out: list[dict], fits: dict) -> None:
    gpu = [r for r in out if r["split"] in ("train", "held-out") and not r["flag"]]
    tr = [r for r in gpu if r["split"] == "train"]
    ho = [r for r in gpu if r["split"] == "held-out"]
    ship = DEFAULT_EFFICIENCY["gpu"]
    lines = [SECTION, "",
             "`python benchmarks/published_benchmark.py`: dse's GPU roofline and FPGA planner "
             "against published measurements (`benchmarks/data/published_llm.csv`, each row with "
             "its source and table; `results/published_llm.csv` has every row with dse's "
             "prediction). `pred` uses the GPU efficiencies fitted per chip to the `train` "
             "rows (`dse.devices.published.fit_published`; a grid over compute, memory, kernel "
             "overhead, compute/memory overlap and attention efficiency); `shipped` is what "
             "`dse/devices/data/devices.json` and `DEFAULT_EFFICIENCY` give (default compute "
             f"{ship.compute:g}, memory {ship.memory:g}, {ship.kernel_overhead_s * 1e6:g} us).",
             ""]
    for chip, f in fits.items():
        e = f.efficiency
        lines.append(f"- fit {chip}: compute {e.compute:.3f}, memory {e.memory:.3f}, kernel "
                     f"overhead {e.kernel_overhead_s * 1e6:.1f} us x {e.kernels_per_block} "
                     f"per block, overlap {e.overlap:.2f}, attention "
                     f"{e.attention:.3f} of peak ({f.rows} "
                     f"train rows; median |ln| {f.median_abs_log_error_before:.3f} before, "
                     f"{f.median_abs_log_error:.3f} after)")
    for name, recs in (("train", tr), ("held-out", ho), ("all GPU rows", gpu)):
        med, worst, n = stats(recs)
        lines.append(f"- {name}: {n} rows, median |ln(pred/pub)| {med:.3f}, worst {worst:.3f} "
                     f"(factor {math.exp(worst):.2f})")
    med, worst, n = stats(gpu, "pred_shipped")
    lines.append(f"- shipped defaults on all GPU rows: median {med:.3f}, worst {worst:.3f}")
    lines += ["", "| id | split | device | model | precision | batch | in/out | metric | "
              "published | dse | ratio | note |", "|---" * 12 + "|"]
    for r in out:
        lines.append(f"| {r['id']} | {r['split']} | {r['device']} | {r['model']} | "
                     f"{r['precision']} | {r['batch']} | {r['input_len']}/{r['output_len']} | "
                     f"{r['metric']} | {r['published']:,.4g} | {r['pred']:,.4g} | "
                     f"{r['ratio']:.2f} | {r['flag']} |")
    lines += ["", "Sources: " + "; ".join(sorted({f"{r['source']}" for r in out})) + ".",
              "V100 rows are not fitted: they check the A100 fit that GPUs without rows of "
              "their own take. Not covered: L4 (no published single-GPU table with batch and "
              "lengths was found with the search tool), CPUs, tensor-parallel rows (dse has no "
              "tensor parallelism).", ""]
    text = README.read_text()
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines)
    README.write_text(text)
    for ln in lines[:10]:
        print(ln)


if __name__ == "__main__":
    main()
