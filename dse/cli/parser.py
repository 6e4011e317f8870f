"""The command line's options: one sub-parser per command."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from typing import NoReturn

from dse import __version__
from dse.models.registry import DEFAULT_FINN, FINN_VERSIONS
from dse.solver import DEFAULT_BATCH, STRATEGIES

Subparsers = argparse._SubParsersAction  # what add_subparsers returns


@dataclass(frozen=True, slots=True)
class Command:
    """A command's function (``module:name``), imported when the command runs: after main()
    has imported onnxruntime with its cache redirected, and without loading every command's
    libraries for ``dse --help``."""

    module: str
    name: str

    def __call__(self, args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(self.module), self.name)(args) or 0)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other dse error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dse",
        description="Map quantized networks onto several FPGA boards with FINN: layer graphs, "
                    "FINN-exact cost models, joint folding + partition optimization.",
    )
    p.add_argument("--version", action="version", version=f"dse {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the Python traceback of an internal error (exit code 3)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _inspect(sub)
    _cost(sub)
    _optimize(sub)
    _evaluate(sub)
    _emit(sub)
    _build(sub)
    _verify(sub)
    _finn_setup(sub)
    _explore(sub)
    _calibrate(sub)
    _plot(sub)
    _boards(sub)
    return p


def _inspect(sub: Subparsers) -> None:
    s = sub.add_parser("inspect", help="HW-layer table of a network with FINN's estimates")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--part", default="xcu55c-fsvh2892-2L-e", help="FPGA part (default: U55C)")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8 "
                                         "(default: float input, as exported)")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=Command("dse.cli.layers", "cmd_inspect"))


def _cost(sub: Subparsers) -> None:
    s = sub.add_parser("cost", help="FINN's estimate for one layer, or a CSV of layers")
    s.add_argument("--op", help="op type, e.g. MVAU_hls, ConvolutionInputGenerator_rtl, MVAU")
    s.add_argument("--attrs", help="JSON object of FINN attributes")
    s.add_argument("--part", default=None, help="FPGA part (affects MVAU_rtl DSPs)")
    s.add_argument("--finn", default=DEFAULT_FINN, choices=FINN_VERSIONS,
                   help="the FINN line whose estimates to give: plus (finn-plus 1.6.1, "
                        "default), main or dev")
    s.add_argument("--csv", help="batch: CSV with op_type and attribute columns")
    s.add_argument("--out", help="batch output CSV (default: <csv>_estimates.csv)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=Command("dse.cli.layers", "cmd_cost"))


def _optimize(sub: Subparsers) -> None:
    s = sub.add_parser("optimize", help="joint folding + multi-board partition (CP-SAT)")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--boards", default="1",
                   help="number of boards (of --board) or a list, e.g. U55C,U55C,U280; "
                        "NAME@MHZ gives a board its own clock (U55C@250,U280@200)")
    s.add_argument("--board", default="U55C", help="board type for a count (default U55C)")
    s.add_argument("--shell", help="shell profile: coyote, vitis or zynq (default per board)")
    s.add_argument("--cap", action="append",
                   help="utilization caps, e.g. lut=0.8,bram18=0.9 (default FINN's)")
    s.add_argument("--clock-mhz", type=float, default=None,
                   help="FPGA clock in MHz (default per board: 100 on Zynq-7000 boards, as "
                        "FINN builds them, 200 on the others)")
    s.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    s.add_argument("--strategy", default="joint",
                   choices=STRATEGIES,
                   help="joint (default): folding, boards and SLRs solved together; setfolding: "
                   "FINN's SetFolding + an even split; two-stage: SetFolding + fewest boards; "
                   "elastic-df: SetFolding + Elastic-DF's placement (use --replicas for its "
                   "replicas)")
    s.add_argument("--topology", default="chain", choices=("chain", "switch"))
    s.add_argument("--link-gbps", type=float, default=None,
                   help="link line rate (default: the boards' network port, 100 on Alveo)")
    s.add_argument("--link-efficiency", type=float, default=0.88)
    s.add_argument("--rx-buffer-bytes", type=int, help="ACCL RX buffer size (default 4 MiB)")
    s.add_argument("--rx-buffers", type=int, help="ACCL RX buffer count (default boards + 2)")
    s.add_argument("--no-external-weights", action="store_true",
                   help="keep all weights on chip (no HBM/DDR mem_mode=external)")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--board-order", default="auto", choices=("auto", "given"),
                   help="auto: try every distinct order of the boards and keep the best "
                        "(default); given: keep the order typed")
    s.add_argument("--mvau-wwidth-max", type=int, default=None,
                   help="SetFolding's cap on MVAU weight-stream bits per PE for the baseline "
                        "strategies (default: the best of 36, 64, 128, 256; FINN's own "
                        "default is 36)")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--out", default="dse_out", help="directory for plan.json (default dse_out)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1,
                   help="CP-SAT workers (default 1, reproducible; more: not reproducible)")
    s.add_argument("--reproducible", action="store_true",
                   help="leave wall-clock time out of plan.json (byte-identical reruns)")
    s.add_argument("--json", action="store_true", help="print the plan JSON")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.add_argument("--verbose", action="store_true",
                   help="print the time and outcome of every phase (also kept in plan.json)")
    s.add_argument("--emit", metavar="DIR", help="also write per-board FINN builds to DIR")
    _batch_arg(s)
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.add_argument("--replicas", default=None,
                   help="data-parallel copies: a count of whole-pipeline copies (each on "
                        "whole boards, or one SLR group of a board: 3 per U55C, as Elastic-DF "
                        "replicates); segments (each board of the chain may run as several "
                        "copies, e.g. a slow first stage on 3 boards, chosen by the solver); "
                        "or auto (the best of all). Default: auto on several identical "
                        "boards, else 1")
    g = s.add_argument_group(
        "LLMs from architecture configs (--model llama2-7b, bert-base, ... or config.json)")
    g.add_argument("--mode", choices=("encoder", "prefill", "decode"),
                   help="encoder: a sequence per frame; prefill: the prompt; decode: one token "
                        "per step with the KV cache in HBM (default: decode for decoders, "
                        "encoder otherwise)")
    g.add_argument("--seq", type=int, default=None,
                   help="tokens per frame (encoder, prefill); the prompt for the time to first "
                        "token (decode)")
    g.add_argument("--context", type=int, default=None,
                   help="cached tokens (decode); default 1024")
    g.add_argument("--sequences", type=int, default=None,
                   help="sequences in flight across the pipeline; a GPU/CPU stage runs them "
                        "as one batch (every mode); default 1")
    g.add_argument("--max-latency", type=float, default=None, metavar="MS",
                   help="bound on the latency per token (decode) or per sequence, in ms")
    g.add_argument("--max-ttft", type=float, default=None, metavar="MS",
                   help="bound on the time to first token (decode), in ms")
    g.add_argument("--weights", default=None,
                   help="weight type, e.g. int4 (default), int8, fp4, fp6, fp8 (OCP minifloats)")
    g.add_argument("--acts", default=None, help="activation type (default int8; or fp8, ...)")
    g.add_argument("--kv", help="KV-cache type (default: --acts)")
    g.add_argument("--rotation", default="none", choices=("none", "spinquant", "quarot"),
                   help="online Hadamard rotations at SpinQuant's (R3, R4) or QuaRot's positions "
                        "(+ across heads before W_o), costed as FWHT layers")
    g.add_argument("--expand", type=float, default=0.0,
                   help="model expansion: pad the MLP's intermediate size by this fraction "
                        "(e.g. 0.05; rounded up to a Hadamard length when rotated)")
    g.add_argument("--group", type=int, default=None,
                   help="weights quantized per group of this many input channels, with a "
                        "16-bit scale per group (default 0: per tensor)")
    g.add_argument("--price", action="append",
                   help="price per hour by board/device name for the cost metric, e.g. "
                        "U55C=1.65,A100-80GB=3.67 (or price_per_hour in a board file)")
    g.add_argument("--hbm-efficiency", type=float, default=None,
                   help="fraction of the HBM bandwidth streams reach (default 0.9)")
    s.set_defaults(func=Command("dse.cli.optimize", "cmd_optimize"))


def _evaluate(sub: Subparsers) -> None:
    s = sub.add_parser("evaluate", help="cost a FINN folding config on a board, as a plan")
    s.add_argument("--model", required=True, help="QONNX / FINN-ONNX model")
    s.add_argument("--folding", required=True, help="FINN folding_config.json")
    s.add_argument("--board", required=True, help="catalog board (dse boards)")
    s.add_argument("--clock-mhz", type=float, default=None)
    s.add_argument("--input-dtype", default=None, help="e.g. UINT8 for an image input")
    s.add_argument("--board-file", action="append", default=None)
    _batch_arg(s)
    s.add_argument("--json", action="store_true", help="print the plan JSON")
    s.set_defaults(func=Command("dse.cli.evaluate", "cmd_evaluate"))


def _batch_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="FRAMES",
                   help="frames in one call of FINN's PYNQ driver, for metrics.batch: the fps "
                        "throughput_test() would measure (the driver's register accesses, "
                        f"then one II per frame); default {DEFAULT_BATCH} frames. "
                        "metrics.fps stays the steady state")


def _emit(sub: Subparsers) -> None:
    s = sub.add_parser("emit", help="per-board FINN build directories for a plan")
    s.add_argument("--plan", required=True, help="plan.json from dse optimize")
    s.add_argument("--model",
                   help="the plan's model: FINN HW graph, or QONNX (lowered by finn-plus); "
                        "required for a CNN plan; for an LLM plan the user's QONNX export "
                        "binds the weights (without it the configs only are written)")
    s.add_argument("--out", required=True)
    s.add_argument("--board-file", action="append",
                   help="the plan's own boards (TOML or JSON), as given to dse optimize")
    s.add_argument("--estimate-only", action="store_true",
                   help="configure FINN's estimate-only flow (default: the full flow to "
                        "bitstreams, which dse build runs where Vivado/Vitis is installed)")
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=Command("dse.cli.finn", "cmd_emit"))


def _build(sub: Subparsers) -> None:
    s = sub.add_parser("build", help="run FINN on emitted builds and compare with the plan")
    s.add_argument("dir")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=Command("dse.cli.finn", "cmd_build"))


def _verify(sub: Subparsers) -> None:
    s = sub.add_parser("verify", help="run the emitted partitions in sequence (FINN's Python "
                                     "execution) and compare with the whole network")
    s.add_argument("dir", help="the dse emit output directory")
    s.add_argument("--model", help="the whole HW-layer graph (default: DIR/finn_hw_graph.onnx)")
    s.add_argument("--inputs", type=int, default=2, help="random inputs (default 2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=Command("dse.cli.finn", "cmd_verify"))


def _finn_setup(sub: Subparsers) -> None:
    s = sub.add_parser("finn-setup", help="create the finn-plus environment FINN runs in")
    s.add_argument("path", nargs="?", help="where (default: ~/.cache/dse/finn-plus-<ver>)")
    s.add_argument("--force", action="store_true", help="recreate it")
    s.set_defaults(func=Command("dse.cli.finn", "cmd_finn_setup"))


def _explore(sub: Subparsers) -> None:
    s = sub.add_parser("explore", help="Optuna search over boards, clock, caps, weight "
                                      "placement; Pareto fronts")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--boards", default="1..8", help="board counts: 1..8, 1,2,4 or 4")
    s.add_argument("--board-types", default="U55C", help="board types to mix, e.g. U55C,U280")
    s.add_argument("--trials", type=int, default=40, help="finished trials in the study")
    s.add_argument("--storage", help="Optuna storage URL (e.g. postgresql://...) or a journal "
                                     "file; default DIR/study.journal")
    s.add_argument("--study", help="study name (default dse-<model>)")
    s.add_argument("--out", default="dse_explore")
    s.add_argument("--resume", action="store_true", help="continue the study in DIR")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe"))
    s.add_argument("--clock-mhz", help="clock range LOW..HIGH (default 150..300, widened to "
                   "each board type's catalog clock: 100..300 with Pynq-Z1)")
    s.add_argument("--trial-time-limit", type=float, default=20.0, help="seconds per trial")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--accuracy", help="quantization co-design: a CSV of configuration, "
                   "accuracy[, model] rows (formats per network or layer group, rotations, "
                   "expansion); accuracy becomes an objective (docs/minifloat.md)")
    g = s.add_argument_group("LLMs over device mixes (--model llama2-7b, config.json)")
    g.add_argument("--devices", help="device types and counts to mix, e.g. "
                                     "U55C:0..8,A100-80GB:0..2,EPYC-9654x2:0..1")
    g.add_argument("--mode", choices=("encoder", "prefill", "decode"))
    g.add_argument("--seq", type=int, default=None, help="default 128")
    g.add_argument("--context", type=int, default=None, help="default 1024")
    g.add_argument("--sequences", type=int, default=None,
                   help="sequences in flight (decode); default 8")
    g.add_argument("--weights", default=None, help="default int4")
    g.add_argument("--acts", default=None, help="default int8")
    g.add_argument("--price", action="append", help="NAME=USD_PER_HOUR, e.g. U55C=1.65")
    s.set_defaults(func=Command("dse.cli.explore", "cmd_explore"))


def _calibrate(sub: Subparsers) -> None:
    s = sub.add_parser("calibrate", help="fit a GPU/CPU's roofline efficiencies to "
                                         "measured step times")
    s.add_argument("--device", required=True, help="device name, e.g. A100-80GB")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--measurements",
                     help="CSV: params, weight_bits, tokens, attn_gops, kv_mb, act_mb, blocks, "
                          "precision, measured_ms (one kernel step per row)")
    src.add_argument("--published",
                     help="CSV of published figures (benchmarks/data/published_llm.csv "
                          "format); the rows of --device are fitted")
    s.add_argument("--board-file", action="append", help="device files (TOML or JSON)")
    s.add_argument("--out", help="write the calibrated device as a JSON device file")
    s.set_defaults(func=Command("dse.cli.calibrate", "cmd_calibrate"))


def _plot(sub: Subparsers) -> None:
    s = sub.add_parser("plot", help="figures of an explore or optimize output directory")
    s.add_argument("dir")
    s.set_defaults(func=Command("dse.cli.explore", "cmd_plot"))


def _boards(sub: Subparsers) -> None:
    s = sub.add_parser("boards", help="list the board catalog")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=Command("dse.cli.layers", "cmd_boards"))
