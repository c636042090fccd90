"""Arena players that are external engines speaking GTP v2 or UCI in a subprocess.

An `ExternalPlayer` is stateless per request: every move request re-sends the
game from the start (GTP: `clear_board`, setup, `play` per move, `genmove`;
UCI: `position startpos moves ...`, `go`). Move text comes from the game
(`State.action_to_text` / `State.text_to_action`), so nothing here knows a
particular game; its GameInfo declares `gtp_setup` (e.g. ('boardsize 9',
'komi 7.5')) and `uci_variant` (sent as UCI_Variant).

Engine misbehaviour never raises: a crash, a hang past the deadline or an
unplayable answer becomes a `Forfeit` for that position, and a crashed or
hung process is killed and replaced by a fresh one at the next request, so
one bad game does not forfeit the rest of a match.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

CLOSE_GRACE = 1.0
"""Seconds an engine gets to exit after `quit` before it is killed."""
DEFAULT_MOVE_TIME = 1.0
"""UCI `go movetime` (seconds) when neither move_time nor nodes is given."""
_QUOTE_CHARS = 60
"""Longest engine text quoted in a Forfeit reason."""
_GTP_RESPONSE = re.compile(r"^([=?])\d*(?:\s+(.*))?$")


@dataclass(frozen=True)
class Forfeit:
    """The engine loses the game instead of moving."""

    reason: str
    """One line, e.g. "engine crashed (exit code 1)" or "illegal move 'a1'"."""


class _Failure(Exception):
    """Engine misbehaviour; `restart` says whether its process must be replaced."""

    def __init__(self, reason: str, restart: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.restart = restart


def _quote(text: str) -> str:
    """`text` quoted on one line, shortened if long."""
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "...")


class _Deadline:
    """A point in time `seconds` from now, remembered for the timeout message."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


def _pump(stream, lines: queue.Queue) -> None:
    """Reader thread: puts every stdout line on `lines`, then None at end of file."""
    try:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                lines.put(line.rstrip("\r\n"))
    finally:
        lines.put(None)
        with contextlib.suppress(OSError):
            stream.close()


class _Process:
    """A running engine: commands to stdin, stdout lines through a reader thread."""

    def __init__(self, argv: list[str], cwd):
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
            bufsize=1)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self._lines),
                         daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def drain(self) -> None:
        """Discards lines already received (stale output of an earlier request)."""
        with contextlib.suppress(queue.Empty):
            while self._lines.get_nowait() is not None:
                pass
            self._lines.put(None)  # keep the end-of-file mark for the next read

    def send(self, line: str) -> None:
        """Writes one command line and flushes; _Failure if the pipe is broken."""
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            raise _Failure(self._exit_reason()) from None

    def read(self, deadline: _Deadline) -> str:
        """The next stdout line; blocks until `deadline`, then _Failure."""
        try:
            line = self._lines.get(timeout=max(deadline.remaining(), 0.0))
        except queue.Empty:
            raise _Failure(f"no answer within {round(deadline.seconds, 3)} s") from None
        if line is None:
            raise _Failure(self._exit_reason())
        return line

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "engine closed its output"
        return f"engine crashed (exit code {code})"

    def kill(self) -> None:
        """Kills the process (if running) and reaps it; blocks briefly."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def quit(self, command: str) -> None:
        """Sends `command`, waits CLOSE_GRACE seconds for the exit, then kills."""
        if self.alive():
            with contextlib.suppress(_Failure, subprocess.TimeoutExpired):
                self.send(command)
                self.proc.wait(timeout=CLOSE_GRACE)
        self.kill()


def _replay(game, state) -> list[tuple[int, str]]:
    """(player, move text) for every move of `state`'s history, from the initial position."""
    position = game.new_initial_state()
    moves = []
    for action in state.history():
        moves.append((position.to_play(), position.action_to_text(action)))
        position.apply(action)
    return moves


class _Gtp:
    """GTP v2 conversation: one command and its '=' / '?' answer at a time."""

    def __init__(self, game, timeout: float, move_time: float | None):
        self.setup = list(game.info.gtp_setup)
        self.timeout = timeout
        self.move_time = move_time or 0.0

    def handshake(self, engine: _Process) -> None:
        # Answers other than '= 2' are tolerated: many engines work regardless.
        self._ask(engine, "protocol_version", _Deadline(self.timeout))

    def new_game(self, engine: _Process) -> None:
        """Nothing to do: every request starts with clear_board."""

    def request(self, engine: _Process, moves: list[tuple[int, str]], to_play: int) -> str:
        """The engine's move text for the position after `moves`."""
        engine.drain()
        for command in ["clear_board", *self.setup]:
            self._command(engine, command)
        for player, text in moves:
            self._command(engine, f"play {'BW'[player]} {text}")
        deadline = _Deadline(self.move_time + self.timeout)
        ok, answer = self._ask(engine, f"genmove {'BW'[to_play]}", deadline)
        if not ok:
            raise _Failure(f"genmove failed: {answer}", restart=False)
        if answer.lower() == "resign":
            raise _Failure("engine resigned", restart=False)
        return answer

    def _command(self, engine: _Process, command: str) -> str:
        ok, answer = self._ask(engine, command, _Deadline(self.timeout))
        if not ok:
            raise _Failure(f"engine rejected {command!r}: {answer}", restart=False)
        return answer

    @staticmethod
    def _ask(engine: _Process, command: str, deadline: _Deadline) -> tuple[bool, str]:
        """(success, text) of the answer to `command`; blocks until `deadline`."""
        engine.send(command)
        line = engine.read(deadline)
        while not line.strip():
            line = engine.read(deadline)
        match = _GTP_RESPONSE.match(line.strip())
        if match is None:
            raise _Failure(f"nonsense answer {_quote(line)}")
        body = [match.group(2) or ""]
        line = engine.read(deadline)
        while line.strip():
            body.append(line)
            line = engine.read(deadline)
        return match.group(1) == "=", " ".join(part.strip() for part in body).strip()


class _Uci:
    """UCI conversation: handshake with options, then position + go per request."""

    def __init__(self, game, timeout: float, options: dict[str, str],
                 move_time: float | None, nodes: int | None):
        variant = game.info.uci_variant
        self.options = ({"UCI_Variant": str(variant)} if variant else {}) | options
        self.timeout = timeout
        if move_time is None and nodes is not None:
            self.go, search_time = f"go nodes {nodes}", 0.0
        else:
            search_time = DEFAULT_MOVE_TIME if move_time is None else move_time
            self.go = f"go movetime {max(1, round(search_time * 1000))}"
        self.search_time = search_time

    def handshake(self, engine: _Process) -> None:
        engine.send("uci")
        self._wait_for(engine, "uciok")
        for name, value in self.options.items():
            engine.send(f"setoption name {name} value {value}")
        self._ready(engine)

    def new_game(self, engine: _Process) -> None:
        engine.send("ucinewgame")
        self._ready(engine)

    def request(self, engine: _Process, moves: list[tuple[int, str]], to_play: int) -> str:
        """The engine's bestmove text for the position after `moves`."""
        self._ready(engine)  # skips anything left over from an earlier search
        texts = " ".join(text for _, text in moves)
        engine.send(f"position startpos moves {texts}" if texts else "position startpos")
        engine.send(self.go)
        line = self._wait_for(engine, "bestmove",
                              _Deadline(self.search_time + self.timeout))
        parts = line.split()
        if len(parts) < 2:
            raise _Failure(f"nonsense answer {_quote(line)}")
        if parts[1] in ("(none)", "0000"):
            raise _Failure(f"engine has no move (bestmove {parts[1]})", restart=False)
        return parts[1]

    def _ready(self, engine: _Process) -> None:
        engine.send("isready")
        self._wait_for(engine, "readyok")

    def _wait_for(self, engine: _Process, token: str, deadline: _Deadline | None = None) -> str:
        """The first line whose first word is `token` (other lines are ignored)."""
        deadline = deadline or _Deadline(self.timeout)
        while True:
            line = engine.read(deadline)
            words = line.split()
            if words and words[0] == token:
                return line


def _parse_move(state, text: str) -> int | Forfeit:
    """The legal action the engine's `text` names, else a Forfeit saying why not."""
    mask = state.legal_mask()
    for candidate in dict.fromkeys((text, text.lower(), text.upper())):
        try:
            action = int(state.text_to_action(candidate))
        except ValueError:  # GameError is a ValueError
            continue
        if 0 <= action < len(mask) and mask[action]:
            return action
        return Forfeit(f"illegal move {_quote(text)}")
    if _names_an_action(state, text, len(mask)):
        return Forfeit(f"illegal move {_quote(text)}")
    return Forfeit(f"nonsense answer {_quote(text)}")


def _names_an_action(state, text: str, num_actions: int) -> bool:
    """Whether `text` is the move text of some action, legal or not (error path only)."""
    for action in range(num_actions):
        with contextlib.suppress(ValueError):  # GameError: no text for this action
            if state.action_to_text(action).lower() == text.lower():
                return True
    return False


EXTRA_PATHS = ("/usr/games",)
"""Searched after PATH: Debian installs gnugo and stockfish in /usr/games, which a
non-login shell's PATH often lacks."""


def _find_program(program: str, cwd) -> str:
    """The program's path (absolute if found via EXTRA_PATHS); ValueError if missing."""
    if os.path.dirname(program):
        path = Path(cwd or ".") / program
        if path.is_file() and os.access(path, os.X_OK):
            return program
    else:
        if shutil.which(program) is not None:
            return program
        found = shutil.which(program, path=os.pathsep.join(EXTRA_PATHS))
        if found is not None:
            return found
    raise ValueError(f"engine {program!r} not found")


def engine_argv(command: str) -> list[str] | None:
    """The command line with its program resolved (PATH, then /usr/games), or None if missing."""
    argv = shlex.split(command)
    try:
        argv[0] = _find_program(argv[0], None)
    except (ValueError, IndexError):
        return None
    return argv


class ExternalPlayer:
    """An engine in a subprocess, driven over GTP or UCI (an arena.matches.players.ArenaPlayer).

    Stateless per request: each move request re-sends the game from the start.
    The process starts lazily at the first request, and again after a crash or
    a hang. Not thread-safe.

    Attributes:
      name: display name (default: the program's file name).
    """

    def __init__(self, protocol: str, command: str | Sequence[str], game, *,
                 name: str | None = None, options: dict[str, str] | None = None,
                 move_time: float | None = None, nodes: int | None = None,
                 timeout: float = 10.0, cwd=None):
        """Checks the settings and that the program exists; starts nothing.

        Args:
          protocol: 'gtp' or 'uci'.
          command: the engine's command line (split with shlex if a string).
          game: the game played; gives the initial position for replays and
            its GameInfo's `gtp_setup` / `uci_variant`.
          name: display name.
          options: UCI options, sent as `setoption` after `uciok` (UCI only).
          move_time: seconds per move (UCI `go movetime`); also extends the
            deadline of each move request (GTP `genmove` included).
          nodes: UCI `go nodes N` when move_time is not given.
          timeout: seconds allowed per answer, on top of move_time for a move.
          cwd: working directory of the engine.
        Raises:
          ValueError: unknown protocol, bad limits, empty command, or a
            program that is not found.
        """
        protocol = protocol.lower()
        if protocol not in ("gtp", "uci"):
            raise ValueError(f"unknown protocol {protocol!r}: expected 'gtp' or 'uci'")
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        if not argv:
            raise ValueError("empty engine command")
        if timeout <= 0 or (move_time is not None and move_time <= 0):
            raise ValueError(f"timeout and move_time must be positive, got {timeout}, {move_time}")
        if nodes is not None and nodes < 1:
            raise ValueError(f"nodes must be at least 1, got {nodes}")
        self.name = name or Path(argv[0]).name
        argv[0] = _find_program(argv[0], cwd)
        self.protocol = protocol
        self._argv, self._cwd, self._game = argv, cwd, game
        options = {str(k): str(v) for k, v in (options or {}).items()}
        if protocol == "gtp":
            self._driver = _Gtp(game, timeout, move_time)
        else:
            self._driver = _Uci(game, timeout, options, move_time, nodes)
        self._engine: _Process | None = None

    def select(self, states: Sequence) -> list[int | Forfeit]:
        """One action (or Forfeit) per state; blocks while the engine thinks.

        Raises:
          ValueError: a state is terminal (the caller's mistake, not the engine's).
        """
        return [self._select_one(state) for state in states]

    def new_game(self) -> None:
        """Tells a running engine a new game starts (UCI: ucinewgame + isready)."""
        if self._engine is None or not self._engine.alive():
            return
        try:
            self._driver.new_game(self._engine)
        except _Failure:
            self._stop()

    def close(self) -> None:
        """Asks the engine to quit, kills it after CLOSE_GRACE seconds; idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.quit("quit")

    def __enter__(self) -> "ExternalPlayer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExternalPlayer({self.protocol!r}, {shlex.join(self._argv)!r})"

    def _select_one(self, state) -> int | Forfeit:
        if state.is_terminal():
            raise ValueError("select() got a finished game: no move is due")
        moves = _replay(self._game, state)
        try:
            engine = self._running()
            text = self._driver.request(engine, moves, state.to_play())
        except _Failure as failure:
            if failure.restart:
                self._stop()
            return Forfeit(failure.reason)
        return _parse_move(state, text.strip())

    def _running(self) -> _Process:
        """The engine process, (re)started and greeted if needed."""
        if self._engine is not None and self._engine.alive():
            return self._engine
        self._stop()
        try:
            self._engine = _Process(self._argv, self._cwd)
        except OSError as error:
            raise _Failure(f"engine could not start: {error.strerror or error}") from None
        self._driver.handshake(self._engine)
        return self._engine

    def _stop(self) -> None:
        """Kills the engine process, if any (no goodbye: it misbehaved)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.kill()
