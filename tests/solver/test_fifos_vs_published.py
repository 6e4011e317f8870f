"""dse's FIFO sizing against the FIFO depths FINN chose for a published, measured design.

finn-plus sizes FIFOs only by RTL simulation (its ``distributed_simulation`` strategy, a
search for the smallest depths that keep the throughput), which needs Vivado: not here. The
depths FINN itself set are in finn-examples' MobileNet-v1 U250 folding config (34 FIFOs,
sized by FINN main's ``InsertAndSetFIFODepths``: a Verilator simulation of two frames fed
as fast as the design accepts them (``verilator_fifosim.cpp`` holds the input valid until
two frames are in), every FIFO deep, each then set to its highest occupancy;
``set_fifo_depths.py`` at Xilinx/finn@39f0c9a6b). dse sizes for the design
running at its II (the throughput-keeping minimum finn-plus searches for), so it must:

* put a FIFO where FINN's design has a deep one in front of a matrix-vector unit, and size
  it to the same FINN FIFO (its depth rounded up to a power of two, as every published
  depth is) for most of them: the depthwise-separable blocks from the fifth on agree; the
  three early ones (56x56 and 28x28 maps), where FINN's two frames at full input rate run
  ahead of the II, do not;
* book, for the whole design as built, resources within a small margin of the same design
  with FINN's published FIFOs (FINN's are deeper in front of the line buffers: its
  simulation runs the early layers ahead of the II).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.solver.folding import evaluate_folding
from tests.conftest import TESTS, shared_path
from tests.networks import with_topk

CONFIG = TESTS / "data" / "finn_examples" / "mobilenet-v1_U250_folding_config.json"
U250_URAM = 1280


def _pow2(depth: int) -> int:
    return 1 << max(0, depth - 1).bit_length()


def _published() -> tuple[dict, dict[str, int]]:
    """The config without its final scale (dse lowers it to ElementwiseMul), and the depth
    FINN gave the FIFO in front of each layer (the config lists nodes in graph order)."""
    cfg = json.loads(CONFIG.read_text())
    cfg.pop("ChannelwiseOp_hls_0")
    names = list(cfg)
    feeds = {names[i + 1]: cfg[k]["depth"] for i, k in enumerate(names)
             if k.startswith("StreamingFIFO")}
    return cfg, feeds


def _evaluate(cfg: dict, tmp: Path, name: str) -> dict:
    model = with_topk(shared_path("models", "mobilenetv1_w4a4.onnx"), tmp / "mn.onnx")
    p = tmp / name
    p.write_text(json.dumps(cfg))
    return evaluate_folding(model, p, "U250", clock_mhz=206.0, input_dtype="UINT8",
                            record_time=False).plan.data


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("mn_fifos")
    cfg, feeds = _published()
    sized = _evaluate({k: v for k, v in cfg.items() if not k.startswith("StreamingFIFO")},
                      tmp, "own.json")
    given = _evaluate(cfg, tmp, "given.json")
    return sized, given, feeds


def _dse_depths(plan: dict) -> dict[str, int]:
    fin = {x["name"]: x["finn_name"] for x in plan["layers"]}
    return {fin[s["dst"]]: s["fifo"]["depth"] for s in plan["streams"]
            if s.get("fifo") and s["dst"] in fin}


def test_fifos_in_front_of_the_pointwise_convolutions_match_finns(plans: tuple) -> None:
    sized, given, feeds = plans
    assert given["folding_config"]["fifos_given"] == 34 and sized["metrics"]["fifos"] > 0
    mine = _dse_depths(sized)
    deep = {n: d for n, d in feeds.items() if n.startswith("MVAU_hls") and d > 32}
    assert len(deep) == 12
    agree = sorted(n for n, d in deep.items() if _pow2(mine.get(n, 0)) == d)
    # MVAU_hls_5 .. MVAU_hls_13 (1,024 and 256 deep in FINN's design) agree
    assert agree == sorted(f"MVAU_hls_{i}" for i in range(5, 14)), (agree, mine)
    # every one of them has a FIFO in dse's plan (the early three shallower than FINN's)
    assert all(mine.get(n, 0) > 2 for n in deep), mine


def test_resources_as_built_close_to_the_design_with_finns_fifos(plans: tuple) -> None:
    sized, given, _ = plans
    a, b = sized["boards"][0]["resources_as_built"], given["boards"][0]["resources_as_built"]
    assert a["bram18"] == b["bram18"] and a["dsp"] == b["dsp"]
    assert abs(a["lut"] - b["lut"]) <= 0.01 * b["lut"], (a, b)
    # FINN's line-buffer FIFOs are deeper (URAM): never more than 2 % of the U250's URAM
    assert 0 <= b["uram"] - a["uram"] <= 0.02 * U250_URAM, (a, b)
    assert sized["metrics"]["ii_cycles"] == given["metrics"]["ii_cycles"]
