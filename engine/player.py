"""The Player: a network (or checkpoint) plus search settings -> moves and analyses.

Front-ends (text prompt, analysis engine, GTP, UCI, the arena) reach the
engine only through this class. Several positions given together are
searched as one batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.interactive import interactive_leaves
from engine.search import SearchConfig, Timings, run_search, sample_actions


# A checkpoint's own search settings are data from a file: a tree of more nodes
# than this is a corrupt or crafted file, not a setting (the user's --sims is not bounded).
MAX_FILE_SIMULATIONS = 1_000_000


@dataclass
class Analysis:
    """The search's view of one position."""

    action: int
    """The move the player chooses."""
    value: float
    """Search value in [-1, 1] for the player to move."""
    raw_value: float
    """The network's value of the position."""
    visits: np.ndarray
    """int32[A]: root visit counts."""
    prior: np.ndarray
    """float32[A]: network prior (0 for illegal moves)."""
    q: np.ndarray
    """float32[A]: Q of each visited move for the player to move (NaN if unvisited)."""
    policy: np.ndarray
    """float32[A]: the search policy (visit distribution or Gumbel improved policy)."""


class Player:
    """Chooses moves for `game` by searching with `evaluator`.

    Args:
      batch: interactive batching: each search selects interactive_leaves(batch, ...)
        leaves per tree and step (virtual loss) instead of `search.leaves_per_step`,
        so that one position alone still gives the network about `batch` positions a
        call (INTERACTIVE_BATCH for the front ends). None: `search.leaves_per_step` as
        it is (self-play, arena matches and evaluations, which batch over games).
    """

    def __init__(self, game, evaluator, search: SearchConfig | None = None,
                 seed: int = 0, temperature: float = 0.0, name: str = "tabula",
                 batch: int | None = None):
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                                  or batch < 1):
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        self.game = game
        self.evaluator = evaluator
        self.search = search or SearchConfig()
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self.temperature = temperature
        self.name = name
        self.timings = Timings()
        self.meta: dict = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, game=None, backend: str = "auto",
                        threads: int | None = None, batch: int | None = None,
                        **search_overrides) -> "Player":
        """Loads a verified checkpoint and searches with its training settings.

        Args:
          path: a checkpoint file.
          game: the Game (default: the checkpoint's game); must match it.
          backend: inference backend (see engine.evaluator.make_evaluator).
          threads: inference threads (default: one per core).
          batch: interactive batching (see Player); None: the checkpoint's leaves_per_step.
          search_overrides: SearchConfig fields, e.g. num_simulations=200.
        Raises:
          CheckpointError: missing, corrupt or tampered file, or another game.
        """
        from checkpoints import read_metadata
        from engine.evaluator import make_evaluator
        from engine.loading import load_network

        family = PLAYERS[read_metadata(path)["algo"]]
        if cls is Player and family is not Player:  # the checkpoint's algorithm plays it
            return family.from_checkpoint(path, game, backend, threads, batch,
                                          **search_overrides)
        net, meta = load_network(path)
        # 'auto' measures the backends at the batch this player will mostly send.
        auto_batch = batch or int(search_overrides.get("leaves_per_step", 1))
        return cls._loaded(path, meta, game,
                           make_evaluator(net, backend, threads, batch=auto_batch),
                           search_overrides, batch)

    @classmethod
    def _loaded(cls, path, meta: dict, game, evaluator, search_overrides: dict,
                batch: int | None = None) -> "Player":
        """A player of a loaded checkpoint: its game (checked) and its training search."""
        from checkpoints import CheckpointError
        from games import get_game

        if game is None:
            game = get_game(meta["game"])
        elif game.info.name != meta["game"]:
            raise CheckpointError(f"{path}: checkpoint is for {meta['game']}, not "
                                  f"{game.info.name}")
        extra = meta.get("extra", {})
        trained = extra.get("search", {}) if isinstance(extra, dict) else None
        if not isinstance(trained, dict):
            raise CheckpointError(f"{path}: metadata 'extra.search' must be an object; the "
                                  "file is corrupt or was not written by Tabula")
        settings = {k: v for k, v in trained.items() if k in SearchConfig.field_names()}
        sims = settings.get("num_simulations", 1)
        if isinstance(sims, bool) or not isinstance(sims, int) or sims > MAX_FILE_SIMULATIONS:
            raise CheckpointError(f"{path}: metadata 'extra.search.num_simulations' must be an "
                                  f"integer up to {MAX_FILE_SIMULATIONS:,}, got {sims!r}; the "
                                  "file is corrupt or was not written by Tabula")
        settings.update(search_overrides)
        try:
            search = SearchConfig(**settings)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: metadata 'extra.search' is invalid ({e}); the "
                                  "file is corrupt or was not written by Tabula") from None
        player = cls(game, evaluator, search, name=Path(path).stem, batch=batch)
        player.meta = meta
        return player

    def with_search(self, **overrides) -> "Player":
        """The same network with other search settings."""
        other = type(self)(self.game, self.evaluator,
                           dataclasses.replace(self.search, **overrides),
                           temperature=self.temperature, name=self.name, batch=self.batch)
        other.meta = self.meta
        return other

    def analyze(self, states: Sequence, num_simulations: int | None = None,
                add_noise: bool = False) -> list[Analysis]:
        """Searches the given non-terminal positions as one batch. Blocks."""
        if not states:
            return []
        for s in states:
            if getattr(s, "is_terminal", lambda: False)():
                raise ValueError("cannot analyse a finished game")
        result = self._search(list(states), self.search_for(len(states), num_simulations),
                              add_noise)
        actions = (sample_actions(result, self.temperature, self.rng)
                   if self.temperature > 0 else result.action)
        return [Analysis(int(actions[i]), float(result.value[i]), float(result.raw_value[i]),
                         result.visits[i], result.prior[i], result.q[i], result.policy[i])
                for i in range(len(states))]

    def search_for(self, num_trees: int, num_simulations: int | None = None) -> SearchConfig:
        """The settings of a search of `num_trees` positions (num_simulations: None for
        the player's own), leaves per step from `batch` when it is set."""
        search = self.search
        if num_simulations is not None and num_simulations != search.num_simulations:
            search = dataclasses.replace(search, num_simulations=num_simulations)
        if self.batch is not None:
            leaves = interactive_leaves(self.batch, num_trees, search.num_simulations,
                                        search.root_mode)
            if leaves != search.leaves_per_step:
                search = dataclasses.replace(search, leaves_per_step=leaves)
        return search

    def _search(self, states: list, search: SearchConfig, add_noise: bool):
        info = self.game.info
        batch = self.game.new_search_batch(states, search.num_simulations + 1)
        return run_search(batch, self.evaluator, search, info.num_actions,
                          info.observation_shape, self.rng, add_noise, self.timings,
                          info.alternating)

    def choose(self, state) -> int:
        """The move for one position. Blocks."""
        return self.analyze([state])[0].action


class MuZeroPlayer(Player):
    """A Player whose search runs on a MuZero checkpoint's learned model.

    Positions are anything with observation() and legal_mask(): board game
    states (searched with discount -1 and Q in [-1, 1]) or environments such
    as Atari (the game's discount, min-max normalised values).
    """

    @classmethod
    def from_checkpoint(cls, path: str | Path, game=None, backend: str = "auto",
                        threads: int | None = None, batch: int | None = None,
                        **search_overrides) -> "MuZeroPlayer":
        """As Player.from_checkpoint for a MuZero checkpoint (backend: torch only)."""
        from engine.loading import load_muzero_network
        from engine.muzero_search import MuZeroInference

        net, meta = load_muzero_network(path)
        return cls._loaded(path, meta, game, MuZeroInference(net, threads=threads),
                           search_overrides, batch)

    def _search(self, states: list, search: SearchConfig, add_noise: bool):
        from engine.muzero_search import run_muzero_search

        environment = self.game.info.kind == "environment"
        obs = np.stack([s.observation() for s in states]).astype(np.float32)
        masks = np.stack([s.legal_mask() for s in states]).astype(bool)
        return run_muzero_search(self.evaluator, obs, masks, search, self.rng, add_noise,
                                 self.timings, None if environment else (-1.0, 1.0))


PLAYERS = {"alphazero": Player, "muzero": MuZeroPlayer}
"""The player class of each algorithm family, by a checkpoint's `algo`."""
