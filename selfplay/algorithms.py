"""The two algorithm families behind one interface: AlphaZero and MuZero.

Everything that differs between them lives here: the actor, the record codec
(positions or segments), the replay, the learner, building an evaluator from
weights, what a checkpoint records, and the work around training (MuZero's
reanalyse and episode returns). The run state (selfplay/run.py), the loop
(selfplay/loop.py) and the actor workers (selfplay/worker.py) call this
interface and never ask which algorithm they run.

`algorithm(name)` returns the object for config.algo.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from engine.eval_cache import with_cache
from engine.evaluator import make_evaluator
from engine.loading import load_muzero_network, load_network
from engine.muzero_net import MuZeroNet
from engine.muzero_search import MuZeroInference
from selfplay import config as cfg
from selfplay.actor import Actor
from selfplay.learner import Learner, scheduled_lr
from selfplay.muzero_actor import MuZeroActor, is_environment, reanalyze, value_bounds
from selfplay.muzero_learner import MuZeroLearner
from selfplay.muzero_replay import (SegmentReplay, encode_segments, load_segments_window,
                                    read_segments, segments_size, write_segments)
from selfplay.records import encode_shard, game_texts, read_shard, write_shard
from selfplay.replay import ReplayBuffer, growing_window, load_window, window_capacity


def _mb_bytes(mb: float) -> int:
    """window_mb in bytes; 0 for no bound."""
    return 0 if not mb or mb == float("inf") else int(mb * 2**20)


def is_finished(record) -> bool:
    """A finished game: every AlphaZero record; a MuZero segment that ends its game."""
    return bool(getattr(record, "done", True))


class AlphaZero:
    """Search with the game's rules; a policy/value network; positions as records."""

    name = "alphazero"
    shared_inference = True
    """Actor processes can share one inference server (run.inference_server)."""

    def refuse(self, game) -> str | None:
        """Why this algorithm cannot train `game`, or None."""
        if is_environment(game):
            return (f"{game.info.name} is an environment without known rules: AlphaZero "
                    "needs the rules; use --algo muzero (learned dynamics)")
        return None

    def run_dir_suffix(self, game) -> str:
        """What `tabula train` appends to runs/<game> by default."""
        return ""

    def new_learner(self, game, config: cfg.TrainConfig):
        return Learner(game, config.network, config.learner, config.run.device)

    def new_replay(self, game, config: cfg.TrainConfig):
        info = game.info
        return ReplayBuffer(
            window_capacity(config.replay.window_positions, config.replay.window_mb,
                            info.observation_shape, info.num_actions),
            info.observation_shape, info.num_actions, config.learner.value_target_q,
            territory=info.territory)

    def new_actor(self, game, config: cfg.TrainConfig, rng: np.random.Generator, seed: int):
        return Actor(game, config.search, config.selfplay, rng)

    def load_window(self, replay, paths: list[Path], replay_dir: Path, config, game,
                    sizes: dict) -> None:
        info = game.info
        load_window(replay, replay_dir, config.game, info.observation_shape, info.num_actions,
                    sizes)

    def read_records(self, path: Path, config, game, replay) -> list:
        info = game.info
        return read_shard(path, config.game, info.observation_shape, info.num_actions)

    def write_records(self, path: Path, config, game, replay, records) -> None:
        info = game.info
        write_shard(path, config.game, info.observation_shape, info.num_actions, records)

    def encode_records(self, config, game, actor, records) -> bytes:
        info = game.info
        return encode_shard(config.game, info.observation_shape, info.num_actions, records)

    def records_size(self, records) -> tuple[int, int]:
        """(positions, window bytes; 0 where the window counts positions only)."""
        return sum(len(r) for r in records), 0

    def texts(self, game, records, first_index: int) -> str | None:
        return game_texts(game, records, first_index)

    def playing_evaluator(self, learner, game, config: cfg.TrainConfig, threads=None):
        """The learner's current weights for self-play (a snapshot)."""
        evaluator = make_evaluator(learner.playing_net, config.selfplay.inference_backend,
                                   threads=threads, batch=config.inference_batch())
        return with_cache(evaluator, config.selfplay.eval_cache, game.info.num_actions)

    def checkpoint_evaluator(self, path, game, config: cfg.TrainConfig, threads=None,
                             device: str = "cpu"):
        """An evaluator of the checkpoint at `path` (verified) for self-play."""
        net, _ = load_network(path, map_location=device)
        evaluator = make_evaluator(net.eval(), config.selfplay.inference_backend,
                                   threads=threads, batch=config.inference_batch())
        return with_cache(evaluator, config.selfplay.eval_cache, game.info.num_actions)

    def metadata_extra(self, config: cfg.TrainConfig) -> dict:
        """What a checkpoint records beyond the search settings."""
        return {}

    def take_chunk_extras(self, actor) -> dict:
        """Figures an actor collected that the chunk carries (and the actor forgets)."""
        return {}

    def value_bounds(self, game):
        """The search's known value bounds for `game`, or None (min-max normalised)."""
        return None

    def wants_evaluator_for_learning(self, config: cfg.TrainConfig) -> bool:
        """Whether the learning step needs the current weights as an evaluator."""
        return False

    def before_training(self, run, evaluator, records: list, moves: int, chunks: list,
                        value_bounds, stop) -> tuple[list, dict]:
        """Work between self-play and training; (the finished games, metrics)."""
        return records, {}

    def train(self, run, steps: int, stop) -> tuple[dict, dict]:
        """`steps` learner steps; (losses, metrics)."""
        c = run.config
        run.learner.set_learning_rate(scheduled_lr(c.learner, run.progress))
        recent = growing_window(run.counters["positions"], c.replay.window_start,
                                run.replay.capacity)
        losses = run.learner.train(run.replay, steps, run.rng, stop, recent)
        return losses, {"replay/sampled": min(recent, run.replay.size)}


class MuZero(AlphaZero):
    """Search with a learned model; segments with unrolled targets, priorities, reanalyse."""

    name = "muzero"
    shared_inference = False

    def refuse(self, game) -> str | None:
        if not game.info.alternating:
            return (f"{game.info.name}: a player can move twice in a row, and MuZero's "
                    "learned model does not predict who moves next; use --algo alphazero")
        return None

    def run_dir_suffix(self, game) -> str:
        # Environments are MuZero's alone; a board game's MuZero run sits beside AlphaZero's.
        return "" if is_environment(game) else "_muzero"

    def new_learner(self, game, config: cfg.TrainConfig):
        return MuZeroLearner(game, config.muzero_network, config.learner, config.muzero,
                             config.run.device)

    def new_replay(self, game, config: cfg.TrainConfig):
        info, mz = game.info, config.muzero
        return SegmentReplay(
            config.replay.window_positions, info.observation_shape, info.num_actions,
            frames=info.frame_stack > 0, unroll_steps=mz.unroll_steps,
            td_steps=mz.td_steps, discount=config.search.discount,
            prioritized=mz.prioritized, alpha=mz.priority_alpha, beta=mz.priority_beta,
            max_bytes=_mb_bytes(config.replay.window_mb))

    def new_actor(self, game, config: cfg.TrainConfig, rng: np.random.Generator, seed: int):
        # Environments are seeded per slot from `seed`.
        return MuZeroActor(game, config.search, config.selfplay, config.muzero, rng, seed=seed)

    def load_window(self, replay, paths: list[Path], replay_dir: Path, config, game,
                    sizes: dict) -> None:
        load_segments_window(replay, paths, config.game, sizes)

    def read_records(self, path: Path, config, game, replay) -> list:
        info = game.info
        return read_segments(path, config.game, info.observation_shape, info.num_actions,
                             replay.frames)

    def write_records(self, path: Path, config, game, replay, records) -> None:
        info = game.info
        write_segments(path, config.game, info.observation_shape, info.num_actions,
                       replay.frames, records)

    def encode_records(self, config, game, actor, records) -> bytes:
        info = game.info
        return encode_segments(config.game, info.observation_shape, info.num_actions,
                               actor.frames, records)

    def records_size(self, records) -> tuple[int, int]:
        return segments_size(records)

    def texts(self, game, records, first_index: int) -> str | None:
        return None

    def playing_evaluator(self, learner, game, config: cfg.TrainConfig, threads=None):
        net = MuZeroNet(tuple(game.info.observation_shape), game.info.num_actions,
                        config.muzero_network)
        net.load_state_dict(learner.state_dict_cpu())
        return MuZeroInference(net, device=config.run.device)

    def checkpoint_evaluator(self, path, game, config: cfg.TrainConfig, threads=None,
                             device: str = "cpu"):
        net, _ = load_muzero_network(path, map_location=device)
        return MuZeroInference(net, device=device)

    def metadata_extra(self, config: cfg.TrainConfig) -> dict:
        return {"muzero": dataclasses.asdict(config.muzero)}

    def take_chunk_extras(self, actor) -> dict:
        returns = [float(x) for x in actor.episode_returns]
        actor.episode_returns.clear()
        return {"episode_returns": returns}

    def value_bounds(self, game):
        return value_bounds(game)

    def wants_evaluator_for_learning(self, config: cfg.TrainConfig) -> bool:
        return config.muzero.reanalyze_fraction > 0

    def before_training(self, run, evaluator, records: list, moves: int, chunks: list,
                        value_bounds, stop) -> tuple[list, dict]:
        c = run.config
        returns = [x for ch in chunks for x in ch.get("episode_returns", [])]
        extra = {"selfplay/episodes": len(returns),
                 "selfplay/mean_return": float(np.mean(returns)) if returns else float("nan")}
        fraction = c.muzero.reanalyze_fraction
        if fraction > 0 and run.replay.size and not stop():
            count = math.ceil(moves * fraction / (1 - fraction))
            extra["reanalyze/positions"] = reanalyze(
                run.replay, evaluator, c.search, count, run.rng, value_bounds,
                batch=c.selfplay.parallel_games)
        return [r for r in records if is_finished(r)], extra  # games, for the statistics

    def train(self, run, steps: int, stop) -> tuple[dict, dict]:
        run.learner.set_learning_rate(scheduled_lr(run.config.learner, run.progress))
        return run.learner.train(run.replay, steps, run.rng, stop), {}


ALGORITHMS = {"alphazero": AlphaZero(), "muzero": MuZero()}


def algorithm(name: str) -> AlphaZero:
    """The algorithm object for config.algo `name` (KeyError for an unknown one)."""
    return ALGORITHMS[name]


def default_algorithm(game) -> str:
    """The algorithm `tabula train` uses when none is named: the first that accepts `game`."""
    return next(name for name, algo in ALGORITHMS.items() if algo.refuse(game) is None)


__all__ = ["ALGORITHMS", "AlphaZero", "MuZero", "algorithm", "default_algorithm",
           "is_finished"]
