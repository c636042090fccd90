"""Replay shards on disk: the window and what resuming needs, nothing older (or archived).

A run with a window of 200 positions (tic-tac-toe, about 70 positions a shard)
passes its window many times over. Two runs with one seed, one pruning and one
archiving (replay.archive), play the same games: the pruning run keeps exactly
the newest shards that fill the window, the archiving run keeps the same files
in replay/ and every older one in replay/archive/, and resumed, both go on to
the same weights: what was pruned was not needed.
"""

from __future__ import annotations

import torch

from checkpoints import load_checkpoint
from selfplay import config as cfg
from selfplay.loop import train
from selfplay.records import read_shard
from selfplay.replay import shard_paths
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, tiny_overrides

WINDOW = 200


def _train(run_dir, iterations: int, archive: bool):
    overrides = tiny_overrides(f"run.max_iterations={iterations}", "run.seed=11",
                               "run.checkpoint_every=1", f"replay.window_positions={WINDOW}",
                               f"replay.archive={str(archive).lower()}")
    return train(cfg.merge(cfg.preset("tictactoe"), overrides), run_dir, progress=False)


def _positions(path) -> int:
    return sum(len(r) for r in read_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS))


def _files(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in shard_paths(directory)}


def test_old_shards_are_pruned_or_archived_and_resuming_loses_nothing(tmp_path):
    pruned, archived = tmp_path / "pruned", tmp_path / "archived"
    _train(pruned, 12, archive=False)
    _train(archived, 12, archive=True)
    kept = shard_paths(pruned / "replay")
    sizes = [_positions(p) for p in kept]
    # Exactly the newest shards that fill the window: without the oldest kept one, the
    # window would not be full.
    assert sum(sizes) >= WINDOW > sum(sizes[1:]), sizes
    assert not (pruned / "replay" / "archive").exists()
    # The archiving run played the same games: the same files in replay/, the rest
    # in replay/archive/, every shard index from 0 once.
    assert _files(archived / "replay") == _files(pruned / "replay")
    old = _files(archived / "replay" / "archive")
    names = sorted(old) + [p.name for p in kept]
    assert names == [f"shard-{i:08d}.msgpack" for i in range(len(names))] and old
    # Resumed, both runs train on to the same weights.
    a, b = _train(pruned, 15, archive=False), _train(archived, 15, archive=True)
    wa, wb = load_checkpoint(a.checkpoint).state_dict, load_checkpoint(b.checkpoint).state_dict
    assert a.learner_step == b.learner_step > 0
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert sum(_positions(p) for p in shard_paths(pruned / "replay")[1:]) < WINDOW
