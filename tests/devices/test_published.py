"""Published LLM measurements: the table's rows, dse's prediction of each, the physical
floor, and the fit of a device's efficiencies to such rows (dse calibrate --published)."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest

from dse.cli import main
from dse.devices import load_devices
from dse.devices.published import (
    fit_published,
    floor_row,
    impossible,
    predict_row,
    read_published,
)
from dse.exceptions import SpecError
from tests.conftest import REPO

TABLE = REPO / "benchmarks" / "data" / "published_llm.csv"


def test_the_table_has_thirty_sourced_rows_on_four_kinds_of_source() -> None:
    rows = read_published(TABLE)
    assert len(rows) >= 30
    assert all(r.source and r.table for r in rows)
    kinds = {r.source.split("@")[0].split(" ")[0] for r in rows}
    assert {"NVIDIA/TensorRT", "NVIDIA/TensorRT-LLM", "InternLM/lmdeploy"} <= kinds
    assert {r.device for r in rows} >= {"A100-40GB", "A100-80GB", "H100", "U280"}


def test_a_published_figure_below_the_floor_is_flagged() -> None:
    rows = read_published(TABLE)
    a100 = load_devices().get("A100-80GB")
    row = next(r for r in rows if r.id == "lmd-7b-1-128")
    floor = floor_row(row, a100)
    # the floor reads 13.5 GB of FP16 weights per token at the full 2,039 GB/s
    assert floor < 2039e9 / (6.7e9 * 2)
    assert not impossible(row, floor)
    assert impossible(replace(row, published=floor * 1.5), floor)
    assert predict_row(row, a100) < floor


def test_the_fit_recovers_efficiencies_that_made_the_rows(tmp_path: Path) -> None:
    """Rows made by the model itself at known efficiencies: the fit finds them again."""
    cat = load_devices()
    a100 = cat.get("A100-80GB")
    truth = replace(a100.efficiency, compute=0.5, memory=0.8, kernel_overhead_s=2e-6)
    made = replace(a100, efficiency=truth)
    rows = [replace(r, published=predict_row(r, made))
            for r in read_published(TABLE) if r.device == "A100-80GB"]
    fit = fit_published({"A100-80GB": a100}, rows)
    assert fit.median_abs_log_error < 0.02
    assert fit.efficiency.memory == pytest.approx(0.8, abs=0.03)
    # and through the CLI, writing a device file
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv.DictReader(TABLE.open()).fieldnames or []))
        w.writeheader()
        for r in rows:
            w.writerow({k: getattr(r, k) for k in w.fieldnames})
    out = tmp_path / "a100.json"
    assert main(["calibrate", "--device", "A100-80GB", "--published", str(path),
                 "--out", str(out)]) == 0
    fitted = load_devices([out]).get("A100-80GB")
    assert math.isclose(fitted.efficiency.memory, fit.efficiency.memory, rel_tol=0.05)
    assert "fitted by dse calibrate" in fitted.efficiency.source


def test_bad_published_files_get_one_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("id,device\n1,A100\n")
    with pytest.raises(SpecError, match="missing column"):
        read_published(p)
    rows = TABLE.read_text().splitlines()
    p.write_text("\n".join([rows[0], rows[1].replace("encoder_latency_ms", "speed")]))
    with pytest.raises(SpecError, match="metric 'speed'"):
        read_published(p)
