"""Every flag of ``dse optimize`` and ``dse explore``, over a CNN and an LLM: it reaches the
solver's call or is refused in one line naming why (exit 2). The flags are the parser's own,
so a new flag without a rule (``dse.cli.flags.RULES``) or a value here fails this test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import dse.cli.explore as cli_explore
import dse.codesign as codesign
from dse import api
from dse.cli import main
from dse.cli.flags import RULES, UNUSED_WITH, option_name, options
from dse.examples import example_model_path

CNN = str(example_model_path())
LLM = "gpt2"

#: a value other than the default, for every option (None: a switch)
VALUES: dict[str, dict[str, Any]] = {
    "optimize": {
        "boards": "2", "board": "U280", "shell": "vitis", "cap": "lut=0.6", "clock_mhz": "150",
        "time_limit": "30", "strategy": "setfolding", "topology": "switch", "link_gbps": "50",
        "link_efficiency": "0.5", "rx_buffer_bytes": "4096", "rx_buffers": "4",
        "no_external_weights": None, "input_dtype": "UINT8", "no_minimize_bit_width": None,
        "board_order": "given", "mvau_wwidth_max": "64", "board_file": "extra.toml",
        "out": "elsewhere", "seed": "3", "workers": "2", "reproducible": None, "json": None,
        "quiet": None, "verbose": None, "emit": "build", "finn_env": "env",
        "replicas": "2", "mode": "prefill", "seq": "64", "context": "512", "sequences": "2",
        "weights": "int8", "acts": "int4", "kv": "int4", "group": "64", "price": "U55C=1.5",
        "hbm_efficiency": "0.8", "rotation": "quarot", "expand": "0.05",
        "max_latency": "50", "max_ttft": "500", "batch": "10",
    },
    "explore": {
        "boards": "2", "board_types": "U55C,U280", "trials": "3", "storage": "j.log",
        "study": "s", "out": "elsewhere", "resume": None, "seed": "3", "sampler": "tpe",
        "clock_mhz": "150..200", "trial_time_limit": "5", "input_dtype": "UINT8",
        "no_minimize_bit_width": None, "board_file": "extra.toml", "quiet": None,
        "devices": "U55C:1", "mode": "prefill", "seq": "64", "context": "512",
        "sequences": "2", "weights": "int8", "acts": "int4", "price": "U55C=1.5",
        "accuracy": "acc.csv",
    },
}
#: options that act after the solver's call (on what it returns): checked by running it
AFTER_SOLVE = {("optimize", "cnn"): {"verbose", "emit", "finn_env"},
               ("optimize", "llm"): {"reproducible", "emit"}}


class Reached(BaseException):
    """The command got as far as the solver's call (raised by the spy)."""


def spy(monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]]) -> None:
    def record(*args: Any, **kw: Any) -> None:
        calls.append({"args": args, **kw})
        raise Reached

    for target, name in ((api, "optimize"), (api, "optimize_llm"), (api, "explore"),
                         (cli_explore, "explore_llm"), (codesign, "explore_codesign")):
        monkeypatch.setattr(target, name, record)


def argv(command: str, network: str, dest: str | None, out: Path) -> list[str]:
    model = CNN if network == "cnn" else LLM
    base = [command, "--model", model, "--out", str(out / "o")]
    if dest is None or dest == "out":
        return base if dest is None else [command, "--model", model, "--out", str(out / "x")]
    action = next(a for a in options(command) if a.dest == dest)
    value = VALUES[command][dest]
    return base + [option_name(action)] + ([] if value is None else [str(value)])


def call_of(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> dict[str, Any]:
    calls: list[dict[str, Any]] = []
    spy(monkeypatch, calls)
    with pytest.raises(Reached):
        main(args)
    return calls[-1]


CASES = [(c, n, a.dest) for c in ("optimize", "explore") for n in ("cnn", "llm")
         for a in options(c) if a.dest != "model"]


def test_every_flag_has_a_rule_and_a_value() -> None:
    for command in ("optimize", "explore"):
        dests = {a.dest for a in options(command)}
        assert dests <= set(RULES[command]), dests - set(RULES[command])
        assert dests - {"model"} <= set(VALUES[command]), dests - set(VALUES[command])


@pytest.mark.parametrize("command, network, dest", CASES)
def test_each_flag_applies_or_is_refused(command: str, network: str, dest: str,
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rule = RULES[command][dest]
    args = argv(command, network, dest, tmp_path)
    if isinstance(rule, tuple) and rule[0] != network:
        spy(monkeypatch, [])
        assert main(args) == 2  # refused before any solve
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "does not apply to" in err[0], err
        assert option_name(next(a for a in options(command) if a.dest == dest)) in err[0]
        assert rule[1] in err[0]  # and says why
        return
    if dest in AFTER_SOLVE.get((command, network), set()):
        pytest.skip("acts on the solver's result: test_flags_that_act_after_the_solve")
    base = call_of(monkeypatch, argv(command, network, None, tmp_path))
    got = call_of(monkeypatch, args)
    assert got != base, f"{dest} did not reach the call"  # the flag changed what is solved


def test_flags_that_act_after_the_solve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # CNN --verbose prints the phases; --emit (with --finn-env) hands the plan to FINN
    assert main(["optimize", "--model", CNN, "--board", "Pynq-Z1", "--time-limit", "20",
                 "--out", str(tmp_path / "v"), "--verbose"]) == 0
    assert "phase    least resources" in capsys.readouterr().out
    emitted: list[tuple] = []

    def emit(plan: Any, model: Any, out: Any, **kw: Any) -> Any:
        emitted.append((out, kw))
        raise Reached

    monkeypatch.setattr(api, "emit_plan", emit)
    # (no finn-plus at "fe": the check that runs before the solve is the corpus's to test)
    monkeypatch.setattr("dse.cli.optimize.check_emit_ready", lambda *a: None)
    with pytest.raises(Reached):
        main(["optimize", "--model", CNN, "--board", "Pynq-Z1", "--time-limit", "20",
              "--out", str(tmp_path / "e"), "--emit", str(tmp_path / "b"), "--finn-env", "fe",
              "--quiet"])
    assert emitted == [(str(tmp_path / "b"), {"finn_env": "fe"})]
    # LLM --reproducible: the plan holds no wall-clock figure, so two runs are byte-identical
    for d in ("r1", "r2"):
        assert main(["optimize", "--model", LLM, "--out", str(tmp_path / d), "--quiet",
                     "--reproducible", "--sequences", "2"]) == 0
    assert (tmp_path / "r1" / "plan.json").read_bytes() == (
        tmp_path / "r2" / "plan.json").read_bytes()
    assert json.loads((tmp_path / "r1" / "plan.json").read_text())["network"] == "llm"


@pytest.mark.parametrize("command, extra, dest", [
    ("optimize", ["--boards", "U55C,U55C", "--board", "U280"], "board"),
    ("optimize", ["--finn-env", "fe"], "finn_env"),
    ("optimize", ["--verbose", "--json"], "verbose"),
    ("explore", ["--model", LLM, "--devices", "U55C:2", "--boards", "4"], "boards"),
])
def test_a_flag_another_one_makes_unused_is_refused(command: str, extra: list[str], dest: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    assert dest in {d for d, _, _ in UNUSED_WITH[command]}
    assert main([command, "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not used here" in err[0], err


def test_the_time_limit_bounds_an_llm_solve(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    """llama2-13b over 64 V80 takes far longer than 0.2 s (about 2 s, its stages already
    cached in the process): the limit stops it (exit 1)."""
    rc = main(["optimize", "--model", "llama2-13b", "--boards", "64", "--board", "V80",
               "--time-limit", "0.2",
               "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "--time-limit 0.2 s" in err[0], err
    assert not (tmp_path / "o").exists()
