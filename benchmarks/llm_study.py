"""Which mix of FPGAs, GPUs and CPUs serves which LLM best: a study with dse's models.

Every shipped architecture on: FPGAs only (1, 2, 4, 8 U55C), one GPU (A100-80GB, H100, L4),
a 2-socket CPU (EPYC 9654), and mixed chains (2 x U55C + A100-80GB, EPYC + 4 x U55C), the
chain order chosen by dse. Decoders decode (1,024 cached tokens, 8 sequences in flight per
device); BERT and T5 encode 128-token sequences. 4-bit weights, 8-bit activations and KV.

Prices are ASSUMPTIONS for the cost column (USD per hour, PRICES below), not measurements.

It also predicts NVIDIA's published Llama-2-7B latencies (NeMo Framework performance page,
FP16, 128 input + 20 output tokens, 1 GPU) with the same roofline and defaults, and writes
predicted vs published into results/README.md.

    python benchmarks/llm_study.py

Writes results/llm_study/{study.csv, throughput_vs_devices.png, cost_pareto.png,
published.csv} and the llm_study section of results/README.md.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dse import api  # noqa: E402
from dse.exceptions import DseError  # noqa: E402

SECTION = "## llm_study"
# ASSUMED prices, USD per hour, for the cost column only (override with --price in dse)
PRICES = {"U55C": 1.50, "A100-80GB": 4.10, "H100": 6.98, "L4": 0.80, "EPYC-9654x2": 3.00}
MODELS = ["bert-base", "bert-large", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl",
          "t5-base", "t5-large", "bloom-560m", "bloom-7b1", "llama2-7b", "llama2-13b",
          "llama2-70b"]
SETUPS = [
    ("1xU55C", ["U55C"]), ("2xU55C", ["U55C"] * 2), ("4xU55C", ["U55C"] * 4),
    ("8xU55C", ["U55C"] * 8), ("A100", ["A100-80GB"]), ("H100", ["H100"]), ("L4", ["L4"]),
    ("EPYC", ["EPYC-9654x2"]), ("2xU55C+A100", ["U55C", "U55C", "A100-80GB"]),
    ("EPYC+4xU55C", ["EPYC-9654x2"] + ["U55C"] * 4),
]
# NVIDIA NeMo Framework user guide, "Performance > Llama 2", inference table (A100 80GB SXM4
# and H100 80GB HBM3, TP=1 PP=1, 128 input / 20 output tokens): average latency in ms
PUBLISHED = [
    ("Llama-2-7B, batch 1, A100 80GB", "A100-80GB", 1, 234.0),
    ("Llama-2-7B, batch 1, H100", "H100", 1, 153.8),
    ("Llama-2-7B, batch 8, A100 80GB", "A100-80GB", 8, 329.5),
    ("Llama-2-7B, batch 8, H100", "H100", 8, 199.2),
]
SOURCE = ("https://docs.nvidia.com/nemo-framework/user-guide/latest/performance/llama.html")


def study_rows() -> list[dict]:
    rows = []
    for model in MODELS:
        for setup, names in SETUPS:
            encoder = model.startswith(("bert", "t5"))
            kw = dict(mode="encoder" if encoder else "decode", seq=128,
                      sequences=1 if encoder else 8 * len(names), weights="int4",
                      acts="int8", prices=PRICES, order="auto")
            t0 = time.perf_counter()
            try:
                d = api.optimize_llm(model, boards=",".join(names), **kw).data
            except DseError as e:
                rows.append({"model": model, "setup": setup, "devices": len(names),
                             "feasible": False, "reason": str(e)[:160]})
                print(f"{model:11s} {setup:12s} -- {str(e)[:90]}", flush=True)
                continue
            m = d["metrics"]
            tps = m["tokens_per_s"]
            rows.append({
                "model": model, "setup": setup, "devices": len(names),
                "devices_used": m["boards_used"], "feasible": True,
                "chain": " > ".join(s["board"] for s in d["stages"]),
                "mode": m["mode"], "sequences": m["sequences"],
                "tokens_per_s": round(tps, 2),
                "sequences_per_s": round(m.get("sequences_per_s", 0.0), 3),
                "latency_ms": round(1e3 * m.get("latency_per_token_s", m["latency_s"]), 3),
                "cost_per_million_tokens": round(m["cost_per_million_tokens"], 4)
                if m.get("cost_per_million_tokens") is not None else "",
                "binding": m["binding"], "solve_s": round(time.perf_counter() - t0, 2),
                "reason": ""})
            print(f"{model:11s} {setup:12s} {tps:12,.1f} tokens/s  {m['binding']}", flush=True)
    return rows


def published_rows() -> list[dict]:
    """Request latency = prefill of batch x 128 tokens + 19 decode steps, FP16, same model."""
    from dse.devices import compute_precision, load_devices, step_cost
    from dse.llm.config import load_arch

    a = load_arch("llama2-7b")
    cat = load_devices()
    out = []
    for label, dev_name, batch, ms in PUBLISHED:
        dev = cat.get(dev_name)
        params = a.params()
        prec = compute_precision("FLOAT16", "FLOAT16")
        L, n_out = 128, 20
        kv_tok = a.layers * 2 * a.kv_dim * 2  # bytes per cached token (FP16)
        pre = step_cost(dev, params=params, weight_bits=16, tokens=batch * L,
                        attn_ops=a.layers * 4 * a.hidden * L * batch * L / 2, kv_bytes=0.0,
                        act_bytes=batch * L * a.hidden * 2 * 12 * a.layers, blocks=a.layers,
                        precision=prec).time_s
        dec = 0.0
        for t in range(1, n_out):
            ctx = L + t
            dec += step_cost(dev, params=params, weight_bits=16, tokens=batch,
                             attn_ops=a.layers * 4 * a.hidden * ctx * batch,
                             kv_bytes=kv_tok * ctx * batch,
                             act_bytes=batch * a.hidden * 2 * 12 * a.layers, blocks=a.layers,
                             precision=prec).time_s
        pred = 1e3 * (pre + dec)
        out.append({"case": label, "published_ms": ms, "predicted_ms": round(pred, 1),
                    "error": round(pred / ms - 1, 3), "source": SOURCE})
    return out


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dse.llm.explore import dominates

    ok = [r for r in rows if r["feasible"]]
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for model in ("llama2-7b", "llama2-13b", "bloom-7b1", "gpt2-xl"):
        pts = sorted((r["devices"], r["tokens_per_s"]) for r in ok
                     if r["model"] == model and r["setup"].endswith("U55C")
                     and "+" not in r["setup"])
        if pts:
            ax.plot(*zip(*pts), "o-", label=f"{model} (U55C)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _save(fig, ax, "U55C boards", "aggregate tokens/s (decode, 8 sequences per board)",
          out / "throughput_vs_devices.png")
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    sel = [r for r in ok if r["model"] == "llama2-7b" and r["cost_per_million_tokens"] != ""]
    ax.scatter([r["tokens_per_s"] for r in sel], [r["cost_per_million_tokens"] for r in sel])
    for r in sel:
        ax.annotate(r["setup"], (r["tokens_per_s"], r["cost_per_million_tokens"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    keys = [("tokens_per_s", 1), ("cost_per_million_tokens", -1)]
    front = [r for r in sel if not any(dominates(o, r, keys) for o in sel)]
    front.sort(key=lambda r: r["tokens_per_s"])
    ax.plot([r["tokens_per_s"] for r in front], [r["cost_per_million_tokens"] for r in front],
            "-", c="#d1495b", label="Pareto front")
    _save(fig, ax, "Llama-2-7B aggregate tokens/s", "$ per million tokens (assumed prices)",
          out / "cost_pareto.png")


def _save(fig, ax, xlabel: str, ylabel: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_csv(path: Path, rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def readme(rows: list[dict], pub: list[dict]) -> str:
    lines = [SECTION, "",
             "`benchmarks/llm_study.py` (dse's models, nothing measured on hardware here): "
             "every shipped config on FPGAs, GPUs, a CPU and mixed chains; decoders decode "
             "(1,024 cached tokens, 8 sequences per device), BERT/T5 encode 128 tokens; 4-bit "
             "weights, 8-bit activations/KV. Costs use ASSUMED prices "
             f"({', '.join(f'{k} {v:.2f}' for k, v in PRICES.items())} $/h). Full table: "
             "`llm_study/study.csv`; plots `llm_study/throughput_vs_devices.png`, "
             "`llm_study/cost_pareto.png`; `notebooks/llm_pipelines.ipynb` draws them.", "",
             "| model | best tokens/s (setup) | cheapest $/Mtok (setup) | FPGA-only 4xU55C | "
             "A100 | EPYC |", "|---|---|---|---:|---:|---:|"]
    for model in MODELS:
        ok = [r for r in rows if r["model"] == model and r["feasible"]]
        if not ok:
            lines.append(f"| {model} | none fits | | | | |")
            continue
        best = max(ok, key=lambda r: r["tokens_per_s"])
        cheap = min((r for r in ok if r["cost_per_million_tokens"] != ""),
                    key=lambda r: r["cost_per_million_tokens"], default=None)

        def tps(setup: str) -> str:
            r = next((x for x in ok if x["setup"] == setup), None)
            return f"{r['tokens_per_s']:,.0f}" if r else "does not fit"

        lines.append(
            f"| {model} | {best['tokens_per_s']:,.0f} ({best['setup']}) | "
            + (f"{cheap['cost_per_million_tokens']:.3f} ({cheap['setup']})" if cheap else "")
            + f" | {tps('4xU55C')} | {tps('A100')} | {tps('EPYC')} |")
    lines += ["", "### Predicted vs published", "",
              "Request latency of Llama-2-7B, FP16, 128 input + 20 output tokens, one GPU: "
              "dse's roofline (default efficiencies: compute 0.6, memory 0.75, 8 us per "
              f"kernel) against NVIDIA's published averages ([NeMo Framework]({SOURCE})).", "",
              "| case | published ms | predicted ms | error |", "|---|---:|---:|---:|"]
    for p in pub:
        lines.append(f"| {p['case']} | {p['published_ms']} | {p['predicted_ms']} | "
                     f"{100 * p['error']:+.1f} % |")
    worst = max(pub, key=lambda p: abs(p["error"]))
    lines += ["", f"Where they disagree most ({worst['case']}, {100 * worst['error']:+.1f} %): "
              "the roofline charges every decode step the full weight read and a fixed "
              "launch cost per kernel; NVIDIA's TensorRT-LLM fuses kernels and overlaps "
              "them, and at batch 8 its attention and GEMMs run nearer peak than the single "
              "efficiency per device assumes. FPGA numbers in this study are not checked "
              "against hardware (no published multi-U55C LLM figures were found).", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    out = REPO / "results" / "llm_study"
    out.mkdir(parents=True, exist_ok=True)
    rows = study_rows()
    pub = published_rows()
    write_csv(out / "study.csv", rows)
    write_csv(out / "published.csv", pub)
    plots(rows, out)
    from benchmarks.llm_benchmark import write_section_named

    write_section_named(REPO / "results" / "README.md", SECTION, readme(rows, pub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
