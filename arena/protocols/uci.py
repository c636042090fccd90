"""The UCI engine (`tabula uci`): chess GUIs, python-chess and cutechess play through it.

`UciEngine.handle(line) -> str` answers one input line from a table of
commands and never raises; `go` starts a search thread (arena.protocols.uci_search)
whose info and bestmove lines go to the `emit` callback, so `stop`,
`isready` and `ponderhit` are answered while it thinks. `run_uci` is the
stdio loop around it. Options are declared once in arena.protocols.uci_options.

Answers beyond the UCI standard:
  * Bad input - an unknown command, a malformed or illegal position, an
    unknown option or a bad value, a bad `go` argument - is answered with one
    `info string <reason>` line; the position and options stay as they were.
    Following the spec, unknown words before a known command are skipped
    ("joho isready" answers readyok). `debug` and `register` are accepted and
    change nothing.
  * Every `go` (but a perft) gets exactly one bestmove, as from Stockfish: a
    bad or unknown argument is named in an `info string` and ignored, a `go`
    while searching lets a search with limits finish, or stops an infinite or
    pondering one, first (that search answers its own bestmove), and a
    malformed `go perft` searches instead.
  * `go` before any `position` searches the start position (and says so).
  * `go` in a finished game answers `bestmove 0000` after an info string. A
    game over only by a claimable draw (threefold repetition, fifty moves) is
    searched on from its FEN with the move counter reset: UCI GUIs keep
    playing until a draw is claimed.
  * `go perft N` (Stockfish's debugging extension) prints each legal move
    with its leaf count ('e2e4: 20'), a blank line, 'Nodes searched: N' and
    a blank line. It runs in the input thread, so N is at most MAX_PERFT_DEPTH.
  * `d` prints the board and its FEN.
  * End of input: a search with limits finishes, an infinite or pondering one
    is stopped; bestmove is written either way, then the loop ends.
"""

from __future__ import annotations

import re
import sys
import threading
import traceback
from typing import Callable, TextIO

from arena.protocols.gtp_time import SimsRate
from arena.protocols.lines import LineTooLong, read_line
from arena.protocols.uci_options import OPTIONS, UciError, defaults, find_option, make_player
from arena.protocols.uci_search import SearchJob, parse_go, plan_search
from games.base import parse_count

ENGINE_NAME = "Tabula"
ENGINE_AUTHOR = "the Tabula authors"
GAME = "chess"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNQUOTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Dropped from quoted input: control characters, and what str.splitlines() also breaks
lines at (NEL, U+2028, U+2029), so that an `info string` stays one line for every client."""
_QUOTE_CHARS = 200
MAX_PERFT_DEPTH = 6
"""Deepest `go perft`: it runs in the input thread (stop and quit wait for it); depth 6
from the start is 119 million leaves, minutes here, and every further ply ~30 times more."""
__all__ = ["ENGINE_NAME", "UciEngine", "run_uci"]


def _quote(text: str) -> str:
    text = _UNQUOTABLE.sub("", text).strip()
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "..."


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return _quote(text.splitlines()[0]) if text else type(error).__name__


def info_string(text: str) -> str:
    return f"info string {_quote(text)}\n"


def board_text(fen: str) -> str:
    """Stockfish's `d` picture of the FEN's board, White at the bottom, then 'Fen: ...'."""
    rows = []
    for rank in fen.split()[0].split("/"):
        cells = "".join(" " * int(c) if c.isdigit() else c for c in rank)
        rows.append(cells)
    line = " +---+---+---+---+---+---+---+---+"
    out = [line]
    for i, cells in enumerate(rows):
        out.append(" | " + " | ".join(cells) + f" | {8 - i}")
        out.append(line)
    out.append("   a   b   c   d   e   f   g   h")
    return "\n".join(out) + f"\n\nFen: {fen}\n"


class UciEngine:
    """One UCI session over a Player of chess.

    Args:
      game: the chess Game.
      emit: writes one line of search output (info, bestmove); called from the
        search thread, so it must be thread-safe (run_uci sets its own).
      values: option values by name, over the defaults (e.g. from the CLI).
    Raises:
      UciError, CheckpointError, OSError, ValueError: an option value is bad or
        the checkpoint cannot be loaded.
    Attributes:
      state: the position `go` searches.
      done: True after `quit`; the stdio loop stops then.
    """

    def __init__(self, game, emit: Callable[[str], None] = lambda line: None,
                 values: dict | None = None):
        self.game = game
        self.emit = emit
        self.values = defaults()
        for name, value in (values or {}).items():
            self.values[find_option(name).name] = value
        self.player = make_player(game, self.values)
        self.rate = SimsRate()
        self.state = game.new_initial_state()
        self.position_given = False
        self.job: SearchJob | None = None
        self.warm: threading.Thread | None = None
        self.done = False
        self.commands: dict[str, Callable[[list[str]], str]] = {
            "uci": self._uci,
            "debug": lambda a: "",
            "isready": self._isready,
            "setoption": self._setoption,
            "register": lambda a: "",
            "ucinewgame": self._ucinewgame,
            "position": self._position,
            "go": self._go,
            "stop": self._stop,
            "ponderhit": self._ponderhit,
            "quit": self._quit,
            "d": self._d,
        }

    # The protocol -------------------------------------------------------------

    def handle(self, line: str) -> str:
        """The immediate answer to one input line ('' if none). Never raises."""
        try:
            words = _CONTROL.sub(" ", line).split()
            for i, word in enumerate(words):
                if word in self.commands:
                    return self.commands[word](words[i + 1:])
            return info_string(f"unknown command: {line}") if words else ""
        except UciError as e:
            return info_string(str(e))
        except Exception as e:  # The engine must survive anything, its own bugs included.
            traceback.print_exc(file=sys.stderr)
            return info_string(f"internal error: {type(e).__name__}: {_one_line(e)}")

    def warm_up(self) -> None:
        """Compiles the search kernels in a thread; isready and the first go wait for it."""
        player, state = self.player, self.game.new_initial_state()

        def run():
            try:
                player.analyze([state], num_simulations=1)
                player.analyze([state], num_simulations=8)
            except Exception as e:  # reported; the first go will fail the same way
                self.emit(f"info string warm-up failed: {type(e).__name__}: {_one_line(e)}")

        self.warm = threading.Thread(target=run, name="uci-warm-up", daemon=True)
        self.warm.start()

    def finish(self) -> None:
        """End of input: lets a search with limits end, stops an open-ended one. Blocks."""
        job = self.job
        if job is not None:
            if job.plan.infinite or job.pondering:
                job.stop()
            job.join()
        self.done = True

    # Commands -----------------------------------------------------------------

    def _uci(self, args: list[str]) -> str:
        lines = [f"id name {ENGINE_NAME}", f"id author {ENGINE_AUTHOR}"]
        lines += [o.declaration() for o in OPTIONS]
        return "\n".join(lines + ["uciok"]) + "\n"

    def _isready(self, args: list[str]) -> str:
        if self.warm is not None and not self._searching():
            self.warm.join()
        return "readyok\n"

    def _setoption(self, args: list[str]) -> str:
        text = " ".join(args)
        match = re.fullmatch(r"name\s+(.+?)(?:\s+value(?:\s+(.*))?)?", text)
        if match is None:
            raise UciError("usage: setoption name NAME [value VALUE]")
        option = find_option(match.group(1))
        value = option.parse(match.group(2))
        values = dict(self.values, **{option.name: value})
        if option.name in ("WeightsFile", "Threads", "MinibatchSize"):
            try:
                player = make_player(self.game, values)
            except Exception as e:  # CheckpointError, OSError, ValueError: keep the old one
                raise UciError(f"cannot set {option.name}: {_one_line(e)}") from None
            self.player = player
            if option.name == "WeightsFile":
                self.rate = SimsRate()
        self.values = values
        return ""

    def _ucinewgame(self, args: list[str]) -> str:
        self.state = self.game.new_initial_state()
        self.position_given = False
        return ""

    def _position(self, args: list[str]) -> str:
        if not args or args[0] not in ("startpos", "fen"):
            raise UciError("usage: position startpos|fen FEN [moves M1 M2 ...]")
        rest = args[1:]
        fen = None
        if args[0] == "fen":
            end = rest.index("moves") if "moves" in rest else len(rest)
            fen, rest = " ".join(rest[:end]), rest[end:]
            if not fen:
                raise UciError("position fen needs a FEN")
        if rest and rest[0] != "moves":
            raise UciError(f"position: expected 'moves', got {rest[0]!r}")
        if fen is not None and len(fen.split()) == 4:  # EPD style: no move counters
            fen += " 0 1"
        try:
            state = self.game.new_initial_state(fen)
        except ValueError as e:  # GameError
            reason = _one_line(e)
            raise UciError(reason if reason.lower().startswith("bad fen") else
                           f"bad FEN {fen!r}: {reason}") from None
        for i, move in enumerate(rest[1:]):
            state, _ = self._playable(state)
            try:
                state.apply(state.text_to_action(move))
            except ValueError:  # GameError: malformed or illegal
                raise UciError(f"illegal move {move!r} (move {i + 1} of the list) in "
                               f"{state.fen()}; position unchanged") from None
        self.state, self.position_given = state, True
        return ""

    def _go(self, args: list[str]) -> str:
        """Every `go` but a perft is answered by exactly one bestmove, Stockfish-like:
        what cannot be read is named in an info string and ignored; a running search
        answers its own bestmove first (one with limits finishes, an infinite or
        pondering one is stopped); a finished game gets 0000."""
        notes = []
        if args[:1] == ["perft"]:
            depth = self._perft_depth(args[1:])
            if isinstance(depth, int):
                return self._perft(depth)
            notes.append(f"{depth}; searching instead")
            args = []
        job = self.job
        if job is not None and job.running() and (job.plan.infinite or job.pondering):
            self.emit(info_string("go while searching: the running search is stopped "
                                  "first").rstrip("\n"))
            job.stop()
        if job is not None:
            job.join()  # it has answered (or does now): one bestmove per go
        try:
            return self._start_search(args, notes)
        except Exception as e:  # a bug of ours still owes the GUI its bestmove
            traceback.print_exc(file=sys.stderr)
            legal = self.state.legal_moves_uci() if not self.state.is_terminal() else []
            return (info_string(f"internal error: {type(e).__name__}: {_one_line(e)}")
                    + f"bestmove {legal[0] if legal else '0000'}\n")

    def _start_search(self, args: list[str], notes: list[str]) -> str:
        limits = parse_go(args)
        notes += list(limits.ignored)
        if not self.position_given:
            notes.append("no position given: searching the start position")
        if limits.searchmoves:
            notes.append("searchmoves is not supported: searching every move")
        if limits.mate is not None:
            notes.append("mate search is not supported: searching normally")
        state, claimable = self._playable(self.state.clone())
        if claimable:
            notes.append(f"the game's rules end it here ({self._draw_text(self.state)}), "
                         "UCI play goes on: searching its FEN")
        for note in notes:  # through emit, so that they come before the search's lines
            self.emit(info_string(note).rstrip("\n"))
        white = state.fen().split()[1] == "w"
        plan = plan_search(limits, white, int(self.values["MoveOverhead"]),
                           int(self.values["Nodes"]), self.player.search.num_simulations,
                           self.game.info.num_actions)
        over = self._game_over(state) if state.is_terminal() else None
        if over is not None and not (plan.infinite or plan.ponder):
            return over + "bestmove 0000\n"
        self.job = SearchJob(self.player, state, plan, self.rate, self.emit,
                             bool(self.values["UCI_ShowWDL"]), self.warm, game_over=over)
        self.job.start_thread()
        return ""

    def _stop(self, args: list[str]) -> str:
        job = self.job
        if job is not None:
            job.stop()
            job.join()
        return ""

    def _ponderhit(self, args: list[str]) -> str:
        if self.job is None or not self._searching() or not self.job.pondering:
            raise UciError("ponderhit without a ponder search")
        self.job.ponderhit()
        return ""

    def _quit(self, args: list[str]) -> str:
        self._stop(args)
        self.done = True
        return ""

    def _d(self, args: list[str]) -> str:
        return board_text(self.state.fen())

    @staticmethod
    def _perft_depth(args: list[str]) -> int | str:
        """The depth of `go perft DEPTH`, or why it cannot be run."""
        depth = parse_count(args[0], 2**31) if len(args) == 1 else None
        if depth is None or depth < 1:
            return "usage: go perft DEPTH (DEPTH >= 1)"
        if depth > MAX_PERFT_DEPTH:
            return (f"go perft {depth}: at most depth {MAX_PERFT_DEPTH} (it cannot be "
                    "stopped)")
        return depth

    def _perft(self, depth: int) -> str:
        counts = self.state.divide(depth)
        lines = [f"{move}: {n}" for move, n in sorted(counts.items())]
        return "\n".join(lines + ["", f"Nodes searched: {sum(counts.values())}", ""]) + "\n"

    # Helpers ------------------------------------------------------------------

    def _searching(self) -> bool:
        return self.job is not None and self.job.running()

    def _playable(self, state):
        """(state, claimable): a game over only by a claimable draw, restarted from its FEN."""
        if not state.is_terminal():
            return state, False
        fields = state.fen().split()
        if len(fields) >= 5:
            fields[4] = "0"  # the fifty-move counter
        try:
            fresh = self.game.new_initial_state(" ".join(fields))
        except ValueError:
            return state, False
        if fresh.is_terminal():
            return state, False
        return fresh, True

    @staticmethod
    def _draw_text(state) -> str:
        reason = getattr(state, "draw_reason", lambda: None)()
        return str(reason) if reason else "a draw"

    def _game_over(self, state) -> str:
        """Why a finished game is over, and its score line (UCI: score mate 0 when mated)."""
        returns = state.returns()
        mover = 0 if state.fen().split()[1] == "w" else 1
        if returns[mover] < 0:
            score, why = "mate 0", "checkmate"
        else:
            score, why = "cp 0", self._draw_text(state)
        return (info_string(f"the game is over ({why}): no move to play")
                + f"info depth 0 score {score}\n")


# The stdio loop -----------------------------------------------------------------

class _Writer:
    """Thread-safe line output; a vanished reader is ignored."""

    def __init__(self, stdout: TextIO):
        self.stdout = stdout
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            try:
                self.stdout.write(text)
                self.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    def line(self, text: str) -> None:
        self.write(text + "\n")


def run_uci(engine: UciEngine, stdin: TextIO | None = None,
            stdout: TextIO | None = None) -> int:
    """Answers UCI commands until `quit` or end of input; returns exit code 0. Blocks.

    The engine's `emit` is pointed at stdout, serialised with the answers.
    stdin and stdout default to sys.stdin and sys.stdout at call time.
    """
    stdin = sys.stdin if stdin is None else stdin
    writer = _Writer(sys.stdout if stdout is None else stdout)
    engine.emit = writer.line
    source = getattr(stdin, "buffer", stdin)  # bytes: bad UTF-8 must not stop the loop
    while True:
        raw = read_line(source)
        if raw is None:
            break
        if isinstance(raw, LineTooLong):
            writer.write(info_string(raw.reason()))
            continue
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        answer = engine.handle(line)
        if answer:
            writer.write(answer)
        if engine.done:
            return 0
    engine.finish()
    return 0
