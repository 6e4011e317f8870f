"""A wall-clock bound on a call that has no time limit of its own."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from dse.exceptions import InfeasibleError


class _Expired(BaseException):
    """Raised by the timer; a BaseException so that no ``except Exception`` on the way (a
    search that tries and drops candidates) takes it for an ordinary failure."""


@contextlib.contextmanager
def time_bound(seconds: float, what: str) -> Iterator[None]:
    """Raise ``InfeasibleError`` naming ``what`` when the block runs longer than ``seconds``
    (an interval timer: on the main thread; elsewhere the block runs unbounded)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _Expired

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise InfeasibleError(f"{what}: no plan within --time-limit {seconds:g} s; raise it "
                              "or offer fewer devices") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
