"""ExternalPlayer against fake GTP / UCI engines in real subprocesses (tests/arena/engines)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from arena.matches.external import CLOSE_GRACE, ExternalPlayer, Forfeit
from games import get_game

ENGINES = Path(__file__).parent / "engines"
FAKES = {"gtp": ENGINES / "fake_gtp.py", "uci": ENGINES / "fake_uci.py"}


def fake(protocol: str, game_name: str, mode: str, *extra, **kwargs) -> ExternalPlayer:
    """An ExternalPlayer running the fake engine of `protocol` in `mode`."""
    command = [sys.executable, str(FAKES[protocol]), game_name, mode, *map(str, extra)]
    return ExternalPlayer(protocol, command, get_game(game_name), name=f"fake-{mode}", **kwargs)


def position(game_name: str, *texts: str):
    state = get_game(game_name).new_initial_state()
    for text in texts:
        state.apply(state.text_to_action(text))
    return state


def lowest(state) -> int:
    return int(np.flatnonzero(state.legal_mask())[0])


class WithSetup:
    """A game whose GameInfo declares GTP setup commands (as Go's does), delegating the rest."""

    def __init__(self, game, setup: list[str]):
        self.game = game
        self.info = dataclasses.replace(game.info, gtp_setup=tuple(setup))

    def new_initial_state(self):
        return self.game.new_initial_state()


@pytest.mark.parametrize("protocol,game_name", [("gtp", "tictactoe"), ("uci", "connect4")])
def test_good_engine_plays_a_full_game_against_itself(protocol, game_name):
    state = position(game_name)
    with fake(protocol, game_name, "good") as player:
        player.new_game()
        while not state.is_terminal():
            expected = lowest(state)
            [action] = player.select([state])
            assert action == expected
            state.apply(action)
        player.new_game()  # UCI: ucinewgame + isready to a running engine
    assert state.is_terminal()
    assert player.name == "fake-good"


def test_gtp_transcript_with_setup_and_colours(tmp_path):
    log = tmp_path / "gtp.log"
    command = [sys.executable, str(FAKES["gtp"]), "tictactoe", "good", "--log", str(log)]
    game = WithSetup(get_game("tictactoe"), ["komi 0"])
    with ExternalPlayer("gtp", command, game) as player:
        assert player.select([position("tictactoe", "b2")]) == [0]
    assert log.read_text().splitlines() == [
        "protocol_version", "clear_board", "komi 0", "play B b2", "genmove W", "quit"]


def test_uci_transcript_with_options_and_limits(tmp_path):
    log = tmp_path / "uci.log"
    command = [sys.executable, str(FAKES["uci"]), "connect4", "good", "--log", str(log)]
    game = get_game("connect4")
    with ExternalPlayer("uci", command, game, options={"Hash": 32}, nodes=100) as player:
        assert player.select([position("connect4", "4", "4")]) == [0]
    with ExternalPlayer("uci", command, game, move_time=0.05) as player:
        player.select([position("connect4")])
    assert log.read_text().splitlines() == [
        "uci", "setoption name Hash value 32", "isready", "isready",
        "position startpos moves 4 4", "go nodes 100", "quit",
        "uci", "isready", "isready", "position startpos", "go movetime 50", "quit"]


@pytest.mark.parametrize("protocol", ["gtp", "uci"])
def test_crash_forfeits_and_the_next_request_restarts_the_engine(protocol):
    with fake(protocol, "tictactoe", "crash", 1) as player:
        # The engine exits when asked to move after 1 move; a fresh one answers at move 0.
        first, second = player.select([position("tictactoe", "a1"), position("tictactoe")])
        assert first == Forfeit("engine crashed (exit code 3)")
        assert second == 0


@pytest.mark.parametrize("protocol", ["gtp", "uci"])
def test_hang_forfeits_at_the_deadline_and_kills_the_engine(protocol):
    kwargs = {"move_time": 0.1} if protocol == "uci" else {}
    with fake(protocol, "tictactoe", "hang", timeout=0.5, **kwargs) as player:
        start = time.monotonic()
        [result] = player.select([position("tictactoe")])
        limit = 0.6 if protocol == "uci" else 0.5
        assert result == Forfeit(f"no answer within {limit} s")
        assert time.monotonic() - start >= limit  # it waited for the deadline (a slower
        # machine only waits longer; that it ends at all is the hang fake's forfeit)
        assert player._engine is None  # killed, to be restarted at the next request


@pytest.mark.parametrize("protocol", ["gtp", "uci"])
@pytest.mark.parametrize("mode,reason", [
    ("nonsense", "nonsense answer 'zz'"),
    ("illegal", "illegal move 'a1'"),
])
def test_unplayable_answers_forfeit(protocol, mode, reason):
    with fake(protocol, "tictactoe", mode) as player:
        assert player.select([position("tictactoe", "a1")]) == [Forfeit(reason)]
        assert player._engine is not None and player._engine.alive()  # no restart needed


def test_resignation_and_no_move_forfeit():
    with fake("gtp", "tictactoe", "resign") as player:
        assert player.select([position("tictactoe")]) == [Forfeit("engine resigned")]
    with fake("uci", "tictactoe", "resign") as player:
        assert player.select([position("tictactoe")]) == [
            Forfeit("engine has no move (bestmove (none))")]


def test_gtp_error_answer_to_a_setup_command_forfeits():
    command = [sys.executable, str(FAKES["gtp"]), "tictactoe", "good"]
    game = WithSetup(get_game("tictactoe"), ["frobnicate 3"])
    with ExternalPlayer("gtp", command, game) as player:
        assert player.select([position("tictactoe")]) == [
            Forfeit("engine rejected 'frobnicate 3': unknown command")]


@pytest.mark.parametrize("protocol", ["gtp", "uci"])
def test_garbage_and_early_exit_at_startup_forfeit(protocol):
    script = "print('hello world', flush=True); import sys; sys.stdin.readline(); sys.exit(5)"
    player = ExternalPlayer(protocol, [sys.executable, "-c", script], get_game("tictactoe"),
                            timeout=30.0)  # a deadline, not a speed
    with player:
        [result] = player.select([position("tictactoe")])
    expected = ("nonsense answer 'hello world'" if protocol == "gtp"
                else "engine crashed (exit code 5)")
    assert result == Forfeit(expected)


def test_engine_that_exits_at_once_is_a_crash_not_an_exception():
    command = [sys.executable, "-c", "import sys; sys.exit(7)"]
    with ExternalPlayer("gtp", command, get_game("tictactoe")) as player:
        assert player.select([position("tictactoe")]) == [
            Forfeit("engine crashed (exit code 7)")]


def test_close_kills_an_engine_that_ignores_quit_and_is_idempotent():
    player = fake("gtp", "tictactoe", "stubborn")
    assert player.select([position("tictactoe")]) == [0]
    proc = player._engine.proc
    start = time.monotonic()
    player.close()
    assert proc.poll() is not None
    assert time.monotonic() - start >= CLOSE_GRACE  # quit was given its grace first
    player.close()


@pytest.mark.parametrize("protocol", ["gtp", "uci"])
def test_close_quits_politely(protocol, monkeypatch):
    # A grace long enough for a Python engine to exit with both cores busy: what is tested
    # is that quit is sent and obeyed (a kill after the grace would show as -9).
    monkeypatch.setattr("arena.matches.external.CLOSE_GRACE", 60.0)
    player = fake(protocol, "tictactoe", "good")
    player.select([position("tictactoe")])
    proc = player._engine.proc
    player.close()
    assert proc.returncode == 0


def test_bad_settings_raise_value_error():
    game = get_game("tictactoe")
    with pytest.raises(ValueError, match="engine 'no-such-engine-xyz' not found"):
        ExternalPlayer("gtp", "no-such-engine-xyz --mode 1", game)
    with pytest.raises(ValueError, match="not found"):
        ExternalPlayer("uci", ["./missing/engine"], game)
    with pytest.raises(ValueError, match="unknown protocol 'xboard'"):
        ExternalPlayer("xboard", sys.executable, game)
    with pytest.raises(ValueError, match="empty engine command"):
        ExternalPlayer("gtp", "  ", game)
    with pytest.raises(ValueError, match="positive"):
        ExternalPlayer("uci", sys.executable, game, timeout=0)


def test_default_name_is_the_program_file_name():
    player = ExternalPlayer("gtp", f"{sys.executable} -c pass", get_game("tictactoe"))
    assert player.name == Path(sys.executable).name
    player.close()  # never started: nothing to do


def test_finished_game_is_the_callers_mistake():
    state = position("tictactoe", "a1", "a2", "b1", "b2", "c1")
    with fake("gtp", "tictactoe", "good") as player, pytest.raises(ValueError, match="finished"):
        player.select([state])


ECHO_UCI = """
import sys
for line in sys.stdin:
    word = (line.split() or [''])[0]
    if word == 'quit':
        break
    replies = {'uci': 'uciok', 'isready': 'readyok', 'go': 'bestmove c3\\nbestmove a1'}
    if word in replies:
        print(replies[word], flush=True)
"""


def test_uci_skips_stale_output_before_each_request():
    command = [sys.executable, "-c", ECHO_UCI]
    with ExternalPlayer("uci", command, get_game("tictactoe")) as player:
        # Each search prints an extra 'bestmove a1' that must not answer the next one.
        assert player.select([position("tictactoe")] * 2) == [8, 8]
