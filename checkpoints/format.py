"""Checkpoint file format: safetensors weights plus JSON metadata in the header.

A checkpoint is ONE safetensors file. Its tensors are a network's state_dict;
its header's `__metadata__` (a str -> str map, as safetensors requires) holds
one key, METADATA_KEY, whose value is a JSON object:

  format_version     int, FORMAT_VERSION when written
  game               str, registry name, e.g. 'connect4'
  algo               str, 'alphazero' or 'muzero'
  network            dict, engine.networks.NetworkConfig fields
  observation_shape  list[int], e.g. [3, 6, 7]
  num_actions        int
  step               int, learner steps
  games, positions   int, self-play games and positions seen
  parent             str | null, file name of the previous checkpoint
  created            str, ISO 8601 time (UTC)
  weights_sha256     str, see weights_sha256()
  extra              dict, free-form (JSON values)

Nothing here unpickles anything: the header is JSON and the tensors are raw
little-endian bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from typing import Any, Mapping

import torch

FORMAT_VERSION = 1
METADATA_KEY = "tabula"
ALGOS = ("alphazero", "muzero")
# A safetensors header beyond this is not one we wrote (ours are a few kB).
MAX_HEADER_BYTES = 100 * 1024 * 1024

# key -> (accepted types, description for error messages)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "format_version": ((int,), "an int"),
    "game": ((str,), "a string"),
    "algo": ((str,), "a string"),
    "network": ((dict,), "a dict"),
    "observation_shape": ((list,), "a list of positive ints"),
    "num_actions": ((int,), "an int"),
    "step": ((int,), "an int"),
    "games": ((int,), "an int"),
    "positions": ((int,), "an int"),
    "parent": ((str, type(None)), "a string or null"),
    "created": ((str,), "a string"),
    "weights_sha256": ((str,), "64 lowercase hex digits"),
    "extra": ((dict,), "a dict"),
}
REQUIRED_KEYS = tuple(_FIELDS)
_NON_NEGATIVE = ("step", "games", "positions")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class CheckpointError(Exception):
    """A checkpoint cannot be written or read; the message says why and what to do."""


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in sorted name order.

    Each tensor contributes name, dtype and shape (length-prefixed, so that no
    two different state_dicts encode the same) and then its raw bytes in
    C order, native (little-endian) byte order.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        header = json.dumps([name, str(t.dtype).removeprefix("torch."), list(t.shape)])
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        h.update(struct.pack("<Q", len(header)))
        h.update(header.encode("utf-8"))
        h.update(struct.pack("<Q", len(data)))
        h.update(data)
    return h.hexdigest()


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def strict_json(text: str | bytes) -> Any:
    """Decodes JSON as written by json.dumps(allow_nan=False); ValueError on anything else.

    NaN and Infinity are refused (no Tabula file holds them), and so is nesting
    deep enough to exhaust the stack (a RecursionError otherwise).
    """
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def check_format_version(meta: Mapping[str, Any], where: str) -> None:
    """Raises CheckpointError unless meta['format_version'] is one we can read."""
    version = meta.get("format_version")
    if not _is_int(version):
        raise CheckpointError(
            f"{where}: metadata 'format_version' must be an int, got {version!r}; "
            "the file was not written by Tabula or is corrupt")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format_version {version} is newer than this Tabula "
            f"reads ({FORMAT_VERSION}); upgrade Tabula to load it")
    if version < 1:
        raise CheckpointError(f"{where}: invalid format_version {version}; the file is corrupt")


def validate_metadata(meta: Any, where: str) -> dict[str, Any]:
    """Checks a metadata dict's keys and types; returns it.

    Args:
      meta: the decoded metadata.
      where: path or name used in error messages.
    Raises:
      CheckpointError: a required key is missing or has the wrong type.
    """
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{where}: checkpoint metadata must be a JSON object, got "
            f"{type(meta).__name__}; the file was not written by Tabula or is corrupt")
    check_format_version(meta, where)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(
            f"{where}: checkpoint metadata lacks {missing}; re-save it with "
            "checkpoints.save_checkpoint")
    for key, (types, desc) in _FIELDS.items():
        value = meta[key]
        bad = not isinstance(value, types) or isinstance(value, bool)
        if types == (int,):
            bad = not _is_int(value)
        if key in _NON_NEGATIVE and not bad:
            bad = value < 0
        if key == "observation_shape" and not bad:
            bad = not value or not all(_is_int(s) and s > 0 for s in value)
        if key == "num_actions" and not bad:
            bad = value <= 0
        if key == "weights_sha256" and not bad:
            bad = _SHA256_RE.fullmatch(value) is None
        if bad:
            raise CheckpointError(
                f"{where}: checkpoint metadata '{key}' must be {desc}"
                f"{' >= 0' if key in _NON_NEGATIVE else ''}, got {value!r}; "
                "fix the metadata passed to save_checkpoint")
    if meta["algo"] not in ALGOS:
        raise CheckpointError(
            f"{where}: checkpoint metadata 'algo' must be one of {ALGOS}, "
            f"got {meta['algo']!r}")
    return meta


def encode_metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """The safetensors `__metadata__` map for `meta` (JSON under METADATA_KEY).

    Raises CheckpointError if `meta` holds values JSON cannot encode.
    """
    try:
        text = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint metadata is not JSON-serialisable ({e}); pass only "
            "str/int/float/bool/None/list/dict values") from None
    return {METADATA_KEY: text}


def decode_metadata(st_metadata: Any, where: str) -> dict[str, Any]:
    """Decodes and validates the metadata from a safetensors `__metadata__` map."""
    if not isinstance(st_metadata, dict) or METADATA_KEY not in st_metadata:
        raise CheckpointError(
            f"{where}: safetensors file has no Tabula metadata ('{METADATA_KEY}' in "
            "__metadata__); it is not a Tabula checkpoint")
    try:
        meta = strict_json(st_metadata[METADATA_KEY])
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"{where}: checkpoint metadata is not valid JSON ({e}); the file is corrupt, "
            "use an earlier checkpoint") from None
    return validate_metadata(meta, where)


def parse_header(prefix: bytes, file_size: int, where: str) -> tuple[dict[str, Any], int]:
    """Parses a safetensors header from the start of a file.

    Args:
      prefix: at least the first 8 + header_len bytes of the file.
      file_size: the file's total size, to detect truncation.
      where: path or name used in error messages.
    Returns:
      (header dict, header_len). The header maps tensor names to
      {dtype, shape, data_offsets} and may hold '__metadata__'.
    Raises:
      CheckpointError: not a safetensors file, or truncated.
    """
    not_st = (f"{where}: not a safetensors checkpoint (bad header); the file is "
              "corrupt or of another kind, use an earlier checkpoint")
    if file_size < 8 or len(prefix) < 8:
        raise CheckpointError(not_st)
    (n,) = struct.unpack("<Q", prefix[:8])
    if n == 0 or n > MAX_HEADER_BYTES:
        raise CheckpointError(not_st)
    if 8 + n > file_size or len(prefix) < 8 + n:
        raise CheckpointError(
            f"{where}: checkpoint file is truncated ({file_size} bytes, header alone "
            f"needs {8 + n}); it was not fully written, use an earlier checkpoint")
    try:
        header = strict_json(prefix[8:8 + n].decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        raise CheckpointError(not_st) from None
    if not isinstance(header, dict):
        raise CheckpointError(not_st)
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(x) for x in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(not_st)
        end = max(end, offsets[1])
    if 8 + n + end > file_size:
        raise CheckpointError(
            f"{where}: checkpoint file is truncated ({file_size} bytes, expected "
            f"{8 + n + end}); it was not fully written, use an earlier checkpoint")
    return header, n


__all__ = [
    "ALGOS",
    "CheckpointError",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "REQUIRED_KEYS",
    "check_format_version",
    "decode_metadata",
    "encode_metadata",
    "parse_header",
    "strict_json",
    "validate_metadata",
    "weights_sha256",
]
