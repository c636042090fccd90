"""Move text: round trips, accepted spellings, malformed and illegal input."""

import pytest
from hypothesis import given, settings, strategies as st

from games import GameError, get_game
from tests.games.util import GAMES, play


@pytest.mark.parametrize("name", GAMES)
def test_round_trip_every_action(name):
    state = get_game(name).new_initial_state()
    texts = [state.action_to_text(a) for a in range(get_game(name).info.num_actions)]
    assert len(set(texts)) == len(texts)
    for action, text in enumerate(texts):
        assert state.text_to_action(text) == action


@pytest.mark.parametrize("name, text, action", [
    ("tictactoe", "a1", 0), ("tictactoe", "c1", 2), ("tictactoe", "a2", 3),
    ("tictactoe", "b2", 4), ("tictactoe", "c3", 8), ("tictactoe", " B2\n", 4),
    ("tictactoe", "A3", 6), ("tictactoe", "1", 0), ("tictactoe", "5", 4),
    ("tictactoe", " 9 ", 8),
    ("connect4", "1", 0), ("connect4", "4", 3), ("connect4", "\t7 ", 6),
])
def test_accepted_spellings(name, text, action):
    assert get_game(name).new_initial_state().text_to_action(text) == action


def test_action_to_text_values():
    ttt = get_game("tictactoe").new_initial_state()
    assert [ttt.action_to_text(a) for a in (0, 2, 3, 8)] == ["a1", "c1", "a2", "c3"]
    c4 = get_game("connect4").new_initial_state()
    assert [c4.action_to_text(a) for a in range(7)] == list("1234567")
    for state, bad in ((ttt, 9), (c4, 7), (c4, -1)):
        with pytest.raises(GameError, match="out of range"):
            state.action_to_text(bad)


@pytest.mark.parametrize("name, text, fmt", [
    ("tictactoe", "", "a1..c3"), ("tictactoe", "d1", "a1..c3"), ("tictactoe", "a4", "a1..c3"),
    ("tictactoe", "0", "a1..c3"), ("tictactoe", "10", "a1..c3"), ("tictactoe", "a 1", "a1..c3"),
    ("tictactoe", "1a", "a1..c3"), ("tictactoe", "a1b", "a1..c3"), ("tictactoe", "x", "a1..c3"),
    ("connect4", "", "1..7"), ("connect4", "0", "1..7"), ("connect4", "8", "1..7"),
    ("connect4", "-1", "1..7"), ("connect4", "a", "1..7"), ("connect4", "1.0", "1..7"),
    ("connect4", "11", "1..7"), ("connect4", "٣", "1..7"),
])
def test_malformed_text(name, text, fmt):
    with pytest.raises(GameError, match=fmt.replace(".", r"\.")):
        get_game(name).new_initial_state().text_to_action(text)


def test_illegal_text_names_legal_moves():
    with pytest.raises(GameError, match="illegal move 'b2'.*legal: a1 b1 c1 a2 c2"):
        play("tictactoe", "b2").text_to_action("5")
    with pytest.raises(GameError, match="illegal move '1'.*legal: 2 3 4 5 6 7"):
        play("connect4", "1 1 1 1 1 1").text_to_action("1")


@settings(derandomize=True, max_examples=300, deadline=None)
@given(name=st.sampled_from(GAMES), text=st.text(max_size=4))
def test_any_text_parses_or_raises_game_error(name, text):
    state = play(name, "2")
    try:
        action = state.text_to_action(text)
    except GameError:
        return
    assert state.legal_mask()[action]
    assert state.text_to_action(state.action_to_text(action)) == action
