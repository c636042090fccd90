"""Fuzzing the text prompt: TextSession.handle in-process for four games, and hundreds
of mutated lines through one real `tabula play` process; a regression test for what the
fuzz found."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings

from tests.conftest import make_checkpoint
from tests.fuzz import strategies as S
from tests.fuzz.processes import EngineProcess
from tests.fuzz.text_targets import REJECTED, TEXT_GAMES, TextTarget

# 200 sessions of 5-10 lines: at least 1,000 lines.
SESSIONS = settings(max_examples=200, deadline=None, derandomize=True, database=None)
PROCESS_LINES = 300
ENDS = ("quit", "exit", "resign")


@pytest.fixture(scope="module")
def text(open_target):
    return open_target("text")


@SESSIONS
@given(example=TextTarget.inputs_strategy())
def test_handle_answers_every_line_clearly(text, example):
    text.check(example)


def test_one_process_survives_hundreds_of_mutated_lines(tmp_path):
    """`tabula play` of chess (a game that lasts) with mutated lines on its input: no
    traceback, no 'error:' answer, and it still lists the legal moves at the end."""
    moves = TEXT_GAMES["chess"]
    lines = [line.replace("\n", " ") for line in
             S.session_lines(S.text_corpus(moves), moves, PROCESS_LINES, seed=3)]
    # The prompt reads text: CR ends a line too. A line whose piece ends the game goes.
    lines = [line for line in lines
             if not any(piece.strip().lower() in ENDS for piece in re.split(r"\r\n?", line))]
    checkpoint = make_checkpoint(tmp_path / "chess.safetensors", "chess")
    engine = EngineProcess("play", "--checkpoint", str(checkpoint), "--sims", "2", cwd=tmp_path)
    for line in lines + [b"\xff\xfe bad bytes", "moves"]:
        engine.send(line)
    engine.proc.stdin.close()  # end of input: the game is abandoned
    out = engine.until(lambda line: line == "input ended; game abandoned")
    engine.close()
    assert out[0] == "chess: you play first; type a move, or 'help'."
    assert not [line for line in out if line.startswith("error:")]
    assert re.fullmatch(r"legal moves:( [a-h][1-8][a-h][1-8][qrbn]?)+", out[-2]), out[-2]
    assert any(line.startswith("engine plays ") for line in out)  # some moves were legal
    assert sum(line.endswith(REJECTED) for line in out) > PROCESS_LINES // 4


# What the fuzz found ---------------------------------------------------------------

@pytest.mark.parametrize("game, move", [("go9", "D\u00b2"), ("go9", "\u00b2"),
                                        ("chess", "\u00b2"), ("connect4", "-\u00b2"),
                                        ("tictactoe", "0\u00b29")])
def test_odd_digits_are_a_bad_move_not_an_error(text, game, move):
    """'\u00b2'.isdigit() is true and int('\u00b2') raises ValueError, which the games'
    parsers let through: the prompt answered 'error: ValueError: invalid literal ...'."""
    session = text.new_session(game, False)
    answer = session.handle(move)
    assert answer.endswith(REJECTED) and "\n" not in answer, answer
    assert not answer.startswith("error:") and session.state.history() == []
