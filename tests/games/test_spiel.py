"""SpielState against raw open_spiel on random games, and the generic adapter."""

import numpy as np
import pyspiel
import pytest

from games import GameError, GameInfo, State, get_game
from games.spiel import SpielGame
from tests.games.util import board_from_text, random_action

SPIEL_NAMES = {"tictactoe": "tic_tac_toe", "connect4": "connect_four"}
# Observation row of open_spiel's text row 0 (top): tic-tac-toe keeps it, Connect Four flips.
FLIP_ROWS = {"tictactoe": False, "connect4": True}


def expected_observation(name, raw, player):
    """float32[3, H, W] built from open_spiel's board text, not from its tensor."""
    _, height, width = get_game(name).info.observation_shape
    board = board_from_text(raw, height, width)
    if FLIP_ROWS[name]:
        board = board[::-1]
    mine, theirs = player + 1, 2 - player
    return np.stack([board == mine, board == theirs, board == 0]).astype(np.float32)


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_random_games_match_open_spiel(name):
    game = get_game(name)
    raw_game = pyspiel.load_game(SPIEL_NAMES[name])
    rng = np.random.default_rng(1234)
    outcomes = set()
    for _ in range(300):
        state, raw = game.new_initial_state(), raw_game.new_initial_state()
        while True:
            mask = np.zeros(game.info.num_actions, bool)
            mask[raw.legal_actions()] = True
            np.testing.assert_array_equal(state.legal_mask(), mask)
            assert state.is_terminal() == raw.is_terminal()
            np.testing.assert_array_equal(state.returns(), np.float32(raw.returns()))
            assert state.returns().dtype == np.float32
            assert state.history() == raw.history()
            player = len(raw.history()) % 2
            if not raw.is_terminal():
                assert state.to_play() == raw.current_player() == player
            obs = state.observation()
            assert obs.dtype == np.float32 and obs.shape == game.info.observation_shape
            np.testing.assert_array_equal(obs, expected_observation(name, raw, player))
            if raw.is_terminal():
                outcomes.add(tuple(raw.returns()))
                break
            action = random_action(state, rng)
            mover = raw.current_player()
            reward = state.apply(action)
            raw.apply_action(action)
            expected = raw.returns()[mover] if raw.is_terminal() else 0.0
            assert reward == expected
    assert outcomes == {(1.0, -1.0), (-1.0, 1.0), (0.0, 0.0)}


@pytest.mark.parametrize("name, bad", [("tictactoe", [-1, 9, 100]), ("connect4", [-1, 7])])
def test_apply_rejects_out_of_range(name, bad):
    state = get_game(name).new_initial_state()
    for action in bad:
        with pytest.raises(GameError, match="out of range"):
            state.apply(action)
    assert state.history() == []


def test_apply_rejects_illegal_and_finished():
    game = get_game("connect4")
    state = game.new_initial_state()
    for _ in range(6):
        state.apply(0)
    with pytest.raises(GameError, match="illegal move '1'"):
        state.apply(0)
    state = game.state_from_actions([0, 1, 0, 1, 0, 1, 0])
    assert state.is_terminal()
    with pytest.raises(GameError, match="game is over"):
        state.apply(3)


def test_clone_is_independent():
    state = get_game("tictactoe").state_from_actions([4])
    assert isinstance(state, State)
    copy = state.clone()
    copy.apply(0)
    assert state.history() == [4] and copy.history() == [4, 0]
    assert state.spiel_state.history() == [4]


def test_generic_adapter_without_player_planes():
    info = GameInfo("ttt-raw", num_actions=9, observation_shape=(3, 3, 3),
                    num_players=2, max_game_length=9)
    game = SpielGame(info, "tic_tac_toe")
    state = game.state_from_actions([4, 0])
    raw = state.spiel_state
    np.testing.assert_array_equal(
        state.observation(), np.float32(raw.observation_tensor()).reshape(3, 3, 3))
    assert state.text_to_action(" 8 ") == 8
    assert state.text_to_action(state.action_to_text(2)) == 2
    with pytest.raises(GameError, match="cannot parse"):
        state.text_to_action("nonsense")
    assert type(game.new_search_batch([state], 4)).__name__ == "ObjectBatch"


def test_adapter_rejects_unsupported_games():
    info = GameInfo("kuhn", num_actions=2, observation_shape=(11,), num_players=2,
                    max_game_length=3)
    with pytest.raises(GameError, match="'kuhn_poker': imperfect information, chance events"):
        SpielGame(info, "kuhn_poker")
    wrong = GameInfo("ttt", num_actions=10, observation_shape=(3, 3, 3), num_players=2,
                     max_game_length=9)
    with pytest.raises(GameError, match="num_actions"):
        SpielGame(wrong, "tic_tac_toe")
