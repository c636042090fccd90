"""Players for the front-ends and matches: checkpoints (shipped or trained) behind `Player`.

Every front-end gets its engine here, so the rules for finding a checkpoint
(an explicit path, else the model shipped with the `checkpoints` package)
and the messages when there is none live in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def shipped_checkpoint(game_name: str) -> Path:
    """Path of the model shipped for `game_name` (it may not exist).

    The file is `checkpoints/shipped/<game>.safetensors` inside the installed
    `checkpoints` package, with '/' in the game name replaced by '_'.
    """
    import checkpoints

    name = game_name.replace("/", "_")
    return Path(checkpoints.__file__).parent / "shipped" / f"{name}.safetensors"


def resolve_checkpoint(game_name: str, checkpoint: str | Path | None) -> Path:
    """The checkpoint to load: `checkpoint` if given, else the shipped model.

    Raises:
      CheckpointError: no checkpoint given and no model shipped for the game.
    """
    from checkpoints import CheckpointError

    if checkpoint is not None:
        return Path(checkpoint)
    path = shipped_checkpoint(game_name)
    if not path.exists():
        raise CheckpointError(
            f"no model is shipped for {game_name} ({path} does not exist); train one with "
            f"`tabula train --game {game_name}` or pass --checkpoint PATH")
    return path


def checkpoint_game(path: str | Path) -> str:
    """The game a checkpoint was trained on, read from its header (CheckpointError if bad)."""
    from checkpoints import read_metadata

    return read_metadata(path)["game"]


def load_player(game_name: str | None, checkpoint: str | Path | None,
                sims: int | None = None, seed: int = 0, default_game: str = "connect4"):
    """Loads a verified checkpoint as a deterministic (temperature 0) `Player`.

    Args:
      game_name: registry name; None means the checkpoint's game (or
        `default_game` when no checkpoint is given either).
      checkpoint: a checkpoint file, or None for the shipped model.
      sims: simulations per move (default: the checkpoint's training setting).
      seed: the Player's random seed.
      default_game: game used when neither a game nor a checkpoint is given.
    Raises:
      GameError: unknown game.
      CheckpointError: missing, tampered or mismatched checkpoint.
      ValueError: invalid search settings (e.g. sims < 1).
    """
    from engine.player import Player
    from games import get_game

    if game_name is None:
        game_name = checkpoint_game(checkpoint) if checkpoint is not None else default_game
    game = get_game(game_name)
    path = resolve_checkpoint(game_name, checkpoint)
    overrides = {} if sims is None else {"num_simulations": int(sims)}
    player = Player.from_checkpoint(path, game=game, **overrides)
    player.rng = np.random.default_rng(seed)
    return player


class LowestActionPlayer:
    """A deliberately weak baseline: always the legal action with the lowest id.

    Has the `analyze` interface of engine.player.Player (only `.action` and
    `.prior` are meaningful), so checkers can be tested against it.
    """

    name = "lowest"

    def analyze(self, states: Sequence, num_simulations: int | None = None,
                add_noise: bool = False) -> list[Any]:
        """One fake analysis per state; blocks for no time."""
        out = []
        for state in states:
            mask = state.legal_mask()
            action = int(np.flatnonzero(mask)[0])
            prior = np.zeros(len(mask), np.float32)
            prior[action] = 1.0
            out.append(_FakeAnalysis(action, prior))
        return out


class _FakeAnalysis:
    def __init__(self, action: int, prior: np.ndarray):
        self.action = action
        self.prior = prior
        self.value = 0.0
