"""Where FINN puts width converters and FIFOs, how wide they are and what they cost, against
finn-plus itself: its InsertDWC, InsertFIFO(create_shallow_fifos=True) and SpecializeLayers
on its own folded HW graphs of the shared models (what step_set_fifo_depths does before it
sizes; the sizing simulates the RTL and needs Vivado, which is not here).

dse evaluates the same folding (the graph's own, written as a folding config) and must
  * put a converter exactly on the streams where finn-plus does, with its widths and LUTs;
  * give every FIFO it sizes the position and width of finn-plus's FIFO in front of the
    same layer (finn-plus puts one on every stream; dse keeps those deeper than 2).
FIFO costs: dse costs FIFOs with FINN's StreamingFIFO model (FINN main, which built
finn-examples' designs: SRL up to 256, Vivado FIFOs in BRAM/URAM beyond); finn-plus 1.6.1
has its own fitted fifo.sv model, so its numbers are not compared here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.ir import load_network
from dse.solver.folding import evaluate_folding
from tests.conftest import TESTS, shared_path
from tests.networks import finn_hw_model

pytestmark = pytest.mark.finn

SCRIPT = TESTS / "finn_scripts" / "insert_fifos_dwcs.py"
MODELS = ("tfc_w1a1", "tfc_w2a2", "sfc_w1a1", "cnv_w1a1")
FOLD = ("PE", "SIMD", "parallel_window", "ram_style", "resType", "mem_mode")
PART = "xc7z020clg400-1"  # Pynq-Z1


def _dse(model: Path, tmp: Path) -> dict:
    g = load_network(model)
    names = g.finn_names()
    cfg = {names[x.name]: {k: v for k, v in x.finn_attrs().items() if k in FOLD}
           for x in g.layers}
    p = tmp / f"{model.stem}_folding.json"
    p.write_text(json.dumps(cfg))
    return evaluate_folding(model, p, "Pynq-Z1").plan.data


@pytest.fixture(scope="module")
def compared(finn_env: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    from dse.backends.finn.runner import run_driver

    tmp = tmp_path_factory.mktemp("fifo")
    plans, cases = [], []
    for name in MODELS:
        model = finn_hw_model(shared_path("models", "finn_hw", name), "folded", tmp)
        plan = _dse(model, tmp)
        fin = {x["name"]: x["finn_name"] for x in plan["layers"]}
        fifos = {fin[s["dst"]]: {"depth": s["fifo"]["depth"]}
                 for s in plan["streams"] if "fifo" in s and s["dst"]}
        plans.append((name, plan))
        cases.append({"model": str(model), "part": PART, "fifos": fifos})
    src, out = tmp / "cases.json", tmp / "out.json"
    src.write_text(json.dumps(cases))
    r = run_driver(finn_env, str(src), str(out), script=SCRIPT, timeout=1800)
    assert r.get("ok") and out.exists(), r
    return list(zip(plans, json.loads(out.read_text()), strict=True))


def _named(plan: dict) -> dict:
    return {x["name"]: x["finn_name"] for x in plan["layers"]}


def test_converters_where_finn_inserts_them(compared: list[tuple]) -> None:
    for (name, plan), finn in compared:
        assert "error" not in finn, finn.get("error")
        fin = _named(plan)
        ours = {(fin.get(s["src"]), fin.get(s["dst"])): s for s in plan["streams"]
                if "dwc" in s}
        theirs = {(d["src"], d["dst"]): d for d in finn["dwcs"]}
        assert set(ours) == set(theirs), name
        for k, d in theirs.items():
            s = ours[k]
            assert (s["in_width"], s["out_width"]) == (d["in_width"], d["out_width"]), (name, k)
            # (finn-plus 1.6.1 makes every converter RTL; FINN main, whose rule dse keeps,
            # makes the ones whose widths do not divide HLS: the LUT estimate is the same)
            assert s["dwc"]["lut"] == d["lut"], (name, k)


def test_fifo_positions_and_widths_equal_finns(compared: list[tuple]) -> None:
    sized = 0
    for (name, plan), finn in compared:
        fin = _named(plan)
        width = {fin.get(s["dst"]): s["out_width"] for s in plan["streams"]}
        by_dst = {f["dst"]: f for f in finn["fifos"]}
        for s in plan["streams"]:
            if "fifo" not in s or not s["dst"]:
                continue
            f = by_dst[fin[s["dst"]]]
            assert f["width"] == s["out_width"] == width[fin[s["dst"]]], (name, s["dst"])
            assert f["depth"] == s["fifo"]["depth"]
            sized += 1
    assert sized >= 5  # the models need FIFOs deeper than FINN's default of 2
