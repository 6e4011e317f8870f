"""Validation of the LLM-side inputs (pydantic), beside :mod:`dse.schemas`: Hugging Face
architecture configs, GPU/CPU device entries, ``dse calibrate`` measurement files, prices and
the LLM command-line numbers. As there, a failure is one line naming the file, the field, the
value and the fix, and every number is finite and bounded, so the work an input asks for is
bounded too (a 1e9 hidden size or 1e6 layers is refused up front, not after 24 GB of RAM).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from dse.exceptions import SpecError
from dse.schemas import MAX_GBPS, MAX_GIB, Number, check, describe

# ---------------------------------------------------------------------------------------------
# Hugging Face architecture configs (dse/llm/config.py maps them onto an Arch)

#: bounds far above any published model (Llama-3-405B: hidden 16,384, 126 layers, FFN 53,248,
#: vocabulary 128,256; the largest vocabularies are ~256k) and low enough that one block's
#: graph, its folding candidates and the split search stay within seconds and megabytes
MAX_HIDDEN = 1 << 16
MAX_LAYERS = 1024
MAX_HEADS = 1024
MAX_INTERMEDIATE = 1 << 19
MAX_VOCAB = 1 << 21
MAX_HEAD_DIM = 4096
MAX_POSITIONS = 1 << 24
#: tokens per frame (--seq) and cached tokens (--context)
MAX_TOKENS = 1 << 20
#: one block's real constants (rotary tables: seq x head_dim floats, twice): at most this many
MAX_BLOCK_CONSTANTS = 1 << 27

Pos = Annotated[StrictInt, Field(ge=1)]
Frac = Annotated[Number, Field(ge=0, le=1)]
Eps = Annotated[Number, Field(gt=0, lt=1)]


def _pos(hi: int) -> Any:
    return Annotated[StrictInt, Field(ge=1, le=hi)]


#: keys a config may set to null (Hugging Face writes null for "derive it": GPT-2's n_inner)
NOT_NULL = ("hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer", "num_layers",
            "num_attention_heads", "n_head", "num_heads", "vocab_size", "hidden_act",
            "activation_function", "feed_forward_proj", "rms_norm_eps", "layer_norm_epsilon",
            "layer_norm_eps", "max_position_embeddings", "n_positions", "n_ctx",
            "tie_word_embeddings")
NULLABLE = frozenset({"n_inner", "num_key_value_heads", "head_dim", "intermediate_size",
                      "num_decoder_layers", "classifier_dropout", "d_kv"})


class HFConfigIn(BaseModel):
    """The keys dse reads or accepts from a ``config.json``, typed and bounded. Keys of no
    architectural meaning that dse ignores keep any JSON value; unknown keys are refused by
    :func:`dse.llm.config.arch_from_config` per family."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    model_type: StrictStr
    # sizes (each family names them differently)
    hidden_size: _pos(MAX_HIDDEN) | None = None  # type: ignore[valid-type]
    n_embd: _pos(MAX_HIDDEN) | None = None  # type: ignore[valid-type]
    d_model: _pos(MAX_HIDDEN) | None = None  # type: ignore[valid-type]
    num_hidden_layers: _pos(MAX_LAYERS) | None = None  # type: ignore[valid-type]
    n_layer: _pos(MAX_LAYERS) | None = None  # type: ignore[valid-type]
    num_layers: _pos(MAX_LAYERS) | None = None  # type: ignore[valid-type]
    num_decoder_layers: _pos(MAX_LAYERS) | None = None  # type: ignore[valid-type]
    num_attention_heads: _pos(MAX_HEADS) | None = None  # type: ignore[valid-type]
    n_head: _pos(MAX_HEADS) | None = None  # type: ignore[valid-type]
    num_heads: _pos(MAX_HEADS) | None = None  # type: ignore[valid-type]
    num_key_value_heads: _pos(MAX_HEADS) | None = None  # type: ignore[valid-type]
    intermediate_size: _pos(MAX_INTERMEDIATE) | None = None  # type: ignore[valid-type]
    n_inner: _pos(MAX_INTERMEDIATE) | None = None  # type: ignore[valid-type]
    d_ff: _pos(MAX_INTERMEDIATE) | None = None  # type: ignore[valid-type]
    vocab_size: _pos(MAX_VOCAB) | None = None  # type: ignore[valid-type]
    d_kv: _pos(MAX_HEAD_DIM) | None = None  # type: ignore[valid-type]
    head_dim: _pos(MAX_HEAD_DIM) | None = None  # type: ignore[valid-type]
    hidden_act: StrictStr | None = None
    activation_function: StrictStr | None = None
    feed_forward_proj: StrictStr | None = None
    # numbers dse reads
    rms_norm_eps: Eps | None = None
    layer_norm_epsilon: Eps | None = None
    layer_norm_eps: Eps | None = None
    max_position_embeddings: _pos(MAX_POSITIONS) | None = None  # type: ignore[valid-type]
    n_positions: _pos(MAX_POSITIONS) | None = None  # type: ignore[valid-type]
    n_ctx: _pos(MAX_POSITIONS) | None = None  # type: ignore[valid-type]
    tie_word_embeddings: StrictBool | None = None
    # ignored by dse, but typed so that a wrong type is not silently taken
    is_encoder_decoder: StrictBool | None = None
    use_cache: StrictBool | None = None
    attention_bias: StrictBool | None = None
    mlp_bias: StrictBool | None = None
    rope_theta: Annotated[Number, Field(gt=0, le=1e12)] | None = None
    initializer_range: Annotated[Number, Field(ge=0, le=1e3)] | None = None
    initializer_factor: Annotated[Number, Field(ge=0, le=1e3)] | None = None
    attention_probs_dropout_prob: Frac | None = None
    hidden_dropout_prob: Frac | None = None
    resid_pdrop: Frac | None = None
    embd_pdrop: Frac | None = None
    attn_pdrop: Frac | None = None
    dropout_rate: Frac | None = None
    attention_dropout: Frac | None = None
    hidden_dropout: Frac | None = None
    classifier_dropout: Frac | None = None
    type_vocab_size: Annotated[StrictInt, Field(ge=0, le=MAX_VOCAB)] | None = None
    relative_attention_num_buckets: _pos(1 << 16) | None = None  # type: ignore[valid-type]
    relative_attention_max_distance: _pos(MAX_POSITIONS) | None = None  # type: ignore

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("is null; give a value or leave the key out")
        return v

    @model_validator(mode="after")
    def _bounded_work(self) -> "HFConfigIn":
        hidden = self.hidden_size or self.n_embd or self.d_model or 0
        heads = self.num_attention_heads or self.n_head or self.num_heads or 0
        if hidden and heads and heads > hidden:
            raise ValueError(f"{heads} attention heads for a hidden size of {hidden}: "
                             "every head needs at least one channel")
        return self


def check_hf_config(cfg: Any, where: str) -> HFConfigIn:
    """A config.json's document validated (types, ranges, finiteness, bounds)."""
    if not isinstance(cfg, dict):
        raise SpecError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    return check(HFConfigIn, cfg, where)


def check_block_size(head_dim: int, seq: int, context: int, where: str) -> None:
    """Refuse a frame whose one-block constants (rotary tables) would not fit in memory."""
    need = 2 * max(seq, context) * head_dim
    if need > MAX_BLOCK_CONSTANTS:
        raise SpecError(f"{where}: {max(seq, context):,} tokens x head size {head_dim} needs "
                        f"{need * 4 / 2**30:,.0f} GiB of rotary tables for one block; give "
                        f"at most {MAX_BLOCK_CONSTANTS // (2 * head_dim):,} tokens")


# ---------------------------------------------------------------------------------------------
# GPU / CPU devices ([[devices]] of a board file, dse/devices/data/devices.json)

PRECISIONS = ("int4", "int8", "fp8", "fp16", "fp32")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
Positive = Annotated[Number, Field(gt=0)]


class EfficiencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    compute: Annotated[Number, Field(gt=0, le=1)] | None = None
    memory: Annotated[Number, Field(gt=0, le=1)] | None = None
    kernel_overhead_s: Annotated[Number, Field(ge=0, le=1)] | None = None
    kernels_per_block: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = None
    overlap: Annotated[Number, Field(ge=0, le=1)] | None = None
    attention: Annotated[Number, Field(gt=0, le=1)] | None = None
    source: StrictStr | None = None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: Annotated[StrictStr, Field(pattern=NAME_RE.pattern)]
    kind: Literal["gpu", "cpu"]
    #: at least 1 MiB: a device that holds nothing is a typo, not a device
    memory_gib: Annotated[Number, Field(ge=2**-10, le=MAX_GIB)]
    memory_gbps: Annotated[Number, Field(gt=0, le=MAX_GBPS)]
    nic_gbps: Annotated[Number, Field(gt=0, le=MAX_GBPS)]
    host_gbps: Annotated[Number, Field(gt=0, le=MAX_GBPS)] = 25.0
    peak_tops: dict[Literal[PRECISIONS], Annotated[Number, Field(gt=0, le=1e6)]]  # type: ignore
    efficiency: EfficiencyIn | None = None
    price_per_hour: Annotated[Number, Field(ge=0, le=1e6)] | None = None
    source: StrictStr = ""
    derivation: StrictStr = ""

    @model_validator(mode="after")
    def _fp32(self) -> "DeviceIn":
        if "fp32" not in self.peak_tops:
            raise ValueError("peak_tops needs an fp32 entry (the fallback for every "
                             "precision the device lacks)")
        return self


def check_device(d: Any, where: str, board_names: Sequence[str] = ()) -> DeviceIn:
    """One [[devices]] entry validated; its name may not shadow a board."""
    if not isinstance(d, dict):
        raise SpecError(f"{where}: every [[devices]] entry must be a table, not {d!r:.40}")
    name = d.get("name", "?")
    dev = check(DeviceIn, d, f"{where}: device {name!r}")
    clash = next((b for b in board_names if b.lower() == dev.name.lower()), None)
    if clash:
        raise SpecError(f"{where}: device {dev.name!r} has the name of the board {clash!r}; "
                        "rename the device (a name means one thing in --boards)")
    return dev


# ---------------------------------------------------------------------------------------------
# dse calibrate measurements (CSV, one kernel step per row)

MEASUREMENT_COLUMNS = ("params", "weight_bits", "tokens", "attn_gops", "kv_mb", "act_mb",
                       "blocks", "precision", "measured_ms")
MAX_MEASUREMENT_BYTES = 256 << 20
MAX_MEASUREMENT_ROWS = 1_000_000


class MeasurementIn(BaseModel):
    """One row: a step of ``tokens`` tokens through ``blocks`` blocks of ``params`` weights.
    Units: params in weights, attn_gops in 1e9 ops, kv_mb/act_mb in 1e6 bytes, measured_ms in
    milliseconds."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)
    params: Annotated[Number, Field(gt=0, le=1e15)]
    weight_bits: Annotated[Number, Field(gt=0, le=64)]
    tokens: Annotated[int, Field(ge=1, le=1 << 30)]
    attn_gops: Annotated[Number, Field(ge=0, le=1e12)]
    kv_mb: Annotated[Number, Field(ge=0, le=1e12)]
    act_mb: Annotated[Number, Field(ge=0, le=1e12)]
    blocks: Annotated[Number, Field(gt=0, le=100_000)]
    precision: Literal[PRECISIONS]  # type: ignore[valid-type]
    measured_ms: Annotated[Number, Field(gt=0, le=1e9)]


def _cell(v: str | None) -> Any:
    """A CSV cell as a number where it is one (pydantic then checks type and range)."""
    if v is None:
        return None
    s = v.strip()
    try:
        x = float(s)
    except ValueError:
        return s.lower()
    if x.is_integer() and math.isfinite(x) and "." not in s and "e" not in s.lower():
        return int(s)
    return x


def iter_measurements(path: str | Path) -> Iterator[MeasurementIn]:
    """The rows of a measurement CSV, streamed and validated one by one."""
    p = Path(path)
    where = f"--measurements {p}"
    try:
        size = p.stat().st_size
        f = p.open(newline="", encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{where}: {e.strerror or e}") from None
    if size > MAX_MEASUREMENT_BYTES:
        f.close()
        raise SpecError(f"{where}: {size / 2**20:,.0f} MiB; give at most "
                        f"{MAX_MEASUREMENT_BYTES >> 20} MiB of measurements")
    with f:
        try:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in MEASUREMENT_COLUMNS if c not in header]
            if missing:
                raise SpecError(f"{where}: missing column(s) {', '.join(missing)} (need "
                                f"{', '.join(MEASUREMENT_COLUMNS)}; see docs/devices.md)")
            for i, row in enumerate(reader, start=2):
                if not any(c.strip() for c in row):
                    continue
                if i - 1 > MAX_MEASUREMENT_ROWS:
                    raise SpecError(f"{where}: more than {MAX_MEASUREMENT_ROWS:,} rows")
                if len(row) != len(header):
                    raise SpecError(f"{where}: row {i} has {len(row)} cells, the header "
                                    f"{len(header)}")
                yield _row(dict(zip(header, row, strict=True)), f"{where}: row {i}")
        except UnicodeDecodeError:
            raise SpecError(f"{where}: not a UTF-8 text file") from None
        except csv.Error as e:
            raise SpecError(f"{where}: not a readable CSV file ({e})") from None


def _row(raw: Mapping[str, str], where: str) -> MeasurementIn:
    data = {k: _cell(raw.get(k)) for k in MEASUREMENT_COLUMNS}
    try:
        return MeasurementIn.model_validate(data)
    except ValidationError as e:
        raise SpecError(describe(e, where)) from None


# ---------------------------------------------------------------------------------------------
# prices and the LLM command-line numbers


def check_prices(prices: Mapping[str, float], known: Sequence[str]) -> dict[str, float]:
    """--price entries: finite, >= 0, for a board or device dse knows (a typo would silently
    drop the cost line)."""
    out: dict[str, float] = {}
    lower = {k.lower(): k for k in known}
    for name, v in prices.items():
        if not math.isfinite(v) or v < 0 or v > 1e6:
            raise SpecError(f"--price {name}={v}: give a finite price per hour >= 0")
        if name.lower() not in lower:
            raise SpecError(f"--price {name}={v:g}: {name!r} is no board or device "
                            f"({', '.join(sorted(known))})")
        out[name] = v
    return out


class LLMOptions(BaseModel):
    """What ``dse optimize --model <config>`` takes beyond the model and the boards."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    seq: Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS)] = 128
    context: Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS)] = 1024
    sequences: Annotated[StrictInt, Field(ge=1, le=1 << 16)] = 1
    group: Annotated[StrictInt, Field(ge=0, le=MAX_INTERMEDIATE)] = 0
    hbm_efficiency: Annotated[Number, Field(gt=0, le=1)] = 0.9
    trials: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
