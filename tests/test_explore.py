"""dse explore: outputs, infeasible trials, resume after kill -9, Pareto maths, plots, notebook."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from dse import api, viz
from dse.cli import main
from dse.exceptions import SpecError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_RUN = REPO / "results" / "example_explore"
FAST = dict(boards="1..2", board_types="Pynq-Z1", trial_time_limit=3.0)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> api.ExploreResult:
    out = tmp_path_factory.mktemp("explore")
    # trials end as soon as they are proven (about 1-2 s each); the generous limit keeps a slow
    # or busy machine from cutting a trial short, which would make its plan depend on timing
    return api.explore(trials=6, out=out, seed=1, **{**FAST, "trial_time_limit": 20.0})


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_outputs(small_run: api.ExploreResult) -> None:
    out = small_run.out
    trials = _rows(out / "trials.csv")
    assert len(trials) == 6 == small_run.n_trials
    for col in ("param_n_boards", "param_clock_mhz", "param_cap_lut", "param_external_weights",
                "param_rx_buffer_bytes", "fps", "boards_used", "latency_s", "lut",
                "solver_status", "gap"):
        assert col in trials[0]
    # the hand-run defaults are always in the study: each board count at 200 MHz
    defaults = [t for t in trials if float(t["param_clock_mhz"]) == 200.0 and
                float(t["param_cap_lut"]) == 0.7]
    assert {t["param_n_boards"] for t in defaults} == {"1", "2"}
    pareto = _rows(out / "pareto.csv")
    assert pareto and all(t["feasible"] == "True" for t in pareto)
    for p in pareto:
        plan = json.loads((out / "plans" / f"{p['trial']}.json").read_text())["payload"]
        assert plan["metrics"]["fps"] == pytest.approx(float(p["fps"]), rel=1e-6)
    for f in ("pareto.png", "pareto.svg", "provenance.json", "resources.png", "partition.png"):
        assert (out / f).is_file(), f
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 1 and "optuna" in prov["versions"] and prov["model"]["sha256"]


def test_front_dominates_every_single_configuration_run(small_run: api.ExploreResult) -> None:
    front = _rows(small_run.out / "pareto.csv")
    for n in (1, 2):
        r = api.optimize(boards=n, board="Pynq-Z1", time_limit=20, record_time=False).plan.data
        # both sides proven: the comparison is then between two exact answers, not two timings
        assert r["solver"]["status"] == "OPTIMAL", r["solver"]
        assert not [ph for ph in r["solver"]["phases"]
                    if "time" in ph["outcome"]], r["solver"]["phases"]
        single = {"fps": r["metrics"]["fps"], "boards_used": r["metrics"]["boards_used"],
                  "latency_s": r["metrics"]["latency_s"],
                  "lut": sum(b["resources"]["lut"] for b in r["boards"])}
        def no_worse(p: dict) -> bool:  # the plan rounds latency to 9 significant digits
            tol = 1e-6
            return all(float(p[k]) >= float(single[k]) * (1 - tol) if sense > 0 else
                       float(p[k]) <= float(single[k]) * (1 + tol)
                       for k, sense in viz.OBJECTIVES)

        assert any(no_worse(p) for p in front), (n, single)


def test_infeasible_trials_are_recorded_not_fatal(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('[[boards]]\nname = "Tiny"\npart = "xc7z020clg400-1"\nshells = ["zynq"]\n'
                    "shell_flow_type = \"vivado_zynq\"\n"
                    "[boards.device]\nlut = 2000\nff = 4000\nbram18 = 4\nuram = 0\ndsp = 4\n")
    res = api.explore(trials=3, out=tmp_path / "o", boards="1", board_types="Tiny",
                      board_files=[str(tiny)], trial_time_limit=2)
    rows = _rows(tmp_path / "o" / "trials.csv")
    assert len(rows) == 3 and res.n_feasible == 0
    assert all(r["feasible"] == "False" and " needs " in r["reason"] for r in rows)
    assert _rows(tmp_path / "o" / "pareto.csv") == []


def test_existing_study_needs_resume(small_run: api.ExploreResult) -> None:
    with pytest.raises(SpecError, match="--resume"):
        api.explore(trials=6, out=small_run.out, **FAST)
    again = api.explore(trials=6, out=small_run.out, resume=True, **FAST)
    assert again.n_trials == 6  # nothing left to do


def _complete(out: Path) -> dict[int, tuple]:
    import optuna

    store = api.open_storage(None, out)
    if not optuna.get_all_study_summaries(store):
        return {}
    st = optuna.load_study(study_name="dse-cnv_small_w4a4", storage=store)
    return {t.number: tuple(t.values) for t in st.trials
            if t.state == optuna.trial.TrialState.COMPLETE}


def test_resume_after_kill_9_loses_no_finished_trial(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dse.cli", "explore", "--boards", "1..2", "--board-types",
           "Pynq-Z1", "--trials", "40", "--out", str(out), "--trial-time-limit", "3", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    done: dict[int, tuple] = {}
    while time.monotonic() < deadline and len(done) < 3:
        time.sleep(0.5)
        if (out / "study.journal").exists():
            done = _complete(out)
    os.kill(proc.pid, signal.SIGKILL)  # mid-trial, no chance to clean up
    proc.wait()
    before = _complete(out)
    assert len(before) >= 3
    res = api.explore(trials=len(before) + 2, out=out, resume=True, **FAST)
    after = _complete(out)
    assert all(after.get(n) == v for n, v in before.items())  # nothing finished was lost
    assert len(after) >= len(before) + 1 and res.n_trials >= len(before) + 2


def test_trials_left_running_by_a_crash_run_again(tmp_path: Path) -> None:
    """kill -9 leaves a trial RUNNING forever in the journal; --resume marks it failed (not
    counted as finished) and runs its parameters again, the hand-run defaults included."""
    out = tmp_path / "crashed"
    first = api.explore(trials=2, out=out, **FAST)
    store = api.open_storage(None, out)
    st = optuna.load_study(study_name=first.study_name, storage=store)
    default = st.trials[0].params
    st.enqueue_trial(default)
    orphan = st.ask()  # what a killed process leaves behind: RUNNING, never told
    assert st.trials[orphan.number].state == optuna.trial.TrialState.RUNNING
    res = api.explore(trials=3, out=out, resume=True, **FAST)
    st = optuna.load_study(study_name=first.study_name, storage=store)
    states = {t.number: t.state for t in st.trials}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in states.values()
    retry = [t for t in st.trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert retry[0].params == default
    assert res.n_trials == 4  # 3 finished + the interrupted one, which is listed as such
    rows = {int(r["trial"]): r for r in csv.DictReader((out / "trials.csv").open())}
    assert "interrupted" in rows[orphan.number]["reason"]


def test_pareto_rows() -> None:
    rows = [
        {"trial": 0, "fps": 10, "boards_used": 1, "latency_s": 1.0, "lut": 5},
        {"trial": 1, "fps": 20, "boards_used": 2, "latency_s": 1.0, "lut": 5},
        {"trial": 2, "fps": 10, "boards_used": 2, "latency_s": 1.0, "lut": 5},  # dominated by 0
        {"trial": 3, "fps": 5, "boards_used": 1, "latency_s": 0.5, "lut": 9},
    ]
    assert [r["trial"] for r in viz.pareto_rows(rows)] == [1, 0, 3]


def test_plot_cli_writes_figures(tmp_path: Path, capsys) -> None:
    d = tmp_path / "copy"
    shutil.copytree(EXAMPLE_RUN, d)
    for f in ("pareto.png", "pareto.svg", "partition.png", "resources.png"):
        (d / f).unlink(missing_ok=True)
    assert main(["plot", str(d)]) == 0
    for f in ("pareto.png", "pareto.svg", "partition.png", "resources.png"):
        assert (d / f).stat().st_size > 1000


def test_plot_data_is_computed_apart() -> None:
    res = viz.load_results(EXAMPLE_RUN)
    d = viz.scatter_data(res, "boards_used", "fps")
    assert len(d["pareto_x"]) == len(res["pareto"]) and len(d["x"]) >= len(d["pareto_x"])
    plan = viz.best_plan(res)
    part = viz.partition_data(plan)
    assert part["boards"] == sorted(part["boards"]) and len(part["names"]) == len(plan["layers"])
    util = viz.board_resource_data(plan)["util"]
    assert all(0 <= u <= 100 for us in util.values() for u in us)


def test_notebook_runs_and_draws(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / "pareto.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    os.environ["DSE_RESULTS"] = str(EXAMPLE_RUN)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert len(images) == 3  # Pareto figure, board resources, partition
