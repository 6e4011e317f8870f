"""Segment replicas: a board of the chain may run as several identical copies, each taking
every r-th frame. The joint optimizer's II equals the exhaustive optimum over foldings,
placements and copy counts, and the copies' plans hold against the evaluator."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.solver.evaluate import evaluate
from dse.solver.problem import LinkConfig
from dse.solver.search import solve_joint
from tests.solver_helpers import (
    board,
    brute_force_replicas,
    option,
    problem,
    random_instance,
    solve_or_none,
)


@st.composite
def instances(draw):
    # identical boards: the copies of a board are one design
    p = random_instance(draw, max_layers=4, max_boards=4, identical_boards=True)
    return replace(p, max_replicas=p.n_boards)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(instances())
def test_solver_with_segment_replicas_matches_brute_force(p) -> None:
    assert solve_or_none(p) == brute_force_replicas(p)


def test_a_slow_first_layer_is_copied_and_the_rest_is_not() -> None:
    # layer 0 cannot run faster than 400 cycles; layers 1 and 2 fold to 100 cycles (60 LUT)
    # or 200 (35 LUT); a board holds 70 LUT. Whole-pipeline copies reach 200 at best (two
    # chains of two boards: the network needs 90 LUT at its smallest). Copying a segment:
    # layers 0-1 as 3 copies (ceil(400 / 3) = 134) and layer 2 on the fourth board (100).
    opts = [[option(400, 20)], [option(100, 60), option(200, 35, tag=1)],
            [option(100, 60), option(200, 35, tag=1)]]
    bs = [board("A", lut=70) for _ in range(4)]
    p = replace(problem(opts, None, bs), max_replicas=4)
    r = solve_joint(p, time_limit=20, workers=1)
    assert r.status == "OPTIMAL" and r.ii_cycles == brute_force_replicas(p) == 134
    ev = evaluate(p, r.choice, r.boards, replicas=r.replicas)
    assert ev.feasible and ev.ii_cycles == 134 and ev.boards_total == 4
    assert r.replicas == (3, 1) and r.boards == (0, 0, 1)
    # without replicas the II is the first layer's 400
    assert solve_or_none(replace(p, max_replicas=1)) == 400


def test_the_evaluator_spreads_a_stream_over_the_copies_on_both_sides() -> None:
    # 4,096 bits per frame (ACCL's 512-bit words) over a 1 Gb/s link at 100 MHz (10 bits
    # per cycle): 410 cycles on one link; with 2 copies on each side each link carries every
    # other frame: 205
    opts = [[option(100, 60)], [option(100, 60)]]
    p = replace(problem(opts, [(0, 1, 4096)], [board("A", lut=70) for _ in range(4)],
                        link=LinkConfig(bandwidth_gbps=1.0, efficiency=1.0)), max_replicas=4)
    assert evaluate(p, [0, 0], [0, 1]).ii_cycles == 410
    assert evaluate(p, [0, 0], [0, 1], replicas=[2, 2]).ii_cycles == 205
    assert evaluate(p, [0, 0], [0, 1], replicas=[3, 1]).ii_cycles == 410  # the 1-copy side
    bad = evaluate(p, [0, 0], [0, 1], replicas=[3, 2])
    assert not bad.feasible and "5 boards" in " ".join(bad.violations)


def test_emit_gives_each_copy_a_rank_and_streams_alternate_over_them(tmp_path) -> None:
    import json

    import onnx

    from dse.backends.finn.emit import emit
    from dse.plan import PartitionPlan
    from tests.backends.test_finn_backend import GOLDEN, _tfc_hw

    d = json.loads((GOLDEN / "plan.json").read_text())
    d["boards"][0].update(replicas=1, ranks=[0])
    d["boards"][1].update(replicas=2, ranks=[1, 2])  # the second board runs as two copies
    man = emit(PartitionPlan(d), _tfc_hw(), tmp_path).manifest
    assert man["world_size"] == 3
    b0, b1 = man["boards"]
    assert b0["ranks"] == [0] and b1["ranks"] == [1, 2] and b1["rank"] == 1
    assert b0["outputs"][0]["to_ranks"] == [1, 2] and b1["inputs"][0]["from_ranks"] == [0]
    assert man["links"][0]["dst_ranks"] == [1, 2]
    out = [n for n in onnx.load(str(tmp_path / "board0" / "model_accl.onnx")).graph.node
           if n.op_type == "ACCLOut"]
    peers = {a.name: list(a.ints) for a in out[0].attribute if a.name == "peers"}
    assert peers == {"peers": [1, 2]}
    assert "1, 2" in (tmp_path / "README.md").read_text()


def test_optimize_with_segment_replicas_reports_copies_and_holds(tmp_path) -> None:
    from dse import api
    from tests.conftest import shared_path

    model = shared_path("models", "mobilenetv1_w4a4.onnx")
    res = api.optimize(model, boards=2, board="U55C", input_dtype="UINT8", time_limit=60,
                       record_time=False, replicas="segments", out=tmp_path / "o")
    d = res.plan.data
    rep = d["metrics"]["replicas"]
    assert rep["layout"] == "segments" and [t["layout"] for t in rep["tried"]] == ["segments"]
    copies = [b["replicas"] for b in d["boards"]]
    assert rep["stage_copies"] == copies and sum(copies) == d["metrics"]["boards_used_total"]
    assert sum(copies) <= 2
    # MobileNetV1's first SWG floors one pipeline at 50,178 cycles (3,986 fps on one U55C):
    # two boards go further only as copies
    assert d["metrics"]["fps"] > 1.9 * 3985
    ev = evaluate(res.result.problem, res.result.choice, res.result.boards,
                  replicas=res.result.replicas)
    assert ev.feasible and ev.ii_cycles == d["metrics"]["ii_cycles"]
    assert (tmp_path / "o" / "plan.json").is_file()


def test_baselines_take_auto_replicas_on_several_boards() -> None:
    """``--replicas auto`` with a baseline strategy tries the layouts the baselines have
    (whole pipelines, SLR groups); asking a baseline for segment replicas is a clear error."""
    import pytest

    from dse import api
    from dse.exceptions import SpecError
    from tests.conftest import shared_path

    model = shared_path("models", "tfc_w1a1.onnx")
    res = api.optimize(model, boards=2, board="U55C", strategy="elastic-df", time_limit=30,
                       record_time=False, replicas="auto")
    rep = res.plan["metrics"]["replicas"]
    assert rep["layout"] != "segments"
    assert all(t.get("layout") != "segments" for t in rep["tried"])
    one = next(t["fps"] for t in rep["tried"] if t.get("replicas") == 1)
    assert rep["count"] >= 2 and rep["fps_total"] >= 1.99 * one  # host I/O per board
    assert res.plan["solver"]["strategy"] == "elastic-df"
    with pytest.raises(SpecError, match="segment replicas are the joint solver's"):
        api.optimize(model, boards=2, board="U55C", strategy="elastic-df", time_limit=30,
                     record_time=False, replicas="segments")


def test_replica_layouts_that_cannot_win_skip_the_polish(monkeypatch) -> None:
    """MobileNet-v1 on 2 U55C: the one-board pipeline (3,986 fps a copy) is solved before
    the SLR groups; their copies reach 996 fps each (6 in all, below the 2 pipelines'
    7,972), so their solve skips the least-resources phase and the FIFO re-plans. The
    answer is the one-board pipeline's, twice."""
    from dse import api
    from dse.solver.search import JointSearch
    from tests.conftest import shared_path

    skipped: list[str] = []
    phase = JointSearch.phase

    def spy(self: JointSearch, name: str, outcome: str) -> None:
        if outcome.startswith("skipped: another layout"):
            skipped.append(name)
        phase(self, name, outcome)

    monkeypatch.setattr(JointSearch, "phase", spy)
    model = shared_path("models", "mobilenetv1_w4a4.onnx")
    kw = dict(input_dtype="UINT8", board="U55C", time_limit=60, record_time=False)
    two = api.optimize(model, boards=2, replicas="auto", **kw).plan.data["metrics"]
    assert skipped == ["least resources"], skipped
    assert two["replicas"]["count"] == 2 and two["replicas"]["layout"] == "pipelines"
    tried = {(t.get("replicas"), t.get("per_board")): t["fps"]
             for t in two["replicas"]["tried"]}
    assert max(v for (r, k), v in tried.items() if v and k and k > 1) < two["replicas"]["fps_total"]
    one = api.optimize(model, boards=1, **kw).plan.data["metrics"]
    assert two["replicas"]["fps_per_replica"] == pytest.approx(one["fps"], rel=1e-9)
