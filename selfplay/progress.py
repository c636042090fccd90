"""Training progress: a tqdm bar on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns several times a second; written to a
file (`tabula train > run.log 2>&1`) that is one unreadable line of a thousand
refreshes. Off a terminal, `training_progress` gives a LogLines instead: one
plain line per iteration, at most one every LOG_INTERVAL seconds, and always
the last one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_INTERVAL = 30.0
"""Fewest seconds between two progress lines in a log file."""


class LogLines:
    """tqdm's interface as used by the training loop, writing plain lines to `stream`."""

    def __init__(self, total: int | None, initial: int, desc: str, stream: TextIO,
                 interval: float = LOG_INTERVAL):
        self.total, self.n, self.desc, self.stream = total, initial, desc, stream
        self.interval = interval
        self.start = time.monotonic()
        self.last: float | None = None

    def __enter__(self) -> "LogLines":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def write(self, line: str, file: TextIO | None = None) -> None:
        """Prints `line` to this log's stream (`file`, as tqdm.write takes it, is ignored)."""
        print(line, file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        """Prints the iteration's line when the interval has passed or the run's last."""
        now = time.monotonic()
        last = self.total is not None and self.n >= self.total
        if self.last is not None and now - self.last < self.interval and not last:
            return
        self.last = now
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        minutes, seconds = divmod(int(now - self.start), 60)
        self.write(f"{self.desc}: iteration {count}, {minutes}:{seconds:02d} elapsed, {text}")


def training_progress(total: int | None, initial: int, desc: str, enabled: bool,
                      stream: TextIO | None = None):
    """A tqdm bar when `stream` (default stderr) is a terminal, else LogLines; with
    `enabled` False a disabled tqdm (no output)."""
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if enabled and not _is_terminal(stream):
        return LogLines(total, initial, desc, stream)
    return tqdm(total=total, initial=initial, disable=not enabled, unit="it",
                dynamic_ncols=True, desc=desc, file=stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
