"""Transformer architectures from Hugging Face ``config.json`` files, and quantization specs.

``load_arch("llama2-7b")`` reads a config shipped with dse (``dse/llm/configs``);
``load_arch("path/config.json")`` reads yours. Each family's keys are mapped onto one
normalized :class:`Arch`; keys dse does not know are an error (one line naming them), so a
typo never silently changes the network. Bad sizes (heads that do not divide the hidden size,
zero layers, ...) are refused the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.exceptions import SpecError

CONFIG_DIR = Path(__file__).parent / "configs"
MAX_CONFIG_BYTES = 1 << 20

# keys that carry no architecture (training, tokenizer, bookkeeping): accepted and ignored
IGNORED = frozenset({
    "architectures", "model_type", "initializer_range", "initializer_factor", "pad_token_id",
    "bos_token_id", "eos_token_id", "decoder_start_token_id", "torch_dtype",
    "transformers_version", "_name_or_path", "use_cache", "attention_probs_dropout_prob",
    "hidden_dropout_prob", "resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout_rate",
    "attention_dropout", "hidden_dropout", "classifier_dropout", "pretraining_tp",
    "slow_but_exact", "summary_type", "summary_use_proj", "summary_activation",
    "summary_proj_to_labels", "summary_first_dropout", "task_specific_params", "id2label",
    "label2id", "gradient_checkpointing", "output_past", "n_ctx", "type_vocab_size",
    "position_embedding_type", "relative_attention_max_distance", "rope_scaling",
    "rope_theta", "rope_parameters", "attention_bias", "mlp_bias", "tie_word_embeddings",
    "scale_attn_weights",
    "reorder_and_upcast_attn", "scale_attn_by_inverse_layer_idx", "layer_norm_epsilon",
    "layer_norm_eps", "rms_norm_eps", "is_encoder_decoder", "n_positions",
    "max_position_embeddings", "relative_attention_num_buckets", "masked_softmax_fusion",
    "apply_residual_connection_post_layernorm", "offset_alibi", "head_dim",
    "sliding_window", "use_sliding_window", "max_window_layers",  # Mistral/Qwen2: full context
})

#: keys dse reads only to check that they ask for what it models (transformers writes them
#: in the configs it saves): key -> the values dse models
AT_MODELED: dict[str, tuple[Any, ...]] = {
    "add_cross_attention": (False,),  # GPT-2 as a decoder alone
    "use_bidirectional_attention": (False, None),  # Gemma: causal attention
}
#: per-layer attention kinds (``layer_types``, newer transformers): sliding-window layers are
#: costed with the full context, as ``sliding_window`` is
LAYER_TYPES = ("full_attention", "sliding_attention")

LLAMA_KEYS = {"hidden": "hidden_size", "layers": "num_hidden_layers",
              "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
              "intermediate": "intermediate_size", "vocab": "vocab_size", "act": "hidden_act"}
# Llama's block structure (RMSNorm, rotary, gated MLP, grouped-query attention); Qwen2 adds
# biases to the q/k/v projections; Gemma gates with GELU (tanh) and sets its head size
LLAMA_LIKE = ("llama", "mistral", "qwen2", "gemma")

FAMILIES: dict[str, dict[str, str]] = {
    # normalized field -> the family's config key
    "llama": LLAMA_KEYS,
    "mistral": LLAMA_KEYS,
    "qwen2": LLAMA_KEYS,
    "gemma": {**LLAMA_KEYS, "head_dim": "head_dim", "act_alt": "hidden_activation"},
    "gpt2": {"hidden": "n_embd", "layers": "n_layer", "heads": "n_head", "vocab": "vocab_size",
             "act": "activation_function", "intermediate": "n_inner"},
    "bloom": {"hidden": "hidden_size", "layers": "n_layer", "heads": "n_head",
              "vocab": "vocab_size"},
    "bert": {"hidden": "hidden_size", "layers": "num_hidden_layers",
             "heads": "num_attention_heads", "intermediate": "intermediate_size",
             "vocab": "vocab_size", "act": "hidden_act"},
    "t5": {"hidden": "d_model", "layers": "num_layers", "heads": "num_heads",
           "intermediate": "d_ff", "vocab": "vocab_size", "head_dim": "d_kv",
           "decoder_layers": "num_decoder_layers", "act": "feed_forward_proj"},
}
ACTS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu",
        "gelu_pytorch_tanh": "gelu", "relu": "relu", "gated-gelu": "gelu"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Arch:
    """A transformer architecture, normalized across families."""

    name: str
    family: str
    hidden: int
    layers: int  # encoder layers for T5, the decoder stack otherwise
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    act: str  # silu | gelu | relu
    norm: str  # ln | rms
    eps: float
    position: str  # rope | learned | alibi | relative
    gated_mlp: bool  # SwiGLU (gate and up projections)
    fused_qkv: bool  # one QKV projection split in three (GPT-2, BLOOM)
    causal: bool
    encoder_decoder: bool
    decoder_layers: int
    max_positions: int
    tied_embeddings: bool

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def weights_per_block(self) -> int:
        """Weight count of one (decoder or encoder) block's projections."""
        attn = self.hidden * self.heads * self.head_dim * 2 + self.hidden * self.kv_dim * 2
        mlp = self.hidden * self.intermediate * (3 if self.gated_mlp else 2)
        return attn + mlp

    def params(self) -> int:
        """Weights of the projections and embeddings (norms and biases are negligible)."""
        blocks = self.layers * self.weights_per_block()
        if self.encoder_decoder:  # decoder blocks add cross-attention
            cross = self.hidden * self.heads * self.head_dim * 2 + self.hidden * self.kv_dim * 2
            blocks += self.decoder_layers * (self.weights_per_block() + cross)
        emb = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return blocks + emb


def _check_modeled(cfg: dict[str, Any], where: str) -> None:
    """The keys dse does not build from ask for what it models, or one line says not."""
    for key, ok in AT_MODELED.items():
        if key in cfg and not any(cfg[key] is v for v in ok):  # False, None: singletons
            raise SpecError(f"{where}: {key}={cfg[key]!r} is not modelled (dse builds "
                            f"{key}={ok[0]!r}); export QONNX with brevitas instead")
    kinds = cfg.get("layer_types")
    if kinds is None:
        return
    n = cfg.get("num_hidden_layers")
    if (not isinstance(kinds, list) or any(k not in LAYER_TYPES for k in kinds)
            or (isinstance(n, int) and len(kinds) != n)):
        raise SpecError(f"{where}: layer_types must list one of {', '.join(LAYER_TYPES)} per "
                        f"layer ({n} layers), got {kinds!r}")


def _int(cfg: dict[str, Any], key: str, where: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SpecError(f"{where}: {key}={v!r} must be a positive integer")
    return v


def arch_from_config(cfg: dict[str, Any], name: str) -> Arch:
    from dse.schemas_llm import check_hf_config

    where = f"config {name}"
    if not isinstance(cfg, dict):
        raise SpecError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise SpecError(f"{where}: model_type={family!r} is not supported; dse builds "
                        f"{', '.join(sorted(FAMILIES))} (others: export QONNX with brevitas)")
    keys = FAMILIES[family]
    known = IGNORED | set(keys.values()) | set(AT_MODELED) | {"layer_types"}
    unknown = sorted(k for k in cfg if k not in known)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} for model_type "
                        f"{family}; remove them or check the spelling")
    _check_modeled(cfg, where)
    typed = check_hf_config(cfg, where)  # types, ranges, finiteness, bounded sizes
    hidden = _int(cfg, keys["hidden"], where)
    layers = _int(cfg, keys["layers"], where)
    heads = _int(cfg, keys["heads"], where)
    vocab = _int(cfg, keys["vocab"], where)
    head_dim = _int(cfg, keys["head_dim"], where) if "head_dim" in keys else None
    if head_dim is None:
        if hidden % heads:
            raise SpecError(f"{where}: {keys['heads']}={heads} does not divide "
                            f"{keys['hidden']}={hidden}")
        head_dim = hidden // heads
    if family == "llama" and head_dim % 2:
        raise SpecError(f"{where}: head size {head_dim} ({keys['hidden']}={hidden} / "
                        f"{keys['heads']}={heads}) is odd; rotary position embeddings rotate "
                        "pairs of channels, so it must be even")
    kv_heads = heads
    if "kv_heads" in keys and cfg.get(keys["kv_heads"]) is not None:
        kv_heads = _int(cfg, keys["kv_heads"], where)
        if heads % kv_heads:
            raise SpecError(f"{where}: num_key_value_heads={kv_heads} must divide "
                            f"num_attention_heads={heads}")
    inter_key = keys.get("intermediate")
    intermediate = 4 * hidden if not inter_key or cfg.get(inter_key) is None else _int(
        cfg, inter_key, where)
    # Gemma's configs name the MLP activation hidden_activation (transformers 4.x reads it
    # first; 5.x reads hidden_act)
    act_cfg = cfg.get(keys.get("act_alt", "")) or cfg.get(keys.get("act", ""), "gelu")
    act_raw = str(act_cfg or "gelu").lower()
    if act_raw not in ACTS:
        raise SpecError(f"{where}: activation {act_raw!r} is not supported; use one of "
                        f"{', '.join(sorted(ACTS))}")
    enc_dec = family == "t5"
    dec_layers = layers
    if enc_dec and cfg.get("num_decoder_layers") is not None:
        dec_layers = _int(cfg, "num_decoder_layers", where)
    eps = next((v for v in (typed.rms_norm_eps, typed.layer_norm_epsilon,
                            typed.layer_norm_eps) if v is not None), 1e-5)
    max_pos = next((v for v in (typed.max_position_embeddings, typed.n_positions)
                    if v is not None), 2048)
    return Arch(
        name=name, family=family, hidden=hidden, layers=layers, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, intermediate=intermediate, vocab=vocab,
        act=ACTS[act_raw], norm="rms" if family in (*LLAMA_LIKE, "t5") else "ln", eps=eps,
        position="rope" if family in LLAMA_LIKE else {
            "gpt2": "learned", "bloom": "alibi", "bert": "learned", "t5": "relative"}[family],
        gated_mlp=family in LLAMA_LIKE or act_raw.startswith("gated"),
        fused_qkv=family in ("gpt2", "bloom"), causal=family != "bert",
        encoder_decoder=enc_dec, decoder_layers=dec_layers if enc_dec else 0,
        max_positions=max_pos,
        tied_embeddings=(typed.tie_word_embeddings if typed.tie_word_embeddings is not None
                         else family in ("gpt2", "bloom", "t5", "bert")),
    )


def shipped() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def is_config_ref(model: str | Path | None) -> bool:
    """A shipped config name (``llama2-7b``) or a ``.json`` file, rather than an ONNX model."""
    if model is None:
        return False
    s = str(model)
    return s in shipped() or s.endswith(".json")


def load_arch(ref: str | Path) -> Arch:
    s = str(ref)
    if s in shipped():
        path = CONFIG_DIR / f"{s}.json"
    else:
        path = Path(s)
        if not path.is_file():
            raise SpecError(f"config {s!r}: no such file, and not one of the shipped configs "
                            f"({', '.join(shipped())})")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise SpecError(f"config {path}: {path.stat().st_size:,} bytes; a config.json is "
                            f"a few kB (at most {MAX_CONFIG_BYTES:,})")
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SpecError(f"config {path}: not a UTF-8 text file") from None
    except RecursionError:
        raise SpecError(f"config {path}: nested too deeply to be a config.json") from None
    except (OSError, json.JSONDecodeError) as e:
        raise SpecError(f"config {path}: not readable JSON ({e})") from None
    return arch_from_config(cfg, path.stem)


# -- quantization ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class QuantSpec:
    """``weights``/``acts``/``kv``: FINN integer types such as INT4, INT8 (``int4`` accepted),
    or minifloats (``fp4``, ``fp6``, ``fp8``, ``fp8e5m2``: OCP formats, dse's ``FP<E,M,B>``).
    ``group``: weights quantized per group of this many input channels (0: per tensor or per
    output channel; the scales are a handful of bits per group and cost their storage)."""

    weights: str = "INT4"
    acts: str = "INT8"
    kv: str = "INT8"
    group: int = 0
    # online Hadamard rotations (dse.llm.rotation: QuaRot / SpinQuant positions) and model
    # expansion (the rotated dimensions padded by this fraction; Franco et al. 2025)
    rotation: str = "none"
    expand: float = 0.0

    @property
    def weight_bits(self) -> int:
        return _bits(self.weights)

    @property
    def kv_bits(self) -> int:
        return _bits(self.kv)


def _bits(t: str) -> int:
    from dse.models._common import bits

    return bits(t)


def quant_spec(weights: str = "int4", acts: str = "int8", kv: str | None = None,
               group: int = 0, rotation: str = "none", expand: float = 0.0) -> QuantSpec:
    from dse.llm.rotation import check_rotation
    from dse.models._common import dtype
    from dse.models.minifloat_type import NAMED

    out = {}
    for what, v in (("--weights", weights), ("--acts", acts), ("--kv", kv or acts)):
        name = str(v).upper()
        if name in ("FP16", "BF16", "FLOAT16"):  # unquantized 16-bit (GPU/CPU baselines)
            out[what] = "FLOAT16"
            continue
        if str(v).lower() in NAMED or str(v).startswith("FP<"):  # a minifloat
            out[what] = NAMED.get(str(v).lower(), str(v))
            dtype(out[what])  # validates FP<E,M,B[,conv]>
            continue
        try:
            t = dtype(name)
        except Exception:
            raise SpecError(f"{what} {v!r}: not a FINN integer type or minifloat; use e.g. "
                            f"int4, int8, uint8, {', '.join(sorted(NAMED))}") from None
        if not t.is_integer() or t.bitwidth() > 16 or t.bitwidth() < 1:
            raise SpecError(f"{what} {v!r}: use an integer type of 1 to 16 bits (int4, int8)")
        out[what] = name
    if group < 0:
        raise SpecError(f"--group {group}: must be 0 (per tensor) or a group size")
    check_rotation(rotation, expand)
    return QuantSpec(weights=out["--weights"], acts=out["--acts"], kv=out["--kv"],
                     group=int(group), rotation=rotation, expand=float(expand))
