"""Small JSON files a run or the arena reads back, and search settings inside checkpoints.

Crafted contents (deep nesting, wrong types, huge numbers) are refused with
the project's own error naming the file, or ignored where the file is only
bookkeeping; never a RecursionError, AttributeError or a giant allocation.
"""

from __future__ import annotations

import json

import pytest

from arena.exact.solved import load_positions
from checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from engine.player import Player
from selfplay import config as cfg
from selfplay.evaluation import STATE_FILE, TrainingArena
from selfplay.worker import LATEST, read_latest
from tests.conftest import make_checkpoint

DEEP = "[" * 100_000 + "]" * 100_000


def _with_search(tmp_path, search) -> object:
    good = make_checkpoint(tmp_path / "good.safetensors", "tictactoe")
    loaded = load_checkpoint(good)
    meta = {k: loaded.meta[k] for k in ("game", "network", "observation_shape",
                                        "num_actions", "step")}
    meta["extra"] = {"search": search}
    path = tmp_path / "crafted.safetensors"
    save_checkpoint(path, loaded.state_dict, meta)
    return path


@pytest.mark.parametrize("search, words", [
    ([1, 2], "must be an object"),
    ({"num_simulations": 10**15}, "num_simulations"),
    ({"num_simulations": "64"}, "num_simulations"),
    ({"num_simulations": 0}, "invalid"),
    ({"root_mode": "minimax"}, "invalid"),
])
def test_a_checkpoints_search_settings_are_checked(tmp_path, search, words):
    path = _with_search(tmp_path, search)
    with pytest.raises(CheckpointError) as err:
        Player.from_checkpoint(path)
    assert str(path) in str(err.value) and words in str(err.value)
    # The bound is on the file's settings, not on the user's own (--sims).
    good = Player.from_checkpoint(tmp_path / "good.safetensors", num_simulations=5_000_000)
    assert good.search.num_simulations == 5_000_000


@pytest.mark.parametrize("text", [DEEP, "[1, 2]", '{"promoted": 5, "last_gauntlet": ["x"]}',
                                  '{"promoted": "../../etc/passwd"}', "\xff\xfe"])
def test_a_damaged_training_arena_state_is_ignored(tmp_path, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / STATE_FILE).write_text(text, errors="surrogateescape")
    arena = TrainingArena(cfg.preset("tictactoe"), run)
    assert arena.promoted is None and arena.last_gauntlet is None


@pytest.mark.parametrize("text", [DEEP, '{"checkpoint": ["x"]}', '{"checkpoint": "../x"}', "["])
def test_a_damaged_latest_json_means_no_checkpoint(tmp_path, text):
    (tmp_path / LATEST).write_text(text)
    assert read_latest(tmp_path) is None


def test_latest_json_still_names_its_checkpoint(tmp_path):
    (tmp_path / LATEST).write_text(json.dumps({"checkpoint": "step-00000010.safetensors"}))
    assert read_latest(tmp_path) == "step-00000010.safetensors"


@pytest.mark.parametrize("data, words", [
    (DEEP.encode(), ":1: not a solved position (RecursionError)"),
    (b'{"moves": "1", "score": 0, "best_moves": [0], "child_scores": [0]}\n\xff\n',
     "not UTF-8"),
])
def test_a_damaged_solved_positions_file_names_the_file(tmp_path, data, words):
    path = tmp_path / "solved.jsonl"
    path.write_bytes(data)
    with pytest.raises(ValueError) as err:
        load_positions(path)
    assert str(path) in str(err.value) and words in str(err.value)
