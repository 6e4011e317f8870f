"""Each constraint of the formulation, on an instance where it binds."""

from __future__ import annotations

import pytest

from dse.exceptions import InfeasibleError
from dse.models.candidates import FoldingOption
from dse.solver.cpsat import solve_at
from dse.solver.evaluate import evaluate
from dse.solver.problem import AcclConfig, Coupling, LinkConfig
from dse.solver.search import solve_joint
from tests.solver_helpers import board, brute_force, option, problem, solve_or_none


def test_resources_force_a_split() -> None:
    opts = [[option(10, 60)], [option(10, 60)]]
    assert solve_or_none(problem(opts, boards=[board(lut=100)])) is None
    p = problem(opts, boards=[board("A", lut=100), board("B", lut=100)])
    r = solve_joint(p, time_limit=10, workers=1)
    assert r.boards == (0, 1) and r.status == "OPTIMAL"
    ev = evaluate(p, [0, 0], [0, 0])
    assert not ev.feasible and any("LUT 120 > 100" in v for v in ev.violations)


def test_resources_trade_speed_for_area() -> None:
    # the fast option does not fit next to the other layer; the solver slows one layer down
    opts = [[option(10, 70), option(40, 20)], [option(20, 50)]]
    p = problem(opts, boards=[board(lut=100)])
    assert solve_or_none(p) == 40 == brute_force(p)


def test_link_bandwidth_sets_the_ii() -> None:
    # 4096 bits per frame over 10 bits/cycle: a split costs 410 cycles per frame
    opts = [[option(10, 60)], [option(10, 60)]]
    link = LinkConfig(bandwidth_gbps=1.0, efficiency=1.0)
    p = problem(opts, [(0, 1, 4096)], [board("A"), board("B")], link=link)
    r = solve_joint(p, time_limit=10, workers=1)
    assert r.ii_cycles == 410 and r.evaluation.link_ii == 410
    assert r.evaluation.bottleneck.startswith("link")


def test_accl_receive_buffers_forbid_a_cut() -> None:
    opts = [[option(10, 40)], [option(10, 40)], [option(10, 60)]]
    edges = [(0, 1, 4096), (1, 2, 64)]
    accl = AcclConfig(rx_buffer_bytes=128, rx_buffer_count=1, sender_frame_buffer=False)
    p = problem(opts, edges, [board("A"), board("B")], accl=accl)
    r = solve_joint(p, time_limit=10, workers=1)
    # 0->1 (512 B per frame) cannot cross; the only legal cut is between layers 1 and 2
    assert r.boards[0] == r.boards[1]
    ev = evaluate(p, [0, 0, 0], [0, 1, 1])
    assert any("ACCL" in v for v in ev.violations)


def test_sender_frame_buffer_is_charged() -> None:
    opts = [[option(10, 10, bram18=0)], [option(10, 10)]]
    acc = AcclConfig(sender_frame_buffer=True)
    p = problem(opts, [(0, 1, 512 * 600)], [board("A", bram18=100), board("B", bram18=100)],
                accl=acc)
    ev = evaluate(p, [0, 0], [0, 1])
    # 600 words of 512 bits: FINN's RAMB18 table gives ceil(600/1024) * ceil(512/18) = 29
    assert ev.extra_bram18[0] == 29
    assert ev.usage[0]["bram18"] == 29


def test_skip_stream_buffered_on_the_receiving_board() -> None:
    opts = [[option(10, 10)], [option(10, 10)], [option(10, 10)]]
    p = problem(opts, [(0, 1, 64), (1, 2, 64), (0, 2, 512 * 100)],
                [board("A", bram18=100), board("B", bram18=100)])
    assert p.edges[2].skip and not p.edges[0].skip
    ev = evaluate(p, [0, 0, 0], [0, 0, 1])
    assert ev.extra_bram18[1] == 15  # one frame of the skip stream waits on board 1


def test_external_weights_need_external_memory() -> None:
    big = 8 * 2**30  # 1 GiB of weights
    opts = [[option(10, 90, bram18=90), option(10, 10, ext_bits=big)], [option(10, 50)]]
    no_hbm = problem(opts, boards=[board(lut=100, bram18=100)])
    assert solve_or_none(no_hbm) is None  # on chip it does not fit, and there is no HBM
    hbm = problem(opts, boards=[board(lut=100, bram18=100, hbm_gib=16, hbm_gbps=460,
                                      channels=32)])
    r = solve_joint(hbm, time_limit=10, workers=1)
    assert r.choice[0] == 1 and r.evaluation.usage[0]["ext_bits"] == big
    # re-reading 1 GiB per frame throttles the II: the shell keeps 2 of the 32 pseudo-channels'
    # ports (dse.chain.channels), so the stream gets 30 x 1,150 bits per 100 MHz cycle
    assert r.ii_cycles == -(-big // (30 * 1_150))
    assert r.evaluation.bottleneck == "external memory of board 0"
    assert r.ii_cycles == brute_force(hbm)


def test_external_weights_fill_memory_capacity() -> None:
    opts = [[option(10, 10, ext_bits=6 * 8 * 2**30)], [option(10, 10, ext_bits=6 * 8 * 2**30)]]
    p = problem(opts, boards=[board("A", hbm_gib=8, hbm_gbps=460, channels=32),
                              board("B", hbm_gib=8, hbm_gbps=460, channels=32)])
    r = solve_joint(p, time_limit=10, workers=1)
    assert r.boards == (0, 1)  # 12 GiB do not fit one board's 8 GiB


def test_coupled_folding_must_match() -> None:
    opts = [[option(10, 50, tag=0), option(20, 10, tag=1)], [option(10, 50), option(20, 10)]]
    c = Coupling(producer=0, consumer=1, producer_keys=((1, 0), (2, 0)),
                 consumer_keys=((2, 0), (1, 0)))
    p = problem(opts, boards=[board(lut=100)], couplings=[c])
    ev = evaluate(p, [0, 0], [0, 0])
    assert any("must match" in v for v in ev.violations)
    r = solve_joint(p, time_limit=10, workers=1)
    assert (r.choice in [(0, 1), (1, 0)]) and r.ii_cycles == 20


def test_contiguity_is_checked() -> None:
    opts = [[option(10, 10)]] * 3
    p = problem(opts, boards=[board("A"), board("B")])
    ev = evaluate(p, [0, 0, 0], [0, 1, 0])
    assert not ev.feasible and any("pipeline in order" in v for v in ev.violations)


def test_switch_topology_counts_egress_once() -> None:
    # a stream from board 0 to board 2 is one hop on a switch, two on a chain
    opts = [[option(10, 60)], [option(10, 60)], [option(10, 60)]]
    edges = [(0, 1, 64), (1, 2, 64), (0, 2, 4096)]
    boards = [board("A"), board("B"), board("C")]
    chain = problem(opts, edges, boards, link=LinkConfig(bandwidth_gbps=1.0, efficiency=1.0))
    sw = problem(opts, edges, boards,
                 link=LinkConfig(bandwidth_gbps=1.0, efficiency=1.0, topology="switch"))
    evc = evaluate(chain, [0, 0, 0], [0, 1, 2])
    evs = evaluate(sw, [0, 0, 0], [0, 1, 2])
    assert evc.link_bits == (4096 + 512, 4096 + 512)
    assert evs.link_bits[0] == 4096 + 512  # board 0 egress
    assert solve_or_none(sw) == brute_force(sw)


def test_time_limited_search_reports_a_valid_bound() -> None:
    opts = [[option(c, l) for c, l in ((10, 90), (20, 45), (40, 20), (80, 10))]] * 6
    p = problem(opts, boards=[board("A", lut=100), board("B", lut=100)])
    r = solve_joint(p, time_limit=10, workers=1)
    assert r.ii_bound <= r.ii_cycles
    assert r.gap == pytest.approx(1 - r.ii_bound / r.ii_cycles)
    assert r.ii_cycles == brute_force(p)


def test_solve_at_infeasible_when_no_option_is_fast_enough() -> None:
    p = problem([[option(50, 10)]])
    assert solve_at(p, 40).status == "INFEASIBLE"


def test_infeasible_message_names_the_binding_layer() -> None:
    p = problem([[option(10, 500)], [option(10, 10)]], boards=[board(lut=100)])
    with pytest.raises(InfeasibleError,
                       match=r"layer L0 \(Thresholding\) needs at least 500 LUT .* allows 100"):
        solve_joint(p, time_limit=5, workers=1)


def test_options_are_folding_options() -> None:
    assert isinstance(option(1, 1), FoldingOption)


def test_infeasibility_names_a_minimal_set_of_binding_limits() -> None:
    """Each layer fits a board and the boards hold the network together, but the stream
    between the layers cannot cross: the reason names exactly that stream and the board
    limit (CP-SAT's infeasible subset of assumptions, shrunk to the ones needed)."""
    from dse.exceptions import InfeasibleError
    from dse.solver.problem import LinkConfig
    from dse.solver.search import solve_joint
    from tests.solver_helpers import board, option, problem

    p = problem([[option(10, 60)], [option(10, 60)]], edges=[(0, 1, 10**9)],
                boards=[board("A"), board("B")], link=LinkConfig(bandwidth_gbps=1.0))
    with pytest.raises(InfeasibleError) as e:
        solve_joint(p, time_limit=5)
    msg = str(e.value)
    assert "stream L0 -> L1 stays on one board" in msg
    assert "board 0 (A): LUT at most 100" in msg
    assert "board 1" not in msg  # not needed for the contradiction


def test_a_layer_that_fits_nowhere_names_the_resource_that_binds() -> None:
    from dse.exceptions import InfeasibleError
    from dse.solver.search import solve_joint
    from tests.solver_helpers import board, option, problem

    # the fast folding breaks LUT, the slow one BRAM: no single resource is always too big
    p = problem([[option(10, 150, bram18=10), option(20, 50, bram18=150)]],
                boards=[board("A", lut=100, bram18=100)])
    with pytest.raises(InfeasibleError, match=r"no folding of layer L0 .* fits board 0 \(A\)"):
        solve_joint(p, time_limit=5)
    p = problem([[option(10, 150, bram18=150), option(20, 120, bram18=120)]],
                boards=[board("A", lut=100, bram18=100)])
    with pytest.raises(InfeasibleError, match=r"needs at least 120 (LUT|BRAM18) in every legal"):
        solve_joint(p, time_limit=5)


def test_the_solver_chooses_the_board_order() -> None:
    """The first layer needs the large board: the typed order (small first) is infeasible,
    the chosen order puts the large board first. Alike boards are not tried twice."""
    from dse.exceptions import InfeasibleError
    from dse.solver.order import distinct_orders, permuted, solve_best_order
    from dse.solver.search import solve_joint
    from tests.solver_helpers import board, option, problem

    p = problem([[option(10, 150)], [option(10, 60)], [option(10, 60)]],
                boards=[board("small"), board("large", lut=200), board("small")])
    assert len(distinct_orders(p)) == 3  # small/large/small has 3 distinct orders, not 6
    with pytest.raises(InfeasibleError):
        solve_joint(p, time_limit=5)
    seen: list[str] = []
    res, tried = solve_best_order(p, lambda q, t: solve_joint(q, time_limit=t),
                                  time_limit=6, progress=seen.append)
    assert res.problem.boards[0].board.name == "large"
    assert res.evaluation.feasible and len(tried) == 3 and len(seen) == 3
    assert [t["fps"] is None for t in tried].count(True) == 2  # small first: infeasible
    assert permuted(p, (1, 0, 2)).boards[0].board.name == "large"


def test_identical_boards_are_one_order_found_at_once() -> None:
    """64 boards of one name are one chain (not 64! permutations to skip through); a mix of
    names gives each distinct sequence exactly once, the typed order first."""
    import itertools

    from dse.solver.order import distinct_orders, name_orders
    from tests.solver_helpers import board, option, problem

    p = problem([[option(10, 5)]], boards=[board("same") for _ in range(64)])
    assert distinct_orders(p) == [tuple(range(64))]  # the n! loop never ended here
    names = ["a", "b", "a", "c", "b"]
    got = list(name_orders(names))
    seqs = [tuple(names[i] for i in o) for o in got]
    assert len(seqs) == len(set(seqs)) == len(set(itertools.permutations(names))) == 30
    assert tuple(range(5)) in got
