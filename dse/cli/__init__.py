"""Command line: parse, call dse.api, render. Exit codes: 0 ok, 1 infeasible, 2 bad input,
3 internal error, 4 FINN build/verify failure (README)."""

from __future__ import annotations

from collections.abc import Sequence

from dse.cli.errors import run
from dse.cli.parser import build_parser
from dse.nohome import keep_caches_out_of_home

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    keep_caches_out_of_home()  # matplotlib's and onnxruntime's caches, not in $HOME
    return run(args)

