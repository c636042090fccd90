"""A real `python -m tabula COMMAND` process driven line by line, for the subprocess fuzz."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import REPO

STARTUP = 60.0
"""Seconds allowed for the first answer (imports, kernel compilation)."""
ANSWER = 30.0
"""Seconds allowed for any later answer."""


def _pump(stream, lines: queue.Queue) -> None:
    for raw in stream:
        lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
    lines.put(None)


class EngineProcess:
    """`tabula ARGS` in `cwd` (the repository on PYTHONPATH), bytes in, lines out."""

    def __init__(self, *args: str, cwd: Path):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-m", "tabula", *args], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.stderr = b""
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        self.timeout = STARTUP

    def send(self, line: str | bytes) -> None:
        """Writes one line (a newline is added)."""
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def line(self) -> str:
        try:
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {self.timeout} s") from None
        if line is None:
            raise AssertionError(f"the engine exited: {self.close(check=False)}")
        self.timeout = ANSWER
        return line

    def until(self, done) -> list[str]:
        """Lines up to and including the first for which done(line) is true."""
        out = [self.line()]
        while not done(out[-1]):
            out.append(self.line())
        return out

    def close(self, check: bool = True) -> str:
        """Ends input, waits for the exit; returns stderr. With `check`: status 0, no traceback."""
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        code = self.proc.wait(timeout=60)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        if check:
            assert code == 0, err
            assert "Traceback" not in err, err
        return err
