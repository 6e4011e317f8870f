"""One plan format for CNNs and LLMs: a chain of stages on devices (``dse.chain.plan``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse import api
from dse.chain.plan import PLAN_FORMAT, from_any, load_plan
from dse.cli import main
from dse.exceptions import PlanError
from dse.plan import PartitionPlan


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnn")
    assert main(["optimize", "--quiet", "--out", str(out), "--boards", "2", "--board",
                 "Pynq-Z1", "--reproducible"]) == 0
    return out


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("llm")
    assert main(["optimize", "--quiet", "--model", "gpt2", "--boards", "2", "--board", "U55C",
                 "--sequences", "4", "--out", str(out)]) == 0
    return out


def test_cnn_optimize_writes_the_chain_plan(cnn_dir: Path) -> None:
    raw = json.loads((cnn_dir / "plan.json").read_text())
    assert raw["format"] == PLAN_FORMAT and raw["network"] == "cnn"
    plan = load_plan(cnn_dir / "plan.json")
    cnn = plan.payload
    assert len(plan.stages) == cnn["metrics"]["boards_used"] == len(cnn["boards"])
    # every layer in exactly one stage, in order, with its folding
    assert [n for s in plan.stages for n in s.segment.layers] == [x["name"] for x in cnn["layers"]]
    for s in plan.stages:
        assert s.device.kind == "fpga" and s.build.style == "dataflow"
        for x in cnn["layers"]:
            if x["board"] == s.index:
                assert dict(s.build.folding[x["name"]]) == x["folding"]
        assert all(s.resources[k] <= s.capacity[k] for k in s.resources)
    assert len(plan.links) == len(plan.stages) - 1
    assert plan.metrics.frames_per_s == pytest.approx(cnn["metrics"]["fps"], rel=1e-3)
    # the slowest stage sets the frame time (the Pynq link is a 1 GbE stream)
    assert plan.metrics.frame_s == pytest.approx(
        max([s.frame_s for s in plan.stages] + [x.frame_s for x in plan.links]), rel=1e-3)
    assert PartitionPlan.load(cnn_dir / "plan.json").data == cnn  # what emit reads


def test_old_cnn_plan_loads_migrated(cnn_dir: Path, tmp_path: Path) -> None:
    new = load_plan(cnn_dir / "plan.json")
    old = tmp_path / "plan.json"
    old.write_text(json.dumps(dict(new.payload)))  # a schema_version 1 file as dse wrote
    got = load_plan(old)
    assert got.migrated_from == "schema_version 1"
    assert got.stages == new.stages and got.links == new.links and got.metrics == new.metrics


def test_llm_optimize_writes_the_chain_plan(llm_dir: Path, tmp_path: Path) -> None:
    plan = load_plan(llm_dir / "plan.json")
    assert plan.network == "llm" and plan.model["name"] == "gpt2"
    llm = plan.payload
    assert [s.segment.label for s in plan.stages] == [s["blocks"] for s in llm["stages"]]
    assert all(s.build.style in ("spatial", "rolled") for s in plan.stages)
    assert len(plan.links) == len(plan.stages) - 1
    assert all(x.kind == "accl-rdma" and x.bytes_per_frame == 768 * 4 for x in plan.links)
    assert plan.metrics.latency_s == pytest.approx(llm["metrics"]["latency_s"])
    assert plan.metrics.tokens_per_s == pytest.approx(llm["metrics"]["tokens_per_s"])
    old = tmp_path / "llm_plan.json"  # the former dse-llm-plan/1 file
    old.write_text(json.dumps(dict(llm)))
    got = load_plan(old)
    assert got.migrated_from == "dse-llm-plan/1" and got.stages == plan.stages


def test_the_api_result_and_the_file_agree(tmp_path: Path) -> None:
    res = api.optimize_llm("gpt2", boards="U55C", sequences=2, out=tmp_path)
    assert load_plan(tmp_path / "plan.json").payload == json.loads(json.dumps(res.data))


@pytest.mark.parametrize("data, match", [
    ({"format": "dse-plan/9"}, "not a dse plan"),
    ({"schema_version": 7}, "schema_version 7"),
    ({"schema": "dse-llm-plan/0"}, "not a dse plan"),
    ([1, 2], "a plan is a JSON object"),
])
def test_unknown_plans_are_refused_in_one_line(data, match: str) -> None:
    with pytest.raises(PlanError, match=match) as e:
        from_any(data, "p.json")
    assert "\n" not in str(e.value)


def test_a_broken_chain_plan_names_the_field(cnn_dir: Path, tmp_path: Path) -> None:
    raw = json.loads((cnn_dir / "plan.json").read_text())
    raw["stages"][0]["device"]["kind"] = "tpu"
    with pytest.raises(PlanError, match=r"stages\[0\]\.device\.kind = .tpu.") as e:
        from_any(raw, "p.json")
    assert "\n" not in str(e.value)
    raw = json.loads((cnn_dir / "plan.json").read_text())
    del raw["payload"]["layers"]  # the CNN record emit reads is checked too
    with pytest.raises(PlanError, match="layers"):
        from_any(raw, "p.json")


def test_commands_refuse_an_unknown_plan_with_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"format": "dse-plan/9"}))
    model = str(api.example_model_path())
    assert main(["emit", "--plan", str(bad), "--model", model, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a dse plan" in err[0]


@pytest.mark.parametrize("which", ["cnn", "llm"])
def test_plot_takes_either_kind(which: str, cnn_dir: Path, llm_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / which
    d.mkdir()
    src = {"cnn": cnn_dir, "llm": llm_dir}[which]
    (d / "plan.json").write_text((src / "plan.json").read_text())
    assert main(["plot", str(d)]) == 0
    assert (d / "stages.png").is_file() and (d / "resources.png").is_file()
    assert (d / "partition.png").is_file() == (which == "cnn")
