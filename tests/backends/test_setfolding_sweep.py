"""dse's SetFolding equals finn-plus's on a sweep finn-plus itself made: every shared model's
specialized HW graph, 6 targets x mvau_wwidth_max 36/64/128/256, every attribute SetFolding
sets, every node (tests/data/finn_plus_setfolding_sweep.json, from
benchmarks/finn_setfolding_sweep.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.ir import load_network
from dse.solver.setfolding import set_folding
from tests.conftest import TESTS, shared_path
from tests.networks import finn_hw_model

SWEEP = json.loads((TESTS / "data" / "finn_plus_setfolding_sweep.json")
                   .read_text())
PART = "xcu55c-fsvh2892-2L-e"


def _graph(name: str, tmp: Path):
    return load_network(finn_hw_model(shared_path("models", "finn_hw", name), "specialized",
                                      tmp))


@pytest.mark.parametrize("name", sorted(SWEEP["models"]))
def test_setfolding_equals_finn_plus_on_its_own_sweep(name: str, tmp_path: Path) -> None:
    g = _graph(name, tmp_path)
    runs = SWEEP["models"][name]["runs"]
    assert len(runs) == 24
    compared, wrong = 0, []
    for run in runs:
        fold = set_folding(g, run["target_cycles"], mvau_wwidth_max=run["mvau_wwidth_max"],
                           part=PART)
        for node, f in fold.items():
            ref = run["folding"].get(node)
            assert ref is not None, f"{node} not in finn-plus's graph"
            for k, v in f.items():
                if k in ref:
                    compared += 1
                    if ref[k] != v:
                        wrong.append((run["target_cycles"], run["mvau_wwidth_max"], node, k,
                                      v, ref[k]))
    assert compared > 0 and not wrong, wrong[:5]
