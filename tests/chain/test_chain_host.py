"""CNN host layers on a GPU/CPU offered in --boards: a roofline stage of the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse import api
from dse.chain.host import host_stage, host_work
from dse.chain.plan import load_plan
from dse.cli import main
from dse.devices import load_devices
from dse.exceptions import SpecError
from dse.ir import load_network
from dse.specs import default_catalog
from tests.conftest import shared_path

RESNET10 = shared_path("models", "resnet10_cifar_w4a4.onnx")


def test_the_float_first_conv_is_costed_from_its_shapes() -> None:
    """ResNet-10 without --input-dtype: FINN leaves the first conv (3 -> 64 channels, 3x3,
    32x32) on the host; its roofline counts 32 x 32 x 64 x 27 MACs."""
    g = load_network(RESNET10)
    (w,) = host_work(g)
    assert w.position == "head" and w.nodes == ("Conv_0",)
    assert w.macs == 32 * 32 * 64 * 27 and w.weights == 64 * 27
    cpu = load_devices().get("EPYC-9654x2")
    st = host_stage(w, cpu, default_catalog().configure("U55C"))
    eff = cpu.efficiency
    compute = 2 * w.macs / (cpu.peak("fp32") * eff.compute)
    memory = (w.weights * 4 + w.act_bytes) / (cpu.memory_gbps * 1e9 * eff.memory)
    assert st.frame_s == pytest.approx(max(compute, memory) + eff.kernel_overhead_s)
    # the FPGA's input stream through host memory: the board's DMA + one staging copy
    assert st.link_s == pytest.approx(w.boundary_bytes / 12e9 + 10e-6)


def test_optimize_puts_the_host_layers_on_the_device_offered(tmp_path: Path, capsys) -> None:
    assert main(["optimize", "--model", str(RESNET10), "--boards", "U55C,EPYC-9654x2",
                 "--time-limit", "30", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stage on EPYC-9654x2 (head)" in out and "chain " in out
    plan = load_plan(tmp_path / "plan.json")
    first, second = plan.stages[0], plan.stages[1]
    assert first.device.kind == "cpu" and first.segment.layers == ("Conv_0",)
    assert first.build.style == "kernels" and second.device.kind == "fpga"
    assert plan.links[0].kind == "host-dma" and plan.links[0].src == 0
    fpga_fps = plan.payload["metrics"]["fps"]
    slowest = max(1 / fpga_fps, first.frame_s, plan.links[0].frame_s)
    assert plan.metrics.frame_s == pytest.approx(slowest, rel=1e-6)


def test_a_device_alone_cannot_run_a_cnn() -> None:
    with pytest.raises(SpecError, match="at least one FPGA board"):
        api.optimize(RESNET10, boards="A100", time_limit=5)


def test_a_device_not_needed_is_said(tmp_path: Path, capsys) -> None:
    assert main(["optimize", "--boards", "U55C,A100", "--time-limit", "20", "--out",
                 str(tmp_path), "--quiet"]) == 0
    assert "A100-80GB offered, not needed" in capsys.readouterr().out
    assert [s.device.kind for s in load_plan(tmp_path / "plan.json").stages] == ["fpga"]
