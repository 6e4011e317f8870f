"""The joint optimizer's II equals the exhaustive optimum on small instances."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.solver.problem import AcclConfig, LinkConfig
from tests.solver_helpers import board, brute_force, option, problem, solve_or_none


@st.composite
def instances(draw):
    n = draw(st.integers(2, 6))
    n_boards = draw(st.integers(1, 3))
    opts = []
    for _ in range(n):
        k = draw(st.integers(1, 3))
        opts.append([option(cycles=draw(st.integers(1, 40)) * 10,
                            lut=draw(st.integers(5, 60)), bram18=draw(st.integers(0, 30)),
                            ext_bits=draw(st.sampled_from([0, 0, 0, 4000, 20000])),
                            tag=j) for j in range(k)])
    edges = [(i, i + 1, draw(st.sampled_from([64, 512, 2048, 8192]))) for i in range(n - 1)]
    if n >= 3 and draw(st.booleans()):  # a residual (skip) stream
        u = draw(st.integers(0, n - 3))
        edges.append((u, draw(st.integers(u + 2, n - 1)), draw(st.sampled_from([512, 4096]))))
    # HBM of 1e-6 GiB (8.6 kbit) at 0.001..0.004 GB/s: 80..320 bits per 100 MHz cycle
    boards = [board(f"B{b}", lut=draw(st.integers(40, 120)), bram18=draw(st.integers(20, 60)),
                    hbm_gib=draw(st.sampled_from([0.0, 1e-6, 1e-5])),
                    hbm_gbps=draw(st.sampled_from([0.001, 0.004])), channels=2,
                    clock_mhz=draw(st.sampled_from([100.0, 100.0, 75.0, 130.0])))
              for b in range(n_boards)]
    # slow links so that link traffic matters: 0.5..2 Gb/s at 100 MHz = 5..20 bits per cycle
    link = LinkConfig(bandwidth_gbps=draw(st.sampled_from([0.5, 1.0, 2.0])), efficiency=1.0,
                      topology=draw(st.sampled_from(["chain", "chain", "switch"])))
    accl = AcclConfig(rx_buffer_bytes=draw(st.sampled_from([256, 4096])), rx_buffer_count=1,
                      sender_frame_buffer=draw(st.booleans()))
    return problem(opts, edges, boards, link=link, accl=accl)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(instances())
def test_solver_matches_brute_force(p) -> None:
    assert solve_or_none(p) == brute_force(p)


def test_two_streams_sharing_a_link_give_an_ii_between_candidates() -> None:
    # two layers of 10 cycles; if split, edges 0->1 and 0->2 both cross the link:
    # 600 bits at 10 bits/cycle = 60 cycles, not the II of either stream alone (30 + 30)
    opts = [[option(10, 60)], [option(10, 60)], [option(10, 10)]]
    p = problem(opts, [(0, 1, 300), (0, 2, 300), (1, 2, 8)],
                [board("A", lut=80), board("B", lut=80)],
                link=LinkConfig(bandwidth_gbps=1.0, efficiency=1.0),
                accl=AcclConfig(sender_frame_buffer=False))
    assert brute_force(p) == solve_or_none(p)
