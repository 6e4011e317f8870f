"""The CLI as a user meets it: output, exit codes, one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import main
from tests.conftest import shared_path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect_example(capsys: pytest.CaptureFixture) -> None:
    rc, out, err = run(capsys, "inspect")
    assert rc == 0, err
    assert "cnv_small_w4a4.onnx" in out and "MVAU_0" in out and "TOTAL" in out


def test_inspect_json(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "inspect", "--json", "--model",
                     str(shared_path("models", "tfc_w1a1.onnx")))
    assert rc == 0
    d = json.loads(out)
    names = [l["name"] for l in d["layers"]]
    assert names[:3] == ["Reshape_0", "Thresholding_0", "MVAU_0"]
    mv = d["layers"][2]
    assert mv["smallest"]["cycles"] == 784 * 64 and mv["fastest"]["cycles"] < 784 * 64
    assert d["totals"]["weight_bits"] == 784 * 64 + 64 * 64 * 2 + 64 * 10


@pytest.mark.parametrize(
    "argv, rc, match",
    [
        (["inspect", "--model", "/nope.onnx"], 2, "model file not found"),
        (["inspect", "--input-dtype", "BANANA"], 2, "unknown data type"),
        (["cost", "--op", "MVAU_hls", "--attrs", "{bad"], 2, "not valid JSON"),
        (["cost", "--op", "Foo", "--attrs", "{}"], 2, "no cost model for op type 'Foo'"),
        (["cost", "--op", "MVAU_hls", "--attrs", '{"MW": 6, "MH": 4, "SIMD": 4}'], 2,
         "SIMD=4 must divide MW=6"),
    ],
)
def test_errors_are_one_line(capsys: pytest.CaptureFixture, argv: list, rc: int,
                             match: str) -> None:
    argv = [a.replace("MODEL:", str(shared_path("models")) + "/") for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == rc
    assert match in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cost_single(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "cost", "--op", "MVAU_hls", "--attrs",
                     '{"MW": 784, "MH": 64, "PE": 2, "SIMD": 28, "inputDataType": "BINARY", '
                     '"weightDataType": "BINARY", "outputDataType": "BINARY", '
                     '"binaryXnorMode": 1, "accDataType": "INT10", "resType": "lut"}', "--json")
    assert rc == 0
    d = json.loads(out)
    assert (d["cycles"], d["lut"], d["bram18"]) == (896, 687, 4)


def test_cost_batch_reproduces_reference_csv(tmp_path: Path, capsys: pytest.CaptureFixture
                                             ) -> None:
    src = shared_path("reference", "finn_estimates", "Thresholding_hls.csv")
    rows = list(csv.DictReader(src.open()))[:25]
    inp = tmp_path / "in.csv"
    keep = [k for k in rows[0] if k not in ("lut", "exp_cycles", "bram18")]
    with inp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keep, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    rc, out, _ = run(capsys, "cost", "--csv", str(inp), "--out", str(tmp_path / "o.csv"),
                     "--finn", "main")  # the reference rows are FINN main's
    assert rc == 0 and "0 with errors" in out
    got = list(csv.DictReader((tmp_path / "o.csv").open()))
    for r, g in zip(rows, got):
        assert (g["exp_cycles"], g["lut"], g["bram18"]) == (r["exp_cycles"], r["lut"],
                                                            r["bram18"])


def test_boards(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "boards")
    assert rc == 0 and "U55C" in out and "KV260" in out
    rc, out, _ = run(capsys, "boards", "--json")
    assert {b["name"] for b in json.loads(out)} >= {"U55C", "U280", "V80"}


def test_console_script_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "dse.cli", "--version"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("dse ")


def test_no_command_prints_help(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys)
    assert rc == 2 and "inspect" in out
