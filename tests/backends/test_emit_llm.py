"""dse emit on LLM plans: per-board FINN build directories of the FPGA stages (configs only
without an export; bound to finn-plus's HW graph of the user's export with one)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from dse.backends.finn.llm_bind import bind, block_range, stage_folding
from dse.chain.plan import load_plan
from dse.cli import main
from dse.exceptions import PlanError
from dse.ir.onnx_io import HW_DOMAIN
from dse.llm.network import plan_block, plan_network

#: a tiny Llama as transformers' LlamaConfig writes it (2 layers, hidden 32, 4 heads, 2 K/V)
TINY_LLAMA = {
    "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
    "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 64, "max_position_embeddings": 32, "head_dim": 8, "hidden_act": "silu",
    "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
}
#: the plan of the export: prefill of 8 tokens, int8 weights and inputs of every Linear (as
#: brevitas' layerwise_quantize), on two Pynq-Z1 (one holds less than the whole model)
PLAN_ARGS = ["--boards", "2", "--board", "Pynq-Z1", "--mode", "prefill", "--seq", "8",
             "--weights", "int8", "--acts", "int8", "--quiet"]


def tiny_plan(tmp: Path, config: dict | None = None) -> Path:
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps(config or TINY_LLAMA))
    assert main(["optimize", "--model", str(cfg), "--out", str(tmp / "plan"), *PLAN_ARGS]) == 0
    return tmp / "plan" / "plan.json"


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_plan(tmp_path_factory.mktemp("llmplan"))


def test_config_only_emit_writes_every_fpga_stage_and_says_weights_unbound(
        plan_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = load_plan(plan_path)
    assert len(plan.fpga_stages) == 2
    capsys.readouterr()
    assert main(["emit", "--plan", str(plan_path), "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "weights not bound" in out and "no graph was written" in out
    # the SiLU: one line per board, finn-plus builds PWPolyF on Versal parts only
    assert out.count("finn-plus cannot build PWPolyF_0") == 2
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert man["network"] == "llm" and man["weights_bound"] is False
    assert "not bound" in (tmp_path / "e" / "README.md").read_text()
    for k, st in enumerate(plan.fpga_stages):
        d = tmp_path / "e" / f"board{k}"
        assert not (d / "model.onnx").exists()
        fold = json.loads((d / "folding_config.json").read_text())
        spec = json.loads((d / "specialize_layers_config.json").read_text())
        want = stage_folding(plan.payload["stages"][plan.stages.index(st)])
        assert set(want) >= set(st.build.folding)  # the block's layer names
        # the head's own folding where the board holds it (the plan's head.<layer>)
        assert any(n.startswith("head.") for n in want) == ("head" in st.segment.parts)
        assert set(fold) - {"Defaults"} == set(want)
        for layer, a in want.items():
            assert fold[layer] == {k: v for k, v in a.items() if k != "impl"}
            assert spec[layer] == {"preferred_impl_style": a["impl"]}
        cfg = json.loads((d / "dataflow_build_config.json").read_text())
        assert cfg["fpga_part"] == "xc7z020clg400-1" and "mlo" not in cfg
    # the two boards joined by ACCL: the residual stream of one frame (8 tokens x 32 floats)
    b0, b1 = man["boards"]
    assert b0["outputs"][0]["to_rank"] == 1 and b1["inputs"][0]["from_rank"] == 0
    assert b0["outputs"][0]["bits_per_frame"] == 8 * 32 * 32
    assert b0["outputs"][0]["accl_words_per_frame"] == 8 * 32 * 32 // 512


def test_optimize_emit_applies_to_an_llm(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY_LLAMA))
    assert main(["optimize", "--model", str(cfg), "--out", str(tmp_path / "p"), *PLAN_ARGS,
                 "--emit", str(tmp_path / "b")]) == 0
    assert "weights not bound" in capsys.readouterr().err
    assert {p.name for p in (tmp_path / "b").iterdir()} >= {"board0", "board1",
                                                           "manifest.json"}


def test_a_rolled_stage_gets_finn_plus_mlo_settings(tmp_path: Path) -> None:
    """gpt2-medium decoding on two U55C: the first board rolls 23 of its 24 blocks (FINNLoop),
    its float quantizers' thresholds in URAM (as finn-plus books them, PE x 32 bits x 255
    steps a word, no U55C SLR holds them in BRAM or LUTs)."""
    assert main(["optimize", "--model", "gpt2-medium", "--boards", "2", "--mode", "decode",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    plan = load_plan(tmp_path / "p" / "plan.json")
    rolled = [k for k, s in enumerate(plan.fpga_stages) if s.build.style == "rolled"]
    assert rolled
    assert main(["emit", "--plan", str(tmp_path / "p" / "plan.json"), "--out",
                 str(tmp_path / "e"), "--estimate-only"]) == 0
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    for k, st in enumerate(plan.fpga_stages):
        d = tmp_path / "e" / f"board{k}"
        cfg = json.loads((d / "dataflow_build_config.json").read_text())
        if k in rolled:
            assert cfg["mlo"] is True and cfg["loop_body_hierarchy"] == [["", "layers.0"]]
            i = cfg["steps"].index("step_loop_rolling")  # on the specialized graph
            assert cfg["steps"][i - 1] == "step_specialize_layers"
            first, end = block_range(st.segment.label, ()).full[0], \
                block_range(st.segment.label, ()).full[-1] + 1
            assert man["boards"][k]["loop"] == {"body": "layers.0", "iterations": end - first}
        else:
            assert "mlo" not in cfg and man["boards"][k]["loop"] is None
        rec = plan.payload["stages"][plan.stages.index(st)]
        if rec["hbm_pseudo_channels"]:  # the plan's pseudo-channel table, every share
            mm = json.loads((d / "memory_map.json").read_text())
            shares = sum(len(v) for v in rec["hbm_pseudo_channels"]["streams"].values())
            assert len(mm["entries"]) == shares
        if rec["slrs"] and rec["slrs"]["feasible"]:
            fp = json.loads((d / "floorplan.json").read_text())
            assert len(fp) - 1 == len(rec["slrs"]["layers"])
            assert cfg["vitis_floorplan_file"] == "floorplan.json"


def test_block_range_labels() -> None:
    r = block_range("4.5-8.5", ("mlp", "attn", "head"))
    assert (r.full, r.mlp_half, r.attn_half, r.head) == ((5, 6, 7), 4, 8, True)
    assert block_range("0-3", ()).full == (0, 1, 2)
    with pytest.raises(PlanError, match="expected a range"):
        block_range("x", ())


def _hw_graph(mw: list[tuple[int, int]], blocks: int) -> onnx.ModelProto:
    """A stand-in for finn-plus's HW graph: per block its MVAUs (MW, MH) then the
    residual ElementwiseAdd."""
    nodes, t = [], "x"
    for b in range(blocks):
        for i, (w, h) in enumerate(mw):
            nodes.append(helper.make_node("MVAU", [t], [f"m{b}_{i}"], name=f"MVAU_{b}_{i}",
                                          domain=HW_DOMAIN, MW=w, MH=h))
            t = f"m{b}_{i}"
        nodes.append(helper.make_node("ElementwiseAdd", [t, "x"], [f"a{b}"], name=f"Add_{b}",
                                      domain=HW_DOMAIN))
        t = f"a{b}"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1])],
                          [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1])])
    return helper.make_model(g)


def test_an_export_of_another_config_is_refused_in_one_line(plan_path: Path,
                                                            tmp_path: Path) -> None:
    plan = load_plan(plan_path)
    block = plan_block(plan.model)
    assert block is not None  # the plan carries what rebuilds its block
    mvaus = [lyr for lyr in block.layers if lyr.op_type == "MVAU"]
    shapes = {lyr.name: lyr.finn_attrs() for lyr in block.layers}
    names = list(plan.fpga_stages[0].build.folding)
    src = tmp_path / "x.onnx"
    src.write_bytes(b"x")
    right = [(int(m.finn_attrs()["MW"]), int(m.finn_attrs()["MH"])) for m in mvaus]
    b = bind(_hw_graph(right, 2), blocks=2, folding=names, last_op="ElementwiseAdd",
             shapes=shapes, source=src)
    assert len(b.layer_of) == 2 * len(mvaus) and b.head == ()
    wider = [(2 * w, h) for w, h in right]  # hidden 64 where the plan has 32
    with pytest.raises(PlanError, match=r"MW=64 where the plan's MVAU_0 has MW=32.*another "
                                        "config"):
        bind(_hw_graph(wider, 2), blocks=2, folding=names, last_op="ElementwiseAdd",
             shapes=shapes, source=src)
    with pytest.raises(PlanError, match="exported from another config"):  # one layer less
        bind(_hw_graph(right, 1), blocks=2, folding=names, last_op="ElementwiseAdd",
             shapes=shapes, source=src)


def _plan_emit_estimate(finn_env: Path, tmp: Path, cfg_path: Path, model: Path,
                        boards: str, lut: str) -> list[tuple[str, str, tuple, tuple]]:
    """Plan the config on ``boards`` VCK5000 at LUT cap ``lut``, emit bound to ``model``,
    run finn-plus's steps and estimates on every board; rows as ``finn_vs_plan``'s."""
    from dse.backends.finn.runner import run_driver
    from dse.models import estimate

    assert main(["optimize", "--model", str(cfg_path), "--out", str(tmp / "p"),
                 "--boards", boards, "--board", "VCK5000", "--cap", f"lut={lut}", "--mode",
                 "prefill", "--seq", "8", "--weights", "int8", "--acts", "int8",
                 "--quiet"]) == 0
    plan = load_plan(tmp / "p" / "plan.json")
    assert len(plan.fpga_stages) == int(boards)
    out = tmp / "e"
    assert main(["emit", "--plan", str(tmp / "p" / "plan.json"), "--model", str(model),
                 "--out", str(out), "--estimate-only"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["weights_bound"] and any("cannot lower" in n for n in man["notes"])
    net = plan_network(plan.model)
    assert net is not None and net.head is not None
    attrs = {lyr.name: (lyr.op_type, lyr.finn_attrs()) for lyr in net.stacks[0].block.layers}
    attrs |= {f"head.{lyr.name}": (lyr.op_type, lyr.finn_attrs()) for lyr in net.head.layers}
    rows = []
    for k, st in enumerate(plan.fpga_stages):
        d = out / f"board{k}"
        assert (d / "model.onnx").exists() and (d / "model_accl.onnx").exists()
        r = run_driver(finn_env, "estimate_dir", str(d), timeout=1800)
        assert r.get("ok"), r
        rep = d / "output" / "report"
        cycles = json.loads((rep / "estimate_layer_cycles.json").read_text())
        res = json.loads((rep / "estimate_layer_resources.json").read_text())
        part = man["boards"][k]["part"]
        folding = stage_folding(plan.payload["stages"][plan.stages.index(st)])
        for node, where in sorted(man["boards"][k]["finn_nodes"].items()):
            if node not in cycles:  # (finn-plus 1.6.1 estimates no Shuffle before its
                continue            # transpose decomposition)
            layer = where if where.startswith("head.") else where.split(".", 1)[1]
            op, a = attrs[layer.split(".", 1)[1] if layer.startswith(("mlp.", "attn."))
                          else layer]
            fold = folding[layer]
            c = estimate(f"{op}_{fold['impl']}", {**a, **{k: v for k, v in fold.items()
                                                          if k != "impl"}}, part)
            f = res[node]
            rows.append((op, f"{boards} boards, board{k}/{node} = {where}",
                         (c.cycles, c.lut, c.bram18, c.uram, c.dsp),
                         (cycles[node], int(f["LUT"]), int(f["BRAM_18K"]), int(f["URAM"]),
                          int(f["DSP"]))))
    return rows


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(directory, config.json, QONNX export) of the tiny Llama the finn tests use."""
    from tests.networks import _family_config, export_family

    tmp = tmp_path_factory.mktemp("llmfinn")
    export = export_family("llama", tmp)
    cfg_path = tmp / "config.json"
    _family_config("llama")[1].to_json_file(str(cfg_path))
    return tmp, cfg_path, export


@pytest.fixture(scope="module")
def finn_vs_plan(finn_env: Path, tiny_llama: tuple[Path, Path, Path]
                 ) -> list[tuple[str, str, tuple, tuple]]:
    """A tiny Llama exported with brevitas (TorchScript, int8 weights and inputs of every
    Linear, random weights) and planned from its own config.json on VCK5000s (a Versal part:
    finn-plus builds PWPolyF, the SiLU, only there): on 2 boards at a LUT cap of 2 % (blocks
    0-1, 1-2 + head) and on 3 at 1.6 % (half blocks: 0-0.5, 0.5-1.5, 1.5-2 + head; at 1.4 % or
    less no block fits, its float quantizers' thresholds booked as finn-plus books them). dse
    emit lowers the export with finn-plus and binds it; finn-plus's own steps on each emitted
    board (specialize, apply the emitted folding config, minimize bit widths) and its estimate
    analyses then give, per node dse bound to a plan layer, (op type, where, the plan's cost,
    finn-plus's estimate): cycles, LUT, BRAM18, URAM, DSP. About 5 minutes, most of it
    finn-plus's lowering (once: the second emit takes the HW graph the first wrote)."""
    tmp, cfg_path, export = tiny_llama
    (tmp / "two").mkdir()
    (tmp / "three").mkdir()
    rows = _plan_emit_estimate(finn_env, tmp / "two", cfg_path, export, "2", "0.02")
    hw = tmp / "two" / "e" / "finn_hw_graph.onnx"
    assert hw.exists()
    return rows + _plan_emit_estimate(finn_env, tmp / "three", cfg_path, hw, "3", "0.016")


@pytest.mark.finn
def test_finn_plus_estimates_of_the_emitted_graphs_equal_the_plan(
        finn_vs_plan: list[tuple[str, str, tuple, tuple]]) -> None:
    for boards in ("2", "3"):  # on both chains: every projection of both blocks and the
        rows = [r for r in finn_vs_plan if r[1].startswith(f"{boards} boards")]
        ops = [op for op, *_ in rows]  # head's, and the SiLU, at least, are bound
        assert ops.count("MVAU") == 2 * 7 + 1 and ops.count("PWPolyF") == 2, boards
        assert any("= head.MVAU_0" in where for _, where, _, _ in rows)
    assert any(".mlp.MVAU_4" in where for _, where, _, _ in finn_vs_plan)  # half blocks
    differ = [(where, plan, finn) for op, where, plan, finn in finn_vs_plan if plan != finn]
    assert not differ, differ


@pytest.mark.finn
def test_finn_plus_estimates_of_the_bound_quantizers_equal_the_plan(
        finn_vs_plan: list[tuple[str, str, tuple, tuple]]) -> None:
    rows = [r for r in finn_vs_plan if r[0] == "Thresholding"]
    assert rows
    assert all(plan == finn for _, _, plan, finn in rows), rows


@pytest.mark.finn
def test_finn_plus_rolls_an_emitted_rolled_board_as_planned(
        finn_env: Path, tiny_llama: tuple[Path, Path, Path],
        finn_vs_plan: list, tmp_path: Path) -> None:
    """The tiny Llama on one V80 at a 0.5 % LUT cap: the plan rolls its 2 blocks (weights
    in HBM); finn-plus's own loop rolling on the emitted board (its MLO settings) makes one
    FINNLoop of 2 iterations, and its estimates of the head outside the loop run. (Bound to
    the HW graph finn_vs_plan's first emit wrote: finn-plus lowers the export once.)"""
    from dse.backends.finn.runner import run_driver

    tmp, cfg_path, _ = tiny_llama
    export = tmp / "two" / "e" / "finn_hw_graph.onnx"
    assert main(["optimize", "--model", str(cfg_path), "--out", str(tmp_path / "p"),
                 "--boards", "1", "--board", "V80", "--cap", "lut=0.005", "--mode",
                 "prefill", "--seq", "8", "--weights", "int8", "--acts", "int8",
                 "--quiet"]) == 0
    plan = load_plan(tmp_path / "p" / "plan.json")
    (st,) = plan.fpga_stages
    assert st.build.style == "rolled"
    iterations = len(block_range(st.segment.label, ()).full)
    assert main(["emit", "--plan", str(tmp_path / "p" / "plan.json"), "--model", str(export),
                 "--out", str(tmp_path / "e"), "--estimate-only"]) == 0
    r = run_driver(finn_env, "estimate_dir", str(tmp_path / "e" / "board0"), timeout=1800)
    assert r.get("ok"), r
    assert [x["iteration"] for x in r["loops"]] == [iterations] == [2]


@pytest.mark.finn
def test_finn_plus_estimates_of_an_emitted_qwen2_equal_the_plan(
        finn_env: Path, tmp_path: Path) -> None:
    """Another family, not the one the tests above were built on: a tiny Qwen2 (biases on
    its q/k/v projections) as transformers' Qwen2Config saves it (layer_types included),
    exported with brevitas, planned on 2 VCK5000, emitted and estimated by finn-plus: every
    node finn-plus estimates equals the plan (cycles, LUT, BRAM18, URAM, DSP)."""
    from tests.networks import _family_config, export_family

    export = export_family("qwen2", tmp_path)
    cfg = tmp_path / "config.json"
    _family_config("qwen2")[1].to_json_file(str(cfg))
    rows = _plan_emit_estimate(finn_env, tmp_path / "two", cfg, export, "2", "0.02")
    assert {op for op, *_ in rows} >= {"MVAU", "Thresholding", "PWPolyF"}, rows
    differ = [(where, plan, finn) for _, where, plan, finn in rows if plan != finn]
    assert not differ, differ
