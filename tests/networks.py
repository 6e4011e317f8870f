"""Test networks we export ourselves (brevitas, seeded random weights, nothing downloaded), and
their FINN-ONNX twins made by finn-plus's own ConvertQONNXtoFINN."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

# brevitas_examples.bnn_pynq configurations FINN's examples build, and their input shapes
BNN_PYNQ = {
    "cnv_2w2a": (1, 3, 32, 32),   # CNV, 2-bit weights and activations (signed: offset Adds)
    "cnv_1w2a": (1, 3, 32, 32),   # binary weights, 2-bit activations (BIPOLAR -> INT2 rule)
    "lfc_1w2a": (1, 1, 28, 28),   # LFC MLP 4x1024
    "tfc_2w2a": (1, 1, 28, 28),
}


def finn_hw_model(folder: Path, stage: str, tmp: Path) -> Path:
    """``<model>_hw_<stage>.onnx`` in a ``shared/models/finn_hw`` folder (stage: generic,
    specialized or folded), decompressed into ``tmp`` when it is stored as ``.xz``."""
    import lzma

    for cand in sorted(folder.glob(f"*_hw_{stage}.onnx*")):
        if cand.suffix == ".xz":
            out = tmp / cand.stem
            out.write_bytes(lzma.open(cand).read())
            return out
        return cand
    raise FileNotFoundError(f"no *_hw_{stage}.onnx in {folder}")


def export_bnn_pynq(name: str, out_dir: Path) -> Path:
    """QONNX export (TorchScript exporter, qonnx-cleaned) of a bnn_pynq model, seed 0."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from qonnx.util.cleanup import cleanup

    path = out_dir / f"{name}.onnx"
    if path.exists():
        return path
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = model_with_cfg(name, pretrained=False)
        model.eval()
        export_qonnx(model, torch.randn(BNN_PYNQ[name]), str(path), dynamo=False)
        cleanup(str(path), out_file=str(path))
    return path


def to_finn_onnx(finn_env: Path, qonnx: Path) -> Path:
    """The FINN-ONNX (MultiThreshold) twin, converted by finn-plus itself."""
    from dse.backends.finn.runner import run_driver

    out = qonnx.with_name(qonnx.stem + "_finn.onnx")
    if not out.exists():
        r = run_driver(finn_env, "to_finn", str(qonnx), str(out))
        assert r.get("ok"), f"finn-plus ConvertQONNXtoFINN failed on {qonnx.name}: {r}"
    return out


def finn_estimate(finn_env: Path, qonnx: Path, target_fps: int) -> tuple[Path, Path]:
    """finn-plus's own default estimate-only flow (SetFolding, minimize_bit_width): the folded
    HW-layer graph and the report directory."""
    from dse.backends.finn.runner import run_driver

    out = qonnx.with_name(qonnx.stem + "_finn_build")
    r = run_driver(finn_env, "estimate", str(qonnx), str(out), str(target_fps))
    assert r.get("ok"), f"finn-plus's estimate flow failed on {qonnx.name}: {r}"
    return Path(r["path"]), Path(r["report_dir"])


# --- tiny transformers: model classes of `transformers` (random seeded weights, built from
# configs, nothing downloaded), quantized with brevitas' layerwise_quantize ---------------------

SEQ = 8
HIDDEN = 32


def _linear_from_conv1d(module):  # GPT-2 uses transformers' Conv1D (x @ W + b, W is in x out)
    import torch
    from transformers.pytorch_utils import Conv1D

    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            lin = torch.nn.Linear(child.weight.shape[0], child.weight.shape[1])
            with torch.no_grad():
                lin.weight.copy_(child.weight.T)
                lin.bias.copy_(child.bias)
            setattr(module, name, lin)
        else:
            _linear_from_conv1d(child)
    return module


def _causal_mask(torch, n: int):
    return torch.full((n, n), float("-inf")).triu(1)[None, None]


LLAMA_LIKE = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "gemma": "Gemma"}
# K/V heads of the Llama-like blocks (grouped-query 2 of 4 unless named; Gemma's one: MQA)
KV_HEADS = {"llama": 4, "gemma": 1}


def transformer_block(kind: str, batch: bool = True):
    """(module, example inputs) of a tiny transformer block of ``kind``: llama (decoder with
    RMSNorm, rotary embeddings, causal mask, SwiGLU; mistral and qwen2 the same with 2 K/V
    heads, qwen2 with q/k/v biases, gemma with 1 K/V head and a GELU-gated MLP), gpt2
    (causal, LayerNorm, GELU), t5 (encoder block + decoder block with cross-attention,
    RMSNorm, relative position bias, ReLU), bert (MHA encoder: LayerNorm, GELU)."""
    import torch  # the test extra installs both: a missing one must fail, not skip
    import transformers  # noqa: F401

    torch.manual_seed(0)
    T, d = SEQ, HIDDEN
    x = torch.randn(1, T, d) if batch else torch.randn(T, d)
    if kind in LLAMA_LIKE:  # Mistral and Qwen2 (q/k/v biases): Llama blocks with GQA
        import importlib

        mod = importlib.import_module(f"transformers.models.{kind}.modeling_{kind}")
        prefix = LLAMA_LIKE[kind]
        config_cls = getattr(transformers, f"{prefix}Config")
        LlamaDecoderLayer = getattr(mod, f"{prefix}DecoderLayer")  # noqa: N806
        LlamaRotaryEmbedding = getattr(mod, f"{prefix}RotaryEmbedding")  # noqa: N806
        extra = {"head_dim": d // 4} if kind == "gemma" else {}  # Gemma's default is 256
        cfg = config_cls(hidden_size=d, intermediate_size=2 * d, num_attention_heads=4,
                         num_key_value_heads=KV_HEADS.get(kind, 2), num_hidden_layers=1,
                         vocab_size=64, max_position_embeddings=2 * T, **extra)
        cfg._attn_implementation = "eager"

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layer, self.rope = LlamaDecoderLayer(cfg, 0), LlamaRotaryEmbedding(cfg)

            def forward(self, h):
                h3 = h if h.dim() == 3 else h[None]
                cos, sin = self.rope(h3, torch.arange(T)[None])
                out = self.layer(h3, attention_mask=_causal_mask(torch, T),
                                 position_embeddings=(cos, sin))
                return out if h.dim() == 3 else out[0]
        return Block(), (x,)
    if kind == "gpt2":
        from transformers import GPT2Config
        from transformers.models.gpt2.modeling_gpt2 import GPT2Block
        cfg = GPT2Config(n_embd=d, n_head=4, n_layer=1, n_positions=2 * T,
                         activation_function="gelu")
        cfg._attn_implementation = "eager"

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = _linear_from_conv1d(GPT2Block(cfg, layer_idx=0))

            def forward(self, h):
                out = self.layer(h, attention_mask=_causal_mask(torch, T))
                return out[0] if isinstance(out, tuple) else out
        return Block(), (x,)
    if kind == "t5":
        from transformers import T5Config
        from transformers.models.t5.modeling_t5 import T5Block
        cfg = T5Config(d_model=d, d_kv=8, d_ff=2 * d, num_heads=4, num_layers=1,
                       vocab_size=64, relative_attention_num_buckets=8)
        cfg._attn_implementation = "eager"
        dcfg = T5Config(**{**cfg.to_dict(), "is_decoder": True})
        dcfg._attn_implementation = "eager"

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = T5Block(cfg, has_relative_attention_bias=True, layer_idx=0)
                self.dec = T5Block(dcfg, has_relative_attention_bias=True, layer_idx=0)

            def forward(self, src, tgt):
                e = self.enc(src)[0]
                out = self.dec(tgt, attention_mask=_causal_mask(torch, T),
                               encoder_hidden_states=e)
                return out[0]
        return Block(), (x, torch.randn(*x.shape))
    if kind == "bert":
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertLayer
        cfg = BertConfig(hidden_size=d, num_attention_heads=4, intermediate_size=2 * d,
                         num_hidden_layers=1)
        cfg._attn_implementation = "eager"

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = BertLayer(cfg)

            def forward(self, h):
                out = self.layer(h)
                return out[0] if isinstance(out, tuple) else out
        return Block(), (x,)
    raise ValueError(kind)


def _trained_looking(torch, model) -> None:
    """Non-trivial biases and norm parameters, as a trained model has (freshly initialized
    ones are 0 and 1, which the lowering rightly drops)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:  # norm weights
                p.copy_(0.5 + torch.rand(p.shape, generator=g))


def export_transformer(kind: str, out_dir: Path, *, dynamo: bool = False,
                       batch: bool = True) -> Path:
    """QONNX export of a brevitas-quantized (int8 weights and inputs of every Linear) tiny
    transformer block, with the TorchScript (default) or the dynamo exporter."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas")

    path = out_dir / f"{kind}_{'dynamo' if dynamo else 'ts'}{'' if batch else '_nobatch'}.onnx"
    if path.exists():
        return path
    model, inputs = transformer_block(kind, batch)
    return _export_quantized(model, inputs, path, dynamo)


# --- whole tiny models of many families, exported as a new user would (2 layers, random weights
# from config classes only, brevitas layerwise_quantize: int8 weights and inputs of every Linear)

def _family_config(family: str):  # noqa: C901 - one branch per family
    """(model class, config, input kind) of a tiny ``family`` model; 2 layers, hidden 32,
    4 heads of 8, sequence SEQ. Variants where the family has them: grouped-query K/V
    (llama, mistral, qwen2, gemma), biases (qwen2, gpt2, gpt_neox, opt, bert, vit, bart),
    fused QKV and gate/up (phi3, gpt2, gpt_neox), partial rotary (gpt_neox, phi3, gptj),
    interleaved rotary (gptj),
    tied embeddings (llama, qwen2, gemma, gpt2, opt)."""
    import transformers as tf

    d, heads, layers = HIDDEN, 4, 2
    common = dict(hidden_size=d, intermediate_size=2 * d, num_attention_heads=heads,
                  num_hidden_layers=layers, vocab_size=64, max_position_embeddings=4 * SEQ)
    if family == "llama":
        return tf.LlamaForCausalLM, tf.LlamaConfig(**common, num_key_value_heads=2,
                                                   tie_word_embeddings=True), "embeds"
    if family == "mistral":
        return tf.MistralForCausalLM, tf.MistralConfig(**common, num_key_value_heads=2,
                                                       sliding_window=None), "embeds"
    if family == "qwen2":
        return tf.Qwen2ForCausalLM, tf.Qwen2Config(**common, num_key_value_heads=2,
                                                   tie_word_embeddings=True), "embeds"
    if family == "phi3":
        return tf.Phi3ForCausalLM, tf.Phi3Config(**common, num_key_value_heads=heads,
                                                 partial_rotary_factor=0.5,
                                                 pad_token_id=0), "embeds"
    if family == "gemma":
        return tf.GemmaForCausalLM, tf.GemmaConfig(**common, num_key_value_heads=1,
                                                   head_dim=8), "embeds"
    if family == "gpt2":
        return tf.GPT2LMHeadModel, tf.GPT2Config(n_embd=d, n_head=heads, n_layer=layers,
                                                 n_positions=4 * SEQ, vocab_size=64,
                                                 activation_function="gelu_new"), "embeds"
    if family == "gptj":  # interleaved rotary (rotate_every_two) on 4 of the 8 head channels
        return tf.GPTJForCausalLM, tf.GPTJConfig(n_embd=d, n_head=heads, n_layer=layers,
                                                 n_inner=2 * d, n_positions=4 * SEQ,
                                                 vocab_size=64, rotary_dim=4), "embeds"
    if family == "gpt_neox":
        return tf.GPTNeoXForCausalLM, tf.GPTNeoXConfig(**common, rotary_pct=0.25,
                                                       use_parallel_residual=True), "embeds"
    if family == "opt":
        return tf.OPTForCausalLM, tf.OPTConfig(hidden_size=d, ffn_dim=2 * d,
                                               num_attention_heads=heads,
                                               num_hidden_layers=layers, vocab_size=64,
                                               max_position_embeddings=4 * SEQ,
                                               word_embed_proj_dim=d), "embeds"
    if family == "bert":
        return tf.BertModel, tf.BertConfig(**common), "embeds"
    if family == "vit":
        return tf.ViTModel, tf.ViTConfig(hidden_size=d, intermediate_size=2 * d,
                                         num_attention_heads=heads, num_hidden_layers=layers,
                                         image_size=16, patch_size=4, num_channels=3), "pixels"
    if family == "bart_encoder":
        cfg = tf.BartConfig(d_model=d, encoder_ffn_dim=2 * d, encoder_attention_heads=heads,
                            encoder_layers=layers, decoder_layers=1, vocab_size=64,
                            max_position_embeddings=4 * SEQ)
        from transformers.models.bart.modeling_bart import BartEncoder
        return BartEncoder, cfg, "embeds"
    raise ValueError(family)


FAMILIES = ("llama", "mistral", "qwen2", "phi3", "gemma", "gpt2", "gpt_neox", "gptj", "opt",
            "bert", "vit", "bart_encoder")


def family_model(family: str, batch: bool = True):
    """(module, example input) of a whole tiny ``family`` model fed with token embeddings (or
    pixels for ViT), returning its last hidden states or logits."""
    import torch

    torch.manual_seed(0)
    cls, cfg, kind = _family_config(family)
    cfg._attn_implementation = "eager"
    net = (cls(cfg, add_pooling_layer=False) if family in ("bert", "vit") else cls(cfg)).eval()
    if family == "gpt2":
        _linear_from_conv1d(net)

    class Whole(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            x3 = x if x.dim() == (4 if kind == "pixels" else 3) else x[None]
            out = self.net(pixel_values=x3) if kind == "pixels" else self.net(inputs_embeds=x3)
            y = out.logits if hasattr(out, "logits") else out.last_hidden_state
            return y if x.dim() == x3.dim() else y[0]

    if kind == "pixels":
        x = torch.randn(1, 3, 16, 16) if batch else torch.randn(3, 16, 16)
    else:
        x = torch.randn(1, SEQ, HIDDEN) if batch else torch.randn(SEQ, HIDDEN)
    return Whole(), x


def export_family(family: str, out_dir: Path, *, dynamo: bool = False,
                  batch: bool = True) -> Path:
    """QONNX export of a brevitas-quantized whole tiny ``family`` model (cached in out_dir)."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas")

    path = out_dir / f"fam_{family}_{'dynamo' if dynamo else 'ts'}{'' if batch else '_nb'}.onnx"
    if path.exists():
        return path
    model, x = family_model(family, batch)
    return _export_quantized(model, (x,), path, dynamo)


def _export_quantized(model, inputs: tuple, path: Path, dynamo: bool) -> Path:
    """brevitas layerwise_quantize (int8 weights and inputs of every Linear) and QONNX export
    of ``model`` with trained-looking biases and norm parameters."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas.graph.quantize import layerwise_quantize

    _trained_looking(torch, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = layerwise_quantize(model.eval())
        with torch.no_grad():
            export_qonnx(q, inputs if len(inputs) > 1 else inputs[0], str(path), dynamo=dynamo)
    return path


def with_topk(src: Path, dst: Path) -> Path:
    """``src`` with a TopK(k=1) on its output, as FINN's examples build their classifiers
    (InsertTopK: the accelerator returns the class index, FINN's LabelSelect)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    out = g.output[0]
    g.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "topk_k"))
    g.node.append(helper.make_node("TopK", [out.name, "topk_k"], ["topk_values", "topk_index"],
                                   axis=-1, name="TopK_0"))
    shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
    shape[-1] = 1
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("topk_index", TensorProto.INT64, shape))
    onnx.save(m, str(dst))
    return dst
