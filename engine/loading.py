"""Building the network a checkpoint describes: load_network, load_muzero_network.

checkpoints/ stores and verifies weights and metadata and knows no networks;
this module, beside the networks, turns a verified checkpoint into one. The
metadata is untrusted: sizes are bounded by the weights actually in the file,
and the network is first built on the meta device and compared with them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import torch

from checkpoints import Checkpoint, CheckpointError, load_checkpoint
from engine.networks import PolicyValueNet, network_config_from_dict


def load_network(path: str | os.PathLike,
                 map_location: str | torch.device = "cpu") -> tuple[PolicyValueNet, dict]:
    """Builds the PolicyValueNet a checkpoint describes and loads its weights.

    Returns:
      (network in eval mode on `map_location`, metadata).
    Raises:
      CheckpointError: as load_checkpoint, or the metadata's network config
        does not match the weights.
    """
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    if meta["algo"] != "alphazero":
        raise CheckpointError(
            f"{path}: this is a {meta['algo']} checkpoint (learned dynamics), not an "
            "AlphaZero network; use it where MuZero checkpoints are accepted "
            "(tabula play, tabula train --algo muzero)")
    return _build(path, ckpt, PolicyValueNet, network_config_from_dict, map_location), meta


def _build(path, ckpt: Checkpoint, net_class, config_from_dict, map_location):
    """The network of class `net_class` that `ckpt`'s metadata describes, its weights loaded.

    The metadata is untrusted: sizes are bounded by the weights actually in the
    file, and the network is first built on the meta device (shapes, no memory)
    and compared with the weights, so no metadata makes this allocate more than
    the file holds or loop for long.
    """
    meta = ckpt.meta
    try:
        config = config_from_dict(meta["network"])
        _check_sizes(config, meta, ckpt.state_dict)
        args = (tuple(meta["observation_shape"]), meta["num_actions"], config)
        with torch.device("meta"):
            skeleton = net_class(*args)
        _check_shapes(skeleton.state_dict(), ckpt.state_dict)
        net = net_class(*args)
        net.load_state_dict(ckpt.state_dict, strict=True)
    except (ValueError, RuntimeError, TypeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: checkpoint network does not match its metadata ({first_line}); "
            "the checkpoint was saved from a different network") from None
    return net.to(map_location).eval()


def _check_sizes(config, meta: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raises ValueError if a size in the metadata is beyond what the weights could hold.

    Every unit of a network size (a block, a channel, an action, a support bin)
    has at least one weight, and every block at least one tensor.
    """
    limit = sum(t.numel() for t in state_dict.values())
    sizes = {f"network.{k}": v for k, v in dataclasses.asdict(config).items()
             if isinstance(v, int) and not isinstance(v, bool)}
    sizes["num_actions"] = meta["num_actions"]
    sizes.update((f"observation_shape[{i}]", v) for i, v in enumerate(meta["observation_shape"]))
    for key, value in sizes.items():
        if value > limit:
            raise ValueError(f"{key} = {value} is more than the {limit} weights in the file")
    blocks = getattr(config, "blocks", 0)
    if blocks > len(state_dict):
        raise ValueError(f"network.blocks = {blocks} is more than the {len(state_dict)} "
                         "tensors in the file")


def _check_shapes(expected: Mapping[str, torch.Tensor],
                  state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raises ValueError naming the first tensor whose name or shape differs."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(f"missing tensors {missing[:3]}, unexpected tensors {unexpected[:3]}")
    for name, t in expected.items():
        if tuple(t.shape) != tuple(state_dict[name].shape):
            raise ValueError(f"tensor {name!r} has shape {tuple(state_dict[name].shape)}, "
                             f"the network needs {tuple(t.shape)}")


def load_muzero_network(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Builds the MuZeroNet a MuZero checkpoint describes and loads its weights.

    Returns:
      (network in eval mode on `map_location`, metadata).
    Raises:
      CheckpointError: as load_checkpoint; an AlphaZero checkpoint; or the
        metadata's network config does not match the weights.
    """
    from engine.muzero_net import MuZeroNet, muzero_config_from_dict  # torch-heavy: on demand

    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    if meta["algo"] != "muzero":
        raise CheckpointError(
            f"{path}: this is an {meta['algo']} checkpoint, not a MuZero one; use it "
            "without --algo muzero")
    return _build(path, ckpt, MuZeroNet, muzero_config_from_dict, map_location), meta


__all__ = ["load_muzero_network", "load_network"]
