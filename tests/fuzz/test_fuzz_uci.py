"""Fuzzing the UCI engine: UciEngine.handle in-process, and hundreds of mutated lines
through one real `tabula uci` process; regression tests for what the fuzz found."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.fuzz import strategies as S
from tests.fuzz.processes import EngineProcess
from tests.fuzz.uci_targets import (UciTarget, overlapping_session, searching_go, tame_uci,
                                    uci_answer_ok, uci_command)

# 300 sessions of 5-10 lines: at least 1,500 lines.
SESSIONS = settings(max_examples=300, deadline=None, derandomize=True, database=None)
PROCESS_LINES = 300


@pytest.fixture(scope="module")
def uci(open_target):
    return open_target("uci")


@SESSIONS
@given(lines=UciTarget.inputs_strategy())
def test_handle_answers_every_line_with_uci(uci, lines):
    uci.check(lines)


def test_command_table_is_the_engines(uci):
    from arena.protocols.uci import UciEngine
    from tests.fuzz.uci_targets import UCI_COMMANDS

    assert set(UciEngine(uci.game).commands) == set(UCI_COMMANDS)


def test_one_process_survives_hundreds_of_mutated_lines(uci, tmp_path):
    """Each mutated line is followed by `stop` and `isready`: everything before `readyok`
    is the line's output, all UCI lines; a search ends with one legal bestmove (legal in
    the position an in-process engine reaches from the same lines). Then a real move."""
    from arena.protocols.uci import UciEngine

    shadow = UciEngine(uci.game)  # follows the positions the process is given
    lines = [tame_uci(line.replace("\n", " ")) for line in
             S.session_lines(S.uci_corpus(), S.UCI_WORDS, PROCESS_LINES, seed=2)]
    lines = [line for line in lines if uci_command(line)[0] != "quit"]
    engine = EngineProcess("uci", "--nodes", "4", cwd=tmp_path)
    engine.send("uci")
    assert engine.until(lambda out: out == "uciok")[0] == "id name Tabula"
    for line in lines + [b"\xff\xfe bad bytes\x01"]:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        command, args = uci_command(text)
        if command in ("position", "ucinewgame"):
            shadow.handle(text)
        engine.send(line)
        engine.send("stop")
        engine.send("isready")
        out = []
        for _ in range(1 + (command == "isready")):
            out += engine.until(lambda out: out == "readyok")
        bad = uci_answer_ok(command, args, "\n".join(out))
        assert bad is None, (line, bad, out)
        bests = [o.split()[1] for o in out if o.startswith("bestmove ")]
        assert len(bests) == searching_go(command, args), (line, out)
        if bests and bests[0] != "0000":
            assert bests[0] in shadow.state.legal_moves_uci(), (line, out, shadow.state.fen())
    engine.send("position startpos moves e2e4")
    engine.send("go nodes 8")
    best = engine.until(lambda out: out.startswith("bestmove "))[-1].split()[1]
    assert best in uci.game.state_from_moves(["e2e4"]).legal_moves_uci()
    engine.send("quit")
    engine.proc.wait(timeout=30)  # quit with the input still open
    engine.close()


def test_every_go_gets_one_bestmove_when_searches_overlap(tmp_path):
    """As an outside UCI fuzzer drives it: mutated lines with no stop between them, so
    that a `go` often arrives while a search runs. At the end: stop, isready; then the
    bestmoves counted equal the gos that search (every go but a perft)."""
    report = overlapping_session(PROCESS_LINES, seed=5, cwd=tmp_path)
    assert report.gos > 20 and report.bestmoves == report.gos, report
    assert not report.bad_lines, report.bad_lines[:3]


# What the fuzz found ---------------------------------------------------------------

@pytest.fixture
def engine(uci):
    from arena.protocols.uci import UciEngine

    emitted: list[str] = []
    engine = UciEngine(uci.game, emitted.append, {"Nodes": 2})
    engine.emitted = emitted
    return engine


@pytest.mark.parametrize("line, reason", [
    ("go perft \u00b2", "usage: go perft DEPTH"),  # '\u00b2'.isdigit(): int() raised
    ("go perft " + "9" * 5000, "usage: go perft DEPTH"),  # int() of > 4300 digits raised
    ("go perft 999999999", "at most depth 6"),  # ran for ever, then RecursionError
])
def test_perft_depth_is_checked(engine, line, reason):
    """A perft depth that cannot be run is named, and the `go` searches instead: a GUI
    waits for the bestmove of every go."""
    assert engine.handle(line) == ""
    engine.job.join(30)
    notes = [e for e in engine.emitted if e.startswith("info string")]
    assert reason in notes[0] and notes[0].endswith("searching instead"), engine.emitted
    assert [e for e in engine.emitted if e.startswith("bestmove")] == [engine.emitted[-1]]
    assert engine.handle("go perft 1").endswith("\nNodes searched: 20\n\n")


@pytest.mark.parametrize("line, reason", [
    ("go wtime abc", "go wtime needs an integer, not 'abc'"),
    ("go depth -3", "go depth must not be negative, got -3"),
    ("go foo", "unknown go parameter 'foo'"),
    ("go nodes", "go nodes needs a number"),
    ("go movetime 0 nodes 4", "go movetime must be positive"),
    ("go nodes \u0663", "go nodes needs an integer"),  # int('\u0663') is 3
    ("go wtime 1_000", "go wtime needs an integer"),  # int('1_000') is 1000
])
def test_a_malformed_go_is_answered_with_one_bestmove(engine, line, reason):
    """Found by an outside UCI fuzzer: these got an info string and no bestmove, and the
    GUI waited for ever. Stockfish ignores what it cannot read and searches."""
    engine.handle("position startpos moves e2e4")
    assert engine.handle(line) == ""
    engine.job.join(30)
    assert f"info string {reason}" in engine.emitted[0], engine.emitted
    bests = [e for e in engine.emitted if e.startswith("bestmove")]
    assert bests == [engine.emitted[-1]]
    assert bests[0].split()[1] in engine.state.legal_moves_uci()


@pytest.mark.parametrize("counters", ["0 2147483648", "99999999999999999999 1",
                                      "0 \u00b2", "\u0663 1", "0 " + "9" * 5000])
def test_fen_move_counters_are_checked(engine, counters):
    """open_spiel reads the counters with stoi: IndexError ('stoi'), an internal error."""
    engine.handle("position startpos moves e2e4")
    answer = engine.handle(f"position fen 4k3/8/8/8/8/8/8/4K3 w - - {counters}")
    assert answer.startswith("info string bad FEN counters") and answer.count("\n") == 1, answer
    assert engine.state.history() and engine.position_given  # unchanged
    assert engine.handle("position fen 4k3/8/8/8/8/8/8/4K3 w - - 99 99999") == ""


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_info_strings_stay_one_line_for_every_client(engine, separator):
    """str.splitlines() breaks lines at NEL, U+2028 and U+2029: an echoed unknown
    command made a second line that is not UCI."""
    answer = engine.handle(f"hello{separator}world")
    assert answer == "info string unknown command: helloworld\n"
    assert len(answer.splitlines()) == 1


def test_a_timed_search_past_its_deadline_ends(uci):
    """Found by the overlapping-go session: with Nodes below 16 the speed is never
    measured, and a search abandoned for lateness was started again, for ever."""
    from arena.protocols.uci import UciEngine

    emitted: list[str] = []
    engine = UciEngine(uci.game, emitted.append, {"Nodes": 4, "MoveOverhead": 0})
    assert engine.handle("go movetime 1") == ""  # no time: the deadline is already past
    engine.job.join(60)
    assert not engine.job.thread.is_alive()
    assert [e for e in emitted if e.startswith("bestmove")] == [emitted[-1]]
