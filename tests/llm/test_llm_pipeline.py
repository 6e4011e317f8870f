"""LLM pipelines from configs: tokens/s never above the physical bound, memory-bound plans near
it, HBM pseudo-channels never oversubscribed, both build styles chosen where they win, the
fewest boards that hold Llama-2-70B, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse import api
from dse.exceptions import InfeasibleError


def v80s(n: int) -> str:
    return ",".join(["V80"] * n)


@pytest.fixture(scope="module")
def llama7b() -> dict[int, dict]:
    """GPT-2 XL (1.6 B) decode on 1, 2 and 4 V80: the largest shipped decoder whose
    FINNLoop weight buffers fit one V80 (Llama-2-7B's do not, test_finnloop_...). (No U55C
    holds gpt2-xl's 48 blocks: the URAM thresholds of its float quantizers, as finn-plus
    books them, leave a U55C SLR too few URAMs.)"""
    return {n: api.optimize_llm("gpt2-xl", boards=v80s(n), sequences=8).data
            for n in (1, 2, 4)}


@pytest.fixture(scope="module")
def on_u55c() -> list[dict]:
    """Decoders on U55C: GPT-2 on 1 and 2, GPT-2 medium on 4 (8 sequences)."""
    return [api.optimize_llm(m, boards=n, sequences=8).data
            for m, n in (("gpt2", 1), ("gpt2", 2), ("gpt2-medium", 4))]


def test_decode_never_beats_its_bound_and_reaches_90_percent_when_memory_bound(llama7b) -> None:
    for n, d in llama7b.items():
        m = d["metrics"]
        assert m["tokens_per_s"] <= m["bound_tokens_per_s"] * (1 + 1e-9), n
        if m["binding"] == "HBM bandwidth":
            assert m["ratio_to_bound"] >= 0.9, (n, m["ratio_to_bound"])
        # bytes per token: 4-bit weights of 1.56 B parameters, the KV cache, and the
        # residual stream in and out of HBM per FINNLoop iteration
        per_token = sum(s["hbm_bytes_per_frame"] for s in d["stages"])
        assert 0.85e9 < per_token < 1.05e9
    t = {n: d["metrics"]["tokens_per_s"] for n, d in llama7b.items()}
    assert t[4] / t[1] >= 3.5  # pipeline of boards, sequences in flight


def test_hbm_pseudo_channels_are_never_oversubscribed(llama7b, on_u55c) -> None:
    for d in [*llama7b.values(), *on_u55c]:
        for s in d["stages"]:
            hb = s["hbm_pseudo_channels"]
            assert hb and hb["channels"] == 32
            for ch in hb["load"]:
                assert ch["gbps"] <= hb["usable_gbps_per_channel"] * (1 + 1e-9)
                assert ch["bytes"] <= hb["bytes_per_channel"]
            # each stream's shares carry its whole rate: frame rate x bytes per frame
            total = sum(x["gbps"] for parts in hb["streams"].values() for x in parts)
            assert total == pytest.approx(s["hbm_bytes_per_frame"] / s["frame_s"] / 1e9,
                                          rel=1e-6)
            assert total <= 32 * hb["usable_gbps_per_channel"] * (1 + 1e-9)


def test_both_build_styles_are_chosen_where_they_win() -> None:
    # decode of a 1.6 B model: weights must stream, one loop-rolled block per board wins
    d = api.optimize_llm("gpt2-xl", boards=v80s(2), sequences=4).data
    assert {s["style"] for s in d["stages"]} == {"rolled"}
    # BERT-base over 12 V80: the weights fit on chip, every block its own hardware (on 4
    # U55C its blocks roll, on 8 they stream their weights: the URAM thresholds of its
    # quantizers, as finn-plus books them, leave a U55C room for few blocks)
    e = api.optimize_llm("bert-base", boards=v80s(12), mode="encoder", sequences=64).data
    assert {s["style"] for s in e["stages"]} == {"spatial"}
    assert {s["weights"] for s in e["stages"]} == {"onchip"}
    assert e["metrics"]["sequences_per_s"] > 4 * api.optimize_llm(
        "bert-base", boards="V80", mode="encoder",
        sequences=64).data["metrics"]["sequences_per_s"]


def test_llama2_70b_needs_three_u55c_of_memory() -> None:
    with pytest.raises(InfeasibleError, match="use at least 3"):
        api.optimize_llm("llama2-70b", boards=2)


def test_too_few_boards_says_how_many_blocks_one_holds() -> None:
    """gpt2-xl at 4 bits: a U55C holds one of its 48 blocks (the thresholds of its float
    quantizers, as finn-plus books them); the message says so, and that many boards plan."""
    import re

    with pytest.raises(InfeasibleError, match=r"a U55C holds at most \d+ of its blocks") as e:
        api.optimize_llm("gpt2-xl", boards=4, weights="int4", acts="int8")
    need = int(re.search(r"about (\d+) in all", str(e.value)).group(1))
    d = api.optimize_llm("gpt2-xl", boards=need, weights="int4", acts="int8").data
    assert d["metrics"]["boards_used"] == need
    with pytest.raises(InfeasibleError, match=r"offer a larger board \(a V80\)$"):
        api.optimize_llm("llama2-7b", boards="VCK5000")  # not the VCK5000 it was offered


def test_finnloop_weight_buffers_as_finn_plus_builds_them() -> None:
    """finn-plus 1.6.1 fetches a looped MVAU's weights once per iteration into a double
    buffer of 2 x MH x MW x W bits and replays them for every token of the frame
    (dse.llm.pipeline.weight_buffers). Llama-2-7B's buffers (about 1.6 Gbit at 4 bits) do not
    fit a V80, so its blocks are built spatially (a U55C holds no Llama-2-7B block: its
    quantizers' thresholds alone exceed an SLR); GPT-2's prefill reads each iteration's
    weights once per frame of 128 tokens, not 128 times."""
    from dse.llm.config import load_arch, quant_spec
    from dse.llm.network import build_network
    from dse.llm.pipeline import StageModel, weight_buffers
    from dse.specs import Resources, default_catalog

    v80 = default_catalog().configure("V80")
    a = load_arch("llama2-7b")
    net = build_network(a, quant_spec(), "decode")
    model = StageModel(net, 8, 0.9)
    point = model.curve(v80, "hbm", False)[0]
    buf = weight_buffers(point, Resources(), Resources())
    bits = 2 * 4 * (4 * a.hidden * a.hidden + 3 * a.hidden * a.intermediate)
    assert buf.bram18 * 18 * 1024 == pytest.approx(bits, rel=0.01)
    d = api.optimize_llm("llama2-7b", boards=v80s(16), sequences=8).data
    assert {s["style"] for s in d["stages"]} == {"spatial"}
    # BERT-base encoder on one board: a rolled build's HBM bytes per frame hardly grow with
    # the frame's tokens (weights once per iteration; only the residual stream scales)
    long = api.optimize_llm("bert-base", boards=1, mode="encoder", seq=128,
                            sequences=4).data["stages"][0]
    short = api.optimize_llm("bert-base", boards=1, mode="encoder", seq=32,
                             sequences=4).data["stages"][0]
    if long["style"] == short["style"] == "rolled" and long["weights"] == "hbm":
        assert long["hbm_bytes_per_frame"] < 1.5 * short["hbm_bytes_per_frame"]


def test_llm_cli_writes_the_plan_and_names_the_bound(tmp_path: Path, capsys) -> None:
    from dse.cli import main

    rc = main(["optimize", "--model", "gpt2-xl", "--boards", "2", "--board", "V80",
               "--sequences", "4", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "limited by" in out and "time to first token" in out
    assert "assumed  V80: hbm_efficiency 0.9" in out and "Shuhai" in out
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["format"] == "dse-plan/2" and plan["network"] == "llm"
    assert plan["model"]["name"] == "gpt2-xl" and len(plan["stages"]) == 2
    assert "Shuhai" in json.dumps(plan)  # the assumed efficiencies travel with the plan


@pytest.mark.parametrize("argv, match, code", [
    (["--model", "llama2-7b", "--mode", "encoder"], "is a decoder", 2),
    (["--model", "bert-base", "--mode", "decode"], "is an encoder", 2),
    (["--model", "llama2-7b", "--context", "100000"], "has 4096 positions", 2),
    (["--model", "llama2-7b", "--weights", "int77"], "--weights", 2),
    (["--model", "nonesuch.json"], "no such file", 2),
    (["--model", "gpt2", "--board", "Pynq-Z1"], "HBM/DDR", 1),
])
def test_bad_llm_inputs_get_one_line(argv: list, match: str, code: int, capsys) -> None:
    from dse.cli import main

    rc = main(["optimize", *argv, "--quiet", "--out", "/tmp/dse-test-llm-out"])
    err = capsys.readouterr().err
    assert rc == code and match in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_group_scales_travel_with_the_weights() -> None:
    """int4 weights with a 16-bit scale per group of 128: 16 / (128 x 4) = 3.1 % more bytes
    of weights in HBM (and per token read)."""
    a = api.optimize_llm("gpt2-xl", boards="V80").data["stages"][0]
    b = api.optimize_llm("gpt2-xl", boards="V80", group=128).data["stages"][0]
    assert b["weight_bytes"] / a["weight_bytes"] == pytest.approx(1 + 16 / 512, rel=0.01)


def test_every_fpga_stage_places_into_its_slrs(on_u55c) -> None:
    """Each U55C stage's layers (every block copy, partial block and head) sit in one SLR
    each, checked here with FINN's raw per-SLR table and limits (tests/solver/test_slr.py)."""
    from tests.solver.test_slr import DIMS, FINN_SLRS, LIMITS

    bert = api.optimize_llm("bert-base", boards=4, mode="encoder").data
    checked = 0
    for d in [*on_u55c, bert]:
        for s in d["stages"]:
            if s["kind"] != "fpga":
                continue
            t = s["slrs"]
            assert t and t["feasible"]
            assert all(x <= t["sll_limit"] for x in t["sll_bits"])
            for k, area in enumerate(FINN_SLRS[s["board"]]):
                used = [sum(l["resources"][dim] for l in t["layers"] if l["slr"] == k)
                        for dim in DIMS]
                for u, a, lim in zip(used, area, LIMITS):
                    assert u <= a * lim + 1e-6
            # every layer of the stage is placed: block copies x block layers + extra parts
            per_block = d["model"]["block_layers"]
            copies = 1 if s["style"] == "rolled" else len(
                {l["layer"].split(".")[0] for l in t["layers"]
                 if l["layer"].startswith("block")})
            assert sum(l["layer"].startswith("block") for l in t["layers"]) \
                == copies * per_block
            checked += 1
    assert checked >= 8
