"""The arena inside training: gauntlets every K checkpoints, the Elo curve, gating."""

from __future__ import annotations

import json
import sqlite3

import pytest

from checkpoints import list_checkpoints
from selfplay import config as cfg
from selfplay.evaluation import STATE_FILE
from selfplay.loop import train
from tests.selfplay.util import tiny_overrides


def _config(*extra: str) -> cfg.TrainConfig:
    return cfg.merge(cfg.preset("tictactoe"),
                     tiny_overrides("run.checkpoint_every=1", "arena.games=4",
                                    "arena.simulations=2", *extra))


def _games(run) -> list[tuple[str, str]]:
    with sqlite3.connect(run / "arena.sqlite") as conn:
        return conn.execute("select first, second from games order by id").fetchall()


def test_off_by_default_nothing_is_played(tmp_path):
    run = tmp_path / "run"
    train(_config("run.max_iterations=2"), run, progress=False)
    assert not (run / "arena.sqlite").exists() and not (run / "elo.csv").exists()


def test_gauntlet_every_two_checkpoints_draws_the_elo_curve(tmp_path):
    run = tmp_path / "run"
    train(_config("run.max_iterations=4", "arena.every=2"), run, progress=False)
    names = [p.stem for p in list_checkpoints(run / "checkpoints")]
    assert len(names) == 4
    pairs = {tuple(sorted(p)) for p in _games(run)}
    # Checkpoint 2 plays checkpoint 1 (the first); checkpoint 4 plays 2 and 1.
    assert pairs == {tuple(sorted((names[1], names[0]))), tuple(sorted((names[3], names[1]))),
                     tuple(sorted((names[3], names[0])))}
    assert len(_games(run)) == 12
    rows = (run / "elo.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and (run / "elo.png").exists()
    assert json.loads((run / STATE_FILE).read_text())["last_gauntlet"] == names[3]


@pytest.mark.parametrize("mode", ["winrate", "sprt"])
def test_gating_promotes_only_after_a_match(tmp_path, mode):
    run = tmp_path / "run"
    train(_config("run.max_iterations=3", f"arena.gating={mode}", "arena.gate_score=0.5"),
          run, progress=False)
    names = [p.stem for p in list_checkpoints(run / "checkpoints")]
    games = _games(run)
    # The first checkpoint is promoted without a match; each later one plays the promoted one.
    played = {frozenset(p) for p in games}
    assert frozenset((names[1], names[0])) in played
    # Checkpoint 3 met whichever of 1 and 2 was promoted then, and nobody else.
    assert played - {frozenset((names[1], names[0]))} <= {frozenset((names[2], names[0])),
                                                          frozenset((names[2], names[1]))}
    promoted = json.loads((run / STATE_FILE).read_text())["promoted"]
    assert promoted in names
    if mode == "winrate":
        assert len(games) == 4 * 2  # checkpoints 2 and 3, 4 games each


def test_arena_settings_may_change_on_resume(tmp_path):
    run = tmp_path / "run"
    train(_config("run.max_iterations=1"), run, progress=False)
    train(None, run, {"run": {"max_iterations": "2"}, "arena": {"every": "1"}}, progress=False)
    assert (run / "arena.sqlite").exists()


def test_bad_arena_settings_are_refused():
    for bad in ("arena.gating=maybe", "arena.games=0", "arena.gate_score=1.5"):
        with pytest.raises(ValueError):
            _config(bad)
