"""The joint optimizer's II equals the exhaustive optimum on small instances."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.solver.problem import AcclConfig, LinkConfig
from tests.solver_helpers import (
    board,
    brute_force,
    option,
    problem,
    random_instance,
    solve_or_none,
)


@st.composite
def instances(draw):
    return random_instance(draw, max_layers=6, max_boards=3)


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
