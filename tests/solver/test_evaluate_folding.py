"""``dse evaluate``: a FINN folding config applied to a network and costed as a plan.

The configs are finn-examples' own (tests/data/finn_examples, SOURCES.md); the networks are
the shared QONNX exports with the TopK FINN's examples put on the output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dse.exceptions import SpecError
from dse.models import estimate
from dse.solver.folding import evaluate_folding
from tests.conftest import TESTS, shared_path
from tests.networks import with_topk

DATA = TESTS / "data" / "finn_examples"
TFC_CFG = DATA / "bnn-pynq_tfc-w1a1_folding_config.json"


@pytest.fixture(scope="module")
def tfc(tmp_path_factory) -> Path:
    return with_topk(shared_path("models", "tfc_w1a1.onnx"),
                     tmp_path_factory.mktemp("tfc") / "tfc_w1a1_topk.onnx")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", "evaluate", *args],
                          capture_output=True, text=True, timeout=300)


def test_finn_examples_tfc_config_is_costed_as_finn_would(tfc: Path) -> None:
    res = evaluate_folding(tfc, TFC_CFG, "Pynq-Z1", input_dtype="UINT8")
    d = res.plan.data
    by = {x["finn_name"]: x for x in d["layers"]}
    cfg = json.loads(TFC_CFG.read_text())
    for name in ("MVAU_hls_0", "MVAU_hls_1", "MVAU_hls_3"):
        lay = by[name]
        assert {k: lay["folding"][k] for k in ("PE", "SIMD")} == {
            k: cfg[name][k] for k in ("PE", "SIMD")}
    # MVAU_hls_0: 784 x 64 at SIMD 49, PE 16 -> 16 x 4 = 64 cycles (FINN's estimate)
    assert by["MVAU_hls_0"]["cycles"] == 64
    assert by["Thresholding_rtl_0"]["cycles"] == 784 // 49
    # the published design has no flatten: FINN keeps a reshape of the input on the host
    assert d["folding_config"]["layers_on_host"] == ["Reshape_rtl_0"]
    assert by["Reshape_rtl_0"]["cycles"] == 0
    m = d["metrics"]
    # 784 B per frame over Pynq-Z1's 64-bit IODMA at 100 MHz: 98 cycles, the II
    assert m["ii_cycles"] == 98 and m["fps"] == pytest.approx(100e6 / 98, rel=1e-6)
    assert m["bottleneck"].startswith("host I/O") and m["host_io"]["binding"]
    # converters where the folded widths differ (FINN's InsertDWC), costed by FINN's model
    dwcs = [s for s in d["streams"] if "dwc" in s]
    assert dwcs and all(s["in_width"] != s["out_width"] for s in dwcs)
    for s in dwcs:
        c = estimate(s["dwc"]["op_type"], {"shape": [784], "inWidth": s["in_width"],
                                           "outWidth": s["out_width"], "dataType": "BINARY"})
        assert c.lut == s["dwc"]["lut"]
    b = d["boards"][0]
    assert b["fits_as_built"] and b["resources_as_built"]["lut"] >= b["resources"]["lut"]


def test_cli_evaluate_json_and_text(tfc: Path) -> None:
    r = _cli("--model", str(tfc), "--folding", str(TFC_CFG), "--board", "Pynq-Z1",
             "--input-dtype", "UINT8", "--json", "--batch", "250")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["metrics"]["fps"] == pytest.approx(100e6 / 98, rel=1e-6)  # the steady state
    assert plan["solver"]["status"] == "GIVEN"
    # --batch reaches the plan: one driver call on 250 frames, its accesses costed
    b = plan["metrics"]["batch"]
    assert b["frames"] == 250 and 0 < b["fps"] < plan["metrics"]["fps"]
    assert b["driver_call_us"] > 0 and "execute_on_buffers" in b["includes"]
    r = _cli("--model", str(tfc), "--folding", str(TFC_CFG), "--board", "Pynq-Z1",
             "--input-dtype", "UINT8")
    assert r.returncode == 0 and "bottleneck host I/O" in r.stdout
    assert "driver call on 1,000 frames" in r.stdout  # the default batch, said in the output
    r = _cli("--model", str(tfc), "--folding", str(TFC_CFG), "--board", "Pynq-Z1",
             "--batch", "0")
    assert r.returncode == 2 and "--batch" in r.stderr


def test_wrong_node_names_one_line_each_exit_2(tfc: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Defaults": {}, "MVAU_hls_9": {"PE": 1},
                               "Conv_0": {"PE": 2}, "AddStreams_Batch_0": {},
                               "MVAU_hls_1": {"PE": 8, "SIMD": 8}}))
    with pytest.raises(SpecError) as e:
        evaluate_folding(tfc, bad, "Pynq-Z1", input_dtype="UINT8")
    lines = str(e.value).splitlines()
    assert len(lines) == 4  # the header and one line per problem
    assert any(x.strip().startswith("MVAU_hls_9: no such node") for x in lines)
    assert any(x.strip().startswith("Conv_0:") for x in lines)
    assert any(x.strip().startswith("AddStreams_Batch_0:") for x in lines)
    r = _cli("--model", str(tfc), "--folding", str(bad), "--board", "Pynq-Z1",
             "--input-dtype", "UINT8")
    assert r.returncode == 2 and "MVAU_hls_9" in r.stderr


def test_illegal_folding_is_refused_with_the_legal_values(tfc: Path, tmp_path: Path) -> None:
    bad = tmp_path / "illegal.json"
    bad.write_text(json.dumps({"MVAU_hls_0": {"PE": 7, "SIMD": 49},
                               "Thresholding_rtl_0": {"PE": 5}}))
    with pytest.raises(SpecError) as e:
        evaluate_folding(tfc, bad, "Pynq-Z1", input_dtype="UINT8")
    msg = str(e.value)
    assert "MVAU_hls_0: PE=7, SIMD=49 is not a legal folding" in msg
    assert "PE one of 1, 2, 4, 8, 16, 32, 64" in msg
    assert "Thresholding_rtl_0: PE=5" in msg
    r = _cli("--model", str(tfc), "--folding", str(bad), "--board", "Pynq-Z1")
    assert r.returncode == 2


def test_old_op_names_map_to_todays_nodes(tfc: Path, tmp_path: Path) -> None:
    """FINN before 0.10 wrote StreamingFCLayer_Batch_N / Thresholding_Batch_N."""
    new = json.loads(TFC_CFG.read_text())
    old = {"Thresholding_Batch_0": new["Thresholding_rtl_0"],
           **{f"StreamingFCLayer_Batch_{i}": new[f"MVAU_hls_{i}"] for i in range(4)},
           "LabelSelect_Batch_0": new["LabelSelect_hls_0"]}
    p = tmp_path / "old.json"
    p.write_text(json.dumps(old))
    a = evaluate_folding(tfc, TFC_CFG, "Pynq-Z1", input_dtype="UINT8").plan.data
    b = evaluate_folding(tfc, p, "Pynq-Z1", input_dtype="UINT8").plan.data
    assert [x["cycles"] for x in a["layers"]] == [x["cycles"] for x in b["layers"]]
    assert [x["resources"] for x in a["layers"]] == [x["resources"] for x in b["layers"]]


def test_cnv_config_follows_finns_streaming_maxpool(tmp_path: Path) -> None:
    """finn-examples' CNV names 6 sliding windows (FINN's flow pools with StreamingMaxPool,
    finn-plus with a window and a Pool): the config maps to the conv windows, and the II is
    FINN's cycles of its slowest layer (MVAU_hls_6: 256 x 512 at SIMD 4, PE 1)."""
    model = with_topk(shared_path("models", "cnv_w1a1.onnx"), tmp_path / "cnv.onnx")
    d = evaluate_folding(model, DATA / "bnn-pynq_cnv-w1a1_folding_config.json", "Pynq-Z1",
                         input_dtype="UINT8").plan.data
    names = [x["finn_name"] for x in d["layers"]]
    assert names.count("StreamingMaxPool_hls_0") == 1 and not any(
        n.startswith("Pool_") for n in names)
    assert sum(n.startswith("ConvolutionInputGenerator") for n in names) == 6
    assert d["metrics"]["ii_cycles"] == 256 // 4 * 512 // 1
    assert d["metrics"]["bottleneck"] == "MVAU_6"
    assert not d["metrics"]["violations"]


@pytest.mark.slow
def test_zynq_mobilenet_config_lowers_thresholds_apart(tmp_path: Path) -> None:
    """finn-examples' ZCU102 MobileNet-v1 names a Thresholding_rtl after every MVAU/VVAU
    (27) and MVAU_rtl layers that output their accumulators: dse lowers the same way."""
    model = with_topk(shared_path("models", "mobilenetv1_w4a4.onnx"), tmp_path / "mn.onnx")
    cfg = json.loads((DATA / "mobilenet-v1_ZCU102_folding_config.json").read_text())
    cfg.pop("ChannelwiseOp_hls_0")  # the final scale: dse's ElementwiseMul
    p = tmp_path / "zcu102.json"
    p.write_text(json.dumps(cfg))
    d = evaluate_folding(model, p, "ZCU102", clock_mhz=187.5, input_dtype="UINT8").plan.data
    names = [x["finn_name"] for x in d["layers"]]
    assert sum(n.startswith("Thresholding_rtl") for n in names) == 27
    assert sum(n.startswith("MVAU_rtl") for n in names) == 15
    by = {x["finn_name"]: x for x in d["layers"]}
    assert by["MVAU_rtl_0"]["folding"]["PE"] == 16 and by["MVAU_rtl_0"]["folding"]["SIMD"] == 3
    # the config's 41 FIFOs keep their depths
    assert d["folding_config"]["fifos_given"] == 41 and d["metrics"]["fifos"] == 41
    # FINN's cycles of the slowest layer: the first thresholds, 32 channels x 111 x 111, PE 1
    assert d["metrics"]["ii_cycles"] == 32 * 111 * 111
