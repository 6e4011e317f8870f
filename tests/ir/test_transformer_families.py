"""Whole tiny models of twelve transformer families, exported as a new user would (random
weights from `transformers` config classes, 2 layers, brevitas layerwise_quantize, the
TorchScript and the dynamo exporter, with and without the batch axis): each loads, accounts
for every node (the conservation check inside load_network), lowers every projection to an
MVAU and every attention to finn-plus's fused attention with the family's heads, mask and
norm, and costs every layer. The default run takes a representative subset; the full matrix
is marked slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.ir import load_network
from tests.networks import FAMILIES, export_family, family_model

# family -> (K/V heads, mask mode, RMSNorm?, PWPolyF functions, extra layers it must have)
EXPECT = {
    "llama": (2, "causal", True, {"silu"}, {}),
    "mistral": (2, "causal", True, {"silu"}, {}),
    "qwen2": (2, "causal", True, {"silu"}, {}),
    "phi3": (4, "causal", True, {"silu"}, {}),
    "gemma": (1, "causal", True, {"gelu"}, {}),
    "gpt2": (4, "causal", False, {"gelu"}, {"StreamingSplit": 2}),  # fused QKV
    "gpt_neox": (4, "causal", False, {"gelu"}, {}),
    # interleaved rotary: x[..., ::2] / x[..., 1::2] -> a StreamingSplit [1, 1] and the stack
    # -> a StreamingConcat [1, 1] per rotated tensor (q, k) and layer
    "gptj": (4, "causal", False, {"gelu"}, {"StreamingSplit": 8, "StreamingConcat": 8}),
    "opt": (4, "causal", False, set(), {}),  # ReLU: thresholds
    "bert": (4, "none", False, {"gelu"}, {}),
    "vit": (4, "none", False, {"gelu"}, {"Pad1D": 1, "ConvolutionInputGenerator": 1}),
    "bart_encoder": (4, "none", False, {"gelu"}, {}),
}
LAYERS, HEADS = 2, 4
NORMS = {"gptj": LAYERS + 1}  # one norm per layer (attention and MLP in parallel) and the final
MATRIX = [(f, dyn, batch) for f in FAMILIES for dyn in (False, True) for batch in (True, False)]
DEFAULT = {("llama", True, True), ("gpt2", False, True), ("vit", True, False),
           ("gptj", False, True)}


def _id(case: tuple[str, bool, bool]) -> str:
    f, dyn, batch = case
    return f"{f}-{'dynamo' if dyn else 'ts'}{'' if batch else '-nobatch'}"


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families")


def _projections(family: str) -> int:
    """Linear and Conv modules of the model: each must become one MVAU."""
    import torch

    model, _ = family_model(family)
    return sum(isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) for m in model.modules())


def check_family(path: Path, family: str) -> None:
    g = load_network(path)  # raises if a node were lost or had no mapping
    kv_heads, mask, rms, funcs, extra = EXPECT[family]
    ops = g.op_counts()
    attn = [x for x in g.layers if x.op_type == "ScaledDotProductAttention"]
    assert len(attn) == LAYERS
    for a in (x.attrs for x in attn):
        assert a["Heads"] == HEADS and a.get("KVHeads", HEADS) == kv_heads
        assert a["mask_mode"] == mask
    norms = [x for x in g.layers if x.op_type == "LayerNorm"]
    # two per layer and the final (or embedding) one
    assert len(norms) == NORMS.get(family, 2 * LAYERS + 1)
    assert all(bool(x.attrs.get("rms")) == rms for x in norms)
    assert {x.attrs["func"] for x in g.layers if x.op_type == "PWPolyF"} == funcs
    assert ops["MVAU"] == _projections(family)
    for op, n in extra.items():
        assert ops[op] == n, op
    assert all("host" in h.reason or h.op_type == "Quant" for h in g.host_nodes)
    for layer in g.layers:  # every layer has a cost model (the dse op set covers them)
        assert layer.cost().cycles > 0, layer.name


@pytest.mark.parametrize("case", [c for c in MATRIX if c in DEFAULT], ids=_id)
def test_family_exports_load(case: tuple[str, bool, bool], family_dir: Path) -> None:
    family, dynamo, batch = case
    check_family(export_family(family, family_dir, dynamo=dynamo, batch=batch), family)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in MATRIX if c not in DEFAULT], ids=_id)
def test_family_matrix_loads(case: tuple[str, bool, bool], family_dir: Path) -> None:
    family, dynamo, batch = case
    check_family(export_family(family, family_dir, dynamo=dynamo, batch=batch), family)


# finn-plus lowers the elementary function (Sigmoid, Tanh) and leaves the rest of the pattern
# as Elementwise ops or float nodes; dse fuses x * sigmoid(x) and the tanh GELU polynomial.
# The function finn-plus makes of a fused layer: that of its elementary source node (the
# loader names nodes OpType_N, as qonnx's GiveUniqueNodeNames does)
ELEMENTARY = {"Sigmoid": "sigmoid", "Tanh": "tanh"}


def finn_func(func: str, sources: tuple[str, ...]) -> str:
    ops = {n.rsplit("_", 1)[0] for n in sources}
    hits = [f for op, f in ELEMENTARY.items() if op in ops]
    return hits[0] if len(sources) > 1 and len(hits) == 1 else func
FINN_CASES = [("llama", False), ("gpt2", False), ("bert", True), ("gemma", False),
              ("phi3", False), ("gptj", False)]


def _signature(layers: list[tuple[str, dict]], keys: dict[str, tuple[str, ...]]) -> dict:
    import collections
    import json

    sig: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for op, a in layers:
        if op in keys:
            vals = [list(v) if isinstance(v, tuple) else v for v in (a.get(k) for k in keys[op])]
            sig[op][json.dumps(vals)] += 1
    return sig


@pytest.mark.finn
@pytest.mark.parametrize("family, dynamo", FINN_CASES,
                         ids=[f"{f}-{'dynamo' if d else 'ts'}" for f, d in FINN_CASES])
def test_family_hw_layers_match_finn_plus(family: str, dynamo: bool, family_dir: Path,
                                          finn_env: Path, tmp_path: Path) -> None:
    """finn-plus's own step_convert_to_hw on the same export: every MVAU and Thresholding it
    makes is ours with the same attributes (before bit-width minimization), and each of its
    PWPolyF is one of ours on the same shape. (Where finn-plus leaves a projection as a float
    MatMul, as on some dynamo exports, dse lowers it too: ours may hold more.)"""
    import onnx
    from onnx import helper

    from dse.backends.finn.runner import run_driver
    from tests.ir.test_lowering_vs_finn import KEYS

    src = export_family(family, family_dir, dynamo=dynamo)
    out = tmp_path / "hw.onnx"
    r = run_driver(finn_env, "lower", str(src), str(out), timeout=3000)
    assert r.get("ok"), r
    keys = {op: KEYS[op] for op in ("MVAU", "Thresholding")}
    keys["PWPolyF"] = ("func", "NumChannels", "numInputVectors")
    finn = []
    for n in onnx.load(str(out)).graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        finn.append((n.op_type, {k: v.decode() if isinstance(v, bytes) else v
                                 for k, v in a.items()}))
    g = load_network(src, minimize_bit_width=False)  # FINN's graph before minimization
    ours = []
    for x in g.layers:
        a = dict(x.finn_attrs())
        if x.op_type == "PWPolyF":
            a["func"] = finn_func(a["func"], x.source_nodes)
        ours.append((x.op_type, a))
    theirs, mine = _signature(finn, keys), _signature(ours, keys)
    assert theirs["MVAU"] and theirs["Thresholding"]
    for op in keys:
        assert not theirs[op] - mine[op], (op, "finn-plus only:", dict(theirs[op] - mine[op]))
    if not dynamo:  # the TorchScript exports finn-plus lowers completely outside attention
        assert mine == theirs
