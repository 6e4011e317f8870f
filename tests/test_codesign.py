"""Quantization co-design: dse explore with the user's accuracy table as an objective."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from dse.codesign import explore_codesign, llm_quant, read_accuracy_table
from dse.exceptions import SpecError
from tests.minifloat_networks import export


def test_accuracy_table_and_llm_configurations(tmp_path: Path) -> None:
    p = tmp_path / "acc.csv"
    p.write_text("configuration,accuracy\nw=fp4;a=fp8;kv=fp8;rot=quarot;exp=0.05,0.5\n")
    (c,) = read_accuracy_table(p)
    assert llm_quant(c.name) == {"weights": "fp4", "acts": "fp8", "kv": "fp8",
                                 "rotation": "quarot", "expand": 0.05}
    with pytest.raises(SpecError, match="KEY=VALUE"):
        llm_quant("bits=4")
    p.write_text("config,acc\nx,1\n")
    with pytest.raises(SpecError, match="'configuration' and 'accuracy'"):
        read_accuracy_table(p)


def test_codesign_front_over_formats_of_an_exported_cnn(tmp_path: Path) -> None:
    """Two quantizations of the small CNN (FP8; FP4 weights / FP6 activations) with their
    accuracies: the front has both (the cheaper one is faster, the other more accurate)."""
    fp8, fp46 = export("cnn", "fp8", tmp_path), export("cnn", "fp4w_fp6a", tmp_path)
    acc = tmp_path / "acc.csv"
    acc.write_text(f"configuration,accuracy,model\nw=fp8;a=fp8,0.91,{fp8.name}\n"
                   f"w=fp4;a=fp6,0.87,{fp46.name}\n")
    res = explore_codesign("", acc, out=tmp_path / "out", boards="1", board_types="ZCU104",
                           trials=6, trial_time_limit=5)
    front = res["pareto"]
    assert {r["configuration"] for r in front} == {"w=fp8;a=fp8", "w=fp4;a=fp6"}
    best = {r["configuration"]: max(float(x["fps"]) for x in front
                                    if x["configuration"] == r["configuration"]) for r in front}
    assert best["w=fp4;a=fp6"] > best["w=fp8;a=fp8"]
    with (tmp_path / "out" / "pareto.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(front)
    assert (tmp_path / "out" / "pareto.png").is_file()


@pytest.mark.slow
def test_codesign_llm_rotations_and_formats_from_the_cli(tmp_path: Path) -> None:
    acc = tmp_path / "acc.csv"
    acc.write_text("configuration,accuracy\nw=int4;a=int4,0.41\nw=int4;a=int4;rot=quarot,0.57\n"
                   "w=fp4;a=fp8;kv=fp8,0.59\n")
    r = subprocess.run([sys.executable, "-m", "dse", "explore", "--model", "gpt2", "--accuracy",
                        str(acc), "--boards", "1", "--trials", "4", "--mode", "prefill", "--seq",
                        "32", "--out", str(tmp_path / "out"), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Pareto front (accuracy max" in r.stdout
    with (tmp_path / "out" / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and any(x["feasible"] == "True" for x in rows)


def test_codesign_notebook_runs_and_draws() -> None:
    """notebooks/codesign.ipynb draws the front of the shipped example run."""
    import nbformat
    from nbclient import NotebookClient

    repo = Path(__file__).resolve().parents[1]
    nb = nbformat.read(repo / "notebooks" / "codesign.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(repo / "notebooks")}}).execute()
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.output_type == "error"]
    assert len([o for o in outs if "image/png" in o.get("data", {})]) == 1
    from dse.codesign import load_results

    trials, front = load_results(repo / "results" / "example_codesign")
    assert front and all(r["feasible"] for r in front) and len(trials) == 24
