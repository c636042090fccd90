"""What every fuzz target shares: the Violation it raises, and its interface."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hypothesis import strategies as st


class Violation(AssertionError):
    """A property that failed, with the input and the answer."""


def expect(condition: bool, what: str, given, answer) -> None:
    if not condition:
        raise Violation(f"{what}\n  input:  {given!r}\n  answer: {answer!r}"[:3000])


@contextlib.contextmanager
def working_directory(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


class Target:
    """A fuzz target (its properties: tests/fuzz/targets.py); subclasses set name,
    inputs_strategy and check."""

    name = ""
    inputs_strategy = staticmethod(lambda: st.nothing())

    def __init__(self):
        self.inputs = 0

    def open(self, workdir: Path) -> None:
        """Slow set-up, once, with `workdir` the current directory."""

    def session(self):
        """A context to run checks in (the CLI's stubs)."""
        return contextlib.nullcontext()

    def check(self, example) -> None:
        raise NotImplementedError
