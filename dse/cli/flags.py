"""Which ``dse optimize`` / ``dse explore`` flags apply to a CNN (a QONNX / FINN-ONNX file)
and which to an LLM (an architecture config): a flag given for a network it does not apply to
is refused in one line naming why (exit 2), never silently ignored.

Every option of both commands is listed here (``tests/cli/test_flags.py`` walks the parser, so a
new flag without an entry fails there). ``BOTH`` flags apply to either network.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from dse.cli.parser import build_parser
from dse.exceptions import InternalError, SpecError

BOTH = ""

#: command -> option dest -> "" (applies to both), or ("cnn" | "llm", why not the other)
RULES: Mapping[str, Mapping[str, str | tuple[str, str]]] = {
    "optimize": {
        "model": BOTH, "boards": BOTH, "board": BOTH, "shell": BOTH, "cap": BOTH,
        "clock_mhz": BOTH, "time_limit": BOTH, "topology": BOTH, "board_order": BOTH,
        "board_file": BOTH, "out": BOTH, "reproducible": BOTH, "json": BOTH, "quiet": BOTH,
        "strategy": ("cnn", "the LLM planner has one strategy (the block split); --strategy "
                     "picks a CNN solver"),
        "link_gbps": ("cnn", "LLM hops take each board pair's own link (the ACCL+ curve on "
                      "Coyote, the boards' line rate otherwise; set it in a --board-file)"),
        "link_efficiency": ("cnn", "LLM hops take each board pair's own link model "
                            "(dse.chain.links)"),
        "rx_buffer_bytes": ("cnn", "ACCL receive buffers bound a CNN's cut streams; an LLM "
                            "hop sends one residual stream"),
        "rx_buffers": ("cnn", "ACCL receive buffers bound a CNN's cut streams; an LLM hop "
                       "sends one residual stream"),
        "no_external_weights": ("cnn", "the LLM planner chooses on-chip or HBM weights per "
                                "board"),
        "input_dtype": ("cnn", "it declares a QONNX file's input; an LLM config sets its types "
                        "with --weights/--acts/--kv"),
        "no_minimize_bit_width": ("cnn", "it applies to a QONNX file's weights; an LLM config "
                                  "sets its types with --weights/--acts/--kv"),
        "mvau_wwidth_max": ("cnn", "it is SetFolding's knob for the CNN baseline strategies"),
        "seed": ("cnn", "the LLM planner is deterministic (CP-SAT takes a seed for CNNs)"),
        "workers": ("cnn", "the LLM planner runs on one core (CP-SAT takes workers for CNNs)"),
        "verbose": ("cnn", "the LLM planner has no solver phases to print"),
        "emit": BOTH,  # an LLM's: the configs only (bind an export with dse emit --model)
        "finn_env": ("cnn", "an LLM's --emit writes the FINN configs from the plan alone "
                     "(finn-plus lowers an export with dse emit --model)"),
        "replicas": ("cnn", "data-parallel copies are a CNN option; for an LLM raise "
                     "--sequences"),
        "mode": ("llm", "a CNN's frame is one input; --mode picks an LLM's"),
        "seq": ("llm", "a CNN's frame is one input; --seq sets an LLM's tokens per frame"),
        "context": ("llm", "it sets an LLM's cached tokens"),
        "sequences": ("llm", "it sets an LLM's sequences in flight"),
        "max_latency": ("llm", "it bounds an LLM plan's latency per token or sequence; a CNN "
                        "plan maximizes frames per second"),
        "max_ttft": ("llm", "a CNN has no prompt (time to first token)"),
        "weights": ("llm", "a CNN's types come from its QONNX export"),
        "acts": ("llm", "a CNN's types come from its QONNX export"),
        "kv": ("llm", "a CNN has no KV cache"),
        "group": ("llm", "a CNN's types come from its QONNX export"),
        "rotation": ("llm", "a CNN's rotations come from its QONNX export (a Hadamard MatMul "
                     "or a hand-written FWHT)"),
        "expand": ("llm", "a CNN's widths come from its QONNX export"),
        "price": ("llm", "prices cost an LLM plan per token; CNN plans are not priced"),
        "batch": ("cnn", "it sets the frames of one call of FINN's PYNQ driver (a CNN plan's "
                  "metrics.batch); an LLM's batch is --sequences"),
        "hbm_efficiency": ("llm", "it derates the LLM planner's HBM; the CNN formulation books "
                           "HBM at the board's rate"),
    },
    "explore": {
        "model": BOTH, "boards": BOTH, "trials": BOTH, "out": BOTH, "seed": BOTH,
        "board_file": BOTH, "quiet": BOTH, "accuracy": BOTH,
        "board_types": ("cnn", "an LLM explores the device mix of --devices"),
        "storage": ("cnn", "the LLM exploration keeps its trials in memory (no Optuna study)"),
        "study": ("cnn", "the LLM exploration keeps its trials in memory (no Optuna study)"),
        "resume": BOTH,
        "sampler": ("cnn", "the LLM exploration samples device mixes itself"),
        "clock_mhz": ("cnn", "the LLM exploration keeps each board's default clock"),
        "trial_time_limit": ("cnn", "each LLM trial is one block split, not a CP-SAT solve"),
        "input_dtype": ("cnn", "it declares a QONNX file's input"),
        "no_minimize_bit_width": ("cnn", "it applies to a QONNX file's weights"),
        "devices": ("llm", "a CNN explores board counts and types (--boards, --board-types)"),
        "mode": ("llm", "a CNN's frame is one input; --mode picks an LLM's"),
        "seq": ("llm", "it sets an LLM's tokens per frame"),
        "context": ("llm", "it sets an LLM's cached tokens"),
        "sequences": ("llm", "it sets an LLM's sequences in flight"),
        "weights": ("llm", "a CNN's types come from its QONNX export"),
        "acts": ("llm", "a CNN's types come from its QONNX export"),
        "price": ("llm", "prices cost an LLM plan per token; CNN plans are not priced"),
    },
}


def _is_list(boards: object) -> bool:
    return not str(boards).strip().isdigit()


#: command -> (option dest, when it is ignored given the other options, why): a flag that
#: applies to the network but not together with another one
UNUSED_WITH: Mapping[str, tuple[tuple[str, Callable[[argparse.Namespace], bool], str], ...]] = {
    "optimize": (
        ("board", lambda a: _is_list(a.boards),
         "--board names the board type for a count; --boards lists the boards itself"),
        ("finn_env", lambda a: not a.emit, "it is the finn-plus environment of --emit"),
        ("verbose", lambda a: a.json, "--json prints the plan, not the phases"),
    ),
    "explore": (
        ("boards", lambda a: bool(a.devices), "--devices gives the device counts"),
        *((dest, lambda a: bool(a.accuracy), "the --accuracy co-design search keeps its "
           "trials in memory and samples with NSGA-II over board counts of --boards")
          for dest in ("devices", "storage", "study", "resume", "sampler")),
    ),
}


def option_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def subparser(command: str) -> argparse.ArgumentParser:
    """The parser of one command (``optimize``, ``explore``)."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def options(command: str) -> list[argparse.Action]:
    """The command's options, without --help."""
    return [a for a in subparser(command)._actions if a.option_strings and a.dest != "help"]


def check_flags(command: str, network: str, args: argparse.Namespace) -> None:
    """Refuse, in one line, the first flag given (not at its default) that does not apply to
    ``network`` ("cnn" or "llm") in ``command``."""
    rules = RULES[command]
    for action in options(command):
        rule = rules.get(action.dest)
        if rule is None:
            raise InternalError(f"--{action.dest.replace('_', '-')} has no entry in "
                                "dse.cli.flags.RULES (say where it applies)")
        value = getattr(args, action.dest, action.default)
        if isinstance(rule, str) or value == action.default or value is None:
            continue  # applies to both networks, or not given
        kind, why = rule
        if kind != network:
            what = "an LLM" if network == "llm" else "a CNN"
            raise SpecError(f"{option_name(action)} does not apply to {what}: {why}")
    given = {a.dest: a for a in options(command)
             if getattr(args, a.dest, a.default) not in (a.default, None)}
    for dest, unused, why in UNUSED_WITH.get(command, ()):
        if dest in given and unused(args):
            raise SpecError(f"{option_name(given[dest])} is not used here: {why}")
