"""Go trains end to end, and its self-play games are written as SGF a GUI can open."""

from __future__ import annotations

from games.sgf import read_sgf
from selfplay import config as cfg
from selfplay.loop import train
from tests.selfplay.util import tiny_overrides


def test_go_self_play_games_are_written_as_sgf(tmp_path):
    run = tmp_path / "run"
    config = cfg.merge(cfg.preset("go/5"), tiny_overrides(
        "run.max_iterations=1", "selfplay.parallel_games=3", "selfplay.moves_per_iteration=80",
        "selfplay.temperature_moves=80"))
    summary = train(config, run, progress=False)
    assert summary.games >= 3  # 5x5 games end within 3 * 25 = 75 moves; slots restart
    files = sorted((run / "games").glob("shard-*.sgf"))
    assert [f.name for f in files] == ["shard-00000000.sgf"]
    text = files[0].read_text()
    assert text.count("(;") == summary.games
    first = read_sgf(text)  # the collection's first game
    assert first.size == 5 and first.komi == 7.5 and first.moves
    assert first.result.startswith(("B+", "W+"))
    assert first.moves[0][0] == "B" and all(
        colour == "BW"[i % 2] for i, (colour, _) in enumerate(first.moves))
