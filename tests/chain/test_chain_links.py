"""One link model and one channel rule for the CNN partitioner and the LLM planner."""

from __future__ import annotations

import pytest

from dse.chain.channels import channel_rule
from dse.chain.links import ACCL_COYOTE_EAGER, message_time_s
from dse.llm.config import load_arch, quant_spec
from dse.llm.hetero import hop_s
from dse.llm.network import build_network
from dse.llm.pipeline import StageModel
from dse.solver.evaluate import evaluate, latency
from dse.specs import default_catalog
from tests.solver_helpers import option, problem


def _u55c_pair():
    cat = default_catalog()
    return [cat.configure("U55C", clock_mhz=250.0) for _ in range(2)]


@pytest.mark.parametrize("seq", [1, 64])
def test_two_u55c_give_the_same_hop_time_in_both_worlds(seq: int) -> None:
    """The same two U55C boards and the same bits per frame: the CNN partitioner's link
    (integer cycles per cut stream, which the CP-SAT model sums) and the LLM planner's hop
    take the same time, the ACCL+ on Coyote RDMA curve at that message size."""
    net = build_network(load_arch("gpt2"), quant_spec(), "prefill" if seq > 1 else "decode",
                        seq=seq)
    nbytes = net.frame_bytes
    a, b = _u55c_pair()
    assert a.shell.name == "coyote"
    llm = hop_s(net, a, b)
    # a CNN of two 1-cycle layers that cannot share a board, one stream of nbytes between them
    p = problem([[option(1, 60)], [option(1, 60)]], [(0, 1, nbytes * 8)], [a, b])
    assert p.fpga_link.accl_rdma
    f = p.clock_mhz * 1e6
    ev = evaluate(p, [0, 0], [0, 1])
    assert ev.feasible and ev.bottleneck.startswith("link")
    assert ev.link_ii / f == pytest.approx(llm, abs=1 / f)  # within one cycle of the II
    assert latency(p, [0, 0], [0, 1]) - 2 / f == pytest.approx(llm)
    assert llm == pytest.approx(message_time_s(nbytes))
    lo, hi = ACCL_COYOTE_EAGER[0], ACCL_COYOTE_EAGER[-1]
    assert lo[1] <= llm <= hi[1]


def test_the_curve_is_not_the_old_flat_rate() -> None:
    """At 4 MiB the measured eager curve delivers ~48 Gb/s; the former CNN rule (100 Gb/s x
    0.88) was 1.8x faster than the LLM path on the same link."""
    a, b = _u55c_pair()
    nbytes = 4 << 20
    p = problem([[option(1, 60)], [option(1, 60)]], [(0, 1, nbytes * 8)], [a, b])
    ev = evaluate(p, [0, 0], [0, 1])
    gbps = nbytes * 8 / (ev.link_ii / (p.clock_mhz * 1e6)) / 1e9
    assert gbps == pytest.approx(48.4, abs=0.1)


def test_off_coyote_the_link_is_a_stream_at_the_line_rate() -> None:
    cat = default_catalog()
    a, b = (cat.configure("U55C", shell="vitis", clock_mhz=250.0) for _ in range(2))
    nbytes = 1 << 20
    p = problem([[option(1, 60)], [option(1, 60)]], [(0, 1, nbytes * 8)], [a, b])
    assert not p.fpga_link.accl_rdma
    ev = evaluate(p, [0, 0], [0, 1])
    assert ev.link_ii == -(-nbytes * 8 // 352)  # 100 Gb/s x 0.88 at 250 MHz: 352 bits/cycle
    net = build_network(load_arch("gpt2"), quant_spec(), "decode")
    assert hop_s(net, a, b) == pytest.approx(
        p.fpga_link.arrival_s(net.frame_bytes))


@pytest.mark.parametrize("shell", ["coyote", "vitis"])
def test_one_channel_rule_for_both_worlds(shell: str) -> None:
    """On the same U55C the CNN formulation and the LLM planner let a design use the same
    pseudo-channels: 32 minus the shell's 2 ports, striped on Coyote."""
    cfg = default_catalog().configure("U55C", shell=shell)
    rule = channel_rule(cfg.board, shell)
    assert (rule.physical, rule.usable, rule.striped) == (32, 30, shell == "coyote")
    p = problem([[option(1, 1)]], None, [cfg])
    assert p.ext_channels(0) == rule.usable
    assert p.channel_bits(0) == 512 * 2**20 * 8
    net = build_network(load_arch("gpt2"), quant_spec(), "decode")
    st = StageModel(net, 64, 0.9)
    stage = st._evaluate(cfg, 12, "rolled", "hbm", False)
    assert stage is not None and stage.hbm_map is not None
    assert stage.hbm_map.channels == rule.data_channels
    assert stage.hbm_channels <= rule.data_channels
