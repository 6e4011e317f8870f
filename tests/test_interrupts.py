"""Ctrl-C (SIGINT) during an exploration loses nothing: every finished trial stays (the
study's journal, and the tables written as the run stops), no stale journal lock is left, so
``--resume`` continues at once from the finished trials. Real subprocesses and real signals."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "dse", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _interrupt_after(proc: subprocess.Popen, lines: int, prefix: str = "trial ") -> str:
    """SIGINT once ``lines`` progress lines were printed; stderr up to the end."""
    seen: list[str] = []
    assert proc.stderr is not None
    deadline = time.monotonic() + 600
    while sum(ln.startswith(prefix) for ln in seen) < lines:
        line = proc.stderr.readline()
        assert line, "".join(seen) + (proc.stdout.read() if proc.stdout else "")
        seen.append(line)
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=300)
    return "".join(seen) + rest


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_ctrl_c_in_a_cnn_explore_keeps_every_trial_and_resume_continues(tmp_path: Path
                                                                        ) -> None:
    import optuna

    out = tmp_path / "run"
    base = ["explore", "--boards", "1..3", "--board-types", "Pynq-Z1", "--trial-time-limit",
            "2", "--out", str(out)]
    err = _interrupt_after(_start([*base, "--trials", "500"]), 4)
    assert "Traceback" not in err and "dse explore: interrupted" in err, err
    assert not Path(str(out / "study.journal") + ".lock").exists()  # no stale lock
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal")))
    study = optuna.load_study(study_name="dse-cnv_small_w4a4", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 4
    assert {int(r["trial"]) for r in _rows(out / "trials.csv")} >= {t.number for t in done}
    proc = _start([*base, "--trials", str(len(done) + 2), "--resume"])
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert f"{len(done)} trial(s) already finished" in stderr
    assert len([r for r in _rows(out / "trials.csv") if r["state"] == "COMPLETE"]
               ) >= len(done) + 2


@pytest.mark.slow
def test_ctrl_c_in_an_llm_explore_keeps_every_trial_and_resume_continues(tmp_path: Path
                                                                         ) -> None:
    out = tmp_path / "run"
    base = ["explore", "--model", "gpt2", "--devices", "U55C:0..6,A100-80GB:0..3,L4:0..2",
            "--seed", "1", "--out", str(out)]
    err = _interrupt_after(_start([*base, "--trials", "500"]), 3)
    assert "Traceback" not in err and "dse explore: interrupted" in err, err
    journal = [json.loads(ln) for ln in (out / "trials.jsonl").read_text().splitlines()]
    table = _rows(out / "trials.csv")
    assert len(journal) >= 3 and len(table) == len(journal)
    assert [int(r["trial"]) for r in table] == [r["trial"] for r in journal]
    k = len(journal)
    proc = _start([*base, "--trials", str(k + 2), "--resume"])
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert stderr.count("(finished before)") == k  # replayed, not solved again
    again = _rows(out / "trials.csv")
    assert len(again) == k + 2 and again[:k] == table
