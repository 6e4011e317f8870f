"""Command line: parse, call dse.api, render. Exit codes: 0 ok, 1 infeasible, 2 bad input,
3 internal error, 4 FINN build/verify failure (README)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence

from dse.cli.errors import run
from dse.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def _import_onnxruntime_without_home_cache() -> None:
    """onnxruntime writes a telemetry device id under $XDG_CACHE_HOME (default ~/.cache) when
    it is imported (qonnx imports it); a dse command should not leave files in the user's home,
    so the import happens once, up front, with the cache pointed at a temporary directory."""
    if "onnxruntime" in sys.modules:
        return
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="dse-ort-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _import_onnxruntime_without_home_cache()
    return run(args)

