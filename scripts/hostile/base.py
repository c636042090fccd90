"""The corpus's types, and the generic corpus every format gets.

Case, Loader and Result; empty, truncated, bit-flipped, garbage and foreign
files made from a valid one; and the pickle payloads, built here and nowhere
else, whose unpickling would create the marker file.
"""

from __future__ import annotations

import io
import os
import pickle  # only to build hostile payloads; the project itself never unpickles
import shlex
import sqlite3
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

MARKER = "PWNED"
"""The file the pickle payloads create when unpickled: it must never appear."""
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Case:
    """One file of the corpus."""

    name: str
    data: bytes
    kind: str
    """empty, truncated, flip, garbage, other-format, pickle or crafted."""
    expect: str = "refuse"
    """Which loaders must refuse it: refuse (all), weights (those that read the weights),
    network (those that build the network), either (none: it may be a valid file)."""


@dataclass
class Loader:
    """A loader and what it is given: the valid file, its directory and its corpus."""

    format: str
    name: str
    filename: str
    """Path of the file in its directory, e.g. 'train_state.safetensors'."""
    valid: bytes
    load: Callable[[Path], Any]
    """Loads the file; raises to refuse it."""
    errors: tuple[type, ...]
    """The loader's own error types."""
    fingerprint: Callable[[Any], Any]
    """A comparable summary of what `load` returned."""
    crafted: list[Case]
    context: dict[str, bytes] = field(default_factory=dict)
    """Other files of the directory (relative path -> bytes)."""
    binary: bool = True
    """Truncated, empty, garbage and foreign files must be refused (not so for text)."""
    mutable: bool = False
    """An accepted file may be changed (a database opened for writing)."""
    reference: Any = None
    """The fingerprint of the valid file."""
    refuses: tuple[str, ...] = ("refuse",)
    """The `Case.expect` tags this loader must refuse."""
    kin: tuple[str, ...] = ()
    """Formats whose valid files are valid here too (a MuZero checkpoint is a checkpoint)."""

    @property
    def key(self) -> str:
        return f"{self.format}/{self.name}"


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: str
    detail: str
    fingerprint: Any = None
    seconds: float = 0.0


class _Payload:
    """Unpickling this runs `touch MARKER`: the proof that a loader unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def pickle_cases(marker: Path) -> list[Case]:
    """A raw pickle, a torch.save zip and a NumPy object array, each running `touch marker`."""
    import torch

    saved, npy = io.BytesIO(), io.BytesIO()
    torch.save({"weights": _Payload(marker)}, saved)
    np.save(npy, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return [Case("pickle-protocol-2", pickle.dumps(_Payload(marker), protocol=2), "pickle"),
            Case("pickle-protocol-5", pickle.dumps({"w": _Payload(marker)}, protocol=5), "pickle"),
            Case("torch.save", saved.getvalue(), "pickle"),
            Case("numpy-object-array", npy.getvalue(), "pickle")]


def png_bytes() -> bytes:
    """A 1x1 grey PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def sqlite_bytes(build: Path, statements: list[str], base: bytes = b"") -> bytes:
    """The bytes of a SQLite file: `base` (or a new one) after running `statements`."""
    fd, name = tempfile.mkstemp(dir=build, suffix=".sqlite")
    os.close(fd)
    Path(name).write_bytes(base)
    conn = sqlite3.connect(name, isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()
    data = Path(name).read_bytes()
    for suffix in ("", *SQLITE_COMPANIONS):
        Path(name + suffix).unlink(missing_ok=True)
    return data


def generic_cases(valid: bytes, rng: np.random.Generator, flips: int,
                  others: dict[str, bytes], binary: bool) -> list[Case]:
    """Empty, truncated, bit-flipped, garbage and foreign files made from `valid`."""
    n = len(valid)
    strict = "refuse" if binary else "either"
    cases = [Case("empty", b"", "empty", strict)]
    cuts = sorted({1, 4, 7, 8, 9, 16, 64, 256, n // 4, n // 2, 3 * n // 4, n - 8, n - 1}
                  & set(range(1, n)))
    cases += [Case(f"truncated@{c}", valid[:c], "truncated", strict) for c in cuts]
    for bit in sorted(rng.choice(8 * n, size=min(flips, 8 * n), replace=False).tolist()):
        data = bytearray(valid)
        data[bit // 8] ^= 1 << (bit % 8)
        cases.append(Case(f"flip@{bit // 8}.{bit % 8}", bytes(data), "flip", "either"))
    cases += [Case("garbage-64", rng.bytes(64), "garbage", strict),
              Case(f"garbage-{n}", rng.bytes(n), "garbage", strict),
              Case("zeros", bytes(n), "garbage", strict),
              Case("ones", b"\xff" * n, "garbage", strict)]
    cases += [Case(f"other:{name}", data, "other-format", strict)
              for name, data in others.items() if data != valid]
    return cases
