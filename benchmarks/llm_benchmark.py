"""LLMs across U55C boards, and the same on AMD V80s, from their architecture configs (no
weights). A case no board count holds is a row too, with dse's one-line reason:

* GPT-2 XL, 4-bit weights, 8-bit activations and KV cache, decode (1,024 cached tokens),
  on 1, 2, 4 and 8 U55C, with 1 sequence and with 8 sequences per board in flight (the
  largest shipped decoder whose FINNLoop weight buffers fit one U55C);
* Llama-2-7B (same quantization) on the fewest U55C that hold it (up to 16): its FINNLoop
  buffers (2 x MH x MW x W bits per MVAU, as finn-plus 1.6.1 builds them) do not fit one
  board, so its blocks are built spatially;
* BERT-base (encoder, 128 tokens per sequence) on 1 to 4 U55C.

For each: tokens/s (or sequences/s), what limits it, the physical bound and the ratio to it.
For decode the bound is the boards' aggregate HBM bandwidth (at the stated efficiency)
divided by the weight and KV bytes one token reads. Build and solve times are wall-clock
medians of ``--repeat`` runs in this process.

    python benchmarks/llm_benchmark.py [--repeat 3]

Writes results/llm_benchmark.csv and its section of results/README.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dse import api  # noqa: E402
from dse.exceptions import InfeasibleError  # noqa: E402

SECTION = "## llm_benchmark.csv"


def run(model: str, boards: int, **kw) -> tuple[dict, float]:
    t0 = time.perf_counter()
    d = api.optimize_llm(model, boards=boards, **kw).data
    return d, time.perf_counter() - t0


def infeasible_row(setup: str, model: str, boards: int, board: str, why: str,
                   **kw) -> dict:
    """A case no plan holds: the columns of a row, the reason in ``binding``."""
    return {"setup": setup, "model": model, "board": board,
            "mode": kw.get("mode", "decode"), "boards": boards, "boards_used": 0,
            "sequences": kw.get("sequences", 1), "weights": kw.get("weights", "").upper(),
            "acts": kw.get("acts", "").upper(), "builds": "infeasible", "throughput": 0.0,
            "unit": "", "per_sequence_tokens_per_s": "", "latency_ms": "", "ttft_ms": "",
            "bound": "", "ratio_to_bound": "", "binding": why.splitlines()[0],
            "hbm_efficiency": "", "solve_s_median": ""}


def row(setup: str, model: str, boards: int, d: dict, secs: list[float], **kw) -> dict:
    m = d["metrics"]
    decode = m["mode"] == "decode"
    return {
        "setup": setup, "model": model, "board": kw.get("board", "U55C"),
        "mode": m["mode"], "boards": boards,
        "boards_used": m["boards_used"], "sequences": kw.get("sequences", 1),
        "weights": d["model"]["weights"], "acts": d["model"]["acts"],
        "builds": "/".join(sorted({s["style"] for s in d["stages"]})),
        "throughput": round(m["tokens_per_s"] if decode else m["sequences_per_s"], 3),
        "unit": "tokens/s" if decode else "sequences/s",
        "per_sequence_tokens_per_s": round(m["tokens_per_s_per_sequence"], 3) if decode else "",
        "latency_ms": round(1e3 * (m["latency_per_token_s"] if decode else m["latency_s"]), 3),
        "ttft_ms": round(1e3 * m["time_to_first_token_s"], 1) if decode else "",
        "bound": round(m["bound_tokens_per_s"] if decode else m.get("bound_frames_per_s", 0)
                       or 0, 3),
        "ratio_to_bound": round(m.get("ratio_to_bound", 0.0), 4) if m.get("ratio_to_bound")
        else "",
        "binding": m["binding"],
        "hbm_efficiency": d["hbm_efficiency"],
        "solve_s_median": round(statistics.median(secs), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "results"))
    ap.add_argument("--board-types", default="U55C,V80",
                    help="the boards each case runs on, in turn (default U55C,V80)")
    args = ap.parse_args(argv)
    rows: list[dict] = []

    def measure(setup: str, model: str, boards: int, **kw) -> dict:
        secs, d = [], None
        try:
            for _ in range(args.repeat):
                d, s = run(model, boards, **kw)
                secs.append(s)
        except InfeasibleError as e:
            r = infeasible_row(setup, model, boards, **kw, why=str(e))
            rows.append(r)
            print(f"{setup:12s} {model:11s} {boards} {kw['board']}: {r['binding']}")
            return r
        r = row(setup, model, boards, d, secs, **kw)
        rows.append(r)
        print(f"{setup:12s} {model:11s} {boards} {kw['board']} S={r['sequences']}: "
              f"{r['throughput']:,.1f} {r['unit']} ({r['binding']}), "
              f"{r['ratio_to_bound'] or '-'} of bound, {r['solve_s_median']} s", flush=True)
        return r

    fewest: dict[str, int | None] = {}
    for board in args.board_types.split(","):
        fewest[board] = cases(measure, board)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "llm_benchmark.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_section(out / "README.md", readme(rows, fewest, args.repeat))
    return 0


def cases(measure: Callable[..., dict], board: str) -> int | None:
    """Every case on ``board``; the fewest boards that hold Llama-2-7B (None: not 16)."""
    q = dict(weights="int4", acts="int8", board=board)
    for n in (1, 2, 4, 8):
        measure("gpt2-xl", "gpt2-xl", n, sequences=1, **q)
        measure("gpt2-xl", "gpt2-xl", n, sequences=8 * n, **q)
    fewest = None
    for n in range(1, 17):
        try:
            run("llama2-7b", n, sequences=1, **q)
        except InfeasibleError as e:
            print(f"llama2-7b   {n} {board}: {str(e).splitlines()[0]}")
            continue
        fewest = n
        break
    if fewest:
        measure("llama2-7b", "llama2-7b", fewest, sequences=1, **q)
        measure("llama2-7b", "llama2-7b", fewest, sequences=8, **q)
    else:
        measure("llama2-7b", "llama2-7b", 16, sequences=1, **q)
    for n in (1, 2, 3, 4):
        measure("bert-base", "bert-base", n, mode="encoder", seq=128, **q)
    return fewest


def readme(rows: list[dict], fewest: dict[str, int | None], repeat: int) -> str:
    lines = [SECTION, "",
             "`benchmarks/llm_benchmark.py`: LLMs built from their Hugging Face configs "
             "(no weights), 4-bit weights, 8-bit activations and KV cache, on U55C and on "
             "V80 boards at their catalog clocks, HBM at 0.9 of its bandwidth. Decode reads "
             "1,024 cached tokens per step; BERT-base frames are 128-token sequences. Costs "
             "follow finn-plus 1.6.1's estimates, the float-input quantizers' thresholds "
             "included (PE x 32 bits x 255 steps a word, `Thresholding_hls`). `bound` for "
             "decode = aggregate HBM bandwidth / (weight + KV bytes per token); for BERT with "
             "weights in HBM = HBM bandwidth / bytes per sequence. A case no plan holds is "
             f"a row with dse's reason. Solve times: {timing(repeat)} (2-core machine).", "",
             "| model | board | boards | sequences | build | throughput | per sequence | "
             "latency ms | TTFT ms | bound | ratio | limited by | solve s |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        tput = f"{r['throughput']:,.1f} {r['unit']}" if r["unit"] else "-"
        lines.append(
            f"| {r['model']} | {r['board']} | {r['boards_used']}/{r['boards']} | "
            f"{r['sequences']} | {r['builds']} | {tput} | "
            f"{r['per_sequence_tokens_per_s'] or ''} | {r['latency_ms']} | {r['ttft_ms']} | "
            f"{r['bound'] or ''} | {r['ratio_to_bound']} | {r['binding']} | "
            f"{r['solve_s_median']} |")
    need = "; ".join(f"{b}: {n or 'more than 16'}" for b, n in fewest.items())
    lines += ["", f"Boards Llama-2-7B needs ({need}): as finn-plus 1.6.1 builds a FINNLoop, "
              "each looped MVAU holds a double buffer of 2 x MH x MW x W bits on chip, so its "
              "blocks are built spatially, a few per board. "
              f"{single(rows)} More boards mostly serve more sequences at once (dse uses only "
              "as many as raise tokens/s).", ""]
    return "\n".join(lines) + "\n"


def timing(repeat: int) -> str:
    return "one run each" if repeat == 1 else f"medians of {repeat} runs"


def single(rows: list[dict]) -> str:
    """What more boards do for one sequence of GPT-2 XL, from the rows."""
    one = [r for r in rows if r["model"] == "gpt2-xl" and r["sequences"] == 1
           and r["unit"]]
    if len(one) < 2:
        return ""
    a, b = one[0], one[-1]
    return (f"One GPT-2 XL sequence goes from {a['throughput']:,.1f} tokens/s on "
            f"{a['boards']} {a['board']} to {b['throughput']:,.1f} on {b['boards']} (each token "
            "passes every board in turn; only the builds' lower latency helps it).")


def write_section(path: Path, text: str) -> None:
    write_section_named(path, SECTION, text)


def write_section_named(path: Path, section: str, text: str) -> None:
    """Replace one ``## `` section of results/README.md (with its ``###`` subsections),
    keep every other one."""
    kept: list[str] = []
    if path.is_file():
        keep = True
        for line in path.read_text().splitlines():
            if line.startswith("## "):
                keep = line.strip() != section
            if keep:
                kept.append(line)
    body = "\n".join(kept).rstrip("\n")
    path.write_text(body + "\n\n" + text if body else text)


if __name__ == "__main__":
    sys.exit(main())
