"""Exact tic-tac-toe values and the perfect-play checker."""

from __future__ import annotations

import numpy as np
import pytest

from arena.exact.minimax import Solver, check_perfect
from arena.matches.players import LowestActionPlayer
from games import get_game
from tests.arena.fakes import ScriptedPlayer


def position(moves: str):
    state = get_game("tictactoe").new_initial_state()
    for text in moves.split():
        state.apply(state.text_to_action(text))
    return state


@pytest.fixture(scope="module")
def solver():
    return Solver()


def test_empty_board_is_a_draw(solver):
    assert solver.value(position("")) == 0


def test_immediate_win_is_plus_one_and_its_move_found(solver):
    state = position("a1 a2 b1 b2")  # x: a1 b1, o: a2 b2; x to play, c1 wins
    assert solver.value(state) == 1
    values = solver.move_values(state)
    assert values[state.text_to_action("c1")] == 1
    assert values[state.text_to_action("a3")] == -1  # o then wins at c2


def test_side_to_move_loses_against_a_double_threat(solver):
    # x: a1 b1 a2 threatens c1 and a3; o (b2 c3) cannot win at once and cannot block both.
    state = position("a1 b2 b1 c3 a2")
    assert state.to_play() == 1
    assert solver.value(state) == -1


def test_terminal_position_value_is_for_the_player_to_move(solver):
    state = position("a1 a2 b1 b2 c1")  # x won; o "to move"
    assert state.is_terminal() and solver.value(state) == -1


def test_lowest_action_player_is_not_perfect(solver):
    report = check_perfect(get_game("tictactoe"), LowestActionPlayer(), solver)
    assert not report.perfect
    assert report.losses > 0
    assert report.line().startswith("NOT PERFECT")
    assert report.examples


def test_solver_player_is_perfect(solver):
    def best(state):
        values = solver.move_values(state)
        return max(values, key=lambda a: (values[a], -a))

    player = ScriptedPlayer(best)
    report = check_perfect(get_game("tictactoe"), player, solver)
    assert report.perfect and report.line().startswith("PERFECT")
    assert report.losses == report.missed_win_games == report.blunders == 0
    assert report.games > 0 and report.decisions > 0
    # Each ply's distinct positions are analysed in one call.
    assert len(player.calls) <= 10


def _spiel_value(spiel_state, player: int) -> int:
    """Plain minimax on open_spiel's own states and current_player()."""
    if spiel_state.is_terminal():
        return int(round(spiel_state.returns()[player]))
    values = []
    for action in spiel_state.legal_actions():
        child = spiel_state.clone()
        child.apply_action(action)
        values.append(_spiel_value(child, player))
    return max(values) if spiel_state.current_player() == player else min(values)


def test_solver_follows_extra_turns():
    """dots_and_boxes 2x2: completing a box moves again; the solver's values are
    open_spiel's minimax for the player to move, in positions 6 random edges in."""
    game = get_game("spiel/dots_and_boxes")
    solver, rng = Solver(), np.random.default_rng(0)
    for _ in range(30):
        state = game.new_initial_state()
        for _ in range(6):
            state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        if not state.is_terminal():
            expected = _spiel_value(state.spiel_state, state.to_play())
            assert solver.value(state) == expected, state.history()
