"""Bounded line reading for the protocol front ends (GTP, UCI, analysis, text prompt).

A client that sends gigabytes without a newline must not make an engine hold
them in memory: each front end reads lines of at most MAX_LINE_BYTES; a longer
one is read to its end in pieces, dropped, and handed on as a LineTooLong so
that the front end answers it in its protocol's way and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, TextIO

MAX_LINE_BYTES = 1 << 20
"""Longest input line (1 MiB: room for any game record in one analysis query)."""


@dataclass(frozen=True)
class LineTooLong:
    """An input line of `size` bytes (or characters, from a text stream), over the limit."""

    size: int

    def reason(self, limit: int = MAX_LINE_BYTES) -> str:
        return f"line of {self.size} bytes ignored; at most {limit}"


def read_line(stream: BinaryIO | TextIO, limit: int = MAX_LINE_BYTES):
    """The next line of `stream`: bytes or str as the stream gives them (with its newline),
    a LineTooLong (the line was over `limit`, and is consumed), or None at end of input.
    Blocks."""
    raw = stream.readline(limit + 1)
    if not raw:
        return None
    newline = "\n" if isinstance(raw, str) else b"\n"
    if len(raw) <= limit or raw.endswith(newline):
        return raw
    size = len(raw)
    while raw and not raw.endswith(newline):  # the rest of the line, piece by piece
        raw = stream.readline(limit)
        size += len(raw)
    return LineTooLong(size)
