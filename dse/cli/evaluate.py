"""``dse evaluate``: a FINN folding config on a board, reported as a plan."""

from __future__ import annotations

import argparse

from dse.solver.folding import evaluate_folding, format_report


def cmd_evaluate(args: argparse.Namespace) -> int:
    res = evaluate_folding(args.model, args.folding, args.board, clock_mhz=args.clock_mhz,
                           input_dtype=args.input_dtype, board_files=args.board_file or (),
                           batch=args.batch)
    print(res.plan.to_json() if args.json else format_report(res.plan),
          end="" if args.json else "\n")
    return 0
