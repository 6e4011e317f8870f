"""Plots for exploration results and plans. Data is computed apart from the drawing, so the
data functions are testable without a display; the drawing functions return matplotlib
Figures (no pyplot state), which Jupyter displays and ``save_*`` writes to files."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dse.chain.plan import PipelinePlan, load_plan
from dse.exceptions import DseError, InternalError

#: (column, sense): +1 maximize, -1 minimize
OBJECTIVES: tuple[tuple[str, int], ...] = (("fps", 1), ("boards_used", -1), ("latency_s", -1),
                                           ("lut", -1))
RES = ("lut", "ff", "bram18", "uram", "dsp")


def _num(v: Any) -> float | None:
    if v in (None, "", "None"):
        return None
    return float(v)


def _val(r: dict, k: str) -> float:
    v = _num(r.get(k))
    if v is None:
        raise InternalError(f"Pareto filter: a row without {k!r}")
    return v


def dominates(a: dict, b: dict, objectives: Sequence[tuple[str, int]] = OBJECTIVES) -> bool:
    ge = all(s * _val(a, k) >= s * _val(b, k) for k, s in objectives)
    gt = any(s * _val(a, k) > s * _val(b, k) for k, s in objectives)
    return ge and gt


def pareto_rows(rows: Sequence[dict], objectives: Sequence[tuple[str, int]] = OBJECTIVES
                ) -> list[dict]:
    """The non-dominated rows (feasible trials), highest FPS first."""
    rows = [r for r in rows if all(_num(r.get(k)) is not None for k, _ in objectives)]
    front = [r for r in rows if not any(dominates(o, r, objectives) for o in rows)]
    return sorted(front, key=lambda r: (-_val(r, "fps"), r.get("trial", 0)))


# ---------------------------------------------------------------------------------------------
# data


def load_results(directory: str | Path) -> dict[str, Any]:
    """trials.csv, pareto.csv and the Pareto plans of an exploration directory."""
    d = Path(directory)
    if not (d / "trials.csv").is_file():
        raise DseError(f"{d} has no trials.csv; point to a 'dse explore --out' directory")

    trials = _read_table(d / "trials.csv")
    pareto = _read_table(d / "pareto.csv")
    plans = {}
    for p in sorted((d / "plans").glob("*.json")) if (d / "plans").is_dir() else []:
        if p.stem.isdigit():
            plans[int(p.stem)] = dict(load_plan(p).payload)  # validated, either format
    return {"dir": d, "trials": trials, "pareto": pareto, "plans": plans}


def _read_table(p: Path) -> list[dict]:
    """A trials/pareto table of ``dse explore``, its objective columns checked as numbers."""
    from dse.exceptions import DseError

    if not p.is_file():
        return []
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as e:
        raise DseError(f"{p} is not a readable UTF-8 CSV file ({type(e).__name__})") from None
    missing = [k for k, _ in OBJECTIVES if k not in header] + (
        [] if "trial" in header else ["trial"])
    if missing:
        raise DseError(f"{p}: no column {missing[0]!r}; dse plot reads the trials.csv of a "
                       "'dse explore' of an ONNX model (an LLM exploration draws its own "
                       "pareto.png)")
    for i, r in enumerate(rows, start=2):
        for k in ("trial", *(k for k, _ in OBJECTIVES)):
            v = r.get(k)
            try:
                x = _num(v)
            except (TypeError, ValueError):
                x = float("nan")
            if x is not None and not (math.isfinite(x) and x >= 0):
                raise DseError(f"{p}: row {i}: {k} = {v!r} is not a number >= 0; was the "
                               "file edited?")
    return rows


#: display units: latency in milliseconds
SCALE = {"latency_s": 1e3}


def scatter_data(results: dict[str, Any], x: str, y: str) -> dict[str, Any]:
    """Points for an x/y scatter: all feasible trials, and the Pareto trials (with their
    trial numbers); latency in ms."""
    def pts(rows: list[dict]) -> tuple[list[float], list[float], list[str]]:
        xs, ys, ids = [], [], []
        for r in rows:
            if str(r.get("feasible")) in ("True", "true", "1") or r in results["pareto"]:
                vx, vy = _num(r.get(x)), _num(r.get(y))
                if vx is not None and vy is not None:
                    xs.append(vx * SCALE.get(x, 1.0))
                    ys.append(vy * SCALE.get(y, 1.0))
                    ids.append(str(r.get("trial", "")))
        return xs, ys, ids

    ax, ay, _ = pts(results["trials"])
    px, py, pid = pts(results["pareto"])
    return {"x": ax, "y": ay, "pareto_x": px, "pareto_y": py, "pareto_trials": pid,
            "infeasible": sum(1 for r in results["trials"]
                              if str(r.get("feasible")) not in ("True", "true", "1"))}


def board_resource_data(plan: dict[str, Any]) -> dict[str, Any]:
    """Per board and resource: used / capacity (percent)."""
    boards = plan["boards"]
    util = {k: [100.0 * b["resources"][k] / b["capacity"][k] if b["capacity"][k] else 0.0
                for b in boards] for k in RES}
    return {"labels": [f"{b['index']}: {b['name']}" for b in boards], "util": util,
            "caps": {k: [100.0 * b["caps"].get(k, 1.0) for b in boards] for k in RES}}


def partition_data(plan: dict[str, Any]) -> dict[str, Any]:
    """Layers in pipeline order with their board and cycles, and the cut positions."""
    layers = plan["layers"]
    pos = {layer["name"]: i for i, layer in enumerate(layers)}
    return {
        "names": [layer["name"] for layer in layers],
        "boards": [layer["board"] for layer in layers],
        "cycles": [layer["cycles"] for layer in layers],
        "ii": plan["metrics"]["ii_cycles"],
        "cuts": [(pos[c["src"]], pos[c["dst"]], c["bits_per_frame"]) for c in plan["cuts"]],
        "n_boards": len(plan["boards"]),
    }


# ---------------------------------------------------------------------------------------------
# drawing


def fig_pareto(results: dict[str, Any]) -> Figure:
    """FPS vs boards, FPS vs LUT, latency vs FPS, with the Pareto front highlighted and its
    points labelled with their trial numbers."""
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(15, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    specs = (("boards_used", "fps", "boards used", "frames / s"),
             ("lut", "fps", "LUT (all boards)", "frames / s"),
             ("fps", "latency_s", "frames / s", "latency (ms)"))
    for ax, (x, y, xl, yl) in zip(axes, specs, strict=True):
        d = scatter_data(results, x, y)
        ax.scatter(d["x"], d["y"], s=18, c="#9aa5b1", label="trials")
        ax.scatter(d["pareto_x"], d["pareto_y"], s=40, c="#d1495b", label="Pareto front",
                   zorder=3)
        for px, py, t in zip(d["pareto_x"], d["pareto_y"], d["pareto_trials"], strict=True):
            ax.annotate(f"#{t}", (px, py), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color="#7a1f2b")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        if x == "boards_used":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(loc="lower right", fontsize=8)
    n = len(results["trials"])
    fig.suptitle(f"{n} trials, {len(results['pareto'])} on the Pareto front of four objectives "
                 "(max frames/s, min boards, min latency, min LUT; "
                 f"{scatter_data(results, 'fps', 'lut')['infeasible']} infeasible)")
    return fig


def fig_board_resources(plan: dict[str, Any]) -> Figure:
    d = board_resource_data(plan)
    fig = Figure(figsize=(max(5, 1.6 * len(d["labels"]) + 3), 3.8), layout="constrained")
    ax = fig.subplots()
    n = len(d["labels"])
    width = 0.8 / len(RES)
    for j, k in enumerate(RES):
        xs = [i + (j - 2) * width for i in range(n)]
        ax.bar(xs, d["util"][k], width=width, label=k.upper())
    ax.set_xticks(range(n), d["labels"])
    ax.set_ylabel("% of usable capacity (after shell, x cap)")
    ax.set_ylim(0, 105)
    ax.legend(ncols=5, fontsize=8, loc="upper center")
    ax.set_title(f"resources per board: {plan['metrics']['fps']:,.0f} fps")
    return fig


def fig_partition(plan: dict[str, Any]) -> Figure:
    d = partition_data(plan)
    n = len(d["names"])
    fig = Figure(figsize=(min(18, 4 + 0.18 * n), 3.6), layout="constrained")
    ax = fig.subplots()
    cmap = ["#00798c", "#d1495b", "#edae49", "#66a182", "#2e4057", "#8d96a3", "#7b2cbf",
            "#bc6c25"]
    colors = [cmap[b % len(cmap)] for b in d["boards"]]
    ax.bar(range(n), d["cycles"], color=colors)
    ax.axhline(d["ii"], color="black", lw=0.8, ls="--")
    ax.text(-0.5, d["ii"], f" II {d['ii']:,} cycles", va="bottom", ha="left", fontsize=8)
    for k, (u, v, bits) in enumerate(d["cuts"]):  # a stream between boards: u -> v
        ax.plot([u, v], [d["ii"] * (1.04 + 0.035 * (k % 3))] * 2, color="#333", lw=1.0,
                marker="o", ms=3)
        ax.text((u + v) / 2, d["ii"] * (1.05 + 0.035 * (k % 3)), f"{bits:,} b", fontsize=6,
                ha="center", va="bottom")
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, d["ii"] * 1.2)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=cmap[b % len(cmap)], label=f"board {b}")
                       for b in sorted(set(d["boards"]))], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: hides no label
    ax.set_ylabel("cycles per frame")
    ax.set_xlabel("layers in pipeline order (colour = board; lines on top = streams between "
                  "boards, bits per frame)")
    step = max(1, n // 30)
    ax.set_xticks(range(0, n, step), d["names"][::step], rotation=90, fontsize=6)
    return fig


def save(fig: Figure, path: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    out = []
    for fmt in formats:
        p = path.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=120)
        out.append(p)
    return out


def best_plan(results: dict[str, Any]) -> dict[str, Any] | None:
    if not results["plans"]:
        return None
    return max(results["plans"].values(), key=lambda p: p["metrics"]["fps"])


def save_explore_figures(directory: str | Path, out: str | Path | None = None) -> list[Path]:
    """Figures of an exploration directory, written to ``out`` (default: the directory)."""
    res = load_results(directory)
    d = Path(out if out is not None else directory)
    written = save(fig_pareto(res), d / "pareto")
    plan = best_plan(res)
    if plan is not None:
        written += save(fig_board_resources(plan), d / "resources", ("png",))
        written += save(fig_partition(plan), d / "partition", ("png",))
    return written


def stage_data(plan: PipelinePlan) -> dict[str, Any]:
    """Per stage and link of a chain plan (CNN or LLM): time per frame and what binds."""
    labels: list[str] = []
    times: list[float] = []
    kinds: list[str] = []
    for s in plan.stages:
        seg = s.segment.label or f"{len(s.segment.layers)} layers"
        labels.append(f"{s.index}: {s.device.name}\n{seg}")
        times.append(s.frame_s)
        kinds.append(s.device.kind)
        link = next((x for x in plan.links if x.src == s.index), None)
        if link is not None:
            labels.append(f"link {link.src}->{link.dst}\n{link.kind}")
            times.append(link.frame_s)
            kinds.append("link")
    return {"labels": labels, "frame_s": times, "kinds": kinds,
            "util": {k: [100.0 * s.resources.get(k, 0) / s.capacity[k]
                         if s.capacity.get(k) else 0.0 for s in plan.stages] for k in RES}}


def fig_stages(plan: PipelinePlan) -> Figure:
    d = stage_data(plan)
    n = len(d["labels"])
    fig = Figure(figsize=(max(5, 1.3 * n + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    color = {"fpga": "#00798c", "gpu": "#d1495b", "cpu": "#edae49", "link": "#8d96a3"}
    ax.bar(range(n), [t * 1e6 for t in d["frame_s"]], color=[color[k] for k in d["kinds"]])
    ax.axhline(plan.metrics.frame_s * 1e6, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(n), d["labels"], fontsize=7)
    ax.set_ylabel("time per frame (us)")
    ax.set_title(f"{plan.network.upper()} chain: {plan.metrics.frames_per_s:,.1f} frames/s, "
                 f"limited by {plan.metrics.binding}", fontsize=9)
    return fig


def fig_stage_resources(plan: PipelinePlan) -> Figure:
    d = stage_data(plan)
    stages = [s for s in plan.stages if s.capacity]
    fig = Figure(figsize=(max(5, 1.6 * len(stages) + 3), 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(RES)
    for j, k in enumerate(RES):
        ax.bar([i + (j - 2) * width for i in range(len(stages))],
               [d["util"][k][s.index] for s in stages], width=width, label=k.upper())
    ax.set_xticks(range(len(stages)), [f"{s.index}: {s.device.name}" for s in stages])
    ax.set_ylabel("% of usable capacity")
    ax.set_ylim(0, 105)
    ax.legend(ncols=5, fontsize=8, loc="upper center")
    return fig


def save_plan_figures(plan_path: str | Path, out: str | Path) -> list[Path]:
    """Figures of a plan of either kind: per stage and link (and, for a CNN, per layer)."""
    plan = load_plan(Path(plan_path))  # validated: a broken plan is a clear error
    out = Path(out)
    written = save(fig_stages(plan), out / "stages", ("png",))
    if plan.network == "cnn":
        cnn = dict(plan.payload)
        return written + (save(fig_board_resources(cnn), out / "resources", ("png",))
                          + save(fig_partition(cnn), out / "partition", ("png",)))
    return written + save(fig_stage_resources(plan), out / "resources", ("png",))
