"""The text prompt: TextSession.handle over scripted lines, with fake players."""

from __future__ import annotations

import io

from arena.protocols.text import TextSession, run_text
from games import get_game
from tests.arena.fakes import BrokenPlayer, ScriptedPlayer


def session(engine_first=False, player=None):
    return TextSession(get_game("tictactoe"), player or ScriptedPlayer(), engine_first)


def test_move_gets_engine_reply_with_value():
    s = session()
    s.start()
    answer = s.handle("b2")
    assert answer.splitlines()[0] == "you play b2"
    assert "engine plays a1 (value +0.25 for the engine)" in answer
    assert s.state.history() == [4, 0]


def test_malformed_and_illegal_moves_get_one_line_and_change_nothing():
    s = session()
    s.start()
    s.handle("a1")
    before = s.state.history()
    bad = s.handle("zz")
    illegal = s.handle("a1")
    assert "\n" not in bad and "bad tic-tac-toe move 'zz'" in bad
    assert "\n" not in illegal and "illegal move 'a1'" in illegal
    assert s.state.history() == before and not s.done


def test_help_lists_commands_and_moves_lists_legal():
    s = session()
    s.start()
    text = s.handle("help")
    for word in ("quit", "resign", "undo", "moves"):
        assert word in text
    assert s.handle("moves") == "legal moves: a1 b1 c1 a2 b2 c2 a3 b3 c3"


def test_undo_takes_back_the_pair_of_moves():
    s = session()
    s.start()
    s.handle("b2")
    assert s.handle("undo").startswith("took back 2 move(s)")
    assert s.state.history() == []
    assert s.handle("undo") == "nothing to undo"


def test_engine_first_and_undo_keeps_the_engine_opening():
    s = session(engine_first=True)
    assert "engine plays a1" in s.start()
    assert s.handle("undo") == "nothing to undo"
    s.handle("b2")
    s.handle("undo")
    assert s.state.history() == [0]


def test_win_ends_the_game_with_result():
    s = session()
    s.start()
    s.handle("a2")  # engine a1
    s.handle("b2")  # engine b1
    answer = s.handle("c2")
    assert answer.endswith("game over: you win") and s.done
    assert s.handle("a3") == "the game is over"


def test_quit_and_resign_end_cleanly():
    s = session()
    assert s.handle("quit") == "you quit; game abandoned" and s.done
    s = session()
    assert "the engine wins" in s.handle("resign") and s.done


def test_handle_never_raises_when_the_engine_fails():
    s = session(player=BrokenPlayer())
    answer = s.handle("b2")
    assert answer.startswith("error: RuntimeError: network exploded")


def test_stdio_loop_stops_at_eof():
    out = io.StringIO()
    rc = run_text(session(), io.StringIO("b2\n"), out)
    lines = out.getvalue().splitlines()
    assert rc == 0 and "you play b2" in lines and lines[-1] == "input ended; game abandoned"


def test_an_extra_turn_lets_the_same_side_move_again():
    # mancala: player 0's third pit (action 3, 4 seeds) ends in the store: another turn.
    game = get_game("spiel/mancala")
    s = TextSession(game, ScriptedPlayer(), engine_first=False)
    s.start()
    text = s.state.action_to_text(3)
    answer = s.handle(text)
    assert answer.splitlines()[0] == f"you play {text}"
    assert answer.splitlines()[-1] == "your move again" and "engine plays" not in answer
    assert s.state.history() == [3] and s.state.to_play() == 0
    answer = s.handle(s.state.action_to_text(1))
    assert "engine plays" in answer
    assert s.state.to_play() == 0 or s.done  # the engine played until the turn passed
    engine_moves = len(s.state.history()) - 2
    assert answer.count("engine plays") == engine_moves >= 1
    # undo goes back to the person's last turn: before action 1, after the extra turn.
    s.handle("undo")
    assert s.state.history() == [3]


def test_the_engine_moves_first_until_the_turn_passes():
    game = get_game("spiel/mancala")
    # The engine (player 0) plays action 3 (an extra turn), then action 1.
    s = TextSession(game, ScriptedPlayer(lambda st: 3 if st.legal_mask()[3] else 1),
                    engine_first=True)
    start = s.start()
    assert start.count("engine plays") == 2
    assert s.state.history() == [3, 1] and s.state.to_play() == 1
