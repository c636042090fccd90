"""Hand-written positions with hand-computed results, for State and the fast batch."""

import numpy as np
import pytest

from games import get_game
from tests.games.util import play


def fast_replay(name, moves):
    """Plays move texts through the fast batch as a chain of nodes.

    Returns:
      list of (reward, terminal) per move, and the last (obs, mask).
    """
    game = get_game(name)
    start = game.new_initial_state()
    state, actions = start.clone(), []
    for text in moves.split():
        actions.append(state.text_to_action(text))
        state.apply(actions[-1])
    batch = game.new_search_batch([start], len(actions) + 1)
    obs = np.zeros((1, *game.info.observation_shape), np.float32)
    mask = np.zeros((1, game.info.num_actions), bool)
    reward, terminal = np.zeros(1, np.float32), np.zeros(1, bool)
    results = []
    for t, action in enumerate(actions):
        batch.expand(np.zeros(1, np.int32), np.array([t], np.int32), np.array([t + 1], np.int32),
                     np.array([action], np.int32), obs, mask, reward, terminal)
        results.append((float(reward[0]), bool(terminal[0])))
    return results, (obs[0], mask[0])


# (game, moves, returns of players 0 and 1 after the last move)
FINISHED = [
    ("connect4", "1 2 1 2 1 2 1", (1, -1)),                 # x vertical in column 1
    ("connect4", "1 1 2 2 3 3 4", (1, -1)),                 # x horizontal, bottom row 1-4
    ("connect4", "1 2 2 3 3 4 3 4 4 6 4", (1, -1)),         # x diagonal / from 1 up to 4
    ("connect4", "7 6 6 5 5 4 5 4 4 2 4", (1, -1)),         # x diagonal \ from 7 up to 4
    ("connect4", "1 2 1 2 1 2 3 2", (-1, 1)),               # o vertical in column 2
    ("connect4", "6 6 6 1 6 5 5 7 7 4 6 2 4 6 3 2 3 4 1 5 2 "
                 "5 4 1 3 3 3 2 1 1 1 3 2 7 2 4 5 5 4 7 7 7", (0, 0)),  # full board, no four
    ("tictactoe", "a1 a2 b1 b2 c1", (1, -1)),               # x top row
    ("tictactoe", "a1 b1 a2 b2 c3 b3", (-1, 1)),            # o middle column
    ("tictactoe", "a1 b1 b2 c1 c3", (1, -1)),               # x diagonal
    ("tictactoe", "a3 a1 b2 b1 c1", (1, -1)),               # x anti-diagonal
    ("tictactoe", "b2 a1 c1 a3 a2 c2 b1 b3 c3", (0, 0)),    # full board, no line
]


@pytest.mark.parametrize("name, moves, returns", FINISHED)
def test_finished_games(name, moves, returns):
    *before, last = moves.split()
    state = play(name, " ".join(before))
    assert not state.is_terminal()
    reward = state.apply(state.text_to_action(last))
    assert state.is_terminal()
    np.testing.assert_array_equal(state.returns(), np.float32(returns))
    assert reward == (1.0 if max(returns) > 0 else 0.0)  # the mover won or drew
    assert not state.legal_mask().any()

    results, (obs, mask) = fast_replay(name, moves)
    assert results[-1] == (reward, True)
    assert all(r == (0.0, False) for r in results[:-1])
    assert not obs.any() and not mask.any()


def test_draw_board_text():
    state = play("connect4", FINISHED[5][1])
    assert str(state) == "\n".join([
        "x x o x o o o",
        "o x x o x x x",
        "x o o x o x o",
        "o x x o o x o",
        "x o x x x o x",
        "o o x o o x o",
        "1 2 3 4 5 6 7",
        "draw",
    ])


def test_connect4_observation_and_text():
    state = play("connect4", "4 4 3")
    assert state.to_play() == 1
    assert str(state) == "\n".join([
        ". . . . . . .",
        ". . . . . . .",
        ". . . . . . .",
        ". . . . . . .",
        ". . . o . . .",
        ". . x x . . .",
        "1 2 3 4 5 6 7",
        "o to play",
    ])
    expected = np.zeros((3, 6, 7), np.float32)
    expected[0, 1, 3] = 1           # o (to move): column 4, second row from the bottom
    expected[1, 0, 2] = expected[1, 0, 3] = 1  # x: columns 3 and 4, bottom row
    expected[2] = 1 - expected[0] - expected[1]
    np.testing.assert_array_equal(state.observation(), expected)
    _, (obs, mask) = fast_replay("connect4", "4 4 3")
    np.testing.assert_array_equal(obs, expected)
    assert mask.all()


def test_connect4_full_column_mask():
    state = play("connect4", "2 2 2 2 2 2")
    np.testing.assert_array_equal(state.legal_mask(), [1, 0, 1, 1, 1, 1, 1])
    _, (_, mask) = fast_replay("connect4", "2 2 2 2 2 2")
    np.testing.assert_array_equal(mask, [1, 0, 1, 1, 1, 1, 1])


def test_tictactoe_observation_and_text():
    state = play("tictactoe", "b2 a1 c3")
    assert str(state) == "   a b c\n1  o . .\n2  . x .\n3  . . x\no to play"
    expected = np.zeros((3, 3, 3), np.float32)
    expected[0, 0, 0] = 1                       # o (to move) at a1
    expected[1, 1, 1] = expected[1, 2, 2] = 1   # x at b2 and c3
    expected[2] = 1 - expected[0] - expected[1]
    np.testing.assert_array_equal(state.observation(), expected)
    np.testing.assert_array_equal(state.legal_mask(), [0, 1, 1, 1, 0, 1, 1, 1, 0])
    _, (obs, mask) = fast_replay("tictactoe", "b2 a1 c3")
    np.testing.assert_array_equal(obs, expected)
    np.testing.assert_array_equal(mask, state.legal_mask())


def test_tictactoe_win_text():
    assert str(play("tictactoe", "a1 a2 b1 b2 c1")).endswith("x wins")
    assert str(play("connect4", "1 2 1 2 1 2 3 2")).endswith("o wins")
