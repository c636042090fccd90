"""Minimal SGF (FF[4], GM[1]) reading and writing for Go records.

Coordinates: a GTP vertex 'D4' names column D (letters skip I) and rank 4
counted from the bottom; SGF names a point by two lowercase letters, column
then row, both counted from the top-left corner: column 'a' + column index,
row 'a' + (size - rank). So on 19x19 'A1' is 'as', 'D4' is 'dp' and 'T19' is
'sa'. A pass is written B[] (FF[4]); 'tt' is also read as a pass on boards up
to 19x19 (the FF[3] convention).

Only what a Go record needs is read: the root's SZ, KM, AB and other
properties, and the B/W moves of the main line (the first variation at every
branch). Setup stones other than the root's AB (AW, AE, AB later on) cannot be
represented and are rejected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # GTP skips I
MAX_SIZE = len(GTP_COLUMNS)
SGF_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_VERTEX = re.compile(r"([A-Za-z])(\d{1,2})")
_PROPERTY_NAME = re.compile(r"[A-Z]+")


class SgfError(ValueError):
    """Malformed SGF text or something a Go record cannot hold."""


@dataclass
class SgfGame:
    """A Go game read from SGF (main line only)."""

    size: int
    """Board size (SZ, 19 when absent)."""
    komi: float
    """KM, 0.0 when absent."""
    handicap: list[str] = field(default_factory=list)
    """GTP vertices of the root's AB stones."""
    moves: list[tuple[str, str]] = field(default_factory=list)
    """(colour 'B' or 'W', GTP vertex or 'pass') in order."""
    result: str = ""
    """RE, e.g. 'B+3.5', 'W+R', '0'; '' when absent."""
    properties: dict[str, str] = field(default_factory=dict)
    """Every root property's first value (AB left out), e.g. PB, PW, SZ, KM, RE."""


def _check_size(size: int) -> None:
    if not 1 <= int(size) <= MAX_SIZE:
        raise SgfError(f"board size {size} is not in 1..{MAX_SIZE}")


def gtp_to_sgf(vertex: str, size: int) -> str:
    """A GTP vertex ('D4', 'pass', any case) as SGF coordinates ('dp', '' for a pass).

    Raises:
      SgfError: not a vertex on a size x size board.
    """
    _check_size(size)
    text = vertex.strip()
    if text.lower() == "pass":
        return ""
    m = _VERTEX.fullmatch(text)
    column = GTP_COLUMNS.find(m.group(1).upper()) if m else -1
    row = int(m.group(2)) if m else 0
    if not 0 <= column < size or not 1 <= row <= size:
        raise SgfError(f"{vertex!r} is not a vertex on a {size}x{size} board")
    return SGF_LETTERS[column] + SGF_LETTERS[size - row]


def sgf_to_gtp(point: str, size: int) -> str:
    """SGF coordinates ('dp') as a GTP vertex ('D4'); '' and 'tt' (size <= 19) are 'pass'.

    Raises:
      SgfError: not a point on a size x size board.
    """
    _check_size(size)
    if point == "" or (point == "tt" and size <= 19):
        return "pass"
    if len(point) != 2 or not all(c in SGF_LETTERS[:size] for c in point):
        raise SgfError(f"bad SGF point {point!r} on a {size}x{size} board")
    column, row = SGF_LETTERS.index(point[0]), SGF_LETTERS.index(point[1])
    return f"{GTP_COLUMNS[column]}{size - row}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("]", "\\]")


def format_komi(komi: float) -> str:
    """7.5 -> '7.5', 6.0 -> '6', -0.5 -> '-0.5'."""
    return f"{float(komi):g}"


def write_sgf(size: int, komi: float | None, moves: Sequence[tuple[str, str]],
              result: str = "", handicap: Sequence[str] = (),
              properties: dict[str, str] | None = None) -> str:
    """One FF[4] Go record, a node per line.

    Root properties in order: FF, GM, SZ, KM (omitted when komi is None), HA
    and AB (with handicap), then `properties` in their order, then RE[result]
    last (omitted when result is ''; `result` overrides properties['RE']).
    A property already written (or AB with handicap stones) is not repeated.

    Args:
      size: board size, 1..25.
      komi: KM value, or None for no KM.
      moves: (colour 'B' or 'W', GTP vertex such as 'D4' or 'pass').
      result: the RE value, e.g. 'B+3.5', 'W+R', '0', '?'.
      handicap: GTP vertices of Black's setup stones (AB).
      properties: further root properties (PB, PW, DT, GC...).

    Raises:
      SgfError: a bad size, colour, vertex or property name.
    """
    _check_size(size)
    root = {"FF": "4", "GM": "1", "SZ": str(size)}
    if komi is not None:
        root["KM"] = format_komi(komi)
    setup = [gtp_to_sgf(v, size) for v in handicap]
    if "" in setup:
        raise SgfError("a handicap stone cannot be a pass")
    if setup:
        root["HA"] = str(len(setup))
    extra = {}
    for key, value in (properties or {}).items():
        if not _PROPERTY_NAME.fullmatch(key):
            raise SgfError(f"bad SGF property name {key!r}")
        if key not in root and not (key == "AB" and setup):
            extra[key] = str(value)
    if result:
        extra.pop("RE", None)
        extra["RE"] = result
    head = "".join(f"{k}[{_escape(v)}]" for k, v in root.items())
    if setup:
        head += "AB" + "".join(f"[{p}]" for p in setup)
    head += "".join(f"{k}[{_escape(v)}]" for k, v in extra.items())
    out = ["(;" + head]
    for colour, vertex in moves:
        if colour not in ("B", "W"):
            raise SgfError(f"colour {colour!r} is not 'B' or 'W'")
        out.append(f";{colour}[{gtp_to_sgf(vertex, size)}]")
    return "\n".join(out) + ")\n"


# Reading.

Node = list[tuple[str, list[str]]]


class _Parser:
    """Recursive-descent reader of the first game tree's main line."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def error(self, message: str) -> SgfError:
        line = self.text.count("\n", 0, self.i) + 1
        return SgfError(f"malformed SGF (line {line}): {message}")

    def skip_space(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.i] if self.i < len(self.text) else ""

    def game_tree(self) -> list[Node]:
        """Reads '(' sequence tree* ')'; returns the main line's nodes.

        The main line goes on into the first variation at every branch. A stack
        of open trees stands in for recursion, so no depth of nesting exhausts
        Python's stack.
        """
        nodes: list[Node] = []
        trees: list[list[bool]] = []  # per open tree: [on the main line, a variation opened]
        main = True
        while True:
            if self.peek() != "(":
                raise self.error("expected '('")
            self.i += 1
            count = 0
            while self.peek() == ";":
                self.i += 1
                node = self.node()
                count += 1
                if main:
                    nodes.append(node)
            if not count:
                raise self.error("a game tree needs at least one node (';')")
            trees.append([main, False])
            while self.peek() != "(":  # close trees until a variation opens
                if self.peek() != ")":
                    what = repr(self.peek()) if self.peek() else "end of text"
                    raise self.error(f"expected ')' but found {what} (unbalanced parentheses?)")
                self.i += 1
                trees.pop()
                if not trees:
                    return nodes
            main = trees[-1][0] and not trees[-1][1]
            trees[-1][1] = True

    def node(self) -> Node:
        props = []
        while True:
            c = self.peek()
            if not c or not c.isalpha():
                return props
            start = self.i
            while self.i < len(self.text) and self.text[self.i].isalpha():
                self.i += 1
            # FF[3] allowed lowercase letters in names (e.g. 'AddBlack' for AB).
            name = "".join(ch for ch in self.text[start:self.i] if ch.isupper())
            if not name:
                raise self.error(f"bad property name {self.text[start:self.i]!r}")
            values = []
            while self.peek() == "[":
                values.append(self.value())
            if not values:
                raise self.error(f"property {name} has no value")
            props.append((name, values))

    def value(self) -> str:
        start = self.i
        self.i += 1  # '['
        out = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "\\":
                nxt = self.text[self.i + 1:self.i + 2]
                if nxt not in ("\n", "\r"):  # backslash-newline is a soft line break
                    out.append(nxt)
                elif self.text[self.i + 1:self.i + 3] == "\r\n":
                    self.i += 1
                self.i += 2
            elif c == "]":
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1
        self.i = start
        raise self.error("unterminated property value ('[' without ']')")


def _points(values: list[str], size: int) -> list[str]:
    """AB values as GTP vertices; 'aa:cc' rectangles are expanded."""
    vertices = []
    for value in values:
        if ":" in value:
            a, _, b = value.partition(":")
            for p in (a, b):
                sgf_to_gtp(p, size)  # validates
                if p == "" or (p == "tt" and size <= 19):
                    raise SgfError(f"bad SGF point list {value!r}")
            cols = sorted((SGF_LETTERS.index(a[0]), SGF_LETTERS.index(b[0])))
            rows = sorted((SGF_LETTERS.index(a[1]), SGF_LETTERS.index(b[1])))
            for r in range(rows[0], rows[1] + 1):
                for c in range(cols[0], cols[1] + 1):
                    vertices.append(sgf_to_gtp(SGF_LETTERS[c] + SGF_LETTERS[r], size))
        else:
            vertex = sgf_to_gtp(value, size)
            if vertex == "pass":
                raise SgfError(f"bad setup point {value!r}")
            vertices.append(vertex)
    return vertices


def read_sgf(text: str) -> SgfGame:
    """The main line of the first game tree of an SGF text.

    Raises:
      SgfError: malformed SGF (no game tree, unbalanced brackets or
        parentheses, bad coordinates), a game other than Go (GM other than 1),
        or setup stones other than the root's AB.
    """
    start = text.find("(")
    if start < 0 or not text[start + 1:].lstrip().startswith(";"):
        raise SgfError("malformed SGF: no game tree ('(;' not found)")
    parser = _Parser(text)
    parser.i = start
    nodes = parser.game_tree()
    root = dict((name, values) for name, values in nodes[0])
    game = root.get("GM", ["1"])[0].strip() or "1"
    if game != "1":
        raise SgfError(f"not a Go record: GM[{game}] (Go is GM[1])")
    try:
        size = int(root.get("SZ", ["19"])[0].strip())
    except ValueError:
        raise SgfError(f"bad board size SZ[{root['SZ'][0]}] (rectangular boards "
                       "are not supported)") from None
    _check_size(size)
    komi_text = root.get("KM", ["0"])[0].strip() or "0"
    try:
        komi = float(komi_text)
    except ValueError:
        komi = math.nan
    if not math.isfinite(komi):
        raise SgfError(f"bad komi KM[{komi_text}]")
    sgf = SgfGame(size=size, komi=komi,
                  handicap=_points(root.get("AB", []), size),
                  result=root.get("RE", [""])[0].strip(),
                  properties={k: v[0] for k, v in root.items() if k != "AB"})
    for number, node in enumerate(nodes):
        for name, values in node:
            if name in ("B", "W"):
                sgf.moves.append((name, sgf_to_gtp(values[0].strip(), size)))
            elif name in ("AW", "AE") or (name == "AB" and number > 0):
                raise SgfError(f"setup property {name} in node {number} is not supported "
                               "(only AB in the root node)")
    return sgf
