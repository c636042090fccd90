"""Same seed, same config, same machine, one process: the same games and the same weights.

Parallel runs (actor processes, Ray) are not deterministic: which chunk
arrives first, and so which positions a gradient step samples, depends on
the operating system's scheduling (docs/RELIABILITY.md).
"""

from __future__ import annotations

import torch

from checkpoints import load_checkpoint
from selfplay import config as cfg
from selfplay.loop import train
from selfplay.records import read_shard
from selfplay.replay import shard_paths
from tests.selfplay.test_muzero import MZ_TINY
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, tiny_overrides


def _train(run_dir, seed: int, algo: str = "alphazero"):
    budget = ["run.max_iterations=3", f"run.seed={seed}", "run.checkpoint_every=1"]
    if algo == "muzero":
        overrides = cfg.parse_overrides(MZ_TINY + budget + ["selfplay.moves_per_iteration=9"])
    else:
        overrides = tiny_overrides(*budget)
    config = cfg.merge(cfg.preset("tictactoe", algo), overrides)
    return train(config, run_dir, progress=False)


def _games(run_dir) -> list[tuple]:
    out = []
    for path in shard_paths(run_dir / "replay"):
        for r in read_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS):
            out.append((r.actions.tobytes(), r.policies.tobytes(), r.root_values.tobytes()))
    return out


def _weights(summary) -> dict[str, torch.Tensor]:
    return load_checkpoint(summary.checkpoint).state_dict


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_games_and_weights(tmp_path):
    first = _train(tmp_path / "a", seed=7)
    second = _train(tmp_path / "b", seed=7)
    other = _train(tmp_path / "c", seed=8)
    assert first.learner_step == second.learner_step > 0
    games = _games(tmp_path / "a")
    assert games and games == _games(tmp_path / "b")
    assert _same_weights(_weights(first), _weights(second))
    # The comparison can fail: another seed plays other games and learns other weights.
    assert _games(tmp_path / "c") != games
    assert not _same_weights(_weights(first), _weights(other))


def test_same_seed_same_games_and_weights_muzero(tmp_path):
    first = _train(tmp_path / "a", seed=3, algo="muzero")
    second = _train(tmp_path / "b", seed=3, algo="muzero")
    assert first.learner_step == second.learner_step > 0
    assert (tmp_path / "a" / "replay").is_dir()
    for x, y in zip(shard_paths(tmp_path / "a" / "replay"),
                    shard_paths(tmp_path / "b" / "replay"), strict=True):
        assert x.read_bytes() == y.read_bytes()
    assert _same_weights(_weights(first), _weights(second))
