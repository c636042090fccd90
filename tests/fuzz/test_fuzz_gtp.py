"""Fuzzing the GTP engine: GtpEngine.handle in-process, loadsgf of mutated records, and
hundreds of mutated lines through one real `tabula gtp` process; regression tests for
what the fuzz found."""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import time

import pytest
from hypothesis import given, settings

from tests.fuzz import strategies as S
from tests.fuzz.gtp_targets import GTP_RESPONSE, PRINTABLE_ASCII, SGF_FILES, GtpTarget
from tests.fuzz.processes import EngineProcess
from tests.guards import hang_guard

# 160 sessions of 5-10 lines: at least 800 lines, plus 200 SGF files: 1,000+ inputs.
SESSIONS = settings(max_examples=160, deadline=None, derandomize=True, database=None)
FILES = settings(max_examples=200, deadline=None, derandomize=True, database=None)
PROCESS_LINES = 300


@pytest.fixture(scope="module")
def gtp(open_target):
    return open_target("gtp")


@pytest.fixture(scope="module")
def gtp_sgf(open_target):
    return open_target("gtp-sgf")


@SESSIONS
@given(lines=GtpTarget.inputs_strategy())
def test_handle_answers_every_line_well_formed(gtp, lines):
    gtp.check(lines)


@FILES
@given(example=SGF_FILES)
def test_loadsgf_of_mutated_records(gtp_sgf, example):
    gtp_sgf.check(example)


def test_one_process_survives_hundreds_of_mutated_lines(tmp_path):
    """A GUI's way: one line, wait for its answer, the next; an analysis streams until the
    next line, which comes a little later. Every answer is a GTP response, the engine
    lives on, answers `name` and quits cleanly with its input still open (it used to
    abort there: 'Fatal Python error: _enter_buffered_busy: could not acquire lock for
    <stdin>', status -6, as its reader thread held sys.stdin's lock)."""
    from arena.protocols.gtp import ANALYSIS_COMMANDS, parse_line

    for name in S.SGF_FILES:
        shutil.copy(S.DATA / "gtp" / name, tmp_path / name)
    lines = [line.replace("\n", " ") for line in
             S.session_lines(S.gtp_corpus(), S.GTP_WORDS, PROCESS_LINES, seed=1)]
    lines = [line for line in lines if (parse_line(line) or ("", ""))[1] != "quit"]
    lines[::50] = [b"\xff\xfe bad bytes \xc3"] * len(lines[::50])
    engine = EngineProcess("gtp", "--uniform", "--sims", "4", cwd=tmp_path)
    streaming, answered = False, 0
    for line in lines:
        engine.send(line)
        if streaming:  # the analysis ends with an empty line once this line arrived
            info = engine.until(lambda out: out == "")
            assert all(out.startswith("info move ") for out in info[:-1]), info
            streaming = False
        parsed = parse_line(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
        if parsed is None:
            continue
        first = engine.line()
        assert re.fullmatch(rf"[=?]{parsed[0]}(?: .*)?", first), (line, first)
        answered += 1
        if parsed[1] in ANALYSIS_COMMANDS and first.startswith("="):
            streaming = True
            time.sleep(0.05)  # the engine waits for input between searches
            continue
        answer = "\n".join([first] + engine.until(lambda out: out == "")) + "\n"
        assert GTP_RESPONSE.fullmatch(answer), (line, answer)
        assert PRINTABLE_ASCII.fullmatch(answer), (line, answer)
        assert "internal error" not in answer, (line, answer)
    engine.send("name")
    if streaming:
        engine.until(lambda out: out == "")
    assert engine.until(lambda out: out == "") == ["= Tabula", ""]
    engine.send("quit")
    assert engine.until(lambda out: out == "") == ["=", ""]
    assert engine.proc.wait(timeout=30) == 0  # quit with the input still open
    assert "Fatal Python error" not in engine.close()
    assert answered > PROCESS_LINES // 2


# What the fuzz found ---------------------------------------------------------------

def test_a_huge_analysis_interval_does_not_stop_the_engine(gtp):
    """'lz-analyze b 1e308' waited 1e306 s for the next line: queue.get overflowed and the
    stdio loop died. The interval is now capped at MAX_INTERVAL."""
    from arena.protocols.gtp import run_gtp
    from arena.protocols.gtp_stream import MAX_INTERVAL, parse_analysis_args

    assert parse_analysis_args(["1e308"], 0, {"b": 0}) == (0, MAX_INTERVAL)
    assert parse_analysis_args(["interval", "1e300"], 0, {"b": 0}) == (0, MAX_INTERVAL)
    read, write = os.pipe()
    out = io.StringIO()
    loop = threading.Thread(target=run_gtp, args=(gtp.engine(), os.fdopen(read, "rb"), out))
    loop.start()
    with os.fdopen(write, "wb") as stdin:
        stdin.write(b"lz-analyze b 1e308\n")
        stdin.flush()
        time.sleep(1.0)  # the engine waits for this line with the interval as timeout
        stdin.write(b"name\n")
    loop.join(30)
    assert not loop.is_alive()
    assert out.getvalue().startswith("=\ninfo move ") and out.getvalue().endswith(
        "\n\n= Tabula\n\n"), out.getvalue()


@pytest.mark.parametrize("record, reason", [
    ("(;SZ[9]KM[inf];B[ee])", "bad komi"),
    ("(;SZ[9]KM[-1e999];B[ee])", "bad komi"),
    ("(;FF[4]GM[\x001]SZ[9])", "not a Go record: GM[1]"),
], ids=["komi-inf", "komi-1e999", "nul"])
def test_loadsgf_refuses_bad_records_and_changes_nothing(gtp, tmp_path, record, reason):
    """KM[inf] reached GoGame (OverflowError: 'internal error'; games.sgf now refuses it),
    and a NUL from the file reached the answer."""
    path = tmp_path / "bad.sgf"
    path.write_text(record)
    engine = gtp.engine()
    assert engine.handle("play b C3") == "=\n\n"
    answer = engine.handle(f"loadsgf {path}")
    assert answer.startswith("? cannot load file") and reason in answer, answer
    assert PRINTABLE_ASCII.fullmatch(answer) and "internal error" not in answer
    assert engine.session.moves == [(0, engine.session.vertex("C3"))]


def test_loadsgf_reads_deeply_nested_records(gtp, tmp_path):
    """3000 nested variations were a RecursionError ('internal error'); games.sgf now
    reads them without recursion, and the main line is the first variation throughout."""
    path = tmp_path / "deep.sgf"
    path.write_text("(;SZ[9];B[ee]" + "(;C[deep]" * 3000 + ";W[cc])" + ")" * 3000)
    engine = gtp.engine()
    assert engine.handle(f"loadsgf {path}") == "=\n\n"
    assert engine.session.record() == [("B", "E5"), ("W", "C7")]


def test_loadsgf_reads_only_regular_files_of_sane_size(gtp, tmp_path):
    """A FIFO blocked `loadsgf` (and the engine) until a writer came; /dev/zero never ends."""
    fifo, big = tmp_path / "fifo.sgf", tmp_path / "big.sgf"
    os.mkfifo(fifo)
    with open(big, "wb") as f:
        f.truncate(11 * 2**20)
    engine = gtp.engine()
    for path, reason in ((fifo, "is not a regular file"), (tmp_path, "is not a regular file"),
                         ("/dev/zero", "is not a regular file"), (big, "is bigger than")):
        if str(path).startswith("/dev") and not os.path.exists(path):
            continue
        answers = []
        call = threading.Thread(target=lambda: answers.append(engine.handle(f"loadsgf {path}")),
                                daemon=True)  # left behind if it blocks
        call.start()
        call.join(10)
        assert answers and answers[0].startswith("? cannot load file: "), (path, answers)
        assert reason in answers[0], answers


@pytest.mark.parametrize("n, answer", [
    ("12", "= C3 G7 C7 G3 C5 G5 E3 E7 E5"), ("80", "= C3 G7 C7 G3 C5 G5 E3 E7 E5"),
    ("81", "? invalid number of stones"), ("1", "? invalid number of stones"),
    ("2147483648", "? invalid number of stones"), ("9" * 25, "? invalid number of stones")])
def test_place_free_handicap_of_many_stones_answers_at_once(gtp, n, answer):
    """It counted down from n, trying each count: 2147483648 took an hour and a half,
    9999999999999999999999999 for ever, the engine deaf meanwhile."""
    engine = gtp.engine()
    with hang_guard(what=f"place_free_handicap {n}"):
        assert engine.handle(f"place_free_handicap {n}") == answer + "\n\n"


def test_responses_are_printable_ascii():
    from arena.protocols.gtp import response

    assert response("4", False, "bad GM[\x00\x1b1]\r\tx") == "?4 bad GM[1] x\n\n"
    assert response("", True, "\nA\u00e9\n\nB\x7f\n") == "=\nA?\nB\n\n"
