"""Issue 21 rerun: the LLM benchmark's cases run on whichever tree is the working directory.

22c6ffa's benchmarks/llm_benchmark.py and main's run different cases (main moved to GPT-2 XL
and Llama-2-7B when the FINNLoop buffer model came in), so this runs one case list on both,
through that tree's own ``benchmarks.llm_benchmark.run``/``row`` (identical in both trees).

    cd <tree> && python <this file> --cases main|before|all --repeat 1 --out FILE.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

sys.path.insert(0, os.getcwd())

import dse  # noqa: E402
from benchmarks.llm_benchmark import row, run  # noqa: E402
from dse.exceptions import InfeasibleError  # noqa: E402

Q = dict(weights="int4", acts="int8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="main", choices=("main", "before", "all", "extra"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", help="comma-separated model subset")
    a = ap.parse_args()
    print("dse from", dse.__file__, flush=True)
    rows: list[dict] = []

    def measure(model: str, boards: int, **kw) -> None:
        if a.only and model not in a.only.split(","):
            return
        secs, d = [], None
        try:
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                d, _s = run(model, boards, **kw)
                secs.append(time.perf_counter() - t0)
        except InfeasibleError as e:
            rows.append({"setup": model, "model": model, "boards": boards,
                         "sequences": kw.get("sequences", 1), "binding": f"INFEASIBLE: {e}"[:300]})
            print(f"{model} {boards} S={kw.get('sequences', 1)}: infeasible: {str(e)[:150]}",
                  flush=True)
            return
        r = row(model, model, boards, d, secs, **kw)
        rows.append(r)
        print(f"{model:11s} {boards} board(s) S={r['sequences']}: {r['throughput']:,.1f} "
              f"{r['unit']} used {r['boards_used']} ({r['binding']}), {r['solve_s_median']} s",
              flush=True)

    def fewest(model: str, upto: int) -> int | None:
        if a.only and model not in a.only.split(","):
            return None
        for n in range(1, upto + 1):
            try:
                run(model, n, sequences=1, **Q)
            except InfeasibleError as e:
                print(f"{model} {n} board(s): {str(e)[:120]}", flush=True)
                continue
            print(f"{model}: fewest {n}", flush=True)
            return n
        return None

    if a.cases in ("main", "all"):
        for n in (1, 2, 4, 8):
            measure("gpt2-xl", n, sequences=1, **Q)
            measure("gpt2-xl", n, sequences=8 * n, **Q)
        f = fewest("llama2-7b", 16)
        if f:
            measure("llama2-7b", f, sequences=1, **Q)
            measure("llama2-7b", f, sequences=8, **Q)
        for n in (1, 2, 3, 4):
            measure("bert-base", n, mode="encoder", seq=128, **Q)
    if a.cases in ("before", "all"):
        for n in (1, 2, 4, 8):
            measure("llama2-7b", n, sequences=1, **Q)
            measure("llama2-7b", n, sequences=8 * n, **Q)
        f = fewest("llama2-70b", 8)
        if f:
            measure("llama2-70b", f, sequences=1, **Q)
            measure("llama2-70b", f, sequences=4, **Q)
    if a.cases == "extra":  # like-for-like additions: main's Llama-2-7B board count on both
        # trees, and BERT-base with sequences in flight so the latency cap does not bind
        measure("llama2-7b", 10, sequences=1, **Q)
        measure("llama2-7b", 10, sequences=8, **Q)
        for n in (1, 2, 3, 4):
            measure("bert-base", n, mode="encoder", seq=128, sequences=8 * n, **Q)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(a.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    print("wrote", a.out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
