"""Heterogeneous pipelines: GPU/CPU stages (roofline), per-link models, the chain order,
device-mix exploration, calibration from measurements, and one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dse import api
from dse.devices import Efficiency, calibrate, load_devices, read_measurements, step_cost
from dse.exceptions import InfeasibleError, SpecError
from dse.llm.config import load_arch, quant_spec
from dse.llm.hetero import hop_s
from dse.llm.network import build_network
from tests.conftest import run_notebook

REPO = Path(__file__).resolve().parents[1]


def test_mixed_chain_with_the_order_chosen() -> None:
    d = api.optimize_llm("llama2-7b", boards="A100-80GB,U55C,U55C", sequences=16,
                         prices={"U55C": 1.5, "A100-80GB": 4.1}).data
    kinds = [s["kind"] for s in d["stages"]]
    assert "gpu" in kinds and "fpga" in kinds
    m = d["metrics"]
    assert m["orders_tried"] == 3  # A100 first, middle or last
    assert m["tokens_per_s"] > 0 and m["cost_per_million_tokens"] > 0
    # the order found is at least as good as the order typed
    given = api.optimize_llm("llama2-7b", boards="A100-80GB,U55C,U55C", sequences=16,
                             order="given").data["metrics"]
    assert m["tokens_per_s"] >= given["tokens_per_s"] * (1 - 1e-9)


def test_gpu_decode_is_the_memory_roofline() -> None:
    """One A100-80GB, FP16 Llama-2-7B, one sequence: the step reads every weight and the KV
    cache once; time = bytes / (2,039 GB/s x 0.75) + 12 kernels x 8 us per block."""
    d = api.optimize_llm("llama2-7b", boards="A100-80GB", weights="fp16", acts="fp16",
                         context=1024).data
    a = load_arch("llama2-7b")
    nbytes = a.params() * 2 + a.layers * 2 * a.kv_dim * 2 * 1024
    expect = nbytes / (2039e9 * 0.75) + (a.layers + 1) * 12 * 8e-6
    assert d["metrics"]["latency_per_token_s"] == pytest.approx(expect, rel=0.02)
    assert d["stages"][0]["binding"] == "GPU memory bandwidth"


def test_batching_on_a_gpu_amortizes_the_weights() -> None:
    one = api.optimize_llm("llama2-7b", boards="A100-80GB", sequences=1).data["metrics"]
    many = api.optimize_llm("llama2-7b", boards="A100-80GB", sequences=32).data["metrics"]
    assert many["tokens_per_s"] > 8 * one["tokens_per_s"]


def test_link_models_differ_by_device_kind() -> None:
    from dse.specs import default_catalog

    net = build_network(load_arch("llama2-7b"), quant_spec(), "decode")
    u55c = default_catalog().configure("U55C")
    gpu = load_devices().get("A100-80GB")
    fpga_fpga = hop_s(net, u55c, u55c)
    fpga_gpu = hop_s(net, u55c, gpu)
    gpu_gpu = hop_s(net, gpu, gpu)
    assert fpga_fpga < gpu_gpu < fpga_gpu  # RDMA < host TCP < TCP + staging on both ends
    from dse.chain.links import message_time_s

    nbytes = 4096 * 4  # one token's FLOAT32 residual stream
    assert fpga_fpga == pytest.approx(message_time_s(nbytes))
    assert 4.87e-6 < fpga_fpga < 16.8e-6  # between the measured 4 KiB and 64 KiB points
    # staging: the GPU's PCIe and the FPGA's DMA plus 10 us per copy, on top of TCP
    assert fpga_gpu - gpu_gpu == pytest.approx(nbytes / 12e9 - nbytes / 25e9, abs=1e-9)


def _measurements(path: Path, dev, eff: Efficiency) -> Path:
    """A measurement file as a profiler would give it, from known efficiencies."""
    rows = []
    for params, wb, tokens, kv_mb in ((6.7e9, 16, 1, 500), (6.7e9, 16, 8, 4000),
                                      (6.7e9, 4, 1, 500), (13e9, 16, 1, 800),
                                      (6.7e9, 16, 512, 0), (1.3e9, 16, 2048, 0),
                                      (6.7e9, 8, 32, 16000)):
        t = step_cost(dev, params=params, weight_bits=wb, tokens=tokens, attn_ops=0.0,
                      kv_bytes=kv_mb * 1e6, act_bytes=0.0, blocks=32, precision="fp16",
                      eff=eff).time_s
        rows.append({"params": params, "weight_bits": wb, "tokens": tokens, "attn_gops": 0,
                     "kv_mb": kv_mb, "act_mb": 0, "blocks": 32, "precision": "fp16",
                     "measured_ms": 1e3 * t * (1.02 if tokens % 2 else 0.98)})
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_calibration_recovers_the_efficiencies(tmp_path: Path, capsys) -> None:
    from dse.cli import main

    dev = load_devices().get("A100-80GB")
    true = Efficiency(compute=0.45, memory=0.62, kernel_overhead_s=5e-6)
    path = _measurements(tmp_path / "m.csv", dev, true)
    eff, err = calibrate(dev, read_measurements(path))
    assert eff.memory == pytest.approx(0.62, abs=0.03)
    assert eff.compute == pytest.approx(0.45, abs=0.05)
    assert err["median_rel_error"] < 0.03 < err["median_rel_error_before"]
    out = tmp_path / "a100.json"
    rc = main(["calibrate", "--device", "A100-80GB", "--measurements", str(path),
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "median" in text and out.exists()
    fitted = load_devices([out]).get("A100-80GB")
    assert fitted.efficiency.memory == pytest.approx(eff.memory)


def test_device_files_and_bad_inputs(tmp_path: Path, capsys) -> None:
    from dse.cli import main

    good = tmp_path / "mine.toml"
    good.write_text('[[devices]]\nname = "MyGPU"\nkind = "gpu"\nmemory_gib = 48\n'
                    'memory_gbps = 864\nnic_gbps = 200\nprice_per_hour = 1.2\n'
                    '[devices.peak_tops]\nfp32 = 90\nfp16 = 180\nint8 = 360\n')
    d = api.optimize_llm("llama2-7b", boards="MyGPU", board_files=[good]).data
    assert d["stages"][0]["board"] == "MyGPU" and d["metrics"]["cost_per_million_tokens"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"devices": [{"name": "X", "kind": "gpu", "memory_gib": 8}]}))
    cases = [
        (["--boards", "X", "--board-file", str(bad)], "memory_gbps: missing", 2),
        (["--boards", "B300"], "neither a board", 2),
        (["--model", "llama2-70b", "--boards", "L4"], "use at least", 1),
    ]
    for argv, match, code in cases:
        if "--model" not in argv:
            argv = ["--model", "llama2-7b", *argv]
        rc = main(["optimize", *argv, "--quiet", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert rc == code and match in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    with pytest.raises(SpecError, match="NAME:LO..HI"):
        api_explore_devices("U55C:x")
    with pytest.raises(InfeasibleError):
        api.optimize_llm("llama2-70b", boards="L4")


def api_explore_devices(spec: str):
    from dse.llm.explore import parse_devices

    return parse_devices(spec)


def test_explore_samples_device_mixes(tmp_path: Path) -> None:
    from dse.llm.explore import explore_llm

    res = explore_llm("gpt2", "U55C:0..2,A100-80GB:0..1,EPYC-9654x2:0..1", out=tmp_path,
                      trials=8, seed=3, prices={"U55C": 1.5, "A100-80GB": 4.1,
                                                "EPYC-9654x2": 3.0})
    assert len(res["trials"]) == 8 and res["pareto"]
    for f in ("trials.csv", "pareto.csv", "pareto.png"):
        assert (tmp_path / f).stat().st_size > 0
    chains = {r["chain"] for r in res["trials"] if r.get("feasible")}
    assert len(chains) >= 3
    kinds = {n for c in chains for n in c.split(" > ")}
    assert {"U55C", "A100-80GB"} <= kinds


def test_predictions_against_published_gpu_latencies() -> None:
    """NVIDIA's published Llama-2-7B latencies (NeMo, FP16, 128 in / 20 out, batch 1):
    the roofline with default efficiencies stays within 15 %."""
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.llm_study import published_rows

    for p in published_rows():
        if "batch 1" in p["case"]:
            assert abs(p["error"]) <= 0.15, p


def test_study_notebook_runs() -> None:
    study = REPO / "results" / "llm_study"
    assert (study / "study.csv").exists(), "run benchmarks/llm_study.py"
    errors, images = run_notebook("llm_pipelines.ipynb", {"DSE_STUDY": str(study)})
    assert not errors and len(images) == 2


def test_each_fpga_board_has_its_own_clock() -> None:
    """U55C@250 beside U280@200: each stage runs at its board's clock; a faster clock makes
    a compute-bound stage faster, never a memory-bound one."""
    d = api.optimize_llm("gpt2", boards="U55C@250,U55C@125", sequences=8).data
    clocks = [s["clock_mhz"] for s in d["stages"]]
    assert clocks == [250.0, 125.0][:len(clocks)]
    one_fast = api.optimize_llm("gpt2", boards="U55C@300", sequences=8).data["metrics"]
    one_slow = api.optimize_llm("gpt2", boards="U55C@150", sequences=8).data["metrics"]
    assert one_fast["tokens_per_s"] >= one_slow["tokens_per_s"]
    with pytest.raises(SpecError, match="MHz"):
        api.optimize_llm("gpt2", boards="U55C@fast")


def test_switch_topology_adds_a_traversal_per_hop() -> None:
    from dse.chain.links import SWITCH_S
    from dse.specs import default_catalog

    net = build_network(load_arch("llama2-7b"), quant_spec(), "decode")
    u = default_catalog().configure("U55C")
    gpu = load_devices().get("A100")
    for a, b in ((u, u), (u, gpu), (gpu, gpu)):
        assert hop_s(net, a, b, "switch") == pytest.approx(hop_s(net, a, b) + SWITCH_S)
    chain = api.optimize_llm("llama2-7b", boards="U55C,U55C", sequences=1).data["metrics"]
    sw = api.optimize_llm("llama2-7b", boards="U55C,U55C", sequences=1,
                          topology="switch").data["metrics"]
    assert sw["latency_per_token_s"] == pytest.approx(chain["latency_per_token_s"] + SWITCH_S)
