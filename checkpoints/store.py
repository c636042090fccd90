"""Checkpoint store: atomic save, verified load, listing.

It knows no networks: building the network a checkpoint describes is
engine.loading's (load_network, load_muzero_network).

Files in a checkpoint directory are named `step-{step:08d}.safetensors`
(checkpoint_name). Writes go to a hidden temporary file in the same
directory, are fsynced and renamed over the target, and the directory is
fsynced, so a reader sees either the old file or the complete new one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from checkpoints.files import atomic_write_bytes
from checkpoints.format import (
    FORMAT_VERSION,
    REQUIRED_KEYS,
    CheckpointError,
    decode_metadata,
    encode_metadata,
    parse_header,
    validate_metadata,
    weights_sha256,
)

_NAME_RE = re.compile(r"^step-(\d{8,})\.safetensors$")
# Keys save_checkpoint fills in when the caller leaves them out.
_DEFAULTS = {"algo": "alphazero", "games": 0, "positions": 0, "parent": None}
# Keys save_checkpoint always computes itself.
_COMPUTED = ("format_version", "weights_sha256")


@dataclass(frozen=True)
class CheckpointInfo:
    """What save_checkpoint wrote."""

    path: Path
    """The checkpoint file."""
    meta: dict[str, Any]
    """The complete metadata stored in the file."""
    size_bytes: int
    """File size."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, verified checkpoint."""

    state_dict: dict[str, torch.Tensor]
    """The network weights (CPU tensors unless loaded elsewhere)."""
    meta: dict[str, Any]
    """The metadata (see checkpoints.format)."""


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at learner step `step`, e.g. 'step-00001000.safetensors'."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return f"step-{step:08d}.safetensors"


def _complete_metadata(state_dict: Mapping[str, torch.Tensor],
                       metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Fills defaults and computed keys; rejects unknown top-level keys."""
    unknown = sorted(set(metadata) - set(REQUIRED_KEYS))
    if unknown:
        raise CheckpointError(
            f"unknown checkpoint metadata key(s) {unknown}; put free-form data under 'extra'")
    meta = {**_DEFAULTS, **metadata}
    for key in _COMPUTED:
        meta.pop(key, None)
    if dataclasses.is_dataclass(meta.get("network")):  # NetworkConfig or MuZeroNetConfig
        meta["network"] = dataclasses.asdict(meta["network"])
    if isinstance(meta.get("observation_shape"), tuple):
        meta["observation_shape"] = list(meta["observation_shape"])
    meta.setdefault("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("extra", {})
    meta["format_version"] = FORMAT_VERSION
    meta["weights_sha256"] = weights_sha256(state_dict)
    return validate_metadata(meta, "save_checkpoint")


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
                    metadata: Mapping[str, Any]) -> CheckpointInfo:
    """Saves weights and metadata as one safetensors file, atomically (blocking).

    Args:
      path: the file to write, usually dir / checkpoint_name(step).
      state_dict: tensor name -> tensor (any device; copied to CPU).
      metadata: at least game, network (dict or NetworkConfig),
        observation_shape, num_actions, step; optional algo ('alphazero'),
        games, positions (0), parent (None), created (now), extra ({}).
        format_version and weights_sha256 are computed here.
    Returns:
      CheckpointInfo with the complete metadata.
    Raises:
      CheckpointError: missing, unknown or ill-typed metadata, or values that
        are not tensors; nothing is written then.
    """
    path = Path(path)
    bad = sorted(k for k, v in state_dict.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f"state_dict values must be tensors; not tensors: {bad}")
    # clone(): safetensors refuses tensors that share storage.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    meta = _complete_metadata(tensors, metadata)
    data = st_save(tensors, metadata=encode_metadata(meta))
    atomic_write_bytes(path, data)
    return CheckpointInfo(path=path, meta=meta, size_bytes=len(data))


def _read_prefix(path: Path) -> tuple[bytes, int]:
    """The first 8 + header_len bytes of `path` (or fewer if short) and the file size."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            first = f.read(8)
            n = int.from_bytes(first, "little") if len(first) == 8 else 0
            rest = f.read(min(n, size)) if 0 < n <= size else b""
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: checkpoint file not found; check the path "
            "(checkpoints.list_checkpoints shows what a directory holds)") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file; "
                              "pass a .safetensors file") from None
    return first + rest, size


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and validates a checkpoint's metadata from its header only (cheap).

    Does not read or verify the weights. Raises CheckpointError (see
    load_checkpoint).
    """
    path = Path(path)
    prefix, size = _read_prefix(path)
    header, _ = parse_header(prefix, size, str(path))
    return decode_metadata(header.get("__metadata__"), str(path))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Loads a checkpoint and verifies its weights' sha256 (blocking).

    Raises:
      CheckpointError: missing file, not a safetensors file, truncated,
        missing or malformed metadata, newer format_version, or a hash
        mismatch (tampered or corrupt weights).
    """
    path = Path(path)
    where = str(path)
    meta = read_metadata(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{where}: cannot read checkpoint ({e})") from None
    parse_header(data, len(data), where)  # The file may have changed since.
    try:
        state_dict = st_load(data)
        actual = weights_sha256(state_dict)
    except Exception as e:  # noqa: BLE001 (a parser of untrusted bytes: KeyError for a dtype
        # torch lacks, SafetensorError, ...); nothing but data was read.
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{where}: not a readable safetensors checkpoint ({first_line}); the file is "
            "corrupt, use an earlier checkpoint") from None
    if actual != meta["weights_sha256"]:
        raise CheckpointError(
            f"{where}: weights sha256 hash mismatch (stored {meta['weights_sha256'][:12]}..., "
            f"computed {actual[:12]}...); the file is tampered with or corrupt, "
            "use an earlier checkpoint")
    bad = _non_finite(state_dict)
    if bad is not None:
        raise CheckpointError(
            f"{where}: weights hold NaN or infinite values (tensor {bad!r}); the training "
            "diverged or the file was crafted, use an earlier checkpoint")
    return Checkpoint(state_dict=state_dict, meta=meta)


def _non_finite(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first tensor holding a NaN or an infinity, or None."""
    for name, t in state_dict.items():
        if t.is_complex():
            t = torch.view_as_real(t)
        if t.is_floating_point() and not torch.isfinite(t.float()).all():
            return name
    return None


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files `step-XXXXXXXX.safetensors` in `directory`, by step (ascending).

    A missing directory holds no checkpoints. Temporary files are ignored.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step in `directory`, or None."""
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None


__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "checkpoint_name",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
]
