"""Atomic, durable file writes: the storage helpers every layer may import.

Writes go to a hidden temporary file in the target's directory, are flushed
and fsynced, renamed over the target and the directory is fsynced, so a
reader sees the old file or the complete new one, and a crash after return
loses nothing. Only the standard library: importing this costs nothing.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    """fsyncs a directory so a rename in it survives a crash (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` atomically (blocking; durable on return).

    Writes a hidden temporary file in the same directory, flushes and fsyncs
    it, renames it over `path` (os.replace) and fsyncs the directory. On any
    failure the temporary file is removed and an existing `path` is left
    untouched. The parent directory is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # named after the temporary file, which the user never asked for
        raise OSError(e.errno, e.strerror, str(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, tmp):
            # write() and fsync() errors name no file; the user needs to know which.
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    _fsync_dir(path.parent)


def check_writable(*paths: str | os.PathLike) -> None:
    """Raises OSError (EROFS or EACCES, naming the path) unless each existing path is writable.

    A directory must allow creating and renaming files in it, a file writing.
    Writes nothing; call it before work whose results must be saved, so a
    read-only or foreign directory is refused before the work, not after.
    """
    for path in map(Path, paths):
        if not path.exists():
            continue
        if os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            continue
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        code = errno.EROFS if read_only else errno.EACCES
        raise OSError(code, os.strerror(code), str(path))


def atomic_move(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Renames `source` to `target` (same filesystem) and makes the rename durable."""
    os.replace(source, target)
    _fsync_dir(Path(target).parent)


__all__ = ["atomic_move", "atomic_write_bytes", "check_writable"]
