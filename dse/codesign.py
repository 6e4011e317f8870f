"""Quantization co-design: ``dse explore --accuracy acc.csv`` searches number formats (integers,
OCP minifloats), online rotations and model expansion together with the hardware, with the
user's measured accuracy as an objective beside throughput, boards and LUTs.

The accuracy table is a CSV with a ``configuration`` and an ``accuracy`` column (higher is
better), one row per quantization the user evaluated, and optionally a ``model`` column:

* QONNX networks: ``model`` names the exported ONNX of that configuration (each variant the user
  quantized: per network or per layer group, integer or minifloat); dse lowers every one of
  them exactly as ``dse optimize`` would;
* LLM configs (``--model llama2-7b``): the configuration itself says what to build, as
  ``w=fp4;a=fp8;kv=fp8;rot=quarot;exp=0.05`` (keys w, a, kv, rot, exp; defaults int4, int8,
  a, none, 0), with the ``--weights/--acts/--kv/--rotation/--expand`` meanings.

The search is the existing exploration's: Optuna's seeded NSGA-II (``dse.solver.outer``'s
sampler and hardware knobs, each trial solved exactly by the joint optimizer; LLM trials by
``dse.llm.pipeline``), with the configuration as one more categorical dimension, and the
front is ``dse.viz.pareto_rows`` over (accuracy max, throughput max, boards min, LUT min).
Outputs in ``--out``: trials.csv, pareto.csv, pareto.png/.svg.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.exceptions import DseError, SpecError

OBJECTIVES = (("accuracy", 1), ("fps", 1), ("boards_used", -1), ("lut", -1))
LLM_KEYS = {"w": "weights", "a": "acts", "kv": "kv", "rot": "rotation", "exp": "expand"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One quantization the user evaluated: its name, accuracy and (networks) model file."""

    name: str
    accuracy: float
    model: Path | None = None


def read_accuracy_table(path: str | Path) -> list[Candidate]:
    p = Path(path)
    try:
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"--accuracy {p}: cannot read it ({e})") from None
    if not rows or not {"configuration", "accuracy"} <= set(rows[0]):
        raise SpecError(f"--accuracy {p}: needs a header with 'configuration' and 'accuracy' "
                        "columns (and optionally 'model') and at least one row")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            acc = float(r["accuracy"])
        except (TypeError, ValueError):
            raise SpecError(f"--accuracy {p} line {i}: accuracy {r['accuracy']!r} is not a "
                            "number") from None
        model = (r.get("model") or "").strip()
        mpath = None
        if model:
            mpath = Path(model) if Path(model).is_absolute() else p.parent / model
            if not mpath.is_file():
                raise SpecError(f"--accuracy {p} line {i}: model {model!r} not found")
        out.append(Candidate(name=r["configuration"].strip(), accuracy=acc, model=mpath))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise SpecError(f"--accuracy {p}: configuration names must be unique")
    return out


def llm_quant(config: str) -> dict[str, Any]:
    """``w=fp4;a=fp8;kv=fp8;rot=quarot;exp=0.05`` -> optimize_llm keyword arguments."""
    kw: dict[str, Any] = {}
    for part in config.replace(",", ";").split(";"):
        if not part.strip():
            continue
        key, _, val = part.partition("=")
        key = key.strip()
        if key not in LLM_KEYS or not val.strip():
            raise SpecError(f"configuration {config!r}: {part!r} is not KEY=VALUE with KEY one "
                            f"of {', '.join(LLM_KEYS)}")
        kw[LLM_KEYS[key]] = float(val) if key == "exp" else val.strip()
    return kw


def _hardware_row(cfg: dict[str, Any], out: Any) -> dict[str, Any]:
    row = {"board_names": ",".join(cfg["boards"]), "clock_mhz": cfg["clock_mhz"],
           "feasible": out.feasible, "reason": out.reason}
    if out.feasible:
        fps, boards, latency, lut = out.values
        row.update(fps=fps, boards_used=boards, latency_s=latency, lut=lut)
    return row


def _network_trial(trial: Any, cand: Candidate, graphs: dict[str, Any], catalog: Any,
                   space: Any, seed: int) -> dict[str, Any]:
    from dse.solver.outer import WORST, TrialOutcome, evaluate_config, sample

    cfg = sample(trial, space)
    try:
        out = evaluate_config(graphs[cand.name], catalog, cfg, space, seed)
    except DseError as e:
        out = TrialOutcome(values=WORST, feasible=False, reason=str(e))
    return _hardware_row(cfg, out)


def _llm_trial(trial: Any, cand: Candidate, model: str, counts: tuple[int, ...],
               board: str, llm_options: dict[str, Any]) -> dict[str, Any]:
    from dse.llm.run import optimize_llm

    n = trial.suggest_categorical("n_boards", list(counts))
    row: dict[str, Any] = {"board_names": ",".join([board] * n)}
    try:
        d = optimize_llm(model, boards=n, board=board, **llm_options,
                             **llm_quant(cand.name)).data
    except DseError as e:
        return {**row, "feasible": False, "reason": str(e)}
    m = d["metrics"]
    lut = sum(int((st.get("resources") or {}).get("lut", 0)) for st in d.get("stages", []))
    return {**row, "feasible": True, "reason": "", "fps": m["tokens_per_s"],
            "boards_used": m["boards_used"], "latency_s": m.get("latency_per_token_s",
                                                                m["latency_s"]), "lut": lut}


def explore_codesign(model: str, accuracy: str | Path, *, out: str | Path,
                     boards: str = "1..4", board_types: str = "U55C", trials: int = 30,
                     seed: int = 0, trial_time_limit: float = 20.0,
                     clock_range: tuple[float, float] | None = None,
                     input_dtype: str | None = None, llm_options: dict[str, Any] | None = None,
                     progress: Any = None) -> dict[str, Any]:
    """The co-design search (module docstring); returns {"trials", "pareto", "out"}."""
    import optuna

    from dse.ir import load_network
    from dse.llm.config import is_config_ref
    from dse.outdir import check_out_dir
    from dse.solver.outer import (
        ExploreSpace,
        default_clock_range,
        make_sampler,
        parse_board_counts,
    )
    from dse.specs import load_catalog

    cands = read_accuracy_table(accuracy)
    counts = parse_board_counts(boards)
    types = tuple(t.strip() for t in board_types.split(",") if t.strip())
    outp = check_out_dir(Path(out))
    llm = is_config_ref(model)
    graphs: dict[str, Any] = {}
    if not llm:
        for c in cands:
            src = c.model or (Path(model) if model else None)
            if src is None:
                raise SpecError(f"--accuracy: configuration {c.name!r} has no model file; add "
                                "a 'model' column naming each configuration's export")
            graphs[c.name] = load_network(src, input_dtype=input_dtype)
    catalog = load_catalog(())
    space = ExploreSpace(board_counts=counts, board_types=types,
                         clock_mhz=clock_range or default_clock_range(catalog, types),
                         trial_time_limit=trial_time_limit)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "maximize", "minimize", "minimize"],
                                sampler=make_sampler("nsga2", seed))
    by_name = {c.name: c for c in cands}
    rows: list[dict[str, Any]] = []
    for t in range(trials):
        trial = study.ask()
        cand = by_name[trial.suggest_categorical("configuration", [c.name for c in cands])]
        row = (_llm_trial(trial, cand, model, counts, types[0], llm_options or {}) if llm else
               _network_trial(trial, cand, graphs, catalog, space, seed))
        row = {"trial": t, "configuration": cand.name, "accuracy": cand.accuracy, **row}
        rows.append(row)
        if hasattr(trial, "set_constraint"):
            trial.set_constraint("infeasible", 0.0 if row["feasible"] else 1.0)
        vals = ([cand.accuracy, row["fps"], row["boards_used"], row["lut"]] if row["feasible"]
                else [cand.accuracy, 0.0, 1e9, 1e12])
        study.tell(trial, vals)
        if progress:
            progress(f"trial {t}: {cand.name} -> " + (
                f"{row['fps']:,.1f}/s on {int(row['boards_used'])} board(s)" if row["feasible"]
                else f"infeasible: {row['reason'][:80]}"))
    return write_results(outp, rows)


def write_results(outp: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from dse import viz
    from dse.outdir import staged_dir

    seen: dict[tuple, dict[str, Any]] = {}
    for r in rows:  # one row per distinct outcome (NSGA-II revisits configurations)
        if r["feasible"]:
            seen.setdefault((r["configuration"], r["boards_used"], r["fps"], r["lut"]), r)
    front = viz.pareto_rows(list(seen.values()), OBJECTIVES)
    cols = ["trial", "configuration", "accuracy", "feasible", "fps", "boards_used", "lut",
            "latency_s", "board_names", "clock_mhz", "reason"]
    with staged_dir(outp) as tmp:
        for name, data in (("trials.csv", rows), ("pareto.csv", front)):
            with (tmp / name).open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                w.writerows(data)
        viz.save(fig_codesign(rows, front), tmp / "pareto")
    return {"trials": rows, "pareto": front, "out": outp}


def fig_codesign(rows: list[dict[str, Any]], front: list[dict[str, Any]]) -> Any:
    """Accuracy against throughput, every feasible trial, the front highlighted."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    feas = [r for r in rows if r["feasible"]]
    ax.scatter([r["fps"] for r in feas], [r["accuracy"] for r in feas], s=14, c="#8899aa",
               label="trials")
    ax.scatter([r["fps"] for r in front], [r["accuracy"] for r in front], s=40, c="#d1495b",
               label="Pareto front (accuracy, throughput, boards, LUT)")
    for r in front:
        ax.annotate(str(r["configuration"]), (r["fps"], r["accuracy"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("throughput (frames or tokens per second)")
    ax.set_ylabel("accuracy (your table)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def load_results(directory: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(trials, front) of a co-design ``--out`` directory, numbers as numbers."""
    d = Path(directory)

    def read(name: str) -> list[dict[str, Any]]:
        p = d / name
        if not p.is_file():
            raise DseError(f"{d} has no {name}; point to a 'dse explore --accuracy' --out")
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            r["feasible"] = r.get("feasible") in ("True", "true", "1")
            for k in ("accuracy", "fps", "boards_used", "lut", "latency_s"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
        return rows

    return read("trials.csv"), read("pareto.csv")
