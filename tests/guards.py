"""Hang guards: a test fails when its work never ends, never because a machine is slow.

A guard's limit sits orders of magnitude above the work's time on any machine
(a test must pass four times faster or slower, or with both cores busy), so it
only catches what does not end: an endless loop, a count-down from 2**31, a
quadratic blow-up on a large input. Speeds are measured by `tabula bench`.
"""

from __future__ import annotations

import contextlib
import signal

HANG = 60.0
"""Seconds after which work that takes milliseconds to seconds has hung."""


class Hung(BaseException):
    """The guarded work did not end within its limit (a BaseException, so that code
    under test that catches Exception cannot turn it into an answer)."""


@contextlib.contextmanager
def hang_guard(seconds: float = HANG, what: str = "the work",
               exception: type[BaseException] = Hung):
    """Raises `exception` in the main thread when the body runs longer than `seconds`.

    Uses SIGALRM (main thread only); a long call into C is interrupted when it
    returns to Python.
    """
    def alarm(signum, frame):
        raise exception(f"{what} did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
