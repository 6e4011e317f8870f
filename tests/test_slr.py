"""SLRs: per-SLR capacities, layers larger than an SLR illegal, every Alveo plan placed into
its SLRs (checked here independently of dse's packer), FINN's floorplan JSON from emit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse import api
from tests.conftest import shared_path

# FINN's per-SLR table (src/finn/util/platforms.py, shared/reference/hardware_facts.md 1.2):
# LUT, FF, BRAM18, URAM, DSP per SLR, and its per-SLR utilization limits
FINN_SLRS = {
    "U55C": [(386000, 773000, 1200, 320, 2664), (364000, 729000, 1152, 320, 2784),
             (381000, 763000, 1200, 320, 2856)],
    "U280": [(400800, 801600, 1200, 320, 2736), (382080, 764160, 1152, 320, 2880),
             (380640, 761280, 1152, 320, 2880)],
    "U250": [(375000, 750000, 1152, 320, 2880)] * 4,
}
LIMITS = (0.7, 0.5, 0.8, 0.8, 0.8)
DIMS = ("lut", "ff", "bram18", "uram", "dsp")


def check_placed(plan: dict) -> int:
    """Every layer of every Alveo board in one SLR, each SLR within FINN's limits (shell
    ignored: a lenient, independent check). Returns the number of boards checked."""
    n = 0
    for b in plan["boards"]:
        table = FINN_SLRS.get(b["name"])
        layers = [l for l in plan["layers"] if l["board"] == b["index"]]
        if table is None or not layers:
            continue
        n += 1
        assert all("slr" in l for l in layers), b["name"]
        for s, area in enumerate(table):
            used = [sum(l["resources"][d] for l in layers if l["slr"] == s) for d in DIMS]
            for d, u, a, lim in zip(DIMS, used, area, LIMITS):
                assert u <= a * lim + 1e-6, (b["name"], s, d, u, a * lim)
    return n


@pytest.mark.parametrize("model, boards, kw", [
    ("mobilenetv1_w4a4.onnx", "U55C,U55C,U55C,U55C", {"input_dtype": "UINT8"}),
    ("resnet10_cifar_w4a4.onnx", "U280,U250", {"input_dtype": "INT8", "caps": {"lut": 0.03}}),
    ("cnv_w1a1.onnx", "U55C,U55C", {"caps": {"lut": 0.02}}),
])
def test_alveo_plans_are_placeable(model: str, boards: str, kw: dict) -> None:
    res = api.optimize(shared_path("models", model), boards=boards, time_limit=20,
                       record_time=False, **kw)
    plan = res.plan.data
    assert plan["metrics"]["placeable"] is True
    assert check_placed(plan) == plan["metrics"]["boards_used"]
    for b in plan["boards"]:
        if b.get("slrs"):
            assert all(x <= b["slrs"]["sll_limit"] for x in b["slrs"]["sll_bits"])


def test_a_folding_larger_than_any_slr_is_not_legal() -> None:
    from dse.ir import load_network
    from dse.solver.problem import build_problem
    from dse.specs import default_catalog

    g = load_network(shared_path("models", "mobilenetv1_w4a4.onnx"), input_dtype="UINT8")
    cat = default_catalog()
    p = build_problem(g, [cat.configure("U55C")])
    largest = max(s["lut"] for s in p.slr_caps[0])
    seen_too_big = 0
    for i in range(p.n):
        for k, o in enumerate(p.options[i]):
            c = o.cost
            if c.lut > largest:
                seen_too_big += 1
                assert p.cost_on(i, k, 0) is None
            elif p.cost_on(i, k, 0) is not None:
                assert c.lut <= largest
    assert seen_too_big > 0  # MobileNet's widest foldings exceed one U55C SLR


def test_emit_writes_finns_floorplan(tmp_path: Path) -> None:
    from dse.backends.finn.emit import emit

    hw = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_hw_generic.onnx")
    r = api.optimize(hw, boards=1, board="U55C", time_limit=10, record_time=False)
    emit(r.plan, hw, tmp_path)
    cfg = json.loads((tmp_path / "board0" / "dataflow_build_config.json").read_text())
    assert cfg["vitis_floorplan_file"] == "floorplan.json"
    fp = json.loads((tmp_path / "board0" / "floorplan.json").read_text())
    nodes = {k: v for k, v in fp.items() if k != "Defaults"}
    assert len(nodes) == len(r.plan["layers"])
    assert all(set(v) == {"slr", "partition_id", "device_id", "mem_port"} for v in nodes.values())
    assert {v["slr"] for v in nodes.values()} <= {0, 1, 2}


def test_replicas_scale_throughput_and_name_their_bound() -> None:
    """Data-parallel copies of the whole pipeline: MobileNetV1 fits one U55C at its best II,
    so n boards give n copies; each copy's host I/O (inputs in, outputs out) is its bound."""
    fps = {}
    for n in (1, 2, 4):
        res = api.optimize(shared_path("models", "mobilenetv1_w4a4.onnx"), boards=n,
                           board="U55C", input_dtype="UINT8", time_limit=20,
                           record_time=False, replicas="auto")
        rep = res.plan["metrics"]["replicas"]
        assert rep["count"] * res.plan["metrics"]["boards_used"] <= n
        assert rep["fps_total"] == pytest.approx(rep["count"] * rep["fps_per_replica"])
        assert rep["fps_per_replica"] <= rep["host_io_fps_per_replica"] + 1e-6
        assert rep["bound"] in ("host I/O", "the replica's own pipeline")
        fps[n] = rep["fps_total"]
    for n in (2, 4):
        assert fps[n] >= 0.9 * n * fps[1], fps


def test_replicas_need_identical_boards() -> None:
    from dse.exceptions import SpecError

    with pytest.raises(SpecError, match="identical boards"):
        api.optimize(shared_path("models", "tfc_w1a1.onnx"), boards="U55C,U280",
                     replicas="auto", time_limit=5, record_time=False)


def test_a_plan_that_cannot_be_placed_says_so(capsys) -> None:
    """Caps so small that no split of the layers fits the SLRs: the plan is flagged
    (metrics.placeable false) and the output warns in one line."""
    from dse.cli import main

    hw = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_hw_generic.onnx")
    rc = main(["optimize", "--model", str(hw), "--boards", "1", "--board", "U55C",
               "--cap", "bram18=0.0001,uram=0.0001,lut=0.002", "--time-limit", "10",
               "--quiet", "--out", "/tmp/dse-test-unplaceable"])
    out = capsys.readouterr().out
    plan = json.loads(Path("/tmp/dse-test-unplaceable/plan.json").read_text())
    assert rc == 0 and plan["metrics"]["placeable"] is False
    assert "do not fit its SLRs" in out
