"""Loading FINN's own folded HW graphs, our estimates equal FINN's estimate reports per layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.ir import load_network
from dse.models._common import COST_FINN
from tests.conftest import shared_path
from tests.networks import finn_hw_model


def _folded_models() -> list[str]:
    index = json.loads(shared_path("models", "finn_hw", "index.json").read_text())
    return [m["name"] for m in index if m["ok"]]


def _folded(name: str, tmp: Path) -> Path:
    return finn_hw_model(shared_path("models", "finn_hw", name), "folded", tmp)


@pytest.mark.parametrize("name", _folded_models())
def test_layer_estimates_equal_finn_reports(name: str, tmp_path: Path) -> None:
    folder = shared_path("models", "finn_hw", name)
    cycles = json.loads((folder / "estimate_layer_cycles.json").read_text())
    res = json.loads((folder / "estimate_layer_resources.json").read_text())
    graph = load_network(_folded(name, tmp_path))
    assert {l.name for l in graph.layers} == set(cycles)
    part = "xcu55c-fsvh2892-2L-e"  # the builds ran for U55C
    for layer in graph.layers:
        c = layer.cost(part)
        assert c.cycles == cycles[layer.name], layer.name
        r = res[layer.name]
        finn = (int(r["LUT"]), int(r["BRAM_18K"]), int(r["URAM"]), int(r["DSP"]))
        if c.source != COST_FINN:  # FINN's resource model is missing or books 0 here
            continue
        assert (c.lut, c.bram18, c.uram, c.dsp) == finn, layer.name


def test_dataflow_parent_follows_partition(tmp_path: Path) -> None:
    parent = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_dataflow_parent.onnx")
    # the parent points to partition_0.onnx of the original run; give it one next to a copy
    (tmp_path / "parent.onnx").write_bytes(parent.read_bytes())
    child = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_hw_folded.onnx")
    (tmp_path / "partition_0.onnx").write_bytes(child.read_bytes())
    g = load_network(tmp_path / "parent.onnx")
    assert g.op_counts()["MVAU"] == 4


def test_dataflow_parent_missing_child_is_a_clear_error(tmp_path: Path) -> None:
    from dse.exceptions import ModelLoadError

    parent = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_dataflow_parent.onnx")
    (tmp_path / "parent.onnx").write_bytes(parent.read_bytes())
    with pytest.raises(ModelLoadError, match="partition_0.onnx"):
        load_network(tmp_path / "parent.onnx")
