"""The GTP engine: a committed transcript through the real `tabula gtp`, live sessions
(genmove, clocks, lz-analyze), and a match against GNU Go when it is installed."""

from __future__ import annotations

import queue
import random
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, make_checkpoint

DATA = Path(__file__).parent / "data" / "gtp"
STARTUP = 60.0
"""Seconds allowed for the engine's first answer (imports, kernel compilation)."""
GNUGO = shutil.which("gnugo") or shutil.which("gnugo", path="/usr/games")


def go9():
    from games import get_game

    return get_game("go9")


# A live engine -------------------------------------------------------------------

def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class GtpProcess:
    """`tabula gtp ARGS` in a subprocess, driven one command at a time."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tabula", "gtp", *args], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def line(self, timeout: float = STARTUP) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s") from None
        assert line is not None, f"engine exited: {self.proc.stderr.read()}"
        return line

    def answer(self, timeout: float = STARTUP) -> str:
        """One response: its lines up to the empty line that ends it."""
        lines = [self.line(timeout)]
        while lines[-1]:
            lines.append(self.line(timeout))
        return "\n".join(lines[:-1])

    def ask(self, command: str, timeout: float = STARTUP) -> str:
        self.send(command)
        return self.answer(timeout)

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # end of input: the engine exits
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def engine():
    gtp = GtpProcess("--sims", "8")
    assert gtp.ask("name") == "= Tabula"
    yield gtp
    assert gtp.close() == 0


def _ok(answer: str) -> str:
    assert answer.startswith("= ") or answer == "=", answer
    return answer[2:]


# Transcript ----------------------------------------------------------------------

def test_transcript(tabula):
    proc = tabula("gtp", "--uniform", "--sims", "8", stdin=(DATA / "session.gtp").read_text())
    assert proc.returncode == 0, proc.stderr
    expected = (DATA / "session.out").read_text()
    assert proc.stdout.splitlines() == expected.splitlines()
    assert proc.stdout == expected


def test_user_errors_exit_2(tabula):
    proc = tabula("gtp", "--game", "connect4")
    assert proc.returncode == 2 and proc.stderr.startswith("tabula: error: "), proc.stderr
    assert "plays Go" in proc.stderr
    assert tabula("gtp", "--sims", "8", "--time-per-move", "1").returncode == 2
    proc = tabula("gtp", "--uniform", "--checkpoint", "x.safetensors")
    assert proc.returncode == 2 and "leave out --checkpoint" in proc.stderr


def test_without_a_checkpoint_the_shipped_model_plays(tabula):
    from arena.matches.players import shipped_checkpoint

    commands = "\n".join(["boardsize 13", "boardsize 9", "genmove b", "play w C3",
                          "genmove b", "genmove w", "quit"]) + "\n"
    shipped = tabula("gtp", stdin=commands)
    explicit = tabula("gtp", "--checkpoint", str(shipped_checkpoint("go9")), stdin=commands)
    uniform = tabula("gtp", "--uniform", stdin=commands)
    assert shipped.returncode == explicit.returncode == uniform.returncode == 0
    answers = shipped.stdout.split("\n\n")
    assert answers[0].startswith("? ") and answers[1] == "="  # the network is 9x9 only
    moves = [a.removeprefix("= ") for a in answers[2:6:2] + answers[5:6]]
    assert all(m[0] in "ABCDEFGHJ" and 1 <= int(m[1:]) <= 9 for m in moves), moves
    assert shipped.stdout == explicit.stdout
    assert uniform.stdout.split("\n\n")[0] == "="  # the uniform engine takes any size
    assert uniform.stdout != shipped.stdout


def test_checkpoint_fixes_the_board_size(tabula, tmp_path):
    path = make_checkpoint(tmp_path / "go9.safetensors", "go9")
    commands = ["boardsize 13", "boardsize 9", "komi 6.5",
                "loadsgf tests/arena/data/gtp/size13.sgf", "play b E5", "genmove w", "quit"]
    proc = tabula("gtp", "--checkpoint", path, stdin="\n".join(commands) + "\n")
    assert proc.returncode == 0, proc.stderr
    answers = proc.stdout.split("\n\n")
    assert answers[:5] == ["? unacceptable size", "=", "=", "? unacceptable size", "="]
    state = go9().new_initial_state()
    state.apply(state.text_to_action("E5"))
    vertex = _ok(answers[5])
    assert vertex == "pass" or state.legal_mask()[state.text_to_action(vertex)]


# Live session ----------------------------------------------------------------------

def test_genmove_plays_legal_moves(engine):
    _ok(engine.ask("clear_board"))
    _ok(engine.ask("play b E5"))
    state = go9().new_initial_state()
    state.apply(state.text_to_action("E5"))
    for colour in "wbwbw":
        vertex = _ok(engine.ask(f"genmove {colour}"))
        assert vertex not in ("resign", "") and state.legal_mask()[state.text_to_action(vertex)]
        state.apply(state.text_to_action(vertex))
    record = engine.ask("printsgf")
    suggestion = _ok(engine.ask("reg_genmove b"))  # suggests, does not play
    assert state.legal_mask()[state.text_to_action(suggestion)]
    assert engine.ask("printsgf") == record
    assert _ok(engine.ask("kgs-genmove_cleanup b")) not in ("pass", "resign")


def test_control_characters_and_bad_bytes_are_harmless(engine):
    engine.proc.stdin.flush()
    engine.proc.stdin.buffer.write(b"\x01\x02 2 protocol_version\r\n\tknown_command\tplay\x7f\n"
                                   b"\xff\xfe bad bytes\n")
    engine.proc.stdin.buffer.flush()
    assert [engine.answer() for _ in range(3)] == ["=2 2", "= true", "? unknown command"]
    assert engine.ask("name") == "= Tabula"


def test_genmove_under_every_clock():
    """A real process under Canadian, absolute and byo-yomi clocks (with --sims far above
    what they allow) answers each genmove with a legal move and exits cleanly. How many
    simulations a clock allows is test_time_per_move_sets_the_simulations's (a set speed);
    how close to the budget a move comes is a speed, measured by `tabula bench gtp`."""
    from games import get_game

    gtp = GtpProcess("--sims", "100000")  # the clock, not --sims, limits the search
    game = get_game("go9")
    state = game.new_initial_state()
    script = ["time_settings 0 1 1", "time_left b 1 1", "genmove b",  # Canadian, 1 s a move
              "time_left w 1 1", "genmove w",
              "time_settings 60 0 0", "time_left w 1 0", "genmove w",  # absolute, nearly spent
              "kgs-time_settings byoyomi 0 1 3", "time_left b 1 3", "genmove b"]  # Japanese
    try:
        for command in script:
            answer = _ok(gtp.ask(command))
            if command.startswith("genmove"):
                mover = "bw".index(command[-1])
                if state.to_play() != mover:  # w twice: GTP lets a colour move again
                    state.apply(game.pass_action)
                assert answer not in ("resign", "")
                state.apply(state.text_to_action(answer))
    finally:
        assert gtp.close() == 0  # end of input: a clean exit


INFO = re.compile(r"info move (\S+) visits (\d+) winrate (\d+) prior (\d+) lcb (\d+) "
                  r"order (\d+) pv \S+( \S+)*?(?= info |$)")


@pytest.mark.parametrize("command", ["lz-analyze b 10", "kata-analyze w interval 5"])
def test_analysis_streams_until_the_next_command(engine, command):
    _ok(engine.ask("clear_board"))
    _ok(engine.ask("play b E5"))
    engine.send(command)
    assert engine.line() == "="
    first = engine.line()
    assert first.startswith("info move ")
    if command.startswith("lz"):
        entries = list(INFO.finditer(first))
        assert entries and entries[0].start() == 0
        assert [int(m.group(6)) for m in entries] == list(range(len(entries)))
        assert all(0 <= int(m.group(3)) <= 10000 for m in entries)
        assert "E5" not in [m.group(1) for m in entries]
    else:
        assert " winrate 0." in first and " utility " in first
    engine.send("name")
    rest = []
    while (line := engine.line()) != "":
        rest.append(line)
    assert all(line.startswith("info move ") for line in rest)
    assert engine.answer() == "= Tabula"


@pytest.mark.parametrize("batch", [None, "1", "32"])
def test_batch_option_keeps_the_simulations(batch):
    """--batch (default 16 positions per network call) gathers several leaves of the
    tree per step, never more simulations: lz-analyze's first search (FIRST_SIMS) shows
    exactly that many root visits, and genmove plays a legal move."""
    from arena.protocols.gtp_stream import FIRST_SIMS

    gtp = GtpProcess("--sims", "64", *(("--batch", batch) if batch else ()))
    try:
        _ok(gtp.ask("play b E5"))
        gtp.send("lz-analyze w 100")
        assert gtp.line() == "="
        first = gtp.line()
        assert sum(int(m.group(2)) for m in INFO.finditer(first)) == FIRST_SIMS, first
        gtp.send("name")
        while gtp.line() != "":
            pass
        assert gtp.answer() == "= Tabula"
        state = go9().new_initial_state()
        state.apply(state.text_to_action("E5"))
        vertex = _ok(gtp.ask("genmove w"))
        assert vertex != "resign" and state.legal_mask()[state.text_to_action(vertex)]
    finally:
        assert gtp.close() == 0


def test_batch_must_be_positive(tabula):
    proc = tabula("gtp", "--uniform", "--batch", "0")
    assert proc.returncode == 2 and "--batch: must be at least 1" in proc.stderr, proc.stderr


# In-process: parsing, replay, clocks, robustness ---------------------------------

def test_parse_line_and_response():
    from arena.protocols.gtp import parse_line, response

    assert parse_line("  # only a comment") is None
    assert parse_line("\t\r\n") is None
    assert parse_line("12 play\tb D4 # c") == ("12", "play", ["b", "D4"])
    assert parse_line("play b\x00 D4") == ("", "play", ["b", "D4"])
    assert parse_line("7") == ("7", "", [])
    assert response("3", True, "C3") == "=3 C3\n\n"
    assert response("", False, "illegal move") == "? illegal move\n\n"
    assert response("", True, "\nrow 1\n\nrow 2\n") == "=\nrow 1\nrow 2\n\n"


@pytest.fixture(scope="module")
def uniform_engine():
    from arena.protocols.gtp import GtpEngine
    from tabula.gtp_cmd import _player

    class Args:
        checkpoint = game = time_per_move = None
        sims, resign_threshold, seed, batch = 8, 0.95, 0, 16
        uniform = True  # no network: any board size

    player, resize = _player(Args)
    return lambda **kw: GtpEngine(player, resize=resize, **kw)


def test_out_of_turn_moves_and_play_after_two_passes(uniform_engine):
    session = uniform_engine().session
    session.play(0, session.vertex("D4"))
    session.play(0, session.vertex("E5"))  # a White pass is inserted
    assert session.state.history() == [session.vertex("D4"), 81, session.vertex("E5")]
    assert session.to_move() == 1
    session.play(1, 81)
    session.play(0, 81)
    assert session.state.is_terminal()
    session.play(1, session.vertex("C3"))  # the two passes are dropped from the replay
    assert session.state.board()[2, 2] == 2 and not session.state.is_terminal()
    session.undo()
    assert session.state.is_terminal()
    assert [m for _, m in session.moves] == [30, 40, 81, 81]


def test_move_limit_and_ko_after_two_passes(uniform_engine):
    from games import GoGame

    engine = uniform_engine()
    engine.handle("boardsize 5")
    session = engine.session
    session.set_game(GoGame(5, 7.5, max_game_length=4), session.player)
    for colour, vertex in zip("bwbw", ("A1", "B1", "C1", "D1")):
        assert engine.handle(f"play {colour} {vertex}") == "=\n\n"
    assert engine.handle("genmove b") == "= pass\n\n"  # over: nothing to play
    assert engine.handle("play w C3") == "? illegal move\n\n"
    assert engine.handle("undo") == "=\n\n" and engine.handle("play w C3") == "=\n\n"
    engine.handle("boardsize 9")
    ko = "b C4 w D4 b D5 w E5 b D3 w E3 b A9 w F4 b E4 w pass b pass".split()
    for colour, vertex in zip(ko[::2], ko[1::2]):
        assert engine.handle(f"play {colour} {vertex}") == "=\n\n"
    assert engine.handle("play w D4") == "? illegal move\n\n"  # the passes are dropped
    assert engine.handle("play w J9") == "=\n\n"


def test_handle_never_raises(uniform_engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # printsgf FILE writes here
    from arena.protocols.gtp import GtpOptions

    engine = uniform_engine(options=GtpOptions(max_sims=16))  # clocks may not slow it down
    words = ["", "b", "w", "B", "white", "D4", "pass", "resign", "A1", "J9", "T19", "I5",
             "-1", "0", "1", "2", "3", "9", "19", "26", "1e9", "nan", "inf", "-inf", "0.5",
             "x", "\u00e9", "interval", "alive", "dead", "none", "byoyomi", "canadian"]
    rng = random.Random(0)
    names = [n for n in engine.commands if n != "quit"] + ["", "bogus"]
    for _ in range(3000):
        line = " ".join([rng.choice(names)] + rng.choices(words, k=rng.randint(0, 4)))
        answer = engine.handle(line)
        assert answer == "" or re.fullmatch(r"[=?][^\n]*(\n[^\n]+)*\n\n", answer), (line, answer)
        assert "internal error" not in answer, (line, answer)


def test_clock_budgets():
    from arena.protocols.gtp_time import Clock, SimsRate, plan

    clock = Clock()
    assert clock.budget(0, 30) is None
    clock.set("canadian", 0, 30, 0)  # byo-yomi time without stones: no limit
    assert clock.budget(0, 30) is None
    clock.set("canadian", 600, 30, 5)
    assert clock.budget(0, 30) == pytest.approx(plan(20.0))  # 600 s over 30 moves
    clock.time_left(0, 20, 4)
    assert clock.budget(0, 30) == pytest.approx(plan(5.0))  # byo-yomi: 20 s for 4 stones
    clock.set("absolute", 100)
    assert clock.budget(1, 2) == pytest.approx(plan(10.0))  # never fewer than 10 moves
    clock.used(1, 50)
    assert clock.budget(1, 2) == pytest.approx(plan(5.0))
    clock.set("byoyomi", 0, 10, 3)
    clock.time_left(0, 10, 3)
    assert clock.budget(0, 30) == pytest.approx(plan(10.0))  # one period per move
    rate = SimsRate(100.0)
    assert rate.sims_for(1.0, 8, 1000) == 100 and rate.sims_for(0.0, 8, 1000) == 8
    assert rate.sims_for(100.0, 8, 1000) == 1000
    rate.record(50, 0.1)
    assert rate.measured and rate.rate == 500.0


def test_time_per_move_sets_the_simulations(uniform_engine):
    from arena.protocols.gtp import GtpOptions
    from arena.protocols.gtp_time import plan

    session = uniform_engine(options=GtpOptions(time_per_move=2.0, max_sims=500)).session
    session.rate.rate = 100.0
    assert session.timed_sims(0) == int(plan(2.0) * 100)
    session.clock.set("canadian", 0, 1, 1)  # the clock allows less
    assert session.timed_sims(0) == int(plan(1.0) * 100)
    session.rate.rate = 1e6
    assert session.timed_sims(0) == 500


def test_resigns_only_when_lost_and_late(uniform_engine):
    from arena.protocols.gtp import GtpOptions

    session = uniform_engine(options=GtpOptions(resign_threshold=0.9)).session
    assert not session.should_resign(-0.99)  # too early
    session.moves = [(i % 2, 81) for i in range(21)]
    assert session.should_resign(-0.99) and not session.should_resign(-0.5)


# A real opponent -----------------------------------------------------------------

def _gnugo_score(moves: list[str]) -> tuple[str, str]:
    """GNU Go's final_score and dead stones for the position after `moves` (Black first)."""
    commands = ["boardsize 9", "komi 7.5", "clear_board"]
    commands += [f"play {'BW'[i % 2]} {m}" for i, m in enumerate(moves)]
    commands += ["final_score", "final_status_list dead", "quit"]
    out = subprocess.run([GNUGO, "--mode", "gtp", "--chinese-rules"], capture_output=True,
                         text=True, input="\n".join(commands) + "\n", timeout=60).stdout
    answers = [a.strip() for a in out.split("\n\n") if a.strip()]
    assert all(a.startswith("=") for a in answers), answers
    return answers[-3][1:].strip(), answers[-2][1:].strip()


@pytest.mark.skipif(GNUGO is None, reason="gnugo is not installed")
def test_match_against_gnugo():
    """Two games on 9x9 through GTP both ways: no forfeits, and GNU Go scores the end
    the same. --capture-all-dead makes GNU Go remove dead stones before it passes, so
    that Tromp-Taylor area and Chinese counting see the same board."""
    from arena.matches.external import ExternalPlayer
    from arena.protocols.gtp import score_text
    from arena.matches.match import MatchSettings, play_games

    game = go9()
    ours = ExternalPlayer("gtp", [sys.executable, "-m", "tabula", "gtp", "--uniform", "--sims", "8"],
                          game,
                          name="tabula", cwd=REPO, timeout=STARTUP)
    gnugo = ExternalPlayer("gtp", f"{GNUGO} --mode gtp --level 1 --chinese-rules "
                           "--capture-all-dead", game, name="gnugo", timeout=STARTUP)
    results = []
    try:
        play_games(game, ours, gnugo, [0, 1], MatchSettings("go9", 0, 0), results.append)
    finally:
        ours.close()
        gnugo.close()
    assert len(results) == 2
    for result in results:
        if result.reason is not None:  # only our engine may end a game early, by resigning
            assert "tabula" in (result.first, result.second)
            side = "first" if result.first == "tabula" else "second"
            assert result.reason == f"{side} forfeits: engine resigned", result.reason
            continue
        state = game.new_initial_state()
        for move in result.moves:
            state.apply(state.text_to_action(move))
        assert state.is_terminal() and state.passes() == 2
        ours_text = score_text(state.area_score())
        theirs, dead = _gnugo_score(list(result.moves))
        assert ours_text[0] == theirs[0]  # the same winner
        if not dead:
            assert ours_text == theirs
        assert np.sign(state.area_score()) == {"B": 1, "W": -1}[theirs[0]]
