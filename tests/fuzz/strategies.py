"""Inputs for fuzzing the protocol front-ends and the parsers.

An input is either random text or a real command line mutated: an argument
dropped, duplicated, swapped or replaced by a hostile token (huge, negative,
NaN/inf, non-ASCII digits, control characters, NUL), two words glued, an id
prepended, the line repeated into a very long one, its end changed to CR, LF,
CRLF or a mix. The real lines are the committed transcripts plus a few more.

The mutations are one function, `mutate`, over a `Chooser`: Hypothesis draws
(the strategies below, for tests/fuzz and scripts/fuzz_protocols.py) or a
seeded random.Random (`RandomChooser`, for the long subprocess sessions,
whose hundreds of lines would be too big for one Hypothesis example).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Protocol, Sequence

from hypothesis import strategies as st

DATA = Path(__file__).resolve().parents[1] / "arena" / "data"

HUGE = ["9" * 25, "-" + "9" * 25, "9" * 5000, "2147483648", "4294967296", "1e308", "1e309",
        "-1e309", "18446744073709551616", "10000000"]
NUMBERS = ["0", "-0", "1", "-1", "2", "3", "7", "8", "9", "13", "19", "25", "26", "100",
           "0.5", "-0.5", "6.5", "1e3", "1e-9", "0x10", "1_000", "+3", "08"]
NON_FINITE = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "infinity"]
UNICODE = ["\u00e9", "\u0663", "\uff11", "\u00b2", "\u00bd", "\u2167", "\u202e", "\ufeff",
           "\u00a0", "\u2028", "\u0085", "\U0001f4a5", "\u4e00", "D\u0664", "e\u0662e4",
           "\u0130", "\u017f", "\u212a", "\u00b3\u00b9"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\t", "\x0b", "\x0c", "\r", "\x1b[2J", "\x1f",
           "\x7f", "\x00\x00", "a\x00b", "#", "##", "\\", "'", '"', "=", "?", "%s", "{}",
           "$(x)", ";"]
HOSTILE = HUGE + NUMBERS + NON_FINITE + UNICODE + CONTROL
"""Tokens that replace or join the words of a real command line."""
ENDINGS = ["", "", "\n", "\r\n", "\r", "\n\r", " \r\n", "\r\r\n", "\t", " "]
IDS = ["1", "0", "42", "007", "-1", "1.5", "9" * 30, "\u0663"]
OPS = ("drop", "dup", "swap", "replace", "insert", "cut", "join", "id", "long", "spaces")
MAX_TOKENS = 10_000
"""Most words the 'long' mutation makes of a line (a line of some 50-100 KB)."""
RANDOM_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.=:/#+"
                "\x00\x01\x1b\x7f\t\r\u00e9\u00b2\u0663\u2028\ufeff\U0001f4a5")


class Chooser(Protocol):
    """Where the mutations get their choices from."""

    def pick(self, options: Sequence): ...

    def number(self, low: int, high: int) -> int: ...


class DrawChooser:
    """Choices drawn by Hypothesis (they shrink)."""

    def __init__(self, draw):
        self.draw = draw

    def pick(self, options: Sequence):
        # An index, not st.sampled_from: integer strategies are cached, lists are not.
        return options[self.draw(st.integers(0, len(options) - 1))]

    def number(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))


class RandomChooser:
    """Choices from a seeded random.Random."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, options: Sequence):
        return self.rng.choice(list(options))

    def number(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def mutate(tokens: list[str], c: Chooser, pool: Sequence[str], max_ops: int = 4,
           max_repeat: int = 400) -> list[str]:
    """`tokens` (a command line's words, or an argv) after 0..max_ops random mutations;
    'long' repeats them up to `max_repeat` times."""
    tokens = list(tokens)
    for _ in range(c.number(0, max_ops)):
        op = c.pick(OPS)
        if not tokens:
            tokens = [c.pick(pool)]
            continue
        i = c.number(0, len(tokens) - 1)
        if op == "drop":
            tokens.pop(i)
        elif op == "dup":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = c.number(0, len(tokens) - 1)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "replace":
            tokens[i] = c.pick(pool)
        elif op == "insert":
            tokens.insert(i, c.pick(pool))
        elif op == "cut":
            tokens[i] = tokens[i][:c.number(0, max(len(tokens[i]) - 1, 0))]
        elif op == "join":  # two words glued by a hostile character
            tokens[i] = tokens[i] + c.pick(CONTROL + UNICODE) + c.pick(pool + tokens)
        elif op == "id":
            tokens.insert(0, c.pick(IDS))
        elif op == "long":  # capped: 'long' twice or thrice would multiply into gigabytes
            times = c.number(min(50, max_repeat), max_repeat)
            tokens = tokens * max(1, min(times, MAX_TOKENS // len(tokens)))
        else:  # spaces
            tokens[i] = tokens[i] + " " * c.number(1, 3000)
    return tokens


def mutate_line(seeds: Sequence[str], c: Chooser, words: Sequence[str] = ()) -> str:
    """A line of `seeds`, mutated, with a random line ending."""
    tokens = mutate(c.pick(seeds).split(" "), c, HOSTILE + list(words))
    return " ".join(tokens) + c.pick(ENDINGS)


def random_line(c: RandomChooser, max_size: int = 60) -> str:
    return "".join(c.pick(RANDOM_CHARS) for _ in range(c.number(0, max_size)))


def session_lines(seeds: Sequence[str], words: Sequence[str], count: int,
                  seed: int) -> list[str]:
    """`count` lines for one long session: mostly mutated real lines, some random, some real."""
    c = RandomChooser(seed)
    out = []
    for _ in range(count):
        kind = c.number(0, 9)
        if kind < 7:
            out.append(mutate_line(seeds, c, words))
        elif kind < 9:
            out.append(random_line(c))
        else:
            out.append(c.pick(seeds))
    return out


# Corpora -------------------------------------------------------------------------

def corpus(path: Path) -> list[str]:
    """The command lines of a transcript file ('#' comments and blank lines dropped)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            lines.append(text)
    return lines


SGF_FILES = ("game.sgf", "size13.sgf", "illegal.sgf", "malformed.sgf")
"""Copied into the fuzz's working directory: loadsgf and printsgf name them."""


def gtp_corpus() -> list[str]:
    return corpus(DATA / "gtp" / "session.gtp") + [
        "genmove b", "genmove w", "reg_genmove b", "kgs-genmove_cleanup w", "lz-analyze b 10",
        "lz-analyze w interval 5 minmoves 3", "kata-analyze 10", "kata-analyze b interval 0",
        "lz-analyze b 1e308", "time_left w 10 3", "kgs-time_settings canadian 10 5 2",
        "printsgf out.sgf", "loadsgf game.sgf 3", "loadsgf size13.sgf", "loadsgf .",
        "loadsgf /dev/null", "boardsize 19", "boardsize 25", "komi -3.5",
        "7 known_command genmove", "set_free_handicap D4 E5 F6", "version"]


GTP_WORDS = ["b", "w", "B", "white", "D4", "pass", "resign", "A1", "J9", "T19", "I5", "Z9",
             "interval", "alive", "dead", "seki", "none", "absolute", "byoyomi", "canadian",
             "game.sgf", "out.sgf"]


def uci_corpus() -> list[str]:
    return corpus(DATA / "uci" / "session.uci") + corpus(DATA / "uci" / "errors.uci") + [
        "go infinite", "go ponder wtime 1000 btime 1000", "ponderhit", "stop",
        "go wtime 100 btime 100 winc 10 binc 10 movestogo 3", "go movetime 10",
        "go depth 2", "go mate 3", "go searchmoves e2e4 d2d4 nodes 2", "go perft 1",
        "position startpos moves e2e4 e7e5 e1e2 e8e7 e2e1 e7e8 e1e2 e8e7 e2e1 e7e8",
        "position fen 7k/8/8/8/8/8/8/K7 w - - 99 80", "position fen 4k3/4P3/4K3/8/8/8/8/8 b - -",
        "position fen 8/P7/8/8/8/8/8/k1K5 w - - 0 1 moves a7a8q",
        "setoption name Threads value 2", "setoption name MinibatchSize value 4",
        "setoption name Ponder value true", "setoption name WeightsFile value <empty>",
        "register later", "debug off"]


UCI_WORDS = ["startpos", "fen", "moves", "e2e4", "e7e5", "g1f3", "e1g1", "a7a8q", "name", "value",
             "Nodes", "UCI_ShowWDL", "MoveOverhead", "Threads", "true", "perft", "wtime",
             "btime", "winc", "movestogo", "movetime", "depth", "nodes", "infinite", "ponder",
             "searchmoves", "mate", "w", "b", "-", "KQkq", "8/8/8/8/8/8/8/8", "isready", "go",
             "position", "stop", "d", "bogus\u2028", "x\x85y", "\u2029"]


def text_corpus(moves: Sequence[str]) -> list[str]:
    return ["help", "?", "moves", "legal", "board", "show", "undo", "HELP", "Undo",
            "quit", "exit", "resign"] + list(moves)


# Hypothesis strategies -----------------------------------------------------------------

@st.composite
def mutated(draw, seeds: Sequence[str], words: Sequence[str] = ()) -> str:
    """A line of `seeds` with 0-4 mutations and a random line ending."""
    return mutate_line(seeds, DrawChooser(draw), words)


def random_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Any text (every Unicode category but surrogates), bytes decoded leniently, or words."""
    chars = st.text(st.characters(codec=None, exclude_categories=("Cs",)), max_size=max_size)
    raw = st.binary(max_size=max_size).map(lambda b: b.decode("utf-8", "replace"))
    words = st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.=#", max_size=8),
                     max_size=6).map(" ".join)
    return st.one_of(chars, raw, words)


def lines(seeds: Sequence[str], words: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """One input line: mostly mutated real lines, some random text, some real lines."""
    return st.one_of(mutated(seeds, words), mutated(seeds, words), mutated(seeds, words),
                     random_text(), st.sampled_from(seeds))


def sessions(seeds: Sequence[str], words: Sequence[str] = (), min_lines: int = 5,
             max_lines: int = 10) -> st.SearchStrategy[list[str]]:
    """Input lines played in order to one fresh engine."""
    return st.lists(lines(seeds, words), min_size=min_lines, max_size=max_lines)
