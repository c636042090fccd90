"""Game records: a forgiving PGN results reader and PGN, SGF and plain writers.

The reader keeps going past damaged games: each game with a problem (a missing
White, Black or Result tag, a malformed result or tag pair, an unterminated
comment, a termination marker that disagrees with the Result tag) is left out
and reported once, by its 1-based number in the file.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from games import gtp_to_sgf as _gtp_to_sgf
from games import write_sgf
from games.sgf import GTP_COLUMNS

RESULTS = ("1-0", "0-1", "1/2-1/2", "*")
WHITE_SCORE = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}
SEVEN_TAG_ROSTER = ("Event", "Site", "Date", "Round", "White", "Black", "Result")
UNKNOWN = {"Date": "????.??.??"}
"""Standard placeholders for unknown Seven Tag Roster values ("?" for the others)."""
LINE_WIDTH = 80
MAX_ERRORS = 3
"""Problems reported per game."""

_TAG = re.compile(r'\[[ \t]*([A-Za-z0-9_+#=:-]+)[ \t]+"((?:[^"\\\n]|\\.)*)"[ \t]*\]')
_TOKENS = re.compile(r'[^\s{}();\[\]]+(?:\s+[^\s{}();\[\]]+)*')
"""A run of moves, move numbers, NAGs and markers (no comment or variation)."""
_NOT_NAG = re.compile(r'(?<!\S)[^$\s]')
_MARKER = re.compile(r'(?<!\S)(1-0|0-1|1/2-1/2|\*)(?!\S)')
_BLANK = re.compile(r'\n[ \t]*\n')
_SPACES = re.compile(r'[^\S\n]*')


@dataclass(frozen=True)
class PgnGame:
    """One well-formed game."""

    number: int
    """1-based position in the file."""
    headers: dict[str, str]
    movetext: str
    """The movetext as written, comments and variations included."""

    @property
    def white(self) -> str:
        return self.headers["White"]

    @property
    def black(self) -> str:
        return self.headers["Black"]

    @property
    def result(self) -> str:
        """The Result tag: 1-0, 0-1, 1/2-1/2 or *."""
        return self.headers["Result"]


@dataclass(frozen=True)
class PgnProblem:
    """Why the game with this 1-based number was left out."""

    number: int
    message: str


@dataclass
class _Draft:
    """A game being read."""

    headers: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    start: int = -1
    """Offset of the movetext's first character (-1: no movetext yet)."""
    end: int = -1
    marker: str | None = None
    """The termination marker, once read."""
    gap: bool = False
    """A blank line followed the last tag."""
    moves: bool = False
    """A move, move number or marker was read (not just comments or NAGs)."""


def read_pgn(text: str) -> tuple[list[PgnGame], list[PgnProblem]]:
    """Reads every game of a PGN text.

    Returns:
      The well-formed games and one problem per game left out, both in file order.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # "%" in column 1 escapes the line; blanking it keeps line numbers right.
    text = re.sub(r"(?m)^%.*$", "", text)
    lines = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_right(lines, pos)

    close = -2  # the first '}' at or after the last offset searched (-1: none, -2: no search)

    def close_after(pos: int) -> int:
        """The first '}' at or after `pos` (offsets only grow), or -1; linear in all."""
        nonlocal close
        if close == -2 or 0 <= close < pos:
            close = text.find("}", pos)
        return close

    drafts: list[_Draft] = []
    game = None
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            if c == "\n" and game is not None and game.start < 0 and _BLANK.match(text, i):
                game.gap = True
            i = _SPACES.match(text, i + 1).end() if c != "\n" else i + 1
        elif c == "[":
            m = _TAG.match(text, i)
            name = m.group(1) if m else None
            if (game is None or game.start >= 0 or game.marker or game.gap
                    or name in game.headers):
                game, depth = _Draft(), 0
                drafts.append(game)
            eol = text.find("\n", i)
            eol = len(text) if eol < 0 else eol
            if m:
                value = m.group(2)
                game.headers[name] = re.sub(r"\\(.)", r"\1", value) if "\\" in value else value
                i = m.end()
            else:
                what = "malformed" if "]" in text[i:eol] else "unterminated"
                game.errors.append(f"{what} tag pair on line {line_of(i)}")
                i = eol
        else:
            if game is None or game.marker is not None:
                game, depth = _Draft(), 0
                drafts.append(game)
            if game.start < 0:
                game.start = i
            i, depth = _movetext_item(text, i, depth, game, line_of, close_after)
            game.end = i
    games, problems = [], []
    # Comments outside any game (no tags, no moves) are not games.
    drafts = [d for d in drafts if d.headers or d.moves or d.errors]
    for number, draft in enumerate(drafts, 1):
        errors = _check(draft) + draft.errors
        if len(errors) > MAX_ERRORS:  # a damaged file can hold a million; one line says enough
            errors = errors[:MAX_ERRORS] + [f"{len(errors) - MAX_ERRORS} more problems"]
        movetext = text[draft.start:draft.end].strip() if draft.start >= 0 else ""
        if errors:
            problems.append(PgnProblem(number, "; ".join(errors)))
        else:
            games.append(PgnGame(number, draft.headers, movetext))
    return games, problems


def _movetext_item(text: str, i: int, depth: int, game: _Draft, line_of,
                   close_after) -> tuple[int, int]:
    """Consumes one movetext item at text[i]; returns the new offset and variation depth."""
    c = text[i]
    if c == "{":
        close = close_after(i)
        if close >= 0:
            return close + 1, depth
        game.errors.append(f"unterminated comment on line {line_of(i)}")
        eol = text.find("\n", i)
        return (len(text) if eol < 0 else eol), depth
    if c == ";":
        eol = text.find("\n", i)
        return (len(text) if eol < 0 else eol), depth
    if c in "()":
        return i + 1, max(depth + (1 if c == "(" else -1), 0)
    m = _TOKENS.match(text, i)
    if m is None:  # a stray "}" or "]"
        game.errors.append(f"unexpected {c!r} on line {line_of(i)}")
        return i + 1, depth
    end = m.end()
    marker = _MARKER.search(text, i, end) if depth == 0 else None
    if marker:  # the game ends at its termination marker
        game.marker, end = marker.group(1), marker.end()
    game.moves = game.moves or _NOT_NAG.search(text, i, end) is not None
    return end, depth


def _check(draft: _Draft) -> list[str]:
    """What makes a draft unusable, beyond its parse errors."""
    missing = [t for t in ("White", "Black", "Result") if t not in draft.headers]
    if missing:
        names = " and ".join(filter(None, [", ".join(missing[:-1]), missing[-1]]))
        return [f"missing {names} tag{'s' if len(missing) > 1 else ''}"]
    result = draft.headers["Result"]
    if result not in RESULTS:
        return [f"result {result!r} is not 1-0, 0-1 or 1/2-1/2"]
    if draft.marker is not None and draft.marker != result:
        return [f"Result tag {result!r} disagrees with the termination marker {draft.marker!r}"]
    return []


def pgn_results(text: str) -> tuple[list[tuple[str, str, float]], list[PgnProblem], int]:
    """Decided games of a PGN text for rating.

    Returns:
      (White, Black, White's score) for each decided game, the problems, and
      the number of unfinished games (Result "*"), which are skipped.
    """
    games, problems = read_pgn(text)
    decided = [(g.white, g.black, WHITE_SCORE[g.result]) for g in games if g.result != "*"]
    return decided, problems, len(games) - len(decided)


def _tag_line(key: str, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", key):
        raise ValueError(f"bad tag name {key!r}")
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'[{key} "{value}"]'


def _check_result(result: str) -> None:
    if result not in RESULTS:
        raise ValueError(f"result {result!r} is not 1-0, 0-1, 1/2-1/2 or *")


def format_pgn(headers: dict[str, str], moves: list[str], result: str) -> str:
    """One PGN game, followed by a blank line so that games can be concatenated.

    Args:
      headers: tags; the Seven Tag Roster comes first (missing ones are "?",
        "????.??.??" for Date), the rest after in the given order. Result is
        always `result`.
      moves: SAN moves from the initial position, White first.
      result: 1-0, 0-1, 1/2-1/2 or *.
    """
    _check_result(result)
    tags = {t: headers.get(t, UNKNOWN.get(t, "?")) for t in SEVEN_TAG_ROSTER}
    tags["Result"] = result
    tags.update((k, v) for k, v in headers.items() if k not in tags)
    # A move number stays on the line of its move.
    units = [f"{ply // 2 + 1}. {move}" if ply % 2 == 0 else move
             for ply, move in enumerate(moves)] + [result]
    lines = [units[0]]
    for unit in units[1:]:
        if len(lines[-1]) + 1 + len(unit) <= LINE_WIDTH:
            lines[-1] += " " + unit
        else:
            lines.append(unit)
    body = "\n".join(lines)
    return "\n".join(_tag_line(k, v) for k, v in tags.items()) + "\n\n" + body + "\n\n"


def format_move_list(moves: list[str], result: str, headers: dict[str, str]) -> str:
    """A plain record: PGN-style tag lines, a blank line, the moves and the result."""
    head = "".join(_tag_line(k, v) + "\n" for k, v in headers.items())
    return head + ("\n" if head else "") + " ".join([*moves, result]) + "\n"


def gtp_to_sgf(vertex: str, size: int) -> str:
    """A GTP vertex ('D4', 'pass') as SGF coordinates ('dp', '' for a pass).

    Raises:
      ValueError: not a vertex on a size x size board.
    """
    return _gtp_to_sgf(vertex, size)


def format_sgf(size: int, moves: list[tuple[str, str]], result: str,
               properties: dict[str, str] | None = None) -> str:
    """A minimal FF[4] Go record (games.sgf.write_sgf without KM unless in `properties`).

    Args:
      size: board size, 1 to 25.
      moves: (colour 'B' or 'W', GTP vertex such as 'D4' or 'pass').
      result: the RE value, e.g. 'B+3.5', 'W+R', '0', '?'.
      properties: further root properties (PB, PW, KM, DT...), in this order.

    Raises:
      ValueError: a bad size, colour, vertex or property name.
    """
    root = {k: v for k, v in (properties or {}).items() if k != "RE"}
    root["RE"] = result  # always written, last, even when empty
    return write_sgf(size, None, moves, "", (), root)
