"""Side-by-side tables (before | after | ratio) from the issue 21 rerun CSVs.

    python results/issue21_rerun/compare.py DIR   (DIR holds optimize_, scale_, llm_ {before,after}.csv)
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path


def load(p: Path) -> list[dict]:
    return list(csv.DictReader(p.open())) if p.is_file() else []


def f(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def ratio(a: float | None, b: float | None) -> str:
    return f"{b / a:.3f}" if a and b is not None else "-"


def num(v: float | None, nd: int = 0) -> str:
    return "-" if v is None else f"{v:,.{nd}f}"


def optimize(d: Path) -> list[str]:
    b = {(r["model"], r["boards"], r["strategy"]): r for r in load(d / "optimize_before.csv")}
    a = {(r["model"], r["boards"], r["strategy"]): r for r in load(d / "optimize_after.csv")}
    out = ["| model | boards | strategy | fps before | fps after | ratio | status before / after"
           " | boards used b/a | replicas b/a | placeable b/a | wall s b/a |",
           "|---|---:|---|---:|---:|---:|---|---|---|---|---|"]
    walls = []
    for k in sorted(set(b) | set(a), key=lambda k: (k[0], int(k[1]), k[2])):
        rb, ra = b.get(k, {}), a.get(k, {})
        fb, fa = f(rb.get("fps")), f(ra.get("fps"))
        wb, wa = f(rb.get("wall_s")), f(ra.get("wall_s"))
        if wb and wa:
            walls.append(wa / wb)
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {num(fb)} | {num(fa)} | {ratio(fb, fa)} | "
                   f"{rb.get('status') or rb.get('error', '')[:30] or '-'} / "
                   f"{ra.get('status') or ra.get('error', '')[:30] or '-'} | "
                   f"{rb.get('boards_used', '-')} / {ra.get('boards_used', '-')} | "
                   f"{rb.get('replicas', '-')}x{rb.get('per_board', '-')} / "
                   f"{ra.get('replicas', '-')}x{ra.get('per_board', '-')} | "
                   f"{rb.get('placeable', '-')} / {ra.get('placeable', '-')} | "
                   f"{rb.get('wall_s', '-')} / {ra.get('wall_s', '-')} |")
    if walls:
        out.append(f"\nwall after/before per run: median {statistics.median(walls):.2f} "
                   f"(min {min(walls):.2f}, max {max(walls):.2f}, {len(walls)} runs)")
    return out


def scale(d: Path) -> list[str]:
    b = {(r["network"], r["boards"]): r for r in load(d / "scale_before.csv")}
    a = {(r["network"], r["boards"]): r for r in load(d / "scale_after.csv")}
    out = ["| network | boards | fps before | fps after | ratio | status b / a | gap b / a | "
           "boards used b/a | placeable b/a | wall s b / a | wall ratio |",
           "|---|---:|---:|---:|---:|---|---|---|---|---|---:|"]
    for k in list(dict.fromkeys([*b, *a])):
        rb, ra = b.get(k, {}), a.get(k, {})
        fb, fa = f(rb.get("fps")), f(ra.get("fps"))
        out.append(f"| {k[0]} | {k[1]} | {num(fb)} | {num(fa)} | {ratio(fb, fa)} | "
                   f"{rb.get('status', '-')} / {ra.get('status', '-')} | "
                   f"{rb.get('gap', '-')} / {ra.get('gap', '-')} | "
                   f"{rb.get('boards_used', '-')} / {ra.get('boards_used', '-')} | "
                   f"{rb.get('placeable', '-')} / {ra.get('placeable', '-')} | "
                   f"{rb.get('wall_s', '-')} / {ra.get('wall_s', '-')} | "
                   f"{ratio(f(rb.get('wall_s')), f(ra.get('wall_s')))} |")
    return out


def llm(d: Path, stem: str = "llm") -> list[str]:
    def key(r):
        return (r["model"], r["boards"], r["sequences"])
    b = {key(r): r for r in load(d / f"{stem}_before.csv")}
    a = {key(r): r for r in load(d / f"{stem}_after.csv")}
    out = ["| model | boards | seq. in flight | before | after | ratio | boards used b / a | "
           "build b / a | latency ms b / a | TTFT ms b / a | limited by: before / after | "
           "solve s b / a |",
           "|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|"]
    for k in list(dict.fromkeys([*b, *a])):
        rb, ra = b.get(k, {}), a.get(k, {})
        fb, fa = f(rb.get("throughput")), f(ra.get("throughput"))
        unit = (ra.get("unit") or rb.get("unit") or "")
        bind_b = (rb.get("binding") or "-").replace("INFEASIBLE: ", "INFEASIBLE ")[:60]
        bind_a = (ra.get("binding") or "-").replace("INFEASIBLE: ", "INFEASIBLE ")[:60]
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {num(fb, 1)} | {num(fa, 1)} {unit} | "
                   f"{ratio(fb, fa)} | {rb.get('boards_used') or '-'} / {ra.get('boards_used') or '-'} | "
                   f"{rb.get('builds') or '-'} / {ra.get('builds') or '-'} | "
                   f"{rb.get('latency_ms') or '-'} / {ra.get('latency_ms') or '-'} | "
                   f"{rb.get('ttft_ms') or '-'} / {ra.get('ttft_ms') or '-'} | "
                   f"{bind_b} / {bind_a} | "
                   f"{rb.get('solve_s_median') or '-'} / {ra.get('solve_s_median') or '-'} |")
    return out


if __name__ == "__main__":
    d = Path(sys.argv[1])
    for name, fn in (("optimize", optimize), ("scale", scale), ("llm", llm),
                     ("llm_extra", lambda d: llm(d, "llm_extra"))):
        print(f"### {name}\n")
        print("\n".join(fn(d)))
        print()
