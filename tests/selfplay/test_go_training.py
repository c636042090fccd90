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


def test_chess_games_are_written_as_a_pgn_collection():
    import numpy as np

    from arena.matches.records import read_pgn
    from games import get_game
    from selfplay.records import GameRecord, game_texts

    game = get_game("chess")
    state = game.new_initial_state()
    actions = []
    for move in ["f2f3", "e7e5", "g2g4", "d8h4"]:  # fool's mate: Black wins
        actions.append(state.text_to_action(move))
        state.apply(actions[-1])
    n, a = len(actions), game.info.num_actions
    record = GameRecord(np.zeros((n, *game.info.observation_shape), np.float32),
                        np.array(actions, np.int32), np.zeros((n, a), np.float32),
                        np.zeros(n, np.float32), np.array([0, 1, 0, 1], np.int8),
                        np.array([-1.0, 1.0], np.float32))
    games, problems = read_pgn(game_texts(game, [record, record]))
    assert problems == [] and len(games) == 2
    assert games[0].result == "0-1" and "Qh4#" in games[0].movetext
    assert games[1].headers["Round"] == "1"
