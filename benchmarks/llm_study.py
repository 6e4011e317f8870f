"""Which mix of FPGAs, GPUs and CPUs serves which LLM best: a study with dse's models.

Every shipped architecture on: FPGAs only (1, 2, 4, 8 U55C), one GPU (A100-80GB, H100, L4),
a 2-socket CPU (EPYC 9654), and mixed chains (2 x U55C + A100-80GB, EPYC + 4 x U55C). Every
setup of a model runs at the SAME settings (the columns compare like with like): decoders
decode with 1,024 cached tokens, a 128-token prompt and 32 sequences in flight; BERT and T5
encode 128-token sequences, 64 in flight. 4-bit weights, 8-bit activations and KV. dse
chooses which of the offered devices to use and in which order; every row names the devices
it actually used.

Prices are ASSUMPTIONS for the cost column (USD per hour, PRICES below), not measurements.
How dse's GPU model compares with published measurements is in results/README.md, section
published_llm (benchmarks/published_benchmark.py).

    python benchmarks/llm_study.py [--text-only]   # --text-only: from the last study.csv

Writes results/llm_study/{study.csv, throughput_vs_devices.png, cost_pareto.png} and the
llm_study section of results/README.md.
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
DECODE_SEQUENCES = 32  # in flight, every setup of a decoder
ENCODE_SEQUENCES = 64  # in flight, every setup of an encoder


def study_rows() -> list[dict]:
    rows = []
    for model in MODELS:
        for setup, names in SETUPS:
            encoder = model.startswith(("bert", "t5"))
            kw = dict(mode="encoder" if encoder else "decode", seq=128, context=1024,
                      sequences=ENCODE_SEQUENCES if encoder else DECODE_SEQUENCES,
                      weights="int4", acts="int8", prices=PRICES, order="auto")
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
                "left_out": "; ".join(f"{x['count']} x {x['device']}"
                                      for x in m.get("left_out", [])),
                "mode": m["mode"], "sequences": m["sequences"],
                "tokens_per_s": round(tps, 2),
                "sequences_per_s": round(m.get("sequences_per_s", 0.0), 3),
                "latency_ms": round(1e3 * m.get("latency_per_token_s", m["latency_s"]), 3),
                "ttft_ms": round(1e3 * m["time_to_first_token_s"], 2)
                if "time_to_first_token_s" in m else "",
                "cost_per_million_tokens": round(m["cost_per_million_tokens"], 4)
                if m.get("cost_per_million_tokens") is not None else "",
                "binding": m["binding"], "solve_s": round(time.perf_counter() - t0, 2),
                "reason": ""})
            print(f"{model:11s} {setup:12s} {tps:12,.1f} tokens/s  {m['binding']}", flush=True)
    return rows


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dse.viz import dominates

    ok = [r for r in rows if r["feasible"]]
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    u55c = [r for r in ok if r["setup"].endswith("U55C") and "+" not in r["setup"]
            and r["mode"] == "decode"]
    for model in dict.fromkeys(r["model"] for r in u55c):  # the decoders U55Cs hold
        pts = sorted((r["devices"], r["tokens_per_s"]) for r in u55c if r["model"] == model)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], "o-", label=f"{model} (U55C)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _save(fig, ax, "U55C boards offered", f"aggregate tokens/s (decode, {DECODE_SEQUENCES} "
          "sequences)",
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


def _used(r: dict) -> str:
    """The devices a row actually used, e.g. "A100-80GB" or "3 x U55C"."""
    parts = r["chain"].split(" > ")
    counts = {d: parts.count(d) for d in dict.fromkeys(parts)}
    return " + ".join(f"{n} x {d}" if n > 1 else d for d, n in counts.items())


def readme(rows: list[dict]) -> str:
    lines = [SECTION, "",
             "`benchmarks/llm_study.py` (dse's models, nothing measured on hardware here): "
             "every shipped config on FPGAs, GPUs, a CPU and mixed chains, each model at the "
             f"same settings in every column: decoders decode {DECODE_SEQUENCES} sequences "
             "(1,024 cached tokens, 128-token prompt), BERT/T5 encode "
             f"{ENCODE_SEQUENCES} sequences of 128 tokens; 4-bit weights, 8-bit activations "
             "and KV. dse picks which offered devices to use; `best` and `cheapest` name the "
             "devices used (the setup offered in brackets). Costs use ASSUMED prices "
             f"({', '.join(f'{k} {v:.2f}' for k, v in PRICES.items())} $/h). Full table: "
             "`llm_study/study.csv`; plots `llm_study/throughput_vs_devices.png`, "
             "`llm_study/cost_pareto.png`; `notebooks/llm_pipelines.ipynb` draws them. How "
             "the GPU model compares with published measurements: section published_llm.", "",
             "| model | best tokens/s: devices used (offered) | cheapest $/Mtok: devices used "
             "(offered) | 4xU55C offered | A100 | EPYC |", "|---|---|---|---:|---:|---:|"]
    for model in MODELS:
        ok = [r for r in rows if r["model"] == model and r["feasible"]]
        if not ok:
            lines.append(f"| {model} | none fits | | | | |")
            continue
        best = max(ok, key=lambda r: (r["tokens_per_s"], -r["devices_used"]))
        cheap = min((r for r in ok if r["cost_per_million_tokens"] != ""),
                    key=lambda r: r["cost_per_million_tokens"], default=None)

        def tps(setup: str, ok: list[dict] = ok) -> str:
            r = next((x for x in ok if x["setup"] == setup), None)
            return f"{r['tokens_per_s']:,.0f}" if r else "does not fit"

        lines.append(
            f"| {model} | {best['tokens_per_s']:,.0f}: {_used(best)} ({best['setup']}) | "
            + (f"{cheap['cost_per_million_tokens']:.3g}: {_used(cheap)} ({cheap['setup']})"
               if cheap else "")
            + f" | {tps('4xU55C')} | {tps('A100')} | {tps('EPYC')} |")
    lines += ["", "### What the numbers say", ""] + conclusions(rows) + [""]
    return "\n".join(lines) + "\n"


def conclusions(rows: list[dict]) -> list[str]:
    """Statements computed from the rows (so the text cannot drift from the table)."""
    out = []
    ok = [r for r in rows if r["feasible"]]
    kinds = {"fpga": 0, "gpu": 0, "mixed": 0, "cpu": 0}
    for model in MODELS:
        mine = [r for r in ok if r["model"] == model]
        if not mine:
            continue
        best = max(mine, key=lambda r: (r["tokens_per_s"], -r["devices_used"]))
        used = set(best["chain"].split(" > "))
        fpga = any(d.startswith("U") for d in used)
        other = used - {d for d in used if d.startswith("U")}
        kind = ("mixed" if fpga and other else "fpga" if fpga else
                "cpu" if all(d.startswith("EPYC") for d in other) else "gpu")
        kinds[kind] += 1
    out.append(f"- Highest tokens/s per model ({sum(kinds.values())} models): a GPU alone "
               f"{kinds['gpu']}, FPGAs only {kinds['fpga']}, a mixed chain {kinds['mixed']}, "
               f"the CPU {kinds['cpu']}.")
    for model in ("bert-base", "t5-large", "llama2-7b", "llama2-70b"):
        a100 = next((r for r in ok if r["model"] == model and r["setup"] == "A100"), None)
        u8 = next((r for r in ok if r["model"] == model and r["setup"] == "8xU55C"), None)
        if a100 and u8:
            out.append(f"- {model}: 8 x U55C offered gives {u8['tokens_per_s']:,.0f} tokens/s "
                       f"on {_used(u8)}, one A100 {a100['tokens_per_s']:,.0f} "
                       f"({u8['tokens_per_s'] / a100['tokens_per_s']:.2f}x).")
    none = [m for m in MODELS if not any(r["model"] == m and r["setup"] == "8xU55C"
                                         for r in ok)]
    for m in none:  # dse's own reason, from the study's rows
        why = next((r["reason"] for r in rows if r["model"] == m and r["setup"] == "8xU55C"
                    and r["reason"]), "")
        out.append(f"- FPGAs only, 8 x U55C: {m} does not fit ({why.split('; ')[0]}).")
    mixed = [r for r in ok if r["setup"] == "2xU55C+A100"]
    alone = sum(1 for r in mixed if r["devices_used"] == 1)
    out.append(f"- 2 x U55C + A100 offered: dse used the A100 alone for {alone} of "
               f"{len(mixed)} models (the U55Cs add no tokens/s there at equal sequences), "
               "and the output names them as left out.")
    return out


def read_rows(path: Path) -> list[dict]:
    """study.csv back into rows (to redo the text and plots without solving again)."""
    rows = []
    for r in csv.DictReader(path.open()):
        r["feasible"] = r["feasible"] == "True"
        if r["feasible"]:
            r["tokens_per_s"] = float(r["tokens_per_s"])
            r["devices_used"] = int(r["devices_used"])
            r["devices"] = int(r["devices"])
            c = r["cost_per_million_tokens"]
            r["cost_per_million_tokens"] = float(c) if c else ""
        rows.append(r)
    return rows


def main() -> int:
    out = REPO / "results" / "llm_study"
    out.mkdir(parents=True, exist_ok=True)
    if "--text-only" in sys.argv:
        rows = read_rows(out / "study.csv")
    else:
        rows = study_rows()
        write_csv(out / "study.csv", rows)
    stale = out / "published.csv"  # superseded by results/published_llm.csv
    if stale.exists():
        stale.unlink()
    plots(rows, out)
    from benchmarks.llm_benchmark import write_section_named

    write_section_named(REPO / "results" / "README.md", SECTION, readme(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
