"""The SLR-by-SLR fill (dse.solver.binfill) against brute force on small split boards."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

import dse.solver.binfill as binfill
import dse.solver.slr as slr
from dse.solver.evaluate import evaluate
from tests.solver_helpers import board, problem
from tests.solver.test_slr import _layer_use, _random_chain, _slr_table, _split_brute_force


def _instance(seed: int, nb: int, board_lut: int, n_max: int = 5):
    rng = random.Random(seed)
    opts, edges = _random_chain(rng, n_max)
    p = problem(opts, edges, [board("S", lut=board_lut, bram18=10**6) for _ in range(nb)])
    tables = [_slr_table([rng.randint(30, 70) for _ in range(rng.randint(2, 3))])
              for _ in range(nb)]
    return replace(p, slr_caps=tuple(tables))


def _legal(p, plan, T: int, sll: int) -> None:
    choice, boards, slrs = plan
    ev = evaluate(p, choice, boards, ii_hint=T)
    assert ev.feasible and ev.ii_cycles <= T
    for b in range(p.n_boards):
        idx = [i for i in range(p.n) if boards[i] == b]
        on = {p.order[i] for i in idx}
        layers = [(p.order[i], _layer_use(p, i, choice[i])) for i in idx]
        edges = [(p.order[e.u], p.order[e.v], 8) for e in p.edges
                 if p.order[e.u] in on and p.order[e.v] in on]
        assert all(slrs[i] is not None for i in idx)
        assert not slr.check_assignment(layers, edges, p.slr_caps[b],
                                        {p.order[i]: slrs[i] for i in idx}, sll_limit=sll)


@pytest.mark.parametrize("seed", range(30))
def test_fill_finds_the_best_chain_plan_on_one_board(seed: int) -> None:
    """One board whose own limits do not bind: filling each SLR with the longest prefix that
    fits (foldings chosen per SLR, exactly) is optimal for plans whose SLRs follow the chain,
    so at that II the fill finds a plan, and every plan it returns is legal under the
    any-placement rules (caps, mean rule, SLL wires)."""
    p = _instance(seed, 1, 10**6)
    best = _split_brute_force(p, 23_040, True)
    anywhere = _split_brute_force(p, 23_040, False)
    for T in sorted({o.cost.cycles for opts in p.options for o in opts}):
        plan = binfill.fill_bins(p, T, time_limit=10)
        if plan is not None:
            _legal(p, plan, T, 23_040)
        if best is not None and T >= best:
            assert plan is not None, f"no plan at II {T} where brute force has {best}"
        if plan is not None:
            assert anywhere is not None and evaluate(p, plan[0], plan[1]).ii_cycles >= anywhere


@pytest.mark.parametrize("seed", range(12))
def test_fill_plans_are_legal_on_chains_of_boards(seed: int, monkeypatch) -> None:
    """Two boards, a board-level LUT limit and tight SLL wires: whatever the fill returns
    places (any-placement rules), meets the II, and is never faster than brute force."""
    rng = random.Random(1000 + seed)
    sll = rng.choice([8, 16, 23_040])
    monkeypatch.setattr(binfill, "SLL_PER_BOUNDARY", sll)
    p = _instance(seed, 2, rng.randint(60, 160), n_max=4)
    anywhere = _split_brute_force(p, sll, False)
    for T in sorted({o.cost.cycles for opts in p.options for o in opts}):
        plan = binfill.fill_bins(p, T, time_limit=10)
        if plan is None:
            continue
        _legal(p, plan, T, sll)
        assert anywhere is not None and anywhere <= T
