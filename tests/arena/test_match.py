"""Matches: colours alternate, openings are paired and reproducible, forfeits lose, processes agree."""

from __future__ import annotations

import numpy as np
import pytest

from arena.matches.external import Forfeit
from arena.matches.match import GameResult, MatchSettings, opening, play_games, run_match
from arena.matches.players import PlayerSpec
from games import get_game


class Lowest:
    """Always the lowest legal action."""

    def __init__(self, name):
        self.name = name
        self.games = 0
        self.batches = []

    def select(self, states):
        self.batches.append(len(states))
        return [int(np.flatnonzero(s.legal_mask())[0]) for s in states]

    def new_game(self):
        self.games += 1

    def close(self):
        pass


class Forfeiting(Lowest):
    def select(self, states):
        return [Forfeit("engine crashed (exit code 3)") for _ in states]


class Illegal(Lowest):
    def select(self, states):
        return [int(np.flatnonzero(~s.legal_mask())[0]) if (~s.legal_mask()).any() else 99
                for s in states]


def _play(game, a, b, n, settings):
    out: list[GameResult] = []
    play_games(game, a, b, range(n), settings, out.append)
    return sorted(out, key=lambda r: r.index)


def test_colours_alternate_and_lowest_first_player_wins_tictactoe():
    # Both play the lowest free cell: the first player takes 0, 2, 4, 6 and
    # completes the 2-4-6 diagonal on the 7th ply, so whoever moves first wins.
    game = get_game("tictactoe")
    a, b = Lowest("A"), Lowest("B")
    results = _play(game, a, b, 4, MatchSettings("tictactoe", opening_plies=0))
    assert [(r.first, r.second) for r in results] == [("A", "B"), ("B", "A")] * 2
    assert all(r.score == 1.0 and r.reason is None for r in results)
    assert all(len(r.moves) == 7 for r in results)
    assert a.games == 4 and b.games == 4
    assert max(a.batches) == 4  # the four games were searched as one batch


def test_openings_are_paired_reproducible_and_leave_the_game_open():
    game = get_game("connect4")
    settings = MatchSettings("connect4", seed=7, opening_plies=4)
    openings = [opening(game, settings, i) for i in range(20)]
    assert all(len(o) == 4 for o in openings)
    assert all(openings[2 * k] == openings[2 * k + 1] for k in range(10))
    assert len({tuple(o) for o in openings}) > 5
    assert openings == [opening(game, settings, i) for i in range(20)]
    other = MatchSettings("connect4", seed=8, opening_plies=4)
    assert [opening(game, other, i) for i in range(20)] != openings


def test_opening_moves_are_played_and_recorded():
    game = get_game("connect4")
    settings = MatchSettings("connect4", seed=1, opening_plies=3)
    results = _play(game, Lowest("A"), Lowest("B"), 2, settings)
    state = game.new_initial_state()
    expected = [state.action_to_text(a) for a in opening(game, settings, 0)]
    for r in results:
        assert list(r.moves[:3]) == expected and r.opening_plies == 3


@pytest.mark.parametrize("bad", [Forfeiting, Illegal])
def test_a_forfeit_or_illegal_move_loses_and_is_explained(bad):
    game = get_game("connect4")
    results = _play(game, bad("X"), Lowest("L"), 2, MatchSettings("connect4", opening_plies=0))
    first_x, second_x = results
    assert first_x.first == "X" and first_x.score == 0.0
    assert first_x.reason.startswith("first forfeits: ")
    assert second_x.second == "X" and second_x.score == 1.0
    assert second_x.reason.startswith("second forfeits: ")
    if bad is Forfeiting:
        assert "exit code 3" in first_x.reason


def test_two_processes_play_the_same_games_as_one():
    settings = MatchSettings("tictactoe", seed=3, opening_plies=1)
    a, b = PlayerSpec("random", "random"), PlayerSpec("random2", "random")
    one, two = [], []
    run_match("tictactoe", a, b, range(8), settings, one.append, processes=1)
    run_match("tictactoe", a, b, range(8), settings, two.append, processes=2)
    key = lambda r: r.index  # noqa: E731
    assert [(r.index, r.moves, r.score) for r in sorted(one, key=key)] == \
        [(r.index, r.moves, r.score) for r in sorted(two, key=key)]


def test_a_worker_that_cannot_build_its_player_reports_why(tmp_path):
    from arena.matches.players import PlayerSpecError

    missing = PlayerSpec("ghost", "checkpoint", str(tmp_path / "none.safetensors"))
    with pytest.raises(PlayerSpecError):
        run_match("tictactoe", missing, PlayerSpec("random", "random"), range(4),
                  MatchSettings("tictactoe"), lambda r: None, processes=2)
