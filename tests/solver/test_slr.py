"""SLRs: per-SLR capacities, layers larger than an SLR illegal, every Alveo plan placed into
its SLRs (checked here independently of dse's packer), FINN's floorplan JSON from emit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dse import api
from tests.conftest import shared_path

# FINN's per-SLR table (src/finn/util/platforms.py, shared/reference/hardware_facts.md 1.2):
# LUT, FF, BRAM18, URAM, DSP per SLR, and its per-SLR utilization limits
FINN_SLRS = {
    "U55C": [(386000, 773000, 1200, 320, 2664), (364000, 729000, 1152, 320, 2784),
             (381000, 763000, 1200, 320, 2856)],
    "U280": [(400800, 801600, 1200, 320, 2736), (382080, 764160, 1152, 320, 2880),
             (380640, 761280, 1152, 320, 2880)],
    "U250": [(375000, 750000, 1152, 320, 2880)] * 4,
}
LIMITS = (0.7, 0.5, 0.8, 0.8, 0.8)
DIMS = ("lut", "ff", "bram18", "uram", "dsp")


def check_placed(plan: dict) -> int:
    """Every layer of every Alveo board in one SLR, each SLR within FINN's limits (shell
    ignored: a lenient, independent check). Returns the number of boards checked."""
    n = 0
    for b in plan["boards"]:
        table = FINN_SLRS.get(b["name"])
        layers = [l for l in plan["layers"] if l["board"] == b["index"]]
        if table is None or not layers:
            continue
        n += 1
        assert all("slr" in l for l in layers), b["name"]
        for s, area in enumerate(table):
            used = [sum(l["resources"][d] for l in layers if l["slr"] == s) for d in DIMS]
            for d, u, a, lim in zip(DIMS, used, area, LIMITS):
                assert u <= a * lim + 1e-6, (b["name"], s, d, u, a * lim)
    return n


@pytest.mark.parametrize("model, boards, kw", [
    ("mobilenetv1_w4a4.onnx", "U55C,U55C,U55C,U55C", {"input_dtype": "UINT8"}),
    ("resnet10_cifar_w4a4.onnx", "U280,U250", {"input_dtype": "INT8", "caps": {"lut": 0.03}}),
    ("cnv_w1a1.onnx", "U55C,U55C", {"caps": {"lut": 0.02}}),
])
def test_alveo_plans_are_placeable(model: str, boards: str, kw: dict) -> None:
    res = api.optimize(shared_path("models", model), boards=boards, time_limit=20,
                       record_time=False, **kw)
    plan = res.plan.data
    assert plan["metrics"]["placeable"] is True
    assert check_placed(plan) == plan["metrics"]["boards_used"]
    for b in plan["boards"]:
        if b.get("slrs"):
            assert all(x <= b["slrs"]["sll_limit"] for x in b["slrs"]["sll_bits"])


def test_a_folding_larger_than_any_slr_is_not_legal() -> None:
    from dse.ir import load_network
    from dse.solver.problem import build_problem
    from dse.specs import default_catalog

    g = load_network(shared_path("models", "mobilenetv1_w4a4.onnx"), input_dtype="UINT8")
    cat = default_catalog()
    p = build_problem(g, [cat.configure("U55C")])
    largest = max(s["lut"] for s in p.slr_caps[0])
    seen_too_big = 0
    for i in range(p.n):
        for k, o in enumerate(p.options[i]):
            c = o.cost
            if c.lut > largest:
                seen_too_big += 1
                assert p.cost_on(i, k, 0) is None
            elif p.cost_on(i, k, 0) is not None:
                assert c.lut <= largest
    assert seen_too_big > 0  # MobileNet's widest foldings exceed one U55C SLR


def test_emit_writes_finns_floorplan(tmp_path: Path) -> None:
    from dse.backends.finn.emit import emit

    hw = shared_path("models", "finn_hw", "tfc_w1a1", "tfc_w1a1_hw_generic.onnx")
    r = api.optimize(hw, boards=1, board="U55C", time_limit=10, record_time=False)
    emit(r.plan, hw, tmp_path)
    cfg = json.loads((tmp_path / "board0" / "dataflow_build_config.json").read_text())
    assert cfg["vitis_floorplan_file"] == "floorplan.json"
    fp = json.loads((tmp_path / "board0" / "floorplan.json").read_text())
    nodes = {k: v for k, v in fp.items() if k != "Defaults"}
    assert len(nodes) == len(r.plan["layers"])
    assert all(set(v) == {"slr", "partition_id", "device_id", "mem_port"} for v in nodes.values())
    assert {v["slr"] for v in nodes.values()} <= {0, 1, 2}


def test_replicas_scale_throughput_and_name_their_bound() -> None:
    """Data-parallel copies of the whole pipeline: MobileNetV1 fits one U55C at its best II,
    so n boards give n copies; each copy's host I/O (inputs in, outputs out) is its bound."""
    fps = {}
    for n in (1, 2, 4):
        res = api.optimize(shared_path("models", "mobilenetv1_w4a4.onnx"), boards=n,
                           board="U55C", input_dtype="UINT8", time_limit=40,
                           record_time=False, replicas="auto")
        rep = res.plan["metrics"]["replicas"]
        assert rep["count"] * res.plan["metrics"]["boards_used"] <= n
        assert rep["fps_total"] == pytest.approx(rep["count"] * rep["fps_per_replica"])
        assert rep["fps_per_replica"] <= rep["host_io_fps_per_replica"] + 1e-6
        assert rep["bound"] in ("host I/O", "the replica's own pipeline",
                                "the pipeline (with its stages' copies)")
        fps[n] = rep["fps_total"]
    for n in (2, 4):
        assert fps[n] >= 0.9 * n * fps[1], fps


def test_replicas_need_identical_boards() -> None:
    from dse.exceptions import SpecError

    with pytest.raises(SpecError, match="identical boards"):
        api.optimize(shared_path("models", "tfc_w1a1.onnx"), boards="U55C,U280",
                     replicas="auto", time_limit=5, record_time=False)


# --- the per-SLR model (boards in ``slr_split``): exact against brute force ----------------


def _slr_table(luts: list[int], bram: int = 40) -> list[dict]:
    """SLR capacities as dse.solver.slr builds them (``_area`` for the mean rule)."""
    return [{"lut": lut, "ff": 10**9, "bram18": bram, "uram": 0, "dsp": 100,
             "_area": {"lut": lut, "ff": 10**9, "bram18": bram * 2, "uram": 0, "dsp": 1000}}
            for lut in luts]


def _layer_use(p, i: int, k: int) -> dict:
    return {d: getattr(p.options[i][k].cost, d) for d in DIMS}


def _split_brute_force(p, sll: int, chain: bool) -> int | None:
    """Smallest II over every choice and placement of layers into (board, SLR) bins, checked
    by the board-level evaluator, the per-SLR caps, the mean rule and the SLL wires.
    ``chain``: the bins in chain order (the solver's model: a stream counts at every SLR
    boundary between its ends' bins); else any SLR per layer (the real rule: streams between
    layers of the board count)."""
    import itertools

    from dse.solver.evaluate import evaluate
    from dse.solver.slr import check_assignment

    bins = [(b, s) for b in range(p.n_boards) for s in range(len(p.slr_caps[b]))]
    best = None
    for choice in itertools.product(*(range(len(o)) for o in p.options)):
        places = (itertools.combinations_with_replacement(range(len(bins)), p.n) if chain
                  else itertools.product(range(len(bins)), repeat=p.n))
        for at in places:
            boards = [bins[a][0] for a in at]
            if boards[0] != 0 or boards != sorted(boards) or (chain and at[0] != 0):
                continue
            ev = evaluate(p, choice, boards)
            if not ev.feasible or (best is not None and ev.ii_cycles >= best):
                continue
            ok = True
            for b in range(p.n_boards):
                idx = [i for i in range(p.n) if boards[i] == b]
                layers = [(p.order[i], _layer_use(p, i, choice[i])) for i in idx]
                slr_of = {p.order[i]: bins[at[i]][1] for i in idx}
                edges = [] if chain else [(p.order[e.u], p.order[e.v], 8) for e in p.edges]
                ok = ok and not check_assignment(layers, edges, p.slr_caps[b], slr_of,
                                                 sll_limit=sll)
                for l, (bb, s) in enumerate(bins):
                    if chain and bb == b and s > 0:
                        ok = ok and sum(8 for e in p.edges if at[e.u] < l <= at[e.v]) <= sll
            if ok:
                best = ev.ii_cycles
    return best


def _random_chain(rng, n_max: int) -> tuple[list, list]:
    """2..``n_max`` layers of 1-3 random foldings in a chain, half the time with a skip
    stream from the first to the last: (options per layer, edges)."""
    from tests.solver_helpers import option

    n = rng.randint(2, n_max)
    opts = [[option(cycles=rng.randint(1, 30) * 10, lut=rng.randint(5, 50),
                    bram18=rng.randint(0, 30), tag=j) for j in range(rng.randint(1, 3))]
            for _ in range(n)]
    edges = [(i, i + 1, 64) for i in range(n - 1)]
    if n >= 3 and rng.random() < 0.5:
        edges.append((0, n - 1, 64))
    return opts, edges


@pytest.mark.parametrize("seed", range(25))
def test_per_slr_model_is_exact_for_slr_chains(seed: int, monkeypatch) -> None:
    """The solver's plans on split boards are legal (any placement's rules), never slower
    than the best plan whose SLRs follow the chain, never faster than the best of any."""
    import random
    from dataclasses import replace

    import dse.solver.binfill as binfill
    import dse.solver.cpsat as cpsat
    import dse.solver.slr as slr
    from dse.exceptions import InfeasibleError
    from dse.solver.search import solve_joint
    from tests.solver_helpers import board, problem

    rng = random.Random(seed)
    opts, edges = _random_chain(rng, 4)
    nb = rng.randint(1, 2)
    p = problem(opts, edges, [board("S", lut=200, bram18=200) for _ in range(nb)])
    tables = [_slr_table([rng.randint(30, 70) for _ in range(rng.randint(2, 3))])
              for _ in range(nb)]
    p = replace(p, slr_caps=tuple(tables), slr_split=frozenset({"S"}))
    sll = rng.choice([8, 16, 23_040])
    # every module that reads the limit (the search's SLR fill too: dse.solver.binfill)
    for mod in (cpsat, slr, binfill):
        monkeypatch.setattr(mod, "SLL_PER_BOUNDARY", sll)
    chain, anywhere = _split_brute_force(p, sll, True), _split_brute_force(p, sll, False)
    try:
        r = solve_joint(p, time_limit=20, workers=1, secondary=False)
    except InfeasibleError:
        assert chain is None
        return
    assert anywhere is not None and anywhere <= r.ii_cycles
    assert chain is None or r.ii_cycles <= chain
    assert r.slrs is not None
    for b in range(p.n_boards):
        idx = [i for i in range(p.n) if r.boards[i] == b]
        layers = [(p.order[i], _layer_use(p, i, r.choice[i])) for i in idx]
        on = {p.order[i] for i in idx}
        edges = [(p.order[e.u], p.order[e.v], 8) for e in p.edges
                 if p.order[e.u] in on and p.order[e.v] in on]
        assert not slr.check_assignment(layers, edges, p.slr_caps[b],
                                        {p.order[i]: r.slrs[i] for i in idx}, sll_limit=sll)


def test_a_board_that_does_not_pack_is_solved_per_slr() -> None:
    """ResNet-10 on 4 U55C: the board-level optimum (3 boards at II 8,192) cannot be packed
    into the SLRs; boards that do not pack are modelled per SLR, and the plan places: on
    those boards every layer's SLR follows the chain, and the any-floorplan bound is kept."""
    res = api.optimize(shared_path("models", "resnet10_cifar_w4a4.onnx"), boards=4,
                       board="U55C", input_dtype="INT8", time_limit=60, record_time=False)
    plan = res.plan.data
    assert plan["metrics"]["placeable"] is True
    m = plan["solver"]["slr_model"]
    assert m["per_slr_boards"] and all(x.startswith("U55C") for x in m["per_slr_boards"])
    assert m["bound_fps_any_floorplan"] >= plan["metrics"]["fps"]
    split = {int(x.split("board ")[1].rstrip(")")) for x in m["per_slr_boards"]
             if "board " in x}
    # the note says whether these boards' layers follow their SLRs in chain order (the
    # per-SLR model's placement) or take them in any order (the SLR fill, exact packing)
    from_fill = m["slr_plan"] == "any order"
    assert m["slr_plan"] in ("chain order", "any order")
    assert ("any order" in m["note"]) == from_fill
    for b in plan["boards"]:
        slrs = [l["slr"] for l in plan["layers"] if l["board"] == b["index"]]
        if b["index"] in split and not from_fill:
            assert slrs == sorted(slrs)
    assert check_placed(plan) == plan["metrics"]["boards_used"]


def test_replicas_per_slr_group_share_a_board() -> None:
    """Three replicas on one U55C, one per SLR: each is solved on the least of the three SLR
    groups (net of the shell), with a third of the HBM, and placed in one SLR; its host I/O
    is a third of the board's DMA."""
    res = api.optimize(shared_path("models", "mobilenetv1_w4a4.onnx"), boards=1, board="U55C",
                       input_dtype="UINT8", time_limit=30, record_time=False, replicas=3)
    plan = res.plan.data
    rep = plan["metrics"]["replicas"]
    assert rep["count"] == 3 and rep["per_board"] == 3 and rep["boards_used_total"] == 1
    assert [s["slrs"] for s in rep["slices"]] == [[0], [1], [2]]
    assert rep["fps_total"] == pytest.approx(3 * rep["fps_per_replica"])
    g = res.graph
    in_bits = sum(e.bits_per_frame for e in g.edges if e.src is None)
    # the board's host I/O, shared by its 3 copies: 150,528 B per frame through a 512-bit
    # IODMA (2,352 cycles) and U55C's PCIe at 12 GB/s (2,509 cycles at 200 MHz)
    cycles = max(-(-in_bits // 512), math.ceil(in_bits / 8 / 12e9 * 200e6))
    assert cycles == 2509
    assert rep["host_io_fps_per_replica"] == pytest.approx(200e6 / cycles / 3)
    b = plan["boards"][0]
    assert b["slrs"]["feasible"] and len(b["slrs"]["capacity"]) == 1
    # one SLR holds the replica: a third of the board's SLR sum at most
    from dse.solver.slr import slr_capacities
    from dse.specs import default_catalog

    full = slr_capacities(default_catalog().configure("U55C"), False)
    for d in ("lut", "bram18", "uram", "dsp"):
        assert b["resources"][d] <= min(s[d] for s in full)
    with pytest.raises(Exception, match="one SLR group each"):
        api.optimize(shared_path("models", "tfc_w1a1.onnx"), boards=1, board="U55C",
                     time_limit=5, record_time=False, replicas=2)


def test_elastic_df_places_setfoldings_folding_into_slrs() -> None:
    """The Elastic-DF baseline: SetFolding's folding (at the best mvau_wwidth_max and target),
    every layer in one SLR, its plan placeable; joint is never slower."""
    from dse.ir import load_network
    from dse.solver.setfolding import set_folding

    path = shared_path("models", "cnv_w1a1.onnx")
    e = api.optimize(path, boards=2, board="U55C", strategy="elastic-df", time_limit=30,
                     record_time=False)
    j = api.optimize(path, boards=2, board="U55C", time_limit=30, record_time=False)
    assert e.plan["metrics"]["placeable"] and e.plan["solver"]["strategy"] == "elastic-df"
    assert j.plan["metrics"]["fps"] >= e.plan["metrics"]["fps"]
    assert all("slr" in l for l in e.plan["layers"])
    log = " ".join(e.result.log)
    target = int(log.split("target ")[1].split(" cycles")[0].replace(",", ""))
    w = int(log.split("mvau_wwidth_max ")[1].split()[0])
    fold = set_folding(load_network(path), target, mvau_wwidth_max=w,
                       part="xcu55c-fsvh2892-2L-e")
    for l in e.plan["layers"]:
        for k, v in fold[l["name"]].items():
            assert l["folding"][k] == v, (l["name"], k)


def test_a_slice_of_a_board_solves_to_a_proof() -> None:
    """A third of U55C's HBM is 153.33... GB/s: its rate must stay a small exact fraction
    (460/3), or CP-SAT's coefficients overflow (MODEL_INVALID) and the II goes unproven."""
    from fractions import Fraction

    from dse.solver.problem import exact

    assert exact(460 / 3) == Fraction(460, 3) and exact(0.88) == Fraction(22, 25)
    res = api.optimize(shared_path("models", "cnv_w1a1.onnx"), boards=1, board="U55C",
                       time_limit=30, record_time=False, replicas=3)
    s = res.plan["solver"]
    assert s["status"] == "OPTIMAL", s["phases"]
    assert not any("MODEL_INVALID" in p["outcome"] for p in s["phases"])
