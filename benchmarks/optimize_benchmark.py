"""Benchmark: dse's joint plans vs FINN's real best (SetFolding at its best mvau_wwidth_max +
Elastic-DF's placement and replicas), side by side in one run, on 1, 2, 4 and 8 U55C.

Every model in ../shared/models plus a CIFAR-style 4-bit ResNet-18 built here
(``dse.examples.make_example.build_resnet``), through ``dse.api.optimize`` exactly as the CLI
runs it (SLR placement included; every plan is checked placeable), each strategy with
``replicas="auto"``:

* ``joint``: folding, boards and SLRs solved together (CP-SAT, proven bound), with replicas
  of whole-board chains or of SLR groups, chosen jointly;
* ``elastic-df``: SetFolding (target and mvau_wwidth_max 36..256 searched, as finn-plus users
  do) + Elastic-DF's placement (per-SLR limits, mean rule, SLL wires, fewest weighted
  crossings) + its replicas.

Also the time of ``dse optimize`` end to end (a fresh process, as a user runs it) on
MobileNetV1 over 4 U55C, median of 3, with its phases.

Writes results/optimize_benchmark.csv, results/optimize_timing.csv and the sections of
results/README.md.

    python benchmarks/optimize_benchmark.py [--shared ../shared] [--time-limit 60] [--boards 1,2,4,8]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402

from dse import __version__, api  # noqa: E402
from dse.examples.make_example import build_resnet  # noqa: E402
from dse.exceptions import DseError, InfeasibleError  # noqa: E402

#: networks whose first conv reads the float image: declared 8-bit, as in finn_plus_notes.md
INPUT_DTYPE = {"mobilenetv1_w4a4": "UINT8", "resnet10_cifar_w4a4": "INT8"}
STRATEGIES = ("joint", "elastic-df")
FIELDS = ["model", "layers", "boards", "strategy", "fps", "scale", "replicas", "per_board",
          "fps_per_replica", "bound", "boards_used", "placeable", "status", "gap",
          "mvau_wwidth_max", "wall_s", "phases", "error"]


def models(shared: Path, tmp: Path) -> list[tuple[str, Path]]:
    out = [(m["name"], shared / "models" / m["file"])
           for m in json.loads((shared / "models" / "models.json").read_text())["models"]]
    r18 = tmp / "resnet18_cifar_w4a4.onnx"
    onnx.save(build_resnet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512)), str(r18))
    INPUT_DTYPE.setdefault("resnet18_cifar_w4a4", None)
    return out + [("resnet18_cifar_w4a4", r18)]


def one(path: Path, name: str, n: int, strategy: str, time_limit: float) -> dict:
    row: dict = {"model": name, "boards": n, "strategy": strategy}
    t0 = time.monotonic()
    try:
        r = api.optimize(path, boards=n, board="U55C", input_dtype=INPUT_DTYPE.get(name),
                         strategy=strategy, time_limit=time_limit, replicas="auto", workers=1,
                         seed=0)
    except InfeasibleError as e:
        row.update(status="INFEASIBLE", error=str(e)[:200])
        return row
    p = r.plan
    m, s = p["metrics"], p["solver"]
    rep = m.get("replicas") or {}
    log = " ".join(r.result.log)
    row.update(
        layers=len(r.graph), fps=round(rep.get("fps_total", m["fps"]), 2),
        replicas=rep.get("count", 1), per_board=rep.get("per_board", 1),
        fps_per_replica=round(rep.get("fps_per_replica", m["fps"]), 2),
        bound=rep.get("bound", m["bottleneck"]),
        boards_used=rep.get("boards_used_total", m["boards_used"]),
        placeable=m["placeable"], status=s["status"], gap=s["gap"],
        mvau_wwidth_max=(log.split("mvau_wwidth_max ")[1].split()[0]
                         if "mvau_wwidth_max " in log else ""),
        wall_s=round(time.monotonic() - t0, 2),
        phases=json.dumps([[ph["phase"], ph["wall_s"], ph["outcome"]] for ph in s["phases"]]))
    return row


def timing(shared: Path, runs: int = 3) -> list[dict]:
    """``dse optimize`` end to end in a fresh process: MobileNetV1 on 4 U55C."""
    out = []
    model = shared / "models" / "mobilenetv1_w4a4.onnx"
    for k in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "dse", "optimize", "--model", str(model),
                            "--input-dtype", "UINT8", "--boards", "4", "--board", "U55C",
                            "--quiet", "--out", d], check=True, capture_output=True)
            wall = time.monotonic() - t0
            plan = json.loads((Path(d) / "plan.json").read_text())["payload"]
        ph = {x["phase"]: x["wall_s"] for x in plan["solver"]["phases"]}
        out.append({"run": k, "wall_s": round(wall, 2), "fps": plan["metrics"]["fps"],
                    "status": plan["solver"]["status"], "phases": json.dumps(ph)})
        print(f"timing run {k}: {wall:.1f} s end to end, {plan['metrics']['fps']:,.0f} fps",
              flush=True)
    return out


def add_scale(rows: list[dict]) -> None:
    one_board = {(r["model"], r["strategy"]): r["fps"] for r in rows
                 if r["boards"] == 1 and r.get("fps")}
    for r in rows:
        base = one_board.get((r["model"], r["strategy"]))
        if r.get("fps") and base:
            r["scale"] = round(r["fps"] / base, 3)


def _f(v, nd: int = 3) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def readme(rows: list[dict], tim: list[dict], time_limit: float, counts: list[int]) -> str:
    by = {(r["model"], r["boards"], r["strategy"]): r for r in rows if r.get("fps")}
    ratios = [by[m, n, "joint"]["fps"] / by[m, n, "elastic-df"]["fps"]
              for (m, n, s) in by if s == "joint" and (m, n, "elastic-df") in by]
    joint = [r for r in rows if r["strategy"] == "joint" and r.get("fps")]
    diff = [x for x in ratios if abs(x - 1) > 1e-6]
    lines = [
        "## optimize_benchmark.csv", "",
        f"`python benchmarks/optimize_benchmark.py --time-limit {time_limit:g}` on this machine "
        f"({platform.machine()}, {platform.python_version()}, dse {__version__}, 2 cores, one "
        f"CP-SAT worker): every model in `../shared/models` and a CIFAR-style 4-bit ResNet-18, "
        f"on {', '.join(map(str, counts))} U55C (Coyote, FINN caps, 200 MHz), both strategies "
        "side by side in one run, through `dse.api.optimize` with `replicas=auto`:", "",
        "* `joint`: dse's folding + boards + SLRs (CP-SAT, proven bound) and replicas (whole "
        "boards or SLR groups), chosen together;",
        "* `elastic-df`: FINN's real best: SetFolding (target and mvau_wwidth_max 36..256 "
        "searched) + Elastic-DF's placement (per-SLR limits, mean rule, SLL wires, fewest "
        "weighted crossings) + its replicas.", "",
        "`scale` = FPS(n boards) / FPS(1 board) of the same strategy. Every plan is placeable "
        "(`placeable` column; the tests check each independently).", "",
        "| measure | value |", "|---|---|",
        f"| runs (model x boards x strategy) | {len(rows)} |",
        f"| median FPS ratio joint / elastic-df | {_f(statistics.median(ratios) if ratios else None)} |",
        f"| minimum FPS ratio joint / elastic-df | {_f(min(ratios) if ratios else None)} |",
        "| FPS ratio joint / elastic-df where they differ, median (min .. max) | "
        + (f"{statistics.median(diff):.2f} ({min(diff):.2f} .. {max(diff):.2f}), "
           f"{len(diff)} of {len(ratios)} pairs |" if diff else "- |"),
        f"| joint runs proven optimal (per replica) | "
        f"{sum(r['status'] == 'OPTIMAL' for r in joint)} of {len(joint)} |",
        f"| plans not placeable | {sum(1 for r in rows if r.get('placeable') is False)} |",
        "", "Scaling (FPS and FPS(n)/FPS(1)):", "",
        "| model | strategy | " + " | ".join(f"{n} boards" for n in counts) + " |",
        "|---|---|" + "---|" * len(counts),
    ]
    for m in sorted({r["model"] for r in rows}):
        for s in STRATEGIES:
            cells = []
            for n in counts:
                r = by.get((m, n, s))
                sc = f"{r['scale']:.2f}x" if r and r.get("scale") not in (None, "") else "-"
                cells.append(f"{r['fps']:,.0f} ({sc}, {r['replicas']}"
                             f"{'/SLR' if r['per_board'] > 1 else ''} rep.)" if r else "-")
            lines.append(f"| {m} | {s} | " + " | ".join(cells) + " |")
    if tim:
        walls = [t["wall_s"] for t in tim]
        ph = json.loads(tim[walls.index(statistics.median(walls))]["phases"])
        lines += ["", "## optimize_timing.csv", "",
                  "`dse optimize --model mobilenetv1_w4a4.onnx --input-dtype UINT8 --boards 4` "
                  "in a fresh process (imports included; `--replicas auto`, the default, "
                  "solves every replica layout of the 4 boards and keeps the best), target "
                  "<= 10 s on 2 cores: median "
                  f"**{statistics.median(walls):.1f} s** of {len(walls)} runs "
                  f"({', '.join(f'{w:.1f}' for w in walls)} s). Phases of the kept "
                  "layout's solve in the median run:", "",
                  "| phase | s |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in ph.items()]
    lines.append("")
    return "\n".join(lines)


OWN_SECTIONS = ("## optimize_benchmark.csv", "## optimize_timing.csv")


def write_readme(path: Path, text: str, sections: tuple[str, ...] = OWN_SECTIONS) -> None:
    """Put ``text`` (a "# Results" header and/or "## ..." sections) into results/README.md:
    each of ``sections`` replaced where it stands (the first one's place, if it was there),
    every other section kept as it is."""
    def split(t: str) -> list[tuple[str, list[str]]]:
        out: list[tuple[str, list[str]]] = [("", [])]
        for line in t.splitlines():
            if line.startswith("## "):
                out.append((line.strip(), [line]))
            else:
                out[-1][1].append(line)
        return out

    new = split(text)
    head = new[0][1]
    mine = [(n, ls + [""] if ls and ls[-1].strip() else ls) for n, ls in new[1:]]
    old = split(path.read_text()) if path.is_file() else [("", [])]
    body: list[str] = [*(head if any(l.strip() for l in head) else old[0][1])]
    placed = False
    for name, lines in old[1:]:
        if name in sections:
            if not placed:
                for _, ls in mine:
                    body += ls
                placed = True
            continue
        body += lines
    if not placed:
        for _, ls in mine:
            body += ls
    path.write_text("\n".join(body).rstrip("\n") + "\n")


def _num(v: str):
    """A CSV cell back as int, float, bool or str ('' stays '')."""
    if v in ("True", "False"):
        return v == "True"
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--boards", default="1,2,4,8")
    ap.add_argument("--models", help="comma-separated subset")
    ap.add_argument("--out", default=str(REPO / "results"))
    ap.add_argument("--readme-only", action="store_true",
                    help="rewrite the README sections from the CSVs in --out")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.readme_only:
        out = Path(args.out)
        rows = [{k: _num(v) for k, v in r.items()}
                for r in csv.DictReader((out / "optimize_benchmark.csv").open())]
        tim = [{k: _num(v) if k != "phases" else v for k, v in r.items()}
               for r in csv.DictReader((out / "optimize_timing.csv").open())]
        counts = sorted({r["boards"] for r in rows})
        write_readme(out / "README.md", readme(rows, tim, args.time_limit, counts))
        return 0
    counts = [int(x) for x in args.boards.split(",")]
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    shared = Path(args.shared)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as t:
        for name, path in models(shared, Path(t)):
            if args.models and name not in args.models.split(","):
                continue
            for n in counts:
                for s in STRATEGIES:
                    try:
                        row = one(path, name, n, s, args.time_limit)
                    except DseError as e:  # not mappable: said once per model
                        row = {"model": name, "boards": n, "strategy": s,
                               "error": str(e)[:200]}
                    rows.append(row)
                    print(f"{name:28s} {n} x U55C {s:10s} {row.get('fps', ''):>12} fps "
                          f"{row.get('replicas', '')} rep. {row.get('wall_s', '')} s "
                          f"{row.get('error', '')[:80]}", flush=True)
                add_scale(rows)
                write_csv(out / "optimize_benchmark.csv", rows, FIELDS)
    tim = timing(shared)
    write_csv(out / "optimize_timing.csv", tim, ["run", "wall_s", "fps", "status", "phases"])
    write_readme(out / "README.md", readme(rows, tim, args.time_limit, counts))
    print(f"wrote {out / 'optimize_benchmark.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
