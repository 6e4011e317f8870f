"""A corpus of bad inputs, as a new user types them: every one ends in one line on stderr that
names what is wrong, with the exact exit code (2 bad input, 1 infeasible), never a traceback,
and a failing command leaves --out exactly as it was. The newer inputs (LLM configs, devices,
calibration, ...) are in test_adversarial_corpus.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dse.api import example_model_path
from dse.cli import main
from tests.conftest import shared_path

BOARD = {"name": "X", "part": "xc7z020clg400-1", "device": {"lut": 50000, "bram18": 200}}


def _write(tmp: Path, name: str, content: str | bytes) -> str:
    p = tmp / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def _board_file(tmp: Path, mutate) -> str:
    d = {"boards": [copy.deepcopy(BOARD)]}
    mutate(d)
    return _write(tmp, "boards.json", json.dumps(d))


BOARD_FILES = {
    "nan resource": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": NaN}}]}',
                     r"device\.lut = nan: Input should be a finite number"),
    "infinite resource": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": Infinity}}]}',
                          "finite number"),
    "1e300 resource": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 1e300}}]}',
                       "less than or equal to"),
    "10**400 resource": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 1'
                         + "0" * 400 + '}}]}', r"device\.lut"),
    "list at top level": ("[1, 2]", "a board file is a table"),
    "hbm = 7": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 5}, "hbm": 7}]}',
                r"hbm = 7: should be a table"),
    "typo in a field": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 5}, '
                        '"hmb": {"gib": 8}}]}', r"hmb .*unknown field"),
    "bool as a count": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": true}}]}',
                        r"device\.lut = True"),
    "clock of 5 MHz": ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 5}, '
                       '"default_clock_mhz": 5}]}', r"default_clock_mhz = 5: .*greater than"),
    "not UTF-8": (b"\xff\xfe[[boards]]", "not UTF-8"),
    "broken TOML": ("[[boards]\nname=", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BOARD_FILES), ids=str)
def test_bad_board_files(case: str, tmp_path: Path, capsys) -> None:
    content, match = BOARD_FILES[case]
    suffix = ".toml" if case in ("not UTF-8", "broken TOML") else ".json"
    path = _write(tmp_path, "b" + suffix, content)
    _expect(["boards", "--board-file", path], 2, match, capsys)


def _expect(argv: list[str], code: int, match: str, capsys, out: Path | None = None) -> str:
    import re

    before = _snapshot(out) if out is not None else None
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert re.search(match, lines[0]), lines[0]
    if out is not None:
        assert _snapshot(out) == before, "a failing command changed --out"
    return lines[0]


def _snapshot(d: Path) -> dict[str, bytes] | None:
    if not d.exists():
        return None
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


OPTIONS = [
    (["--link-gbps", "nan"], "--link-gbps nan: Input should be a finite number"),
    (["--seed", str(2**40)], "--seed 1099511627776: Input should be less than"),
    (["--time-limit", "nan"], "--time-limit nan"),
    (["--workers", "-1"], "--workers -1: Input should be greater than or equal to 1"),
    (["--rx-buffers", "-5"], "--rx-buffers -5"),
    (["--clock-mhz", "inf"], "--clock-mhz inf"),
    (["--link-efficiency", "1.5"], "--link-efficiency 1.5"),
    (["--boards", "0"], "--boards 0: give 1 to"),
    (["--boards", "100000"], "--boards 100000: give 1 to"),
    (["--cap", "lut=nan"], r"lut must be a fraction"),
    (["--cap", "luts=0.5"], "unknown resource"),
    (["--model", ""], "--model is empty"),
    (["--model", "/nonexistent.onnx"], "not found"),
    (["--board", "U99"], "unknown board 'U99'"),
    (["--strategy", "magic"], "invalid choice"),
    (["--input-dtype", "UINT99X"], "UINT99X"),
]


@pytest.mark.parametrize("extra, match", OPTIONS, ids=lambda v: " ".join(v) if
                         isinstance(v, list) else "")
def test_bad_optimize_options(extra: list[str], match: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _expect(["optimize", "--quiet", "--out", str(out), "--time-limit", "5", *extra], 2, match,
            capsys, out)


def test_bad_out_directories(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    _expect(["optimize", "--quiet", "--out", str(afile)], 2, "is a file, not a directory",
            capsys)
    _expect(["optimize", "--quiet", "--out", "/"], 2, "file system root", capsys)
    # not writable, also for root (CI runs as root, which ignores permission bits): a kernel
    # file system, and a path under a file
    _expect(["optimize", "--quiet", "--out", "/proc/dse-out"], 2,
            "/proc is a kernel file system", capsys)
    _expect(["optimize", "--quiet", "--out", "/sys/dse-out"], 2,
            "/sys is a kernel file system", capsys)
    _expect(["optimize", "--quiet", "--out", str(afile / "x")], 2,
            "is a file, so nothing can be created under it", capsys)
    (tmp_path / "o" / "plan.json").mkdir(parents=True)
    _expect(["optimize", "--quiet", "--out", str(tmp_path / "o")], 2,
            "plan.json is a directory", capsys, tmp_path / "o")


def test_infeasible_is_exit_1_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    line = _expect(["optimize", "--quiet", "--out", str(out), "--model",
                    str(shared_path("models", "mobilenetv1_w4a4.onnx")), "--board", "Pynq-Z1"],
                   1, "infeasible: no folding of layer MVAU_12 .* BRAM18", capsys, out)
    assert "Pynq-Z1" in line
    assert not out.exists()


@pytest.fixture(scope="module")
def good_plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("plan")
    assert main(["optimize", "--quiet", "--out", str(out), "--boards", "2", "--board",
                 "Pynq-Z1", "--reproducible", "--replicas", "1"]) == 0
    return json.loads((out / "plan.json").read_text())["payload"]  # the CNN record


def _set(path: list, value):
    def mutate(d):
        for k in path[:-1]:
            d = d[k]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value
    return mutate


PLANS = {
    "board index as a string": (_set(["layers", 0, "board"], "0"),
                                r"layers\[0\]\.board = '0': Input should be a valid integer"),
    "layer on board 99": (_set(["layers", 0, "board"], 99), "names board 99"),
    "layer without folding": (_set(["layers", 1, "folding"], KeyError),
                              r"layers\[1\]\.folding: missing"),
    "board without resources": (_set(["boards", 1, "resources"], KeyError),
                                r"boards\[1\]\.resources: missing"),
    "ram_style quantum": (_set(["layers", 3, "folding", "ram_style"], "quantum"),
                          "ram_style = 'quantum'"),
    "schema_version 2": (_set(["schema_version"], 2), "schema_version 2 is not supported"),
    "negative cycles": (_set(["layers", 2, "cycles"], -1), r"cycles = -1"),
    "PE zero": (_set(["layers", 3, "folding", "PE"], 0), r"folding\.PE = 0"),
}


@pytest.mark.parametrize("case", sorted(PLANS), ids=str)
def test_bad_plans_in_emit_and_plot(case: str, good_plan: dict, tmp_path: Path,
                                    capsys) -> None:
    mutate, match = PLANS[case]
    plan = copy.deepcopy(good_plan)
    mutate(plan)
    d = tmp_path / "run"
    d.mkdir()
    (d / "plan.json").write_text(json.dumps(plan))
    _expect(["plot", str(d)], 2, match, capsys, d)
    out = tmp_path / "build"
    _expect(["emit", "--plan", str(d / "plan.json"), "--model", str(example_model_path()),
             "--out", str(out)], 2, match, capsys, out)
    assert not out.exists()


def test_truncated_plan(good_plan: dict, tmp_path: Path, capsys) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "plan.json").write_text(json.dumps(good_plan)[:300])
    _expect(["plot", str(d)], 2, "is not valid JSON", capsys, d)


COSTS = [
    ('{"MW": -1, "MH": 64}', "MW=-1 must be 1"),
    ('{"MH": 64}', "required attribute 'MW' is missing"),
    ('{"MW": 1e400, "MH": 4}', "MW=inf must be an integer"),
    ('{"MW": 64, "MH": 64, "PE": 0}', "PE=0 must be 1"),
    ('{"MW": 64, "MH": 64, "numInputVectors": [1, -3]}', "numInputVectors"),
    ('[1, 2]', "must be a JSON object"),
    ('{"MW": 64, "MH": 64, "inputDataType": "UINT999Q"}', "UINT999Q"),
]


@pytest.mark.parametrize("attrs, match", COSTS)
def test_bad_cost_attributes(attrs: str, match: str, capsys) -> None:
    _expect(["cost", "--op", "MVAU_hls", "--attrs", attrs], 2, match, capsys)


def test_explore_bounds(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ex"
    _expect(["explore", "--boards", "1..100000", "--out", str(out)], 2,
            "board counts must be 1 to", capsys, out)
    _expect(["explore", "--trial-time-limit", "0", "--out", str(out)], 2,
            "--trial-time-limit 0.0: Input should be greater than 0", capsys, out)
    _expect(["explore", "--resume", "--out", str(out)], 2, "no study to continue", capsys, out)
    _expect(["explore", "--trials", "0", "--out", str(out)], 2, "--trials 0", capsys, out)
    _expect(["explore", "--clock-mhz", "300..100", "--out", str(out)], 2, "range is empty",
            capsys, out)
    assert not out.exists()


def test_internal_errors_are_exit_3_with_debug(monkeypatch, capsys) -> None:
    from dse import api

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(api, "inspect", boom)
    assert main(["inspect"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError (a bug)" in err
    assert main(["--debug", "inspect"]) == 3
    assert "Traceback" in capsys.readouterr().err
