"""LLMs from architecture configs: the shipped configs, bad configs, and the config path giving
the same HW layers as the QONNX path on tiny configs exported with brevitas."""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import pytest

from dse.exceptions import SpecError
from dse.ir import load_network
from dse.llm.config import arch_from_config, load_arch, quant_spec, shipped
from dse.llm.network import build_network
from tests.networks import HIDDEN, SEQ, export_transformer

# published parameter counts (billions), from the model cards
PARAMS = {"bert-base": 0.110, "bert-large": 0.340, "gpt2": 0.124, "gpt2-medium": 0.355,
          "gpt2-large": 0.774, "gpt2-xl": 1.5, "t5-base": 0.220, "t5-large": 0.770,
          "bloom-560m": 0.559, "bloom-7b1": 7.07, "llama2-7b": 6.74, "llama2-13b": 13.0,
          "llama2-70b": 69.0}

TINY = {
    "llama": {"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
              "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
              "vocab_size": 64, "max_position_embeddings": 2 * SEQ, "hidden_act": "silu",
              "rms_norm_eps": 1e-6},
    "mistral": {"model_type": "mistral", "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
                "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                "vocab_size": 64, "max_position_embeddings": 2 * SEQ, "hidden_act": "silu",
                "rms_norm_eps": 1e-6, "sliding_window": None},
    "qwen2": {"model_type": "qwen2", "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
              "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
              "vocab_size": 64, "max_position_embeddings": 2 * SEQ, "hidden_act": "silu",
              "rms_norm_eps": 1e-6},
    "gemma": {"model_type": "gemma", "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
              "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1,
              "head_dim": HIDDEN // 4, "vocab_size": 64, "max_position_embeddings": 2 * SEQ,
              "hidden_act": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6},
    "gpt2": {"model_type": "gpt2", "n_embd": HIDDEN, "n_layer": 1, "n_head": 4,
             "n_positions": 2 * SEQ, "vocab_size": 64, "activation_function": "gelu",
             "layer_norm_epsilon": 1e-5},
    "bert": {"model_type": "bert", "hidden_size": HIDDEN, "num_hidden_layers": 1,
             "num_attention_heads": 4, "intermediate_size": 2 * HIDDEN, "vocab_size": 64,
             "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64},
}


def test_shipped_configs_have_the_published_sizes() -> None:
    assert set(PARAMS) <= set(shipped())
    for name, billions in PARAMS.items():
        a = load_arch(name)
        assert a.params() / 1e9 == pytest.approx(billions, rel=0.06), name


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "gemma", "gpt2"])
def test_configs_as_transformers_saves_them_load(family: str, tmp_path: Path) -> None:
    """transformers' own config.json of each family dse builds (its config class, saved as
    a user gets it): keys such as layer_types (Qwen2), use_bidirectional_attention (Gemma)
    and add_cross_attention (GPT-2) at the values dse models are read, not refused."""
    from tests.networks import _family_config

    hf = _family_config(family)[1]
    hf.to_json_file(str(tmp_path / "config.json"))
    cfg = json.loads((tmp_path / "config.json").read_text())
    a = arch_from_config(cfg, family)
    assert a.family == family and a.layers == hf.num_hidden_layers
    assert a.hidden == hf.hidden_size


@pytest.mark.parametrize("key, value, match", [
    ("layer_types", ["full_attention", "chunked_attention"], "layer_types must list"),
    ("layer_types", ["full_attention"], r"per layer \(2 layers\)"),
    ("use_bidirectional_attention", True, "is not modelled"),
    ("add_cross_attention", 1, "is not modelled"),
])
def test_keys_dse_does_not_build_from_must_ask_for_what_it_models(key: str, value: object,
                                                                   match: str) -> None:
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 8, "intermediate_size": 96, key: value}
    with pytest.raises(SpecError, match=match):
        arch_from_config(cfg, "x")


@pytest.mark.parametrize("cfg, match", [
    ({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "vocab_size": 8, "intermediate_size": 9, "hiden_act": "silu"},
     "unknown key"),
    ({"model_type": "mamba"}, "not supported"),
    ({"model_type": "gpt2", "n_embd": 30, "n_layer": 1, "n_head": 4, "vocab_size": 8},
     "does not divide"),
    ({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 0,
      "num_attention_heads": 4, "vocab_size": 8},
     r"num_hidden_layers = 0: Input should be greater than or equal to 1"),
    ({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 8}, "must divide"),
    ([1, 2], "JSON object"),
])
def test_bad_configs_get_one_clear_line(cfg, match: str) -> None:
    with pytest.raises(SpecError, match=match) as e:
        arch_from_config(cfg, "bad")
    assert "\n" not in str(e.value)


def test_bad_config_on_the_cli_exits_2(tmp_path: Path, capsys) -> None:
    from dse.cli import main

    p = tmp_path / "config.json"
    p.write_text(json.dumps({**TINY["llama"], "num_layerz": 3}))
    rc = main(["optimize", "--model", str(p), "--boards", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "num_layerz" in err and len(err.strip().splitlines()) == 1


def _by_op(g) -> dict[str, list[dict]]:
    out = collections.defaultdict(list)
    skip = {"DequantSoftmax"}  # depends on the scale values, not the structure
    for l in g.layers:
        out[l.op_type].append({k: v for k, v in l.finn_attrs().items() if k not in skip})
    return out


@pytest.mark.parametrize("kind, mode", [("llama", "prefill"), ("gpt2", "prefill"),
                                        ("bert", "encoder"), ("mistral", "prefill"),
                                        ("qwen2", "prefill"), ("gemma", "prefill")])
def test_config_path_equals_qonnx_path(tmp_path: Path, kind: str, mode: str) -> None:
    """Same HW layers, multiset and attributes, from the config as from the brevitas export
    of the same architecture (data-type bit widths on both sides)."""
    qonnx = load_network(export_transformer(kind, tmp_path, dynamo=True),
                         minimize_bit_width=False)
    arch = arch_from_config(TINY[kind], kind)
    net = build_network(arch, quant_spec("int8", "int8"), mode, seq=SEQ,
                        minimize_bit_width=False)
    (stack,) = net.stacks
    assert stack.count == 1
    ours, theirs = _by_op(stack.block), _by_op(qonnx)
    kv = TINY[kind].get("num_key_value_heads", 4)
    assert [a.get("KVHeads", 4) for a in theirs["ScaledDotProductAttention"]] == [kv]
    assert {k: len(v) for k, v in ours.items()} == {k: len(v) for k, v in theirs.items()}
    for op in theirs:  # as multisets: the two graphs may order parallel branches differently
        assert _multiset(ours[op]) == _multiset(theirs[op]), op


def _multiset(attrs: list[dict]) -> collections.Counter:
    return collections.Counter(json.dumps(a, sort_keys=True) for a in attrs)


def test_llama2_70b_builds_in_seconds_without_weights() -> None:
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    net = build_network(load_arch("llama2-70b"), quant_spec("int4", "int8"), "decode",
                        context=4096)
    full = net.full_graph()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert net.n_blocks == 80 and len(full.layers) == 80 * len(net.stacks[0].block.layers)
    weight_bytes = sum(l.weight_bits for l in full.layers) / 8
    assert weight_bytes == pytest.approx(68.4e9 / 2, rel=0.02)  # 4-bit projections
    assert peak < 200e6 and dt < 30  # never the 34 GB of weights
    (att,) = [l for l in net.stacks[0].block.layers if l.op_type == "ScaledDotProductAttention"]
    assert att.attrs["KVHeads"] == 8 and att.attrs["Heads"] == 64
    assert att.attrs["KVLen"] == 4096 and att.attrs["KVCache"] == "hbm"


def test_inspect_shows_one_block_of_a_config(capsys) -> None:
    from dse.cli import main

    assert main(["inspect", "--model", "llama2-7b"]) == 0
    out = capsys.readouterr().out
    assert "one of 32 identical blocks" in out and "ScaledDotProductAttention_0" in out
    assert out.count("MW=4096 MH=11008") == 2 and "MW=11008 MH=4096" in out  # SwiGLU
