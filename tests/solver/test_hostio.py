"""Host I/O as a stage: FINN's IODMA widths and cycles, the board's host link, and plans
bound by them (TFC-w1a1 on Pynq-Z1: 784 B per frame over a 64-bit IODMA at 100 MHz)."""

from __future__ import annotations

from dse.api import optimize
from dse.solver.hostio import host_stage, iodma
from dse.specs import load_catalog
from tests.conftest import shared_path


def test_iodma_width_is_finns_gcd_rule() -> None:
    # InsertIODMA: intfWidth = gcd(transfer bits, max_intfwidth)
    assert iodma(784 * 8, 64) == (64, 98)
    assert iodma(224 * 224 * 3 * 8, 512) == (512, 2352)
    assert iodma(10 * 8, 512) == (16, 5)  # 80 bits: gcd(80, 512) = 16
    assert iodma(3, 64) == (8, 1)  # a stream is padded to whole bytes


def test_alveo_host_link_binds_where_pcie_is_slower_than_the_iodma() -> None:
    cat = load_catalog()
    u250 = cat.configure("U250", clock_mhz=200)
    big = host_stage("in", [2**24 * 8], u250)  # 16 MiB per frame
    assert big.bound == "PCIe"
    assert big.pcie_cycles == round(2**24 / 12e9 * 200e6 + 0.5)
    zynq = host_stage("in", [784 * 8], cat.configure("Pynq-Z1"))
    assert (zynq.pcie_cycles, zynq.cycles, zynq.bound) == (0, 98, "IODMA")


def test_tfc_on_pynq_z1_is_bound_by_host_io() -> None:
    res = optimize(model=shared_path("models", "tfc_w1a1.onnx"), boards=1, board="Pynq-Z1",
                   input_dtype="UINT8", time_limit=20, out=None)
    m = res.plan["metrics"]
    assert m["ii_cycles"] == 98
    assert m["bottleneck"] == "host I/O (input IODMA)"
    assert m["host_io"]["binding"] and m["host_io"]["input"]["iodma_bits"] == 64
    # the least-resources pass keeps no layer faster than it needs to be
    assert max(x["cycles"] for x in res.plan["layers"]) <= 98
