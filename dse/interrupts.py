"""Ctrl-C during an exploration: stop after the running trial, keep everything finished.

The first SIGINT asks the search to stop once the running trial has ended (its time is
bounded by the trial time limit) and says so on stderr; the caller then writes the tables of
every finished trial and exits with "interrupted" (130). A second SIGINT stops at once, but
only inside a trial's own work, never inside Optuna's bookkeeping (an interrupt there leaves
Optuna's state half-written: optuna 5.1's ``_run_trial`` then fails with an
UnboundLocalError); the trial it cut short is queued again by the caller.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class StopRequest:
    """Set by the SIGINT handler; read by the search loop."""

    requested: bool = False
    in_work: bool = False
    current: int | None = None  # the number of the running trial

    def wrap(self, objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``objective`` marked as the trial's own work (where a second Ctrl-C may stop)."""
        def run(trial: Any) -> Any:
            self.current = getattr(trial, "number", None)
            self.in_work = True
            try:
                return objective(trial)
            finally:
                self.in_work = False
        return run

    @contextlib.contextmanager
    def work(self, number: int) -> Iterator[None]:
        self.current, self.in_work = number, True
        try:
            yield
        finally:
            self.in_work = False


@contextlib.contextmanager
def stop_on_sigint(on_request: Callable[[], None] | None = None,
                   progress: Callable[[str], None] | None = None) -> Iterator[StopRequest]:
    req = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield req  # signals reach the main thread only: nothing to install
        return

    def handler(signum: int, frame: Any) -> None:
        if not req.requested:
            req.requested = True
            if progress:
                progress("interrupted: stopping after the running trial (Ctrl-C again to "
                         "stop at once); finished trials are kept")
            if on_request:
                on_request()
        elif req.in_work:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield req
    finally:
        signal.signal(signal.SIGINT, old)
