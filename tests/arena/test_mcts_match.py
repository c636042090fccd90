"""Matches against a bot: colours alternate, results counted from the engine's side."""

from __future__ import annotations

import pytest

from arena.matches.baselines import make_bot
from arena.matches.mcts_match import MatchResult, play_match
from arena.matches.players import LowestActionPlayer
from games import get_game


class LowestBot:
    """Bot with open_spiel's step(pyspiel_state) interface: lowest legal action."""

    def __init__(self):
        self.steps = 0

    def step(self, spiel_state):
        self.steps += 1
        return min(spiel_state.legal_actions())


def test_colours_alternate_and_results_count_for_the_engine():
    # Both sides play the lowest legal cell, so the first player wins every game
    # (x completes c1-b2-a3): the engine wins when it starts, loses otherwise.
    result = play_match(get_game("tictactoe"), LowestActionPlayer(), LowestBot(), 5,
                        progress=False)
    assert (result.wins, result.draws, result.losses) == (3, 0, 2)
    assert result.scores == [1.0, 0.0, 1.0, 0.0, 1.0]
    score, low, high = result.score_interval()
    assert score == pytest.approx(0.6) and 0.0 <= low < score < high <= 1.0


def test_score_interval_is_wilson():
    # 7 of 10: Wilson's 95% interval is 0.3968..0.8922 (textbook value).
    result = MatchResult(wins=7, losses=3, scores=[1.0] * 7 + [0.0] * 3)
    score, low, high = result.score_interval()
    assert score == pytest.approx(0.7)
    assert (low, high) == (pytest.approx(0.3968, abs=1e-4), pytest.approx(0.8922, abs=1e-4))
    # All losses: the interval still has width.
    _, low, high = MatchResult(losses=4, scores=[0.0] * 4).score_interval()
    assert low == 0.0 and 0.4 < high < 0.5
    assert "W 0 D 0 L 4" in MatchResult(losses=4, scores=[0.0] * 4).line("x")


def test_open_spiel_bot_plays_real_games():
    game = get_game("tictactoe")
    result = play_match(game, LowestActionPlayer(), make_bot(game, 20, seed=1), 2,
                        progress=False)
    assert result.games == 2


def test_bad_arguments():
    game = get_game("tictactoe")
    with pytest.raises(ValueError, match="--mcts-sims"):
        make_bot(game, 0, seed=0)
    with pytest.raises(ValueError, match="--games"):
        play_match(game, LowestActionPlayer(), LowestBot(), 0, progress=False)
