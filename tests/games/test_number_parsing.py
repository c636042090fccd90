"""Numbers typed by users in moves, game names and FEN counters (games.base.parse_count).

str.isdigit() is true for characters int() rejects ('\u00b2', Arabic-Indic digits
are accepted by int() but not ASCII), and int() refuses more than 4300 digits:
every parser must answer GameError, never ValueError from int() or a C++ error.
"""

from __future__ import annotations

import pytest

from games import get_game
from games.base import GameError, parse_count
from games.chess_text import MAX_FEN_COUNTER, normalize_fen

START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"


@pytest.mark.parametrize("text, limit, value", [
    ("0", 10, 0), ("9", 10, 9), ("10", 10, None), ("007", 10, 7), ("0" * 5000 + "7", 10, 7),
    ("", 10, None), ("-1", 10, None), ("+1", 10, None), (" 1", 10, None),
    ("\u00b2", 10, None), ("\u0663", 10, None), ("1" * 5000, 2**31, None),
    ("2147483647", 2**31, 2147483647), ("2147483648", 2**31, None),
])
def test_parse_count(text, limit, value):
    assert parse_count(text, limit) == value


@pytest.mark.parametrize("name", ["tictactoe", "connect4", "chess", "go/9"])
@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "9" * 5000, "99999999999"])
def test_move_numbers_that_int_cannot_read_are_game_errors(name, text):
    state = get_game(name).new_initial_state()
    with pytest.raises(GameError):
        state.text_to_action(text)


@pytest.mark.parametrize("name, text, action", [
    ("tictactoe", "4", 3),  # the prompt's 1..9
    ("chess", None, None), ("go/9", "0", 0)])
def test_action_ids_still_parse(name, text, action):
    state = get_game(name).new_initial_state()
    if text is None:  # chess: the id of a legal move, whatever open_spiel numbers it
        legal = int(state.legal_mask().nonzero()[0][0])
        assert state.text_to_action(str(legal)) == legal
    else:
        assert state.text_to_action(text) == action


@pytest.mark.parametrize("rest", ["\u00b2", "9" * 5000, "-9", ""])
def test_go_family_sizes_that_are_not_numbers(rest):
    with pytest.raises(GameError):
        get_game(f"go/{rest}")


@pytest.mark.parametrize("counters", ["0 0", "-1 1", "\u00b2 1", "0 \u0663",
                                      f"0 {MAX_FEN_COUNTER}", f"{10**12} 1", "0 " + "9" * 5000])
def test_fen_counters_out_of_reach_are_game_errors(counters):
    with pytest.raises(GameError, match="bad FEN counters"):
        normalize_fen(START[:-3] + counters)


def test_fen_counters_in_range_load():
    fen = START[:-3] + f"99 {MAX_FEN_COUNTER - 1}"
    assert normalize_fen(fen) == fen
    assert get_game("chess").new_initial_state(fen).fen() == fen
