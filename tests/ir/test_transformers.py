"""Transformers: bert_tiny_2l_w4a8 and tiny blocks we export ourselves with brevitas and the
model classes of `transformers` (Llama-style decoder, GPT-2 block, T5 encoder-decoder block,
BERT/MHA encoder; TorchScript and dynamo exporters; with and without the batch axis) lower
to finn-plus's HW op set with every node accounted for, and go through optimize."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dse.exceptions import UnsupportedLayerError
from dse.ir import load_network
from dse.models._common import COST_FINN
from tests.conftest import run_notebook, shared_path
from tests.networks import SEQ, export_transformer

BERT = shared_path("models", "bert_tiny_2l_w4a8.onnx")

# kind -> (attention layers, mask modes, norm kind, activation)
EXPECT = {
    "llama": (1, ["causal"], "rms", "silu"),
    "gpt2": (1, ["causal"], "ln", "gelu"),
    # T5: relative position bias (per head) on both self-attentions, none on cross-attention
    "t5": (3, ["const", "const", "none"], "rms", None),
    "bert": (1, ["none"], "ln", "gelu"),
}
CASES = [(k, dyn, True) for k in EXPECT for dyn in (False, True)] + [
    ("llama", False, False), ("llama", True, False)]


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transformers")


def test_bert_tiny_lowers_to_finn_plus_ops() -> None:
    g = load_network(BERT)
    ops = g.op_counts()
    assert ops["ScaledDotProductAttention"] == 2
    assert ops["LayerNorm"] == 5 and ops["PWPolyF"] == 2 and ops["Shuffle"] == 8
    assert ops["MVAU"] == 12 and ops["Thresholding"] == 12 and ops["DuplicateStreams"] == 4
    assert ops["ElementwiseAdd"] == 5  # embeddings + 4 residuals
    for sdpa in (l for l in g.layers if l.op_type == "ScaledDotProductAttention"):
        a = sdpa.attrs
        assert (a["Heads"], a["QLen"], a["KVLen"], a["QKDim"], a["VDim"]) == (4, 16, 16, 16, 16)
        assert a["mask_mode"] == "none"
        # the two 1/sqrt(sqrt(16)) scales of Q and K and nothing else
        assert a["DequantSoftmax"] == pytest.approx(0.25, rel=1e-3)
        assert len(g.in_edges(sdpa.name)) == 3
    # K is read untransposed: its head split keeps (T, d) order like Q and V
    shuffles = [l.attrs["perm"] for l in g.layers if l.op_type == "Shuffle"]
    assert shuffles.count((0, 2, 1, 3)) == 8


@pytest.mark.parametrize("kind, dynamo, batch", CASES,
                         ids=[f"{k}-{'dynamo' if d else 'ts'}{'' if b else '-nobatch'}"
                              for k, d, b in CASES])
def test_own_transformer_exports_lower(nets: Path, kind: str, dynamo: bool, batch: bool) -> None:
    path = export_transformer(kind, nets, dynamo=dynamo, batch=batch)
    g = load_network(path)  # raises if any node were dropped (conservation check)
    n_attn, masks, norm, act = EXPECT[kind]
    attn = [l for l in g.layers if l.op_type == "ScaledDotProductAttention"]
    assert [l.attrs["mask_mode"] for l in attn] == masks
    if kind == "t5":
        assert [l.attrs.get("MaskHeads", 1) for l in attn] == [4, 4, 1]
    for l in attn:
        assert l.attrs["Heads"] == 4 and l.attrs["QLen"] == SEQ and l.attrs["KVLen"] == SEQ
        assert l.attrs["QKDim"] == 8 and l.attrs["VDim"] == 8
    norms = [l for l in g.layers if l.op_type == "LayerNorm"]
    assert norms and all(bool(l.attrs.get("rms")) == (norm == "rms") for l in norms)
    funcs = {l.attrs["func"] for l in g.layers if l.op_type == "PWPolyF"}
    assert funcs == ({act} if act else set())
    # every projection is an MVAU with 8-bit weights and inputs (brevitas' defaults)
    mvaus = [l for l in g.layers if l.op_type == "MVAU"]
    expected_mvau = {"llama": 7, "gpt2": 4, "t5": 16, "bert": 6}[kind]
    assert len(mvaus) == expected_mvau
    assert all(l.attrs["mem_mode"] != "dynamic" for l in mvaus)
    # nothing float is left to the host in the middle of the network
    assert all(h.op_type in ("Quant",) or "host" in h.reason for h in g.host_nodes)


def test_own_exports_optimize_on_u55c(nets: Path) -> None:
    from dse import api

    for kind in ("llama", "t5"):
        path = export_transformer(kind, nets)
        res = api.optimize(path, boards="U55C,U55C", time_limit=20, record_time=False)
        plan = res.plan
        assert plan["metrics"]["fps"] > 0
        srcs = {l["op_type"]: l["cost_source"] for l in plan["layers"]}
        assert srcs["MVAU"] == COST_FINN
        assert srcs["ScaledDotProductAttention"] != COST_FINN
        assert srcs["LayerNorm"] != COST_FINN


def _qmatmul_model(path: Path, quantize: bool, attention_like: bool = False) -> Path:
    """x, y: [1, 8, 16] and [1, 16, 8] activations, optionally int8-quantized, multiplied."""
    nodes, inits = [], []
    inp = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16]),
           helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8])]
    a, b = "x", "y"
    if quantize:
        for name, c in (("s", 0.05), ("z", 0.0), ("bw", 8.0)):
            inits.append(helper.make_tensor(name, TensorProto.FLOAT, [], [c]))
        for t in ("x", "y"):
            nodes.append(helper.make_node("Quant", [t, "s", "z", "bw"], [f"{t}q"],
                                          domain="qonnx.custom_op.general", signed=1, narrow=0,
                                          rounding_mode="ROUND", name=f"Quant_{t}"))
        a, b = "xq", "yq"
    nodes.append(helper.make_node("MatMul", [a, b], ["out"], name="MatMul_0"))
    out = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 8])]
    g = helper.make_graph(nodes, "g", inp, out, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(m, path)
    return path


def test_quantized_act_x_act_matmul_is_a_dynamic_mvau(tmp_path: Path) -> None:
    g = load_network(_qmatmul_model(tmp_path / "mm.onnx", quantize=True))
    (mv,) = [l for l in g.layers if l.op_type == "MVAU"]
    a = mv.attrs
    assert a["mem_mode"] == "dynamic" and a["MW"] == 16 and a["MH"] == 8
    assert a["inputDataType"] == "INT8" and a["weightDataType"] == "INT8"
    assert list(a["numInputVectors"]) == [1, 8]
    assert len(g.in_edges(mv.name)) == 2  # both operands are streams
    c = mv.cost("xcu55c-fsvh2892-2L-e")
    assert c.instream_widths == (8, 8)
    # the solver never turns the dynamic weights into stored ones
    from dse.models import get_model, normalize_attrs

    opts = list(get_model("MVAU").options(normalize_attrs("MVAU", mv.finn_attrs()), "hls"))
    assert opts and {o["mem_mode"] for o in opts} == {"dynamic"}


def test_float_act_x_act_matmul_outside_attention_is_refused(tmp_path: Path) -> None:
    path = _qmatmul_model(tmp_path / "mmf.onnx", quantize=False)
    # a float-only graph is refused before; add one quantizer on x only
    m = onnx.load(str(path))
    m.graph.initializer.extend([helper.make_tensor(n, TensorProto.FLOAT, [], [v])
                                for n, v in (("s", 0.05), ("z", 0.0), ("bw", 8.0))])
    m.graph.node.insert(0, helper.make_node("Quant", ["x", "s", "z", "bw"], ["xq"],
                                            domain="qonnx.custom_op.general", signed=1,
                                            narrow=0, rounding_mode="ROUND", name="Quant_x"))
    m.graph.node[1].input[0] = "xq"
    onnx.save(m, str(path))
    with pytest.raises(UnsupportedLayerError, match="float activation x activation MatMul"):
        load_network(path)


def test_slice_that_is_not_a_partition_is_refused(nets: Path, tmp_path: Path) -> None:
    src = onnx.load(str(export_transformer("llama", nets)))
    # drop the second half of rotate_half: the remaining Slice no longer partitions the axis
    sl = [n for n in src.graph.node if n.op_type == "Slice"]
    keep = sl[0]
    keep_inputs = list(keep.input)
    ends = next(i for i in src.graph.initializer if i.name == keep_inputs[2])
    arr = onnx.numpy_helper.to_array(ends).copy()
    arr[...] = np.asarray(arr) - 1
    ends.CopyFrom(onnx.numpy_helper.from_array(arr, ends.name))
    path = tmp_path / "bad_slice.onnx"
    onnx.save(src, str(path))
    with pytest.raises(UnsupportedLayerError, match="partition of the channel axis"):
        load_network(path)


@pytest.mark.finn
def test_bert_tiny_matches_finn_plus_outside_attention(finn_env: Path, tmp_path: Path) -> None:
    """finn-plus's own step_convert_to_hw on bert_tiny: every layer it makes outside the
    attention (which it leaves as float MatMuls + HWSoftmax) is ours too, same attributes."""
    from dse.backends.finn.runner import run_driver

    out = tmp_path / "bert_hw.onnx"
    r = run_driver(finn_env, "lower", str(BERT), str(out))
    assert r.get("ok"), r
    m = onnx.load(str(out))
    finn = collections.defaultdict(list)
    for n in m.graph.node:
        finn[n.op_type].append({a.name: helper.get_attribute_value(a) for a in n.attribute})
    assert len(finn["MatMul"]) == 4 and len(finn["HWSoftmax"]) == 2
    g = load_network(BERT, minimize_bit_width=False)  # FINN's graph before minimization
    ours = collections.defaultdict(list)
    for l in g.layers:
        ours[l.op_type].append(l.finn_attrs())
    # FINN's 2 extra ElementwiseMul are the softmax scales dse folds into the attention
    assert len(finn["ElementwiseMul"]) == len(ours["ElementwiseMul"]) + 2
    for op in ("MVAU", "Thresholding", "LayerNorm", "PWPolyF", "DuplicateStreams",
               "ElementwiseAdd", "Shuffle"):
        assert len(finn[op]) == len(ours[op]), op
        for fa, da in zip(finn[op], ours[op]):
            for k, v in fa.items():
                v = v.decode() if isinstance(v, bytes) else v
                if k not in da or k == "perm":
                    continue
                if isinstance(v, float):
                    assert da[k] == pytest.approx(v, rel=1e-6), (op, k)
                else:
                    assert da[k] == v, (op, k, da[k], v)
    # the K head splits: FINN transposes K for its MatMul, dse feeds K untransposed
    assert sorted(tuple(a["perm"]) for a in finn["Shuffle"]).count((0, 2, 3, 1)) == 2


def _plan(tmp_path: Path, boards: str) -> Path:
    from dse import api

    res = api.optimize(BERT, boards=boards, time_limit=20, record_time=False)
    return res.plan.save(tmp_path / f"plan_{boards}.json")


def test_emit_refuses_pwpolyf_off_versal_in_one_line(tmp_path: Path, capsys) -> None:
    from dse.cli import main

    plan = _plan(tmp_path, "U55C")
    out = tmp_path / "emit"
    rc = main(["emit", "--plan", str(plan), "--model", str(BERT), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "PWPolyF" in err and "Versal" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.finn
def test_emit_refuses_what_finn_plus_cannot_lower(finn_env: Path, tmp_path: Path,
                                                  capsys) -> None:
    from dse.cli import main

    plan = _plan(tmp_path, "V80")  # Versal: PWPolyF is buildable, the attention is not
    out = tmp_path / "emit"
    rc = main(["emit", "--plan", str(plan), "--model", str(BERT), "--out", str(out),
               "--finn-env", str(finn_env)])
    err = capsys.readouterr().err
    assert rc == 2 and "MatMul" in err and "writes nothing" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_explore_plot_and_notebook_on_a_transformer(tmp_path: Path) -> None:
    """explore, plot and the notebook on bert_tiny over 1..4 U55C."""
    from dse import api, viz

    out = tmp_path / "explore"
    res = api.explore(BERT, boards="1..4", trials=5, out=out, seed=0, trial_time_limit=10.0)
    own = api.explore(export_transformer("llama", tmp_path), boards="1..4", trials=4,
                      out=tmp_path / "explore_llama", seed=0, trial_time_limit=10.0)
    assert own.n_feasible >= 2 and (tmp_path / "explore_llama" / "pareto.png").exists()
    assert res.n_trials == 5 and res.n_feasible >= 3
    for f in ("pareto.csv", "trials.csv", "pareto.png", "partition.png", "resources.png"):
        assert (out / f).stat().st_size > 0, f
    plan = viz.best_plan(viz.load_results(out))
    assert any(l["op_type"] == "ScaledDotProductAttention" for l in plan["layers"])
    assert {l["cost_source"] for l in plan["layers"]} >= {COST_FINN, "dse model"}
    errors, _ = run_notebook("pareto.ipynb", {"DSE_RESULTS": str(out)})
    assert not errors


def test_quantized_embedding_is_a_lookup(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import warnings

    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import Int8ActPerTensorFloat

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = qnn.QuantEmbedding(64, 32, weight_bit_width=4)
            self.ln = torch.nn.LayerNorm(32)
            self.fc = qnn.QuantLinear(32, 16, bias=True, input_quant=Int8ActPerTensorFloat)

        def forward(self, ids):
            return self.fc(self.ln(self.emb(ids)))

    torch.manual_seed(0)
    path = tmp_path / "embed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(Embed().eval(), torch.randint(0, 64, (1, SEQ)), str(path), dynamo=False)
    g = load_network(path)
    (lk,) = [l for l in g.layers if l.op_type == "Lookup"]
    a = lk.attrs
    assert (a["NumEmbeddings"], a["EmbeddingDim"], a["EmbeddingType"]) == (64, 32, "INT4")
    assert a["InputType"] == "UINT6" and list(a["InputShape"]) == [1, SEQ]
    c = lk.cost()
    assert c.cycles == SEQ and c.outstream_width == 32 * 4
    assert g.op_counts()["LayerNorm"] == 1 and g.op_counts()["MVAU"] == 1


def test_masked_fill_causal_mask_is_generated_in_hardware(tmp_path: Path) -> None:
    """scores.masked_fill(mask, -inf) exports as Where: a causal mask dse leaves to the
    attention core (mask_mode causal, nothing stored)."""
    torch = pytest.importorskip("torch")
    import warnings

    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import Int8ActPerTensorFloat

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = qnn.QuantLinear(16, 48, bias=False, input_quant=Int8ActPerTensorFloat)
            self.register_buffer("mask", torch.ones(SEQ, SEQ, dtype=torch.bool).triu(1))

        def forward(self, x):
            q, k, v = self.qkv(x).split(16, dim=-1)
            s = (q @ k.transpose(-1, -2)) * 0.25
            s = s.masked_fill(self.mask, float("-inf"))
            return torch.softmax(s, dim=-1) @ v

    torch.manual_seed(0)
    path = tmp_path / "where.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(Attn().eval(), torch.randn(1, SEQ, 16), str(path), dynamo=False)
    assert any(n.op_type == "Where" for n in onnx.load(str(path)).graph.node)
    g = load_network(path)
    (att,) = [l for l in g.layers if l.op_type == "ScaledDotProductAttention"]
    assert att.attrs["mask_mode"] == "causal" and att.attrs["Heads"] == 1
    # Q and K stay integer accumulators: their scales fold into the softmax dequantization
    assert att.attrs["QType"].startswith("INT") and att.attrs["KType"].startswith("INT")
    assert 0 < att.attrs["DequantSoftmax"] < 0.25
    assert g.op_counts()["StreamingSplit"] == 1  # the fused QKV projection is split


def test_erf_gelu_pattern_is_one_pwpolyf(tmp_path: Path) -> None:
    """x / sqrt(2) -> Erf -> + 1 -> * 0.5 -> * x (GELU as older exporters write it) on a
    quantized MatMul's output becomes one PWPolyF gelu, all five nodes its sources."""
    def c(name, v):
        return helper.make_tensor(name, TensorProto.FLOAT, np.shape(v), np.ravel(v).tolist())

    W = np.ones((8, 8)) * 0.1
    inits = [c("s", 0.05), c("z", 0.0), c("b8", 8.0), c("W", W), c("sq2", 1.4142135),
             c("one", 1.0), c("half", 0.5)]
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b8"], ["xq"], name="Qx", signed=1,
                         narrow=0, rounding_mode="ROUND", domain="qonnx.custom_op.general"),
        helper.make_node("Quant", ["W", "s", "z", "b8"], ["Wq"], name="QW", signed=1,
                         narrow=0, rounding_mode="ROUND", domain="qonnx.custom_op.general"),
        helper.make_node("MatMul", ["xq", "Wq"], ["h"], name="mm"),
        helper.make_node("Div", ["h", "sq2"], ["d"], name="div"),
        helper.make_node("Erf", ["d"], ["e"], name="erf"),
        helper.make_node("Add", ["e", "one"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "half"], ["m"], name="half"),
        helper.make_node("Mul", ["h", "m"], ["y"], name="mulx"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, 4, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])],
                          inits)
    path = tmp_path / "erf_gelu.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                  helper.make_opsetid(
                                                      "qonnx.custom_op.general", 1)]), path)
    graph = load_network(path)
    (pw,) = [l for l in graph.layers if l.op_type == "PWPolyF"]
    assert pw.attrs["func"] == "gelu" and pw.attrs["NumChannels"] == 8
    # the loader names nodes as qonnx GiveUniqueNodeNames does
    assert set(pw.source_nodes) == {"Div_0", "Erf_0", "Add_0", "Mul_0", "Mul_1"}
