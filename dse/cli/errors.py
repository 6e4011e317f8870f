"""How a command's outcome becomes the exit code (README): dse's errors carry theirs (1
infeasible, 2 bad input, 3 internal, 4 FINN), anything else is an internal error (3), with the
traceback only under ``--debug``."""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

from dse.exceptions import DseError

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; one line on stderr for any error, and its exit code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(args.func(args) or 0)
    except DseError as e:
        kind = {1: "infeasible", 3: "internal error"}.get(e.exit_code, "error")
        print(f"dse {args.command}: {kind}: {e}", file=sys.stderr)
        if args.debug and e.exit_code == EXIT_INTERNAL:
            traceback.print_exc()
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dse {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in dse or a library: not the user's input, not infeasible
        if args.debug:
            traceback.print_exc()
        where = f" ({str(e).splitlines()[0][:200]})" if str(e) else ""
        print(f"dse {args.command}: internal error: {type(e).__name__}{where}; rerun with "
              "--debug for the traceback and please report it", file=sys.stderr)
        return EXIT_INTERNAL
