"""One way to make a CP-SAT solver in dse.

CP-SAT catches SIGINT by default and, when the solve ends, leaves the C-level SIGINT handler
at SIG_DFL instead of Python's: the next Ctrl-C then kills the process outright (exit 130 from
the signal, no KeyboardInterrupt, no cleanup, a stale journal lock). dse turns that off, so
Ctrl-C is always Python's KeyboardInterrupt and every command can stop cleanly.
"""

from __future__ import annotations

from ortools.sat.python import cp_model


def cp_solver() -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    s.parameters.catch_sigint_signal = False
    return s
