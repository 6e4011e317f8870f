"""An adversarial corpus for the newer inputs (issue 26): LLM configs, device files,
calibration measurements, prices, the LLM command-line numbers, --boards syntax, --out
targets, LLM explorations and hand-edited plans. Every case checks the exact exit code, one
line on stderr naming what is wrong, no traceback, no nan/inf/negative figure in the output,
and --out left exactly as it was. In-process (``dse.cli.main``), so the corpus stays fast."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dse.cli import main
from tests.fuzz_strategies import DEVICE_FILE, MEASUREMENT_HEADER, MEASUREMENT_ROW, TINY_LLM

FIGURE = re.compile(r"(?<![\w.])(nan|inf|-\d)", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    argv: Callable[[Path], list[str]]  # built in a fresh directory (files written there)
    code: int
    match: str


def _write(d: Path, name: str, content: str | bytes) -> str:
    p = d / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def _snapshot(d: Path) -> dict[str, bytes] | None:
    if not d.exists():
        return None
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def run_case(case: Case, tmp: Path, capsys) -> str:
    out = tmp / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = case.argv(tmp)
    if "--out" not in argv and argv[0] in ("optimize", "explore", "emit", "calibrate"):
        argv = [*argv, "--out", str(out)]
    before = _snapshot(out)
    rc = main(argv)
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert rc == case.code, (rc, cap.err)
    assert "Traceback" not in cap.err
    assert len(lines) == 1, cap.err
    assert re.search(case.match, lines[0]), lines[0]
    assert not FIGURE.search(cap.out), cap.out
    assert _snapshot(out) == before, "a failing command changed --out"
    return lines[0]


# ---------------------------------------------------------------------------------------------
# LLM configs


def _config(change: dict | None = None, drop: tuple[str, ...] = (), raw: str | bytes | None = None
            ) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        if raw is not None:
            path = _write(d, "config.json", raw)
        else:
            doc = {k: v for k, v in TINY_LLM.items() if k not in drop}
            doc.update(change or {})
            path = _write(d, "config.json", json.dumps(doc, allow_nan=True))
        return ["optimize", "--model", path, "--quiet", "--context", "64"]
    return build


CONFIGS = {
    "rms_norm_eps negative": (_config({"rms_norm_eps": -1e-5}), r"rms_norm_eps = -1e-05"),
    "rms_norm_eps nan": (_config({"rms_norm_eps": float("nan")}), r"rms_norm_eps = nan"),
    "rms_norm_eps inf": (_config({"rms_norm_eps": float("inf")}), r"rms_norm_eps = inf"),
    "rms_norm_eps text": (_config({"rms_norm_eps": "abc"}), r"rms_norm_eps = 'abc'"),
    "rms_norm_eps zero": (_config({"rms_norm_eps": 0}), r"rms_norm_eps = 0"),
    "rms_norm_eps one": (_config({"rms_norm_eps": 1.0}), r"rms_norm_eps = 1.0"),
    "max_position_embeddings float": (_config({"max_position_embeddings": 2048.5}),
                                      r"max_position_embeddings = 2048.5"),
    "max_position_embeddings null": (_config({"max_position_embeddings": None}),
                                     r"max_position_embeddings"),
    "max_position_embeddings zero": (_config({"max_position_embeddings": 0}),
                                     r"max_position_embeddings = 0"),
    "max_position_embeddings 1e30": (_config({"max_position_embeddings": 10**30}),
                                     r"max_position_embeddings"),
    "tie_word_embeddings no": (_config({"tie_word_embeddings": "no"}),
                               r"tie_word_embeddings = 'no'"),
    "tie_word_embeddings 1": (_config({"tie_word_embeddings": 1}), r"tie_word_embeddings = 1"),
    "hidden 1e9": (_config({"hidden_size": 10**9}), r"hidden_size = 1000000000"),
    "hidden 2e18": (_config({"hidden_size": 2 * 10**18}), r"hidden_size"),
    "hidden float": (_config({"hidden_size": 64.0}), r"hidden_size = 64.0"),
    "hidden bool": (_config({"hidden_size": True}), r"hidden_size = True"),
    "hidden string": (_config({"hidden_size": "64"}), r"hidden_size = '64'"),
    "hidden negative": (_config({"hidden_size": -64}), r"hidden_size = -64"),
    "hidden zero": (_config({"hidden_size": 0}), r"hidden_size = 0"),
    "hidden missing": (_config(drop=("hidden_size",)), r"hidden_size"),
    "layers 1e6": (_config({"num_hidden_layers": 10**6}), r"num_hidden_layers = 1000000"),
    "layers 1e12": (_config({"num_hidden_layers": 10**12}), r"num_hidden_layers"),
    "layers zero": (_config({"num_hidden_layers": 0}), r"num_hidden_layers = 0"),
    "heads more than hidden": (_config({"num_attention_heads": 128, "num_key_value_heads": 128}),
                               r"attention heads for a hidden size of 64"),
    "heads not dividing": (_config({"num_attention_heads": 5, "num_key_value_heads": 5}),
                           r"does not divide"),
    "kv heads not dividing": (_config({"num_key_value_heads": 3}), r"must divide"),
    "kv heads zero": (_config({"num_key_value_heads": 0}), r"num_key_value_heads = 0"),
    "odd head size (rotary)": (_config({"hidden_size": 60}), r"head size 15 .* is odd"),
    "intermediate 1e9": (_config({"intermediate_size": 10**9}), r"intermediate_size"),
    "vocab 1e12": (_config({"vocab_size": 10**12}), r"vocab_size"),
    "vocab zero": (_config({"vocab_size": 0}), r"vocab_size = 0"),
    "activation unknown": (_config({"hidden_act": "swoosh"}), r"activation 'swoosh'"),
    "activation number": (_config({"hidden_act": 3}), r"hidden_act = 3"),
    "model_type unknown": (_config({"model_type": "mamba"}), r"model_type='mamba'"),
    "model_type missing": (_config(drop=("model_type",)), r"model_type"),
    "unknown key": (_config({"hiden_size": 64}), r"unknown key\(s\) hiden_size"),
    "rope_theta negative": (_config({"rope_theta": -1}), r"rope_theta = -1"),
    "dropout 2": (_config({"attention_dropout": 2.0}), r"attention_dropout = 2.0"),
    "use_cache text": (_config({"use_cache": "yes"}), r"use_cache = 'yes'"),
    "head_dim zero": (_config({"head_dim": 0}), r"head_dim = 0"),
    "list at top level": (_config(raw="[1, 2]"), r"expected a JSON object"),
    "deeply nested": (_config(raw="[" * 100000 + "]" * 100000), r"nested too deeply|not readable"),
    "not UTF-8": (_config(raw=b"\xff\xfe{\x00}"), r"not a UTF-8 text file"),
    "truncated": (_config(raw='{"model_type": "llama", "hidden'), r"not readable JSON"),
    "empty file": (_config(raw=""), r"not readable JSON"),
    "NaN literal": (_config(raw=json.dumps(TINY_LLM)[:-1] + ', "initializer_range": NaN}'),
                    r"initializer_range = nan"),
    "big file": (_config(raw='{"model_type": "llama", "pad": "' + "x" * (2 << 20) + '"}'),
                 r"bytes; a config.json is a few kB"),
}

# ---------------------------------------------------------------------------------------------
# device files


def _device(change: dict | None = None, drop: tuple[str, ...] = (), extra: list | None = None,
            raw: str | bytes | None = None, suffix: str = ".json", boards: str = "MyGPU"
            ) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        if raw is not None:
            path = _write(d, "devices" + suffix, raw)
        else:
            dev = {k: v for k, v in DEVICE_FILE["devices"][0].items() if k not in drop}
            dev.update(change or {})
            path = _write(d, "devices" + suffix,
                          json.dumps({"devices": [dev, *(extra or [])]}, allow_nan=True))
        return ["optimize", "--model", "gpt2", "--boards", boards, "--board-file", path,
                "--quiet", "--context", "64"]
    return build


DEVICES = {
    "nan bandwidth": (_device({"memory_gbps": float("nan")}), r"memory_gbps = nan"),
    "infinite bandwidth": (_device({"memory_gbps": float("inf")}), r"memory_gbps = inf"),
    "zero bandwidth": (_device({"memory_gbps": 0}), r"memory_gbps = 0"),
    "negative bandwidth": (_device({"memory_gbps": -5}), r"memory_gbps = -5"),
    "text bandwidth": (_device({"memory_gbps": "fast"}), r"memory_gbps = 'fast'"),
    "negative peak": (_device({"peak_tops": {"fp32": -90}}), r"peak_tops\.fp32 = -90"),
    "zero peak": (_device({"peak_tops": {"fp32": 0}}), r"peak_tops\.fp32 = 0"),
    "nan peak": (_device({"peak_tops": {"fp32": float("nan")}}), r"peak_tops\.fp32 = nan"),
    "peak without fp32": (_device({"peak_tops": {"fp16": 10}}), r"needs an fp32"),
    "peak unknown precision": (_device({"peak_tops": {"fp32": 1, "fp64": 1}}), r"fp64"),
    "peak not a table": (_device({"peak_tops": 5}), r"peak_tops = 5"),
    "negative price": (_device({"price_per_hour": -1.2}), r"price_per_hour = -1.2"),
    "nan price": (_device({"price_per_hour": float("nan")}), r"price_per_hour = nan"),
    "tiny memory": (_device({"memory_gib": 1e-9}), r"memory_gib = 1e-09"),
    "negative memory": (_device({"memory_gib": -48}), r"memory_gib = -48"),
    "huge memory": (_device({"memory_gib": 1e300}), r"memory_gib = 1e\+300"),
    "empty name": (_device({"name": ""}), r"name = ''"),
    "integer name": (_device({"name": 7}), r"name = 7"),
    "name with comma": (_device({"name": "a,b"}), r"name = 'a,b'"),
    "name shadows a board": (_device({"name": "U55C"}), r"has the name of the board 'U55C'"),
    "name shadows a board (case)": (_device({"name": "u55c"}), r"name of the board 'U55C'"),
    "kind tpu": (_device({"kind": "tpu"}), r"kind = 'tpu'"),
    "missing kind": (_device(drop=("kind",)), r"kind: missing"),
    "missing peak": (_device(drop=("peak_tops",)), r"peak_tops: missing"),
    "typo field": (_device({"memroy_gib": 4}), r"memroy_gib .*unknown field"),
    "efficiency 1.5": (_device({"efficiency": {"compute": 1.5}}), r"efficiency\.compute = 1.5"),
    "efficiency zero": (_device({"efficiency": {"memory": 0}}), r"efficiency\.memory = 0"),
    "efficiency not a table": (_device({"efficiency": 0.5}), r"efficiency = 0.5"),
    "overhead negative": (_device({"efficiency": {"kernel_overhead_s": -1}}),
                          r"kernel_overhead_s = -1"),
    "defined twice": (_device(extra=[dict(DEVICE_FILE["devices"][0])]), r"defined twice"),
    "entry not a table": (_device(extra=[5]), r"devices\[1\] = 5: should be a table"),
    "devices not a list": (_device(raw='{"devices": {"name": "x"}}'), r"devices"),
    "not UTF-8": (_device(raw=b"\xff\xfe[[devices]]", suffix=".toml"), r"not UTF-8"),
    "broken TOML": (_device(raw="[[devices]\nname=", suffix=".toml"), r"not valid TOML"),
    "deeply nested": (_device(raw="[" * 100000 + "]" * 100000), r"not valid JSON|nested"),
    "list at top level": (_device(raw="[1]"), r"a board file is a table"),
    "unknown device in --boards": (_device(boards="MyGPU2"), r"'MyGPU2' is neither a board"),
}

# ---------------------------------------------------------------------------------------------
# calibration measurements


def _measurements(cells: dict[str, str] | None = None, rows: int = 3, header: list | None = None,
                  raw: bytes | None = None, short: bool = False
                  ) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        if raw is not None:
            path = _write(d, "m.csv", raw)
        else:
            h = header or MEASUREMENT_HEADER
            body = []
            for i in range(rows):
                r = dict(zip(MEASUREMENT_HEADER, MEASUREMENT_ROW, strict=True))
                r["tokens"] = str(i + 1)
                if i == rows - 1:
                    r.update(cells or {})
                body.append(",".join(r.get(k, "1") for k in h))
            if short:
                body[-1] = ",".join(body[-1].split(",")[:4])
            path = _write(d, "m.csv", "\n".join([",".join(h), *body]) + "\n")
        return ["calibrate", "--device", "A100-80GB", "--measurements", path,
                "--out", str(d / "out" / "fit.json")]
    return build


MEASUREMENTS = {
    "negative tokens": (_measurements({"tokens": "-8"}), r"row 4: tokens = -8"),
    "zero tokens": (_measurements({"tokens": "0"}), r"tokens = 0"),
    "fractional tokens": (_measurements({"tokens": "1.5"}), r"tokens = 1.5"),
    "nan time": (_measurements({"measured_ms": "nan"}), r"measured_ms = nan"),
    "inf time": (_measurements({"measured_ms": "inf"}), r"measured_ms = inf"),
    "negative time": (_measurements({"measured_ms": "-3"}), r"measured_ms = -3"),
    "zero time": (_measurements({"measured_ms": "0"}), r"measured_ms = 0"),
    "text time": (_measurements({"measured_ms": "fast"}), r"measured_ms = 'fast'"),
    "zero work": (_measurements({"params": "0"}), r"params = 0"),
    "negative params": (_measurements({"params": "-6.5e9"}), r"params = -6500000000.0"),
    "nan params": (_measurements({"params": "nan"}), r"params = nan"),
    "negative kv": (_measurements({"kv_mb": "-1"}), r"kv_mb = -1"),
    "negative attention": (_measurements({"attn_gops": "-0.5"}), r"attn_gops = -0.5"),
    "zero blocks": (_measurements({"blocks": "0"}), r"blocks = 0"),
    "weight bits 0": (_measurements({"weight_bits": "0"}), r"weight_bits = 0"),
    "precision fp9": (_measurements({"precision": "fp9"}), r"precision = 'fp9'"),
    "precision empty": (_measurements({"precision": ""}), r"precision = ''"),
    "short row": (_measurements(short=True), r"row 4 has 4 cells"),
    "missing column": (_measurements(header=MEASUREMENT_HEADER[:-1]), r"missing column.*measured"),
    "header only": (_measurements(rows=0), r"no rows"),
    "empty file": (_measurements(raw=b""), r"missing column"),
    "not UTF-8": (_measurements(raw=b"params,\xff\xfe\n1,2\n"), r"not a UTF-8 text file"),
    "binary": (_measurements(raw=bytes(range(256)) * 4), r"not a UTF-8|not a readable CSV"),
    "1e400 params": (_measurements({"params": "1e400"}), r"params = inf"),
}

# ---------------------------------------------------------------------------------------------
# prices, LLM command-line numbers, --boards syntax


def _llm(*extra: str, model: str = "gpt2") -> Callable[[Path], list[str]]:
    return lambda d: ["optimize", "--model", model, "--quiet", *extra]


def _cnn(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["optimize", "--quiet", "--time-limit", "5", *extra]


OPTIONS = {
    "price nan": (_llm("--price", "U55C=nan"), 2, r"--price U55C=nan"),
    "price inf": (_llm("--price", "U55C=inf"), 2, r"--price U55C=inf"),
    "price negative": (_llm("--price", "U55C=-1"), 2, r"--price"),
    "price unknown name": (_llm("--price", "U55D=1.5"), 2, r"'U55D' is no board or device"),
    "price no value": (_llm("--price", "U55C"), 2, r"--price 'U55C'"),
    "price text": (_llm("--price", "U55C=cheap"), 2, r"--price 'U55C=cheap'"),
    "price on a CNN": (_cnn("--price", "U55C=1"), 2, r"--price .*LLM"),
    "seq zero": (_llm("--mode", "prefill", "--seq", "0"), 2, r"--seq 0"),
    "seq 1e12": (_llm("--seq", "1000000000000"), 2, r"--seq 1000000000000"),
    "seq negative": (_llm("--seq", "-5"), 2, r"--seq -5"),
    "seq float": (_llm("--seq", "1.5"), 2, r"--seq"),
    "context zero": (_llm("--context", "0"), 2, r"--context 0"),
    "context 1e12": (_llm("--context", "1000000000000"), 2, r"--context 1000000000000"),
    "sequences zero": (_llm("--sequences", "0"), 2, r"--sequences 0"),
    "sequences negative": (_llm("--sequences", "-1"), 2, r"--sequences -1"),
    "sequences 1e9": (_llm("--sequences", "1000000000"), 2, r"--sequences 1000000000"),
    "group 1e12": (_llm("--group", "1000000000000"), 2, r"--group 1000000000000"),
    "group negative": (_llm("--group", "-1"), 2, r"--group -1"),
    "hbm efficiency 0": (_llm("--hbm-efficiency", "0"), 2, r"--hbm-efficiency 0"),
    "hbm efficiency nan": (_llm("--hbm-efficiency", "nan"), 2, r"--hbm-efficiency nan"),
    "time limit negative (LLM)": (_llm("--time-limit", "-1"), 2, r"--time-limit -1"),
    "time limit nan (LLM)": (_llm("--time-limit", "nan"), 2, r"--time-limit nan"),
    "link gbps negative (LLM)": (_llm("--link-gbps", "-5"), 2,
                                 r"--link-gbps does not apply to an LLM"),
    "link gbps 1e-9 (CNN)": (_cnn("--link-gbps", "1e-9"), 2, r"--link-gbps 1e-09"),
    "clock 0 (LLM)": (_llm("--clock-mhz", "0"), 2, r"--clock-mhz 0"),
    "clock 0 (CNN)": (_cnn("--clock-mhz", "0"), 2, r"--clock-mhz 0"),
    "clock 5000 (LLM)": (_llm("--clock-mhz", "5000"), 2, r"--clock-mhz 5000"),
    "strategy on an LLM": (_llm("--strategy", "setfolding"), 2, r"--strategy .*LLM"),
    "replicas on an LLM": (_llm("--replicas", "2"), 2, r"--replicas .*LLM"),
    "finn-env on an LLM": (_llm("--emit", "/tmp/x", "--finn-env", "/tmp/fe"), 2,
                           r"--finn-env .*LLM"),
    "mode on an ONNX model": (_cnn("--mode", "decode"), 2, r"--mode .*LLM"),
    "seq on an ONNX model": (_cnn("--seq", "64"), 2, r"--seq .*LLM"),
    "bad cap on an LLM": (_llm("--cap", "lut=2"), 2, r"lut"),
    "bad cap name on an LLM": (_llm("--cap", "luts=0.5"), 2, r"unknown resource"),
    "bad shell on an LLM": (_llm("--shell", "nosuch"), 2, r"shell 'nosuch'"),
    "weights int99": (_llm("--weights", "int99"), 2, r"--weights"),
    "kv float8": (_llm("--kv", "float8"), 2, r"--kv"),
    "boards U55C²": (_cnn("--boards", "U55C²"), 2, r"--boards 'U55C²'"),
    "boards 2² (LLM)": (_llm("--boards", "2²"), 2, r"--boards '2²'"),
    "boards empty list": (_cnn("--boards", ",,"), 2, r"--boards"),
    "boards empty": (_cnn("--boards", ""), 2, r"--boards"),
    "boards negative": (_cnn("--boards", "-1"), 2, r"--boards"),
    "boards 1.5": (_cnn("--boards", "1.5"), 2, r"--boards '1.5'"),
    "boards 65": (_llm("--boards", "65"), 2, r"--boards 65"),
    "boards clock text": (_cnn("--boards", "U55C@fast"), 2, r"U55C@fast"),
    "boards clock 5": (_cnn("--boards", "U55C@5"), 2, r"U55C@5"),
    "boards unknown": (_cnn("--boards", "U55C,U99"), 2, r"U99"),
    "boards unknown (LLM)": (_llm("--boards", "B300"), 2, r"'B300' is neither a board"),
    "boards with space": (_cnn("--boards", "U55C U280"), 2, r"--boards 'U55C U280'"),
    "board unknown (LLM)": (_llm("--board", "U99"), 2, r"U99"),
}

# ---------------------------------------------------------------------------------------------
# --out targets


def _file_as_dir(d: Path) -> list[str]:
    _write(d, "afile", "x")
    return ["optimize", "--quiet", "--out", str(d / "afile" / "sub")]


def _plan_json_dir(d: Path) -> list[str]:
    (d / "out" / "plan.json").mkdir()
    return ["optimize", "--quiet", "--out", str(d / "out")]


def _llm_plan_dir(d: Path) -> list[str]:
    (d / "out" / "plan.json").mkdir()
    return ["optimize", "--model", "gpt2", "--quiet", "--out", str(d / "out")]


OUTS = {
    "empty": (lambda d: ["optimize", "--quiet", "--out", ""], r"--out is empty"),
    "empty (LLM)": (lambda d: ["optimize", "--model", "gpt2", "--quiet", "--out", ""],
                    r"--out is empty"),
    "blank": (lambda d: ["optimize", "--quiet", "--out", "  "], r"--out is empty"),
    "under /proc": (lambda d: ["optimize", "--quiet", "--out", "/proc/dse_out"],
                    r"/proc is a kernel file system"),
    "under /sys": (lambda d: ["optimize", "--quiet", "--out", "/sys/kernel/dse"],
                   r"/sys is a kernel file system"),
    "under /proc (LLM)": (lambda d: ["optimize", "--model", "gpt2", "--quiet", "--out",
                                     "/proc/x"], r"kernel file system"),
    "under a file": (_file_as_dir, r"is a file, so nothing can be created under it"),
    "plan.json is a directory": (_plan_json_dir, r"plan.json is a directory"),
    "plan.json is a directory (LLM)": (_llm_plan_dir, r"plan.json is a directory"),
    "root": (lambda d: ["optimize", "--quiet", "--out", "/"], r"file system root"),
    "explore under /proc": (lambda d: ["explore", "--quiet", "--out", "/proc/x"],
                            r"kernel file system"),
    "calibrate out is a directory": (
        lambda d: _measurements()(d)[:-1] + [str(d / "out")], r"is a directory"),
}

# ---------------------------------------------------------------------------------------------
# LLM explorations and CNN exploration storage


def _explore(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["explore", "--model", "gpt2", "--quiet", "--out", str(d / "out"), *extra]


def _storage_dir(d: Path) -> list[str]:
    (d / "journal_dir").mkdir()
    return ["explore", "--quiet", "--trials", "2", "--out", str(d / "out"), "--storage",
            str(d / "journal_dir")]


def _storage_binary(d: Path) -> list[str]:
    j = _write(d, "j.journal", b"\xff\xfe\x00garbage\n")
    return ["explore", "--quiet", "--trials", "2", "--out", str(d / "out"), "--storage", j]


def _storage_text(d: Path) -> list[str]:
    j = _write(d, "j.journal", "hello\nworld\n")
    return ["explore", "--quiet", "--trials", "2", "--out", str(d / "out"), "--storage", j]


EXPLORES = {
    "devices duplicate": (_explore("--devices", "U55C:0..2,U55C:1..3"), 2, r"given twice"),
    "devices empty": (_explore("--devices", ","), 2, r"at least one device"),
    "devices all zero": (_explore("--devices", "U55C:0..0"), 2, r"at least one device"),
    "devices reversed": (_explore("--devices", "U55C:3..1"), 2, r"LO <= HI"),
    "devices unknown": (_explore("--devices", "U99:1..2"), 2, r"U99"),
    "devices too many": (_explore("--devices", "U55C:0..64,A100:0..8"), 2, r"at most 64"),
    "devices syntax": (_explore("--devices", "U55C=1"), 2, r"NAME:LO..HI"),
    "devices superscript": (_explore("--devices", "U55C:²"), 2, r"NAME:LO..HI"),
    "all infeasible": (lambda d: ["explore", "--model", "llama2-70b", "--quiet", "--out",
                                  str(d / "out"), "--devices", "L4:1..1", "--trials", "2"],
                       1, r"no sampled mix runs llama2-70b"),
    "trials 0": (_explore("--devices", "U55C:1..2", "--trials", "0"), 2, r"--trials 0"),
    "trials negative": (_explore("--devices", "U55C:1..2", "--trials", "-3"), 2, r"--trials -3"),
    "sequences 0": (_explore("--devices", "U55C:1..2", "--sequences", "0"), 2,
                    r"--sequences 0"),
    "resume nothing": (_explore("--devices", "U55C:1..2", "--resume"), 2,
                       r"no exploration to continue"),
    "storage is a directory": (_storage_dir, 2, r"is a directory"),
    "storage not UTF-8": (_storage_binary, 2, r"not UTF-8"),
    "storage not a journal": (_storage_text, 2, r"not an Optuna journal"),
    "storage bad URL": (lambda d: ["explore", "--quiet", "--trials", "2", "--out",
                                   str(d / "out"), "--storage", "nosuchdb://x/y"], 2,
                        r"--storage nosuchdb://x/y: cannot open"),
}

# ---------------------------------------------------------------------------------------------
# dse plot of garbage tables


def _plot(content: str | bytes) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        _write(d / "out", "trials.csv", content)
        return ["plot", str(d / "out")]
    return build


PLOTS = {
    "garbage trials": (_plot("a,b\n1,2\n"), r"no column"),
    "non-numeric fps": (_plot("trial,fps,boards_used,latency_s,lut\n0,fast,1,0.1,5\n"),
                        r"fps = 'fast'"),
    "negative fps": (_plot("trial,fps,boards_used,latency_s,lut\n0,-5,1,0.1,5\n"),
                     r"fps = '-5'"),
    "nan latency": (_plot("trial,fps,boards_used,latency_s,lut\n0,5,1,nan,5\n"),
                    r"latency_s = 'nan'"),
    "not UTF-8": (_plot(b"trial,fps\n\xff\xfe\n"), r"not a readable UTF-8 CSV"),
    "LLM trials": (_plot("trial,n_U55C,feasible,tokens_per_s\n0,1,True,5\n"), r"no column 'fps'"),
}


ALL: dict[str, Case] = {}
for group, table in (("config", CONFIGS), ("device", DEVICES), ("calibration", MEASUREMENTS),
                     ("out", OUTS), ("plot", PLOTS)):
    for name, (argv, match) in table.items():
        ALL[f"{group}: {name}"] = Case(argv=argv, code=2, match=match)
for group, table3 in (("option", OPTIONS), ("explore", EXPLORES)):
    for name, (argv, code, match) in table3.items():
        ALL[f"{group}: {name}"] = Case(argv=argv, code=code, match=match)


def test_the_corpus_is_large_enough() -> None:
    assert len(ALL) >= 150


@pytest.mark.parametrize("name", sorted(ALL), ids=str)
def test_adversarial_input(name: str, tmp_path: Path, capsys) -> None:
    run_case(ALL[name], tmp_path, capsys)


# ---------------------------------------------------------------------------------------------
# hand-edited plans: checked against the network and the catalog before dse emit writes


@pytest.fixture(scope="module")
def chain_plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("plan")
    assert main(["optimize", "--quiet", "--out", str(out), "--boards", "Pynq-Z1,Pynq-Z2",
                 "--board-order", "given", "--replicas", "1", "--reproducible"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["payload"]["boards"]) == 2  # the chain format: the CNN record in payload
    return plan


def _swap_boards(p: dict) -> None:
    a, b = p["boards"]
    p["boards"] = [{**b, "index": 0}, {**a, "index": 1}]
    for layer in p["layers"]:
        layer["board"] = 1 - layer["board"]


def _rename_layer(p: dict) -> None:
    p["layers"][2]["name"] = "MVAU_99"


def _illegal_pe(p: dict) -> None:
    mvau = next(la for la in p["layers"] if la["op_type"] == "MVAU")
    mvau["folding"]["PE"] = 7  # divides no MVAU's MH here


def _edited_cycles(p: dict) -> None:
    p["layers"][0]["cycles"] += 1


def _other_op(p: dict) -> None:
    p["layers"][1]["op_type"] = "Thresholding"


def _drop_layer(p: dict) -> None:
    p["layers"].pop()
    p["cuts"] = [c for c in p["cuts"] if c["dst"] in {la["name"] for la in p["layers"]}]


PLAN_EDITS = {
    "boards swapped": (_swap_boards, r"runs from board 1 back to board 0"),
    "board renamed to an unknown board": (lambda p: p["boards"][1].update(name="U99"),
                                          r"'U99' is not a board of the catalog"),
    "board renamed to another board": (lambda p: p["boards"][0].update(name="U55C"),
                                       r"U55C has part 'xc7z020clg400-1'"),
    "layer renamed": (_rename_layer, r"layer 'MVAU_99' is not in the network"),
    "layer dropped": (_drop_layer, r"is not in the plan"),
    "illegal PE": (_illegal_pe, r"folding .*PE=7.* is not one FINN accepts"),
    "cycles edited": (_edited_cycles, r"the plan states"),
    "op type changed": (_other_op, r"is Thresholding in the plan"),
}


@pytest.mark.parametrize("name", sorted(PLAN_EDITS), ids=str)
def test_edited_plans_are_refused_before_emit(name: str, chain_plan: dict, tmp_path: Path,
                                              capsys) -> None:
    import copy

    from dse.api import example_model_path

    edit, match = PLAN_EDITS[name]
    plan = copy.deepcopy(chain_plan)
    edit(plan["payload"])
    path = _write(tmp_path, "plan.json", json.dumps(plan))
    case = Case(argv=lambda d: ["emit", "--plan", path, "--model", str(example_model_path())],
                code=2, match=match)
    run_case(case, tmp_path, capsys)


def test_an_onnx_file_as_plan_and_emit_without_finn(tmp_path: Path, capsys) -> None:
    from dse.api import example_model_path

    model = str(example_model_path())
    run_case(Case(argv=lambda d: ["emit", "--plan", model, "--model", model],
                  code=2, match=r"not UTF-8 text \(an ONNX model\?"), _mk(tmp_path / "a"), capsys)
    run_case(Case(argv=lambda d: ["optimize", "--quiet", "--emit", str(d / "out" / "build"),
                                  "--finn-env", str(d / "no-finn")],
                  code=2, match=r"no finn-plus environment"), _mk(tmp_path / "b"), capsys)


def _mk(d: Path) -> Path:
    d.mkdir()
    return d


def test_a_global_pool_beyond_64_bits_is_a_layer_error() -> None:
    """Found by the fuzzer: qonnx raised a bare Exception for the sum's type."""
    from dse.exceptions import LayerAttributeError
    from dse.models.pool import gap_output_dtype

    with pytest.raises(LayerAttributeError, match="beyond any FINN integer type"):
        gap_output_dtype({"inputDataType": "INT32", "numInputVectors": [1, 10**12, 10**12]})


# ---------------------------------------------------------------------------------------------
# defaults that use what is offered; bounded work


@pytest.mark.slow
def test_optimize_uses_the_offered_boards_by_default(tmp_path: Path, capsys) -> None:
    """MobileNetV1 on 4 U55C, no layout option: at least 3.6x the one-board fps."""
    from tests.conftest import shared_path

    model = str(shared_path("models", "mobilenetv1_w4a4.onnx"))
    fps = {}
    for n in (1, 4):
        out = tmp_path / f"b{n}"
        assert main(["optimize", "--quiet", "--model", model, "--boards", str(n), "--out",
                     str(out)]) == 0
        m = json.loads((out / "plan.json").read_text())["payload"]["metrics"]
        fps[n] = (m.get("replicas") or {}).get("fps_total", m["fps"])
    capsys.readouterr()
    assert fps[4] >= 3.6 * fps[1], fps


def test_64_identical_boards_on_a_tiny_mlp_are_answered(tmp_path: Path, capsys) -> None:
    """64 identical boards: one board order (not 64!), and replica layouts that more boards
    cannot improve are not solved; the answer uses all 64 boards."""
    from tests.conftest import shared_path

    out = tmp_path / "o"
    assert main(["optimize", "--quiet", "--model", str(shared_path("models", "tfc_w1a1.onnx")),
                 "--boards", "64", "--time-limit", "10", "--out", str(out)]) == 0
    rep = json.loads((out / "plan.json").read_text())["payload"]["metrics"]["replicas"]
    assert rep["boards_used_total"] == 64 and rep["count"] == 64
    assert any("not solved" in str(t.get("reason", "")) for t in rep["tried"])
