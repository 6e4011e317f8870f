"""Optuna exploration of a CNN over boards, clock, caps, weight placement and ACCL buffers:
the study's storage (journal or RDB), resume after a crash, and the results written at the end
(trials.csv, pareto.csv, plans/, figures, provenance.json)."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from dse import __version__, viz
from dse.chain.plan import from_cnn
from dse.examples import resolve_model
from dse.exceptions import SpecError
from dse.interrupts import StopRequest, stop_on_sigint
from dse.ir import LayerGraph, load_network
from dse.journal import clear_stale_lock, open_journal, undo_on_failure
from dse.outdir import check_out_dir, staged_dir
from dse.schemas import ExploreOptions, check_options
from dse.solver.outer import (
    CLOCK_MHZ,
    DIRECTIONS,
    ExploreSpace,
    default_clock_range,
    default_configs,
    make_objective,
    make_sampler,
    parse_board_counts,
)
from dse.specs import load_catalog


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreResult:
    out: Path
    study_name: str
    n_trials: int
    n_feasible: int
    pareto: list[dict[str, Any]]


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(storage: str | None, out: Path) -> BaseStorage:
    """Optuna storage: an RDB URL, a journal file path, or (default) out/study.journal."""
    if storage and "://" in storage:
        last: Exception | None = None
        for attempt in range(6):  # workers starting together race to create the schema
            try:
                # a worker that dies leaves its trial RUNNING: after the grace period Optuna
                # marks it failed and this callback enqueues it again (defaults included)
                retry = optuna.storages.RetryFailedTrialCallback(max_retry=3)
                return optuna.storages.RDBStorage(storage, heartbeat_interval=30,
                                                  grace_period=120, failed_trial_callback=retry)
            except ImportError as e:  # no driver: no point in retrying
                last = e
                break
            except Exception as e:  # server down, bad URL, or a concurrent schema creation
                last = e
                time.sleep(0.5 * (attempt + 1))
        msg = str(last).splitlines()[0][:160] if last else "unknown error"
        raise SpecError(f"--storage {_redact(storage)}: cannot open ({msg})") from None
    return open_journal(Path(storage) if storage else out / "study.journal", owned=not storage)


RECLAIMED = "dse_interrupted"  # system attribute of a trial a crash left RUNNING


def reclaim_interrupted_trials(st: optuna.Study) -> int:
    """Trials a killed process left RUNNING (one process owns a journal study, so none is
    live): mark them failed (flagged, so they do not count as finished) and queue the same
    parameters again, the hand-run defaults included."""
    n = 0
    for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        params = t.system_attrs.get("fixed_params") or t.params
        st._storage.set_trial_system_attr(t._trial_id, RECLAIMED, True)
        st._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        if params:
            st.enqueue_trial(dict(params), user_attrs={"retry_of": t.number})
        n += 1
    return n


def requeue_trial(st: optuna.Study, number: int | None) -> None:
    """A trial a second Ctrl-C cut short (Optuna marked it failed): flagged as interrupted, so
    it does not count as finished, and its parameters queued again."""
    for t in st.get_trials(deepcopy=False):
        if number is not None and t.number == number and t.state in (
                optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING):
            st._storage.set_trial_system_attr(t._trial_id, RECLAIMED, True)
            if t.state == optuna.trial.TrialState.RUNNING:
                st._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            params = t.system_attrs.get("fixed_params") or t.params
            if params:
                st.enqueue_trial(dict(params), user_attrs={"retry_of": t.number})


def count_finished(st: optuna.Study) -> int:
    """Finished trials of the study (complete or failed), not counting crash casualties."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sum(1 for t in st.get_trials(deepcopy=False, states=states)
               if not t.system_attrs.get(RECLAIMED))


def explore(
    model: str | Path | None = None,
    *,
    boards: str = "1..8",
    board_types: str = "U55C",
    trials: int = 40,
    storage: str | None = None,
    study: str | None = None,
    out: str | Path = "dse_explore",
    resume: bool = False,
    seed: int = 0,
    sampler: str = "nsga2",
    clock_range: tuple[float, float] | None = None,
    trial_time_limit: float = 20.0,
    input_dtype: str | None = None,
    minimize_bit_width: bool = True,
    board_files: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExploreResult:
    """Multi-objective Optuna search over boards, clock, caps, weight placement and ACCL
    buffers, each trial solved exactly by the joint optimizer; writes results to ``out``.
    ``clock_range`` None: 150..300 MHz widened to each board type's catalog clock
    (``default_clock_range``), so a trial can run the boards as ``dse optimize`` does."""
    counts = parse_board_counts(boards)
    lo, hi = clock_range or CLOCK_MHZ
    check_options(ExploreOptions, dict(
        trials=trials, max_boards=max(counts), trial_time_limit=trial_time_limit,
        clock_lo=lo, clock_hi=hi, seed=seed))
    if lo > hi:
        raise SpecError(f"--clock-mhz {lo:g}..{hi:g}: the range is empty; give LOW..HIGH")
    out_dir = check_out_dir(out)
    catalog = load_catalog(board_files or ())
    types = tuple(t.strip() for t in board_types.split(",") if t.strip())
    if not types:
        raise SpecError("--board-types is empty; give board names, e.g. U55C,U280")
    for t in types:
        catalog.board(t)  # unknown names fail here, with the list of known boards
    space = ExploreSpace(board_counts=counts, board_types=types,
                         clock_mhz=clock_range or default_clock_range(catalog, types),
                         trial_time_limit=trial_time_limit)
    path = resolve_model(model)
    graph = load_network(path, input_dtype=input_dtype, minimize_bit_width=minimize_bit_width)
    name = study or f"dse-{path.stem}"
    journal = out_dir / "study.journal"
    if resume and not storage and not journal.exists():
        raise SpecError(f"--resume: no study to continue in {out_dir} (no study.journal); "
                        "run without --resume to start one")
    shared = bool(storage and "://" in storage)
    own_journal = None if shared else Path(storage) if storage else journal
    with undo_on_failure(out_dir, own_journal):  # a bad storage or study leaves --out as it was
        out_dir.mkdir(parents=True, exist_ok=True)
        store = open_storage(storage, out_dir)
        existing = [s.study_name for s in optuna.get_all_study_summaries(store)]
        if name in existing and not (resume or shared):
            raise SpecError(f"study {name!r} already has results in {out_dir}; pass --resume "
                            "to continue it, or choose another --out/--study")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        st = optuna.create_study(study_name=name, storage=store, directions=list(DIRECTIONS),
                                 sampler=make_sampler(sampler, seed), load_if_exists=True)
        if not st.trials:
            for params in default_configs(space):
                st.enqueue_trial(params, skip_if_exists=True)
    if not storage:  # dse's own journal in --out: one explore process owns it
        reclaimed = reclaim_interrupted_trials(st)
        if progress and reclaimed:
            progress(f"study {name}: {reclaimed} trial(s) interrupted by a crash marked failed "
                     "and queued again")
    done = count_finished(st)
    if progress and done:
        progress(f"study {name}: {done} trial(s) already finished")
    if done < trials:
        def stop_at_target(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
            if count_finished(study) >= trials:
                study.stop()

        req = StopRequest()
        try:
            with stop_on_sigint(st.stop, progress) as req:
                st.optimize(
                    req.wrap(make_objective(graph, catalog, space, seed, progress,
                                            input_dtype=input_dtype)),
                    callbacks=[stop_at_target],
                    n_trials=trials - done, catch=(Exception,), gc_after_trial=False,
                )
        except KeyboardInterrupt:  # a second Ctrl-C, inside a trial: run it again later
            requeue_trial(st, req.current)
            req.requested = True
        if req.requested:  # Ctrl-C: the finished trials' tables, then stop
            if own_journal is not None and not storage:
                clear_stale_lock(own_journal)
            if count_finished(st):
                write_explore_results(st, out_dir, graph=graph, model_path=path, seed=seed,
                                      storage=_redact(storage) if storage else str(journal),
                                      sampler=sampler)
            raise KeyboardInterrupt
    return write_explore_results(st, out_dir, graph=graph, model_path=path, seed=seed,
                                 storage=_redact(storage) if storage else str(
                                     out_dir / "study.journal"), sampler=sampler)


def write_explore_results(st: optuna.Study, out_dir: Path, *, graph: LayerGraph, model_path: Path,
                          seed: int, storage: str, sampler: str) -> ExploreResult:
    """Write trials.csv, pareto.csv, plans/, figures and provenance.json into ``out_dir``, all
    at once on success (the study journal itself is Optuna's, written as trials finish)."""
    with staged_dir(out_dir) as tmp:
        res = _write_explore_results(st, tmp, graph=graph, model_path=model_path, seed=seed,
                                     storage=storage, sampler=sampler)
    return replace(res, out=out_dir)


def _write_explore_results(st: optuna.Study, out_dir: Path, *, graph: LayerGraph, model_path: Path,
                           seed: int, storage: str, sampler: str) -> ExploreResult:
    rows = []
    for t in sorted(st.trials, key=lambda t: t.number):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
            continue
        ua = t.user_attrs
        feasible = bool(ua.get("feasible", False)) and t.state == optuna.trial.TrialState.COMPLETE
        vals = t.values if (t.values and feasible) else [None] * 4
        rows.append({
            "trial": t.number, "state": t.state.name, "feasible": feasible,
            **{f"param_{k}": v for k, v in sorted(t.params.items())},
            "board_names": ua.get("board_names", ""),
            "fps": vals[0], "boards_used": vals[1], "latency_s": vals[2], "lut": vals[3],
            "ii_cycles": ua.get("ii_cycles"), "solver_status": ua.get("status", ""),
            "gap": ua.get("gap"), "wall_s": ua.get("wall_s"), "bottleneck": ua.get("bottleneck"),
            "reason": ua.get("reason", "") or ("" if t.state.name == "COMPLETE" else
                                               "interrupted by a crash (queued again)"
                                               if t.system_attrs.get(RECLAIMED) else "error"),
        })
    front = viz.pareto_rows([r for r in rows if r["feasible"]])
    front_ids = {r["trial"] for r in front}
    fields = sorted({k for r in rows for k in r}, key=lambda k: (
        ["trial", "state", "feasible"].index(k) if k in ("trial", "state", "feasible") else 3,
        k))
    for fname, data in (("trials.csv", rows), ("pareto.csv", front)):
        with (out_dir / fname).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(data)
    plans = out_dir / "plans"
    plans.mkdir(exist_ok=True)
    by_number = {t.number: t for t in st.trials}
    for n in sorted(front_ids):
        plan = by_number[n].user_attrs.get("plan")
        if plan:
            from_cnn(json.loads(plan)).save(plans / f"{n}.json")  # the chain format
    viz.save_explore_figures(out_dir)
    prov: dict[str, Any] = {
        "dse_version": __version__, "python": platform.python_version(),
        "versions": {"optuna": optuna.__version__,
                     "ortools": importlib.metadata.version("ortools")},
        "seed": seed, "sampler": sampler, "study": st.study_name, "storage": storage,
        "model": {"path": str(model_path), "sha256": graph.source_sha256},
        "command": " ".join(sys.argv), "trials": len(rows),
    }
    for mod in ("qonnx", "onnx", "numpy", "pandas", "matplotlib"):
        try:
            prov["versions"][mod] = __import__(mod).__version__
        except Exception:
            pass
    (out_dir / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")
    return ExploreResult(out=out_dir, study_name=st.study_name, n_trials=len(rows),
                         n_feasible=sum(r["feasible"] for r in rows), pareto=front)
