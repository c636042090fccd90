"""The GTP v2 engine (`tabula gtp`): Go GUIs, servers and other engines play through it.

`GtpEngine.handle(line) -> str` answers one command line from a table of
commands and never raises; `run_gtp` is the stdio loop around it (with a
reader thread, so that `lz-analyze` streams until the next command). The
answer is '=[id] text' or '?[id] message', ended by an empty line; an input
line that is empty after removing comments gets no answer. Error messages
follow the spec: 'unknown command', 'syntax error', 'illegal move', 'cannot
undo', 'unacceptable size', 'board not empty', 'invalid number of stones',
'bad vertex list', 'cannot load file'; a bad colour or vertex answers
'invalid color' / 'invalid coordinates'.

The game record, replay rules and the engine's moves are in arena.protocols.gtp_game;
time management in arena.protocols.gtp_time; analysis and the loop in arena.protocols.gtp_stream.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

from arena.protocols.gtp_game import COLOURS, GoSession, GtpError, GtpOptions, one_line
from arena.protocols.gtp_stream import AnalysisStream, analysis_stream, parse_analysis_args, run_gtp
from games.sgf import GTP_COLUMNS

PROTOCOL_VERSION = "2"
ENGINE_NAME = "Tabula"
STATUSES = ("alive", "dead", "seki")
ANALYSIS_COMMANDS = ("lz-analyze", "kata-analyze")
MAX_FIXED_HANDICAP = 9
"""Most stones of GTP's fixed handicap placements (sec. 4.1.1)."""
KGS_TIME_SYSTEMS = {"none": 0, "absolute": 1, "byoyomi": 3, "canadian": 3}
"""kgs-time_settings systems and how many numbers follow the name."""
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every control character but tab
_OUTPUT_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # every control character but LF
_ID = re.compile(r"[0-9]+")

__all__ = ["GtpEngine", "GtpError", "GtpOptions", "parse_line", "response", "run_gtp"]


def parse_line(line: str) -> tuple[str, str, list[str]] | None:
    """(id, command, arguments) of one input line, or None for a line to ignore.

    GTP's preprocessing (spec 2.2-2.5): control characters other than tab are
    removed, tabs become spaces, '#' starts a comment, blank lines are ignored.
    """
    text = _CONTROL.sub("", line.split("#", 1)[0]).replace("\t", " ")
    words = text.split()
    if not words:
        return None
    ident = words.pop(0) if _ID.fullmatch(words[0]) else ""
    return ident, (words[0] if words else ""), words[1:]


def response(ident: str, ok: bool, text: str = "") -> str:
    """'=id text' or '?id text' and the ending empty line; printable ASCII, no inner empty lines.

    Control characters are dropped (tabs become spaces): an error message may
    quote a file's bytes, and a stray CR or NUL would garble the controller's reading.
    """
    text = text.replace("\t", " ").encode("ascii", "replace").decode("ascii")
    text = _OUTPUT_CONTROL.sub("", text).rstrip()
    head = ("=" if ok else "?") + ident
    lines = [line.rstrip() for line in f"{head} {text}".split("\n")]
    return "\n".join([lines[0]] + [line for line in lines[1:] if line]) + "\n\n"


def _int(text: str, low: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise GtpError("syntax error") from None
    if value < low:
        raise GtpError("syntax error")
    return value


def _float(text: str, low: float = -math.inf) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GtpError("syntax error") from None
    if not math.isfinite(value) or value < low:
        raise GtpError("syntax error")
    return value


def _args(args: list[str], low: int, high: int | None = None) -> list[str]:
    if not low <= len(args) <= (low if high is None else high):
        raise GtpError("syntax error")
    return args


def _colour(text: str) -> int:
    colour = COLOURS.get(text.lower())
    if colour is None:
        raise GtpError("invalid color")
    return colour


def board_text(state, size: int) -> str:
    """The board with coordinates: X Black, O White, '.' empty, rank 1 at the bottom."""
    board = state.board()
    letters = "   " + " ".join(GTP_COLUMNS[:size])
    rows = [letters]
    for r in range(size - 1, -1, -1):
        cells = " ".join(".XO"[int(v)] for v in board[r])
        rows.append(f"{r + 1:2d} {cells} {r + 1}")
    rows.append(letters)
    return "\n".join(rows)


def score_text(score: float) -> str:
    """'B+3.5', 'W+0.5' or '0' for a score (Black minus White minus komi)."""
    if score == 0:
        return "0"
    return f"{'B' if score > 0 else 'W'}+{abs(score):g}"


class GtpEngine:
    """One GTP session over a Player of a Go game.

    Args:
      player: engine.player.Player of a GoGame, temperature 0 for deterministic play.
      options: GtpOptions.
      resize: (size, komi) -> Player for `boardsize`; None fixes the board size
        (a network knows one size).
    Attributes:
      session: the game and the engine's moves (arena.protocols.gtp_game.GoSession).
      done: True after `quit`; the stdio loop stops then.
    """

    def __init__(self, player, options: GtpOptions = GtpOptions(),
                 resize: Callable[[int, float], object] | None = None):
        self.session = GoSession(player, options, resize)
        self.done = False
        self.commands: dict[str, Callable[[list[str]], str]] = {
            "protocol_version": lambda a: PROTOCOL_VERSION,
            "name": lambda a: ENGINE_NAME,
            "version": self._version,
            "known_command": self._known_command,
            "list_commands": lambda a: "\n".join(self.commands),
            "quit": self._quit,
            "boardsize": self._boardsize,
            "clear_board": self._clear_board,
            "komi": self._komi,
            "play": self._play,
            "genmove": lambda a: self._genmove(a),
            "reg_genmove": lambda a: self._genmove(a, commit=False),
            "kgs-genmove_cleanup": lambda a: self._genmove(a, cleanup=True),
            "undo": self._undo,
            "showboard": self._showboard,
            "final_score": self._final_score,
            "final_status_list": self._final_status_list,
            "fixed_handicap": self._fixed_handicap,
            "place_free_handicap": self._place_free_handicap,
            "set_free_handicap": self._set_free_handicap,
            "time_settings": self._time_settings,
            "kgs-time_settings": self._kgs_time_settings,
            "time_left": self._time_left,
            "loadsgf": self._loadsgf,
            "printsgf": self._printsgf,
            "lz-analyze": None,  # streams: see stream(); handle() answers one search
            "kata-analyze": None,
        }

    # The protocol ------------------------------------------------------------

    def handle(self, line: str) -> str:
        """The full response to one input line ('' for a blank or comment line). Never raises."""
        ident = ""
        try:
            parsed = parse_line(line)
            if parsed is None:
                return ""
            ident, name, args = parsed
            if name in ANALYSIS_COMMANDS:  # one search instead of a stream
                return response(ident, True, "\n" + next(self._analysis(name, args).lines, ""))
            command = self.commands.get(name)
            if command is None:
                return response(ident, False, "unknown command")
            return response(ident, True, command(args))
        except GtpError as e:
            return response(ident, False, str(e))
        except Exception as e:  # The engine must survive anything, its own bugs included.
            return response(ident, False, f"internal error: {type(e).__name__}: {one_line(e)}")

    def stream(self, line: str) -> tuple[str, AnalysisStream] | None:
        """(id, stream) if `line` is a valid analysis command, else None (then use handle)."""
        try:
            parsed = parse_line(line)
            if parsed is None or parsed[1] not in ANALYSIS_COMMANDS:
                return None
            return parsed[0], self._analysis(parsed[1], parsed[2])
        except Exception:  # handle() reports it
            return None

    def _analysis(self, name: str, args: list[str]) -> AnalysisStream:
        s = self.session
        parsed = parse_analysis_args(args, s.to_move(), COLOURS)
        if parsed is None:
            raise GtpError("syntax error")
        colour, interval = parsed
        return analysis_stream(s, s.position(colour), interval, kata=name == "kata-analyze")

    # Administrative ----------------------------------------------------------

    def _version(self, args: list[str]) -> str:
        from importlib import metadata

        try:
            return metadata.version("tabula")
        except metadata.PackageNotFoundError:
            return "unknown"

    def _known_command(self, args: list[str]) -> str:
        return "true" if len(args) == 1 and args[0] in self.commands else "false"

    def _quit(self, args: list[str]) -> str:
        self.done = True
        return ""

    # Setup -------------------------------------------------------------------

    def _boardsize(self, args: list[str]) -> str:
        size = _int(_args(args, 1)[0])
        s = self.session
        if size != s.game.size:
            if s.resize is None:
                raise GtpError("unacceptable size")
            try:
                player = s.resize(size, s.game.komi)
            except ValueError:  # GameError: a size the game does not support
                raise GtpError("unacceptable size") from None
            s.set_game(player.game, player)
        s.clear()
        return ""

    def _clear_board(self, args: list[str]) -> str:
        self.session.clear()
        return ""

    def _komi(self, args: list[str]) -> str:
        komi = _float(_args(args, 1)[0])
        s = self.session
        if komi != s.game.komi:
            s.set_game(s.game.with_komi(komi))
        return ""

    def _fixed_handicap(self, args: list[str], free: bool = False) -> str:
        n = _int(_args(args, 1)[0])
        s = self.session
        if not s.empty():
            raise GtpError("board not empty")
        if free and not 2 <= n < s.game.size * s.game.size:
            raise GtpError("invalid number of stones")
        stones = None
        # Free placement may put fewer stones than asked, and GTP's fixed placements
        # stop at MAX_FIXED_HANDICAP: counting down from n itself could take hours.
        for k in range(min(n, MAX_FIXED_HANDICAP), 1, -1) if free else (n,):
            try:
                stones = list(s.game.fixed_handicap(k))
                break
            except ValueError:  # GameError
                continue
        if stones is None:
            raise GtpError("invalid number of stones")
        s.clear(stones)
        return " ".join(stones)

    def _place_free_handicap(self, args: list[str]) -> str:
        return self._fixed_handicap(args, free=True)

    def _set_free_handicap(self, args: list[str]) -> str:
        s = self.session
        if not s.empty():
            raise GtpError("board not empty")
        points = s.game.size * s.game.size
        try:
            actions = [s.vertex(v) for v in args]
        except GtpError:
            raise GtpError("bad vertex list") from None
        if (not 2 <= len(actions) < points or s.game.pass_action in actions
                or len(set(actions)) != len(actions)):
            raise GtpError("bad vertex list")
        try:
            s.clear([s.game.action_to_vertex(a) for a in actions])
        except ValueError:  # GameError: the stones cannot all stand
            raise GtpError("bad vertex list") from None
        return ""

    # Play --------------------------------------------------------------------

    def _play(self, args: list[str]) -> str:
        colour_text, vertex_text = _args(args, 2)
        colour = _colour(colour_text)
        self.session.play(colour, self.session.vertex(vertex_text))
        return ""

    def _genmove(self, args: list[str], commit: bool = True, cleanup: bool = False) -> str:
        colour = _colour(_args(args, 1)[0])
        return self.session.genmove(colour, commit=commit, cleanup=cleanup)

    def _undo(self, args: list[str]) -> str:
        _args(args, 0)
        self.session.undo()
        return ""

    def _showboard(self, args: list[str]) -> str:
        s = self.session
        return "\n" + board_text(s.state, s.game.size)

    def _final_score(self, args: list[str]) -> str:
        return score_text(float(self.session.state.area_score()))

    def _final_status_list(self, args: list[str]) -> str:
        status = _args(args, 1)[0].lower()
        if status not in STATUSES:
            raise GtpError("syntax error")
        return " ".join(self.session.state.final_status(status))

    # Time --------------------------------------------------------------------

    def _time_settings(self, args: list[str]) -> str:
        main, byo_time, stones = _args(args, 3)
        self.session.clock.set("canadian", _float(main, 0), _float(byo_time, 0), _int(stones))
        self.session.calibrate()
        return ""

    def _kgs_time_settings(self, args: list[str]) -> str:
        if not args or args[0] not in KGS_TIME_SYSTEMS:
            raise GtpError("syntax error")
        kind, numbers = args[0], _args(args[1:], KGS_TIME_SYSTEMS[args[0]])
        values = [_float(x, 0) for x in numbers]
        if kind == "byoyomi" or kind == "canadian":
            main, byo_time, stones = values[0], values[1], _int(numbers[2])
            self.session.clock.set(kind, main, byo_time, stones)
        else:
            self.session.clock.set(kind, *values)
        self.session.calibrate()
        return ""

    def _time_left(self, args: list[str]) -> str:
        colour_text, seconds, stones = _args(args, 3)
        self.session.clock.time_left(_colour(colour_text), _float(seconds, 0), _int(stones))
        return ""

    # Records -----------------------------------------------------------------

    def _loadsgf(self, args: list[str]) -> str:
        _args(args, 1, 2)
        move_number = _int(args[1], low=1) if len(args) == 2 else None
        self.session.load_sgf(args[0], move_number)
        return ""

    def _printsgf(self, args: list[str]) -> str:
        from games import write_sgf

        _args(args, 0, 1)
        s = self.session
        result = score_text(float(s.state.area_score())) if s.state.is_terminal() else ""
        text = write_sgf(s.game.size, s.game.komi, s.record(), result, s.handicap,
                         {"AP": ENGINE_NAME})
        if not args:
            return text
        try:
            Path(args[0]).write_text(text, encoding="utf-8")
        except OSError as e:
            raise GtpError(f"cannot write file: {one_line(e)}") from None
        return ""

