"""Helpers shared by the selfplay tests: synthetic game records and tiny settings."""

from __future__ import annotations

import numpy as np

from selfplay.records import GameRecord

TTT_SHAPE = (3, 3, 3)
TTT_ACTIONS = 9

# `tabula train` settings small enough for a test: 1x8 network, 4 simulations, 8 games.
# What the tests rely on is pinned here, not taken from the (tuned) preset: 9 moves
# per iteration finish at least one game in every slot, so every full iteration
# writes a shard and trains; self-play alternates with training in one process
# (run.actors=0), so counts are exact (tests/selfplay/test_parallel.py covers actors).
TINY = ["--set", "run.actors=0", "--set", "network.blocks=1", "--set", "network.channels=8",
        "--set", "network.value_hidden=8", "--set", "search.root_mode=gumbel",
        "--set", "search.num_simulations=4", "--set", "search.max_num_considered_actions=4",
        "--set", "selfplay.parallel_games=8", "--set", "selfplay.moves_per_iteration=9",
        "--set", "selfplay.inference_backend=torch", "--set", "replay.window_positions=5000",
        "--set", "replay.min_positions=10", "--set", "learner.batch_size=16",
        "--set", "learner.replay_ratio=4", "--set", "learner.max_steps_per_iteration=3",
        "--set", "selfplay.random_move_fraction=0", "--set", "learner.value_target_q=0"]


def tiny_overrides(*extra: str) -> dict:
    """TINY (plus `extra` 'section.key=value' items) as a nested overrides dict."""
    from selfplay import config as cfg

    items = [TINY[i + 1] for i in range(0, len(TINY), 2)] + list(extra)
    return cfg.parse_overrides(items)


def random_record(rng: np.random.Generator, length: int, shape=TTT_SHAPE,
                  num_actions=TTT_ACTIONS, binary: bool = True,
                  marker: float | None = None) -> GameRecord:
    """A game of `length` positions with random contents (0/1 planes if `binary`).

    With `marker`, policy[t, 0] = marker + t, so positions can be told apart.
    """
    if binary:
        obs = (rng.random((length,) + shape) < 0.4).astype(np.float32)
    else:
        obs = rng.normal(size=(length,) + shape).astype(np.float32)
    policy = rng.random((length, num_actions)).astype(np.float32)
    policy /= policy.sum(axis=1, keepdims=True)
    if marker is not None:
        policy[:, 0] = marker + np.arange(length)
    to_play = (np.arange(length) % 2).astype(np.int8)
    winner = rng.integers(-1, 2)
    return GameRecord(observations=obs,
                      actions=rng.integers(0, num_actions, length).astype(np.int32),
                      policies=policy,
                      root_values=rng.uniform(-1, 1, length).astype(np.float32),
                      to_play=to_play,
                      returns=np.array([winner, -winner], np.float32))


def train_state(run_dir) -> dict:
    """The learner metadata of run_dir/train_state.safetensors: step, extra (counters, ...)."""
    import json

    from safetensors import safe_open

    with safe_open(str(run_dir / "train_state.safetensors"), framework="pt") as f:
        return json.loads(f.metadata()["learner"])


def all_shards(run_dir) -> list:
    """Every replay shard of run_dir, archived ones (replay.archive) included, in order."""
    from selfplay.replay import shard_paths

    shards = shard_paths(run_dir / "replay") + shard_paths(run_dir / "replay" / "archive")
    return sorted(shards, key=lambda p: p.name)


def shard_games(run_dir) -> list[int]:
    """Games in each replay shard of run_dir (archived ones included), in shard order
    (every shard must read)."""
    from selfplay.records import read_shard

    return [len(read_shard(p, "tictactoe", TTT_SHAPE, TTT_ACTIONS))
            for p in all_shards(run_dir)]


def metrics(run_dir) -> list[dict]:
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))
