"""Checkpoint store: safetensors weights + JSON metadata, atomic save, verified load.

The bottom layer with games/: it knows no networks (engine.loading builds
them). checkpoints.files holds the atomic file helpers every layer may import.

Import from here, not from the submodules.
"""

from checkpoints.files import atomic_move, atomic_write_bytes, check_writable
from checkpoints.format import (
    FORMAT_VERSION,
    CheckpointError,
    strict_json,
    weights_sha256,
)
from checkpoints.store import (
    Checkpoint,
    CheckpointInfo,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointInfo",
    "atomic_move",
    "atomic_write_bytes",
    "check_writable",
    "checkpoint_name",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
    "strict_json",
    "weights_sha256",
]
