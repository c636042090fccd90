"""Running a corpus: each file in a directory of its own, under time and memory limits."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tests.guards import hang_guard

from .base import (MARKER, SQLITE_COMPANIONS, Case, Loader, Result, generic_cases,
                   pickle_cases, png_bytes, sqlite_bytes)

TIME_LIMIT_S = 30.0
"""Seconds a loader may take on one file before it counts as hung."""
MEMORY_LIMIT = 2 * 2**30
"""Bytes of address space a loader may add (Linux): beyond, MemoryError, not a swamped host."""
OUTCOMES = ("refused", "accepted-same", "accepted-other", "unclear", "crashed")


class Hang(BaseException):
    """A loader ran past the time limit (BaseException: no `except Exception` eats it)."""


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def memory_limit(extra: int = MEMORY_LIMIT):
    """Caps this process's address space at its current size plus `extra` bytes (Linux only).

    A loader that allocates what a crafted file announces then fails with
    MemoryError (a crash in the tally) instead of exhausting a shared machine.
    """
    try:
        import resource
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        soft = None
    if soft is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
    try:
        yield
    finally:
        if soft is not None:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _line(text: str, limit: int = 160) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit] + "..."


def _names_file(message: str, path: Path) -> bool:
    return str(path) in message or (path.name in message and str(path.parent) in message)


def _attempt(loader: Loader, path: Path) -> tuple[str, str, Any]:
    try:
        with hang_guard(TIME_LIMIT_S, exception=Hang), memory_limit():
            value = loader.load(path)
            fingerprint = loader.fingerprint(value)
    except Hang:
        return "crashed", f"no answer within {TIME_LIMIT_S:g} s", None
    except Exception as e:  # noqa: BLE001 (MemoryError and RecursionError included)
        message = str(e)
        if not isinstance(e, loader.errors):
            return "crashed", f"{type(e).__name__}: {_line(message)}", None
        if "Traceback" in message or not _names_file(message, path):
            return "unclear", _line(message), None
        return "refused", _line(message), None
    same = loader.reference is None or fingerprint == loader.reference
    return ("accepted-same" if same else "accepted-other"), "", fingerprint


def _damage(before: dict, after: dict, target: str, outcome: str, mutable: bool) -> str:
    """What changed in the directory that should not have, or ''."""
    changed = [k for k in before if k != target and after.get(k) != before[k]]
    created = [k for k in after if k not in before
               and not any(k == target + s for s in SQLITE_COMPANIONS)]
    if changed or created:
        return f"files changed: {changed}, created: {created}"
    if not (mutable and outcome.startswith("accepted")) and after.get(target) != before[target]:
        return f"{outcome} but the file itself was modified"
    return ""


def run_case(loader: Loader, case: Case, root: Path, index: int) -> Result:
    """Gives `case` to `loader` in a fresh directory under `root`; classifies the outcome."""
    directory = root / f"case-{index:05d}"
    for rel, data in loader.context.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    path = directory / loader.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)
    (directory / "neighbour.bin").write_bytes(b"a neighbouring file\n")
    (directory / "neighbour-valid").write_bytes(loader.valid)
    before = _hashes(directory)
    start = time.perf_counter()
    outcome, detail, fingerprint = _attempt(loader, path)
    seconds = time.perf_counter() - start
    damage = _damage(before, _hashes(directory), loader.filename, outcome, loader.mutable)
    if damage:
        outcome, detail = "crashed", damage
    if (root / MARKER).exists():
        (root / MARKER).unlink()
        outcome, detail = "crashed", "the pickle payload ran (marker file created)"
    shutil.rmtree(directory)
    return Result(case, outcome, detail, fingerprint, seconds)


def corpus(loader: Loader, flips: int, seed: int, others: dict[str, bytes],
           marker: Path) -> list[Case]:
    """The loader's whole corpus: generic mutations, foreign files, pickles, crafted files."""
    rng = np.random.default_rng([seed, zlib.crc32(loader.format.encode())])
    strict = "refuse" if loader.binary else "either"
    cases = generic_cases(loader.valid, rng, flips, others, loader.binary)
    cases = [replace(c, expect="either") if c.name.removeprefix("other:") in loader.kin else c
             for c in cases]
    if loader.mutable:  # a file opened to write to: an empty one is a new database
        cases = [replace(c, expect="either") if c.kind == "empty" else c for c in cases]
    return cases + [replace(c, expect=strict) for c in pickle_cases(marker)] + loader.crafted


def prepare(loader: Loader, root: Path) -> None:
    """Sets the loader's reference fingerprint from its valid file (which it must accept)."""
    result = run_case(loader, Case("valid", loader.valid, "valid", "either"), root, 99999)
    if result.outcome != "accepted-same":
        raise RuntimeError(f"{loader.key}: the valid file is not accepted: "
                           f"{result.outcome} {result.detail}")
    loader.reference = result.fingerprint


def run_loader(loader: Loader, cases: list[Case], root: Path) -> list[Result]:
    if loader.reference is None:
        prepare(loader, root)
    return [run_case(loader, case, root, i) for i, case in enumerate(cases)]


def others_for(loaders: list[Loader], build: Path) -> dict[str, bytes]:
    """Files of other kinds: PNG, gzip, a foreign SQLite database and each format's valid file."""
    others = {"png": png_bytes(), "gzip": gzip.compress(b"hello " * 100, mtime=0),
              "sqlite-foreign": sqlite_bytes(build, ["CREATE TABLE t (x)",
                                                     "INSERT INTO t VALUES (1)"])}
    for loader in loaders:
        others.setdefault(loader.format, loader.valid)
    return others


def failures(loader: Loader, results: list[Result]) -> list[Result]:
    """Unclear or crashed results, and files that must be refused but were not."""
    return [r for r in results if r.outcome in ("unclear", "crashed")
            or (r.case.expect in loader.refuses and r.outcome != "refused")]
