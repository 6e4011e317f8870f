"""A clock per board (``--boards U55C@250,U280@200``): each board's layers run at its clock,
the pipeline's FPS is the least over boards of clock / II, and the solver knows it."""

from __future__ import annotations

import pytest

from dse import api
from tests.conftest import shared_path

MODEL = "resnet10_cifar_w4a4.onnx"
KW = dict(input_dtype="INT8", time_limit=30, record_time=False, caps={"lut": 0.05})


def _fps_from_boards(plan) -> float:
    return min(b["clock_mhz"] * 1e6 / max(l["cycles"] for l in plan["layers"]
                                          if l["board"] == b["index"])
               for b in plan["boards"])


def test_fps_is_the_least_over_boards_of_clock_over_ii() -> None:
    res = api.optimize(shared_path("models", MODEL), boards="U55C@250,U280@200", **KW)
    plan = res.plan
    assert {b["name"]: b["clock_mhz"] for b in plan["boards"]} == {"U55C": 250.0,
                                                                   "U280": 200.0}
    assert plan["clock_mhz"] == 250.0  # the II's unit: the fastest board's cycles
    assert plan["metrics"]["fps"] == pytest.approx(_fps_from_boards(plan), rel=1e-4)
    assert plan["metrics"]["fps"] == pytest.approx(250e6 / plan["metrics"]["ii_cycles"],
                                                   rel=1e-6)


def test_a_faster_clock_is_used_and_never_hurts() -> None:
    slow = api.optimize(shared_path("models", MODEL), boards="U55C@200,U280@200", **KW)
    mixed = api.optimize(shared_path("models", MODEL), boards="U55C@250,U280@200", **KW)
    fast = api.optimize(shared_path("models", MODEL), boards="U55C@250,U280@250", **KW)
    f = [r.plan["metrics"]["fps"] for r in (slow, mixed, fast)]
    assert f[0] <= f[1] + 1e-6 <= f[2] + 2e-6
    assert f[2] == pytest.approx(f[0] * 250 / 200, rel=1e-6)


def test_bad_board_clock_is_one_line(capsys) -> None:
    from dse.cli import main

    rc = main(["optimize", "--boards", "U55C@fast", "--quiet", "--time-limit", "5"])
    err = capsys.readouterr().err
    assert rc == 2 and "give the clock in MHz" in err and len(err.strip().splitlines()) == 1


def test_each_board_has_its_default_clock(tmp_path) -> None:
    """Without --clock-mhz a board runs at its own default: 100 MHz on Zynq-7000 boards (as
    FINN's examples build them), 200 MHz on Alveo; a board file may set its own; --clock-mhz
    and NAME@MHZ override it."""
    import json

    tfc = shared_path("models", "tfc_w1a1.onnx")
    kw = dict(time_limit=10, record_time=False)
    pynq = api.optimize(tfc, boards=1, board="Pynq-Z1", **kw).plan
    assert pynq["clock_mhz"] == 100.0 and pynq["boards"][0]["clock_mhz"] == 100.0
    assert pynq["metrics"]["fps"] == pytest.approx(100e6 / pynq["metrics"]["ii_cycles"])
    set_ = api.optimize(tfc, boards=1, board="Pynq-Z1", clock_mhz=125, **kw).plan
    assert set_["clock_mhz"] == 125.0
    chain = api.device_chain(["U55C", "Pynq-Z1@50", "Pynq-Z1", "ZCU104"])
    assert [c.clock_mhz for c in chain] == [200.0, 50.0, 100.0, 200.0]
    mine = {"boards": [{"name": "MyZynq", "part": "xc7z020clg400-1", "shells": ["zynq"],
                        "shell_flow_type": "vivado_zynq", "default_clock_mhz": 150,
                        "device": {"lut": 53200, "ff": 106400, "bram18": 280, "dsp": 220}}]}
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(mine))
    own = api.optimize(tfc, boards=1, board="MyZynq", board_files=[f], **kw).plan
    assert own["clock_mhz"] == 150.0
    assert {b["name"]: b["default_clock_mhz"] for b in api.boards([f])}["MyZynq"] == 150.0
