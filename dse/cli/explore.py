"""``dse explore`` (CNNs: Optuna over boards, clock, caps; LLMs: over device mixes) and
``dse plot``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dse import api, viz
from dse.cli.flags import check_flags
from dse.cli.render import Progress, progress_to_stderr, table
from dse.exceptions import DseError
from dse.llm.config import is_config_ref
from dse.llm.explore import explore_llm
from dse.option_checks import llm_args
from dse.outdir import staged_dir
from dse.specs.parse import parse_prices


def _explore_llm(args: argparse.Namespace, progress: Progress) -> int:
    if not is_config_ref(args.model):
        raise DseError("--devices mixes GPUs and CPUs with FPGAs for LLMs: give --model an "
                       "architecture config (e.g. llama2-7b or config.json)")
    args = llm_args(args, sequences_default=8)
    res = explore_llm(args.model, args.devices or f"U55C:{args.boards}", out=args.out,
                      trials=args.trials, seed=args.seed, mode=args.mode, seq=args.seq,
                      context=args.context, sequences=args.sequences, weights=args.weights,
                      acts=args.acts, prices=parse_prices(args.price),
                      board_files=tuple(args.board_file or ()),
                      progress=None if args.quiet else progress, resume=args.resume)
    rows = [[r["chain"], f"{r['tokens_per_s']:,.1f}", f"{r['latency_ms']:.2f}",
             "" if r.get("cost_per_million_tokens") is None else
             f"{r['cost_per_million_tokens']:.3f}", r["binding"]] for r in res["pareto"]]
    print(table(["chain", "tokens/s", "ms/token", "$/Mtok", "limited by"], rows,
                right={1, 2, 3}))
    print(f"\n{len(res['trials'])} trials, {len(res['pareto'])} on the front; "
          f"{res['out'] / 'pareto.csv'}, {res['out'] / 'pareto.png'}")
    return 0


def _explore_codesign(args: argparse.Namespace, progress: Progress | None) -> int:
    from dse.codesign import explore_codesign

    res = explore_codesign(
        args.model or "", args.accuracy, out=args.out, boards=args.boards,
        board_types=args.board_types, trials=args.trials, seed=args.seed,
        trial_time_limit=args.trial_time_limit, clock_range=_clock_range(args.clock_mhz),
        input_dtype=args.input_dtype, progress=progress,
        llm_options={"mode": args.mode, "seq": args.seq, "context": args.context,
                     "sequences": args.sequences})
    print(f"results  {res['out']}/trials.csv, pareto.csv, pareto.png/.svg")
    body = [[r["configuration"], f"{r['accuracy']:g}", f"{float(r['fps']):,.1f}",
             int(float(r["boards_used"])), f"{int(float(r['lut'])):,}", r["board_names"]]
            for r in res["pareto"]]
    print("\nPareto front (accuracy max, throughput max, boards min, LUT min):")
    print(table(["configuration", "accuracy", "throughput/s", "boards", "LUT", "board types"],
                body, right={1, 2, 3, 4}))
    return 0


def _clock_range(text: str | None) -> tuple[float, float] | None:
    """``--clock-mhz LOW..HIGH`` or one clock; None: the explorer's default range."""
    if text is None:
        return None
    lo, _, hi = text.partition("..")
    try:
        return float(lo), float(hi or lo)
    except ValueError:
        raise DseError(f"--clock-mhz {text!r}: use a range such as 150..300") from None


def cmd_explore(args: argparse.Namespace) -> int:
    llm = is_config_ref(args.model)  # an architecture config, not a network file
    check_flags("explore", "llm" if llm else "cnn", args)  # none silently ignored
    if args.accuracy:  # quantization co-design (dse.codesign)
        return _explore_codesign(args, None if args.quiet else progress_to_stderr)
    if llm:
        return _explore_llm(args, progress_to_stderr)

    clock = _clock_range(args.clock_mhz)
    res = api.explore(
        args.model, boards=args.boards, board_types=args.board_types, trials=args.trials,
        storage=args.storage, study=args.study, out=args.out, resume=args.resume,
        seed=args.seed, sampler=args.sampler, clock_range=clock,
        trial_time_limit=args.trial_time_limit, input_dtype=args.input_dtype,
        minimize_bit_width=not args.no_minimize_bit_width,
        board_files=args.board_file, progress=None if args.quiet else progress_to_stderr,
    )
    print(f"study    {res.study_name}: {res.n_trials} trials, {res.n_feasible} feasible")
    print(f"results  {res.out}/trials.csv, pareto.csv, plans/, pareto.png/.svg, provenance.json")
    headers = ["trial", "fps", "boards", "latency ms", "LUT", "boards / clock"]
    body = [[r["trial"], f"{float(r['fps']):,.0f}", int(float(r["boards_used"])),
             f"{1e3 * float(r['latency_s']):.3f}", f"{int(float(r['lut'])):,}",
             f"{r['board_names']} @ {float(r['param_clock_mhz']):g} MHz"] for r in res.pareto]
    print("\nPareto front (FPS max, boards min, latency min, LUT min):")
    print(table(headers, body, right={0, 1, 2, 3, 4}))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    if not (d / "trials.csv").is_file() and not (d / "plan.json").is_file():
        raise DseError(f"{d}: no trials.csv (dse explore) or plan.json (dse optimize) to plot")
    with staged_dir(d, "plot directory") as tmp:  # figures appear only if all were drawn
        if (d / "trials.csv").is_file():
            written = viz.save_explore_figures(d, out=tmp)
        else:
            written = viz.save_plan_figures(d / "plan.json", tmp)
    for p in written:
        print(d / p.relative_to(tmp))
    return 0
