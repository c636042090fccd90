"""Fuzz targets: a handler or parser, the inputs to feed it, and what every answer must be.

Each target's `check(example)` feeds one Hypothesis example (lines played to
a fresh engine, an SGF file, a list of `--set` items, a TOML file, an argv)
and raises Violation, naming the input and the answer, when a property fails;
`inputs` counts the lines, files or argvs fed so far. `open(workdir)` does
the slow set-up once (players, files) and must run with `workdir` as the
current directory (loadsgf, printsgf and the CLI's paths are relative).

Properties:
  GTP   a blank or comment line gets no answer; every other line exactly one GTP 2
        response: '=id text' or '?id message', the line's id echoed, ASCII, no inner
        empty line, ended by an empty line; never 'internal error'; a '?' answer
        leaves the session (size, komi, handicap, moves, board, clock, player) as it was.
  UCI   every answer line is a UCI line (id, uciok, readyok, option, info, bestmove;
        perft lines after `go perft`, the board after `d`), also when split by
        str.splitlines(); bad input gets one `info string` line and leaves the
        position, options and player as they were; every started search ends,
        after `stop`, with one legal bestmove; never 'internal error'.
  text  no 'error: <Exception>' answer (an exception caught by handle), no control
        characters; a rejected move is one line and changes nothing.
  config  parse_overrides, merge and load_toml raise only ConfigError; an accepted
        configuration is written as TOML that reads back to the same configuration.
  CLI   main(argv) returns or exits with 0 or 2; with 2 the reason is the last line on
        stderr, 'tabula...: error: ...', after at most argparse's usage lines, and
        there is no traceback. The commands' long-running parts (training, the
        stdio loops, games) are replaced by stubs: the fuzz is about parsing.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shutil
import tomllib
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from hypothesis import strategies as st

from tests.fuzz import strategies as S


class Violation(AssertionError):
    """A property that failed, with the input and the answer."""


def expect(condition: bool, what: str, given, answer) -> None:
    if not condition:
        raise Violation(f"{what}\n  input:  {given!r}\n  answer: {answer!r}"[:3000])


@contextlib.contextmanager
def working_directory(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


class Target:
    """A fuzz target (see the module docstring); subclasses set name and inputs_strategy."""

    name = ""
    inputs_strategy = staticmethod(lambda: st.nothing())

    def __init__(self):
        self.inputs = 0

    def open(self, workdir: Path) -> None:
        """Slow set-up, once, with `workdir` the current directory."""

    def session(self):
        """A context to run checks in (the CLI's stubs)."""
        return contextlib.nullcontext()

    def check(self, example) -> None:
        raise NotImplementedError


# GTP -------------------------------------------------------------------------------

GTP_RESPONSE = re.compile(r"([=?])(\d*)(?: [^\n]*)?(?:\n[^\n]+)*\n\n")
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e\n]*")


def gtp_snapshot(engine) -> tuple:
    """Everything a rejected GTP command must leave alone."""
    s = engine.session
    c = s.clock
    periods = tuple(sorted((k, p.main, p.byo_time, p.byo_stones) for k, p in c.left.items()))
    return (s.game.size, s.game.komi, tuple(s.handicap), tuple(s.moves),
            tuple(s.state.history()), s.state.board().tobytes(), c.kind, c.main, c.byo_time,
            c.byo_stones, periods, id(s.player), engine.done)


class GtpTarget(Target):
    """GtpEngine.handle over sessions of lines, each on a fresh engine (uniform, 8 sims)."""

    name = "gtp"
    inputs_strategy = staticmethod(lambda: S.sessions(S.gtp_corpus(), S.GTP_WORDS))

    def open(self, workdir: Path) -> None:
        from arena.gtp import GtpOptions
        from tabula.gtp_cmd import _player

        for name in S.SGF_FILES:
            shutil.copy(S.DATA / "gtp" / name, workdir / name)
        args = SimpleNamespace(checkpoint=None, game=None, time_per_move=None, sims=8,
                               resign_threshold=0.95, seed=0)
        self.player, self.resize = _player(args)
        self.options = GtpOptions(max_sims=16)  # the clock cannot make a search slow

    def engine(self):
        from arena.gtp import GtpEngine

        return GtpEngine(self.player, self.options, self.resize)

    def check(self, lines: list[str]) -> None:
        engine = self.engine()
        for line in lines:
            self.inputs += 1
            gtp_line(engine, line)


class GtpSgfTarget(GtpTarget):
    """GTP `loadsgf` of a mutated SGF record, then commands on what was loaded."""

    name = "gtp-sgf"
    inputs_strategy = staticmethod(lambda: SGF_FILES)

    def check(self, example: tuple[str, str]) -> None:
        """The text written to f.sgf, then `loadsgf f.sgf[ N]` and commands on the result."""
        text, suffix = example
        self.inputs += 1
        Path("f.sgf").write_text(text, encoding="utf-8", errors="surrogatepass")
        engine = self.engine()
        for line in ("play b C3", f"loadsgf f.sgf{suffix}", "showboard", "printsgf",
                     "final_score", "lz-analyze 5", "genmove w", "undo"):
            gtp_line(engine, line, context=text)


def gtp_line(engine, line: str, context=None) -> str:
    """Feeds one line to a GtpEngine and checks the answer (see the module docstring)."""
    from arena.gtp import parse_line

    given = line if context is None else (context, line)
    parsed = parse_line(line)
    before = gtp_snapshot(engine)
    answer = engine.handle(line)
    expect(isinstance(answer, str), "not a string", given, answer)
    if parsed is None:
        expect(answer == "", "an answer to a blank or comment line", given, answer)
        return answer
    match = GTP_RESPONSE.fullmatch(answer)
    expect(match is not None, "not a GTP response", given, answer)
    expect(match.group(2) == parsed[0], "the id is not echoed", given, answer)
    expect(PRINTABLE_ASCII.fullmatch(answer) is not None, "not printable ASCII", given, answer)
    expect("internal error" not in answer, "internal error", given, answer)
    if match.group(1) == "?":
        expect(gtp_snapshot(engine) == before, "a rejected command changed the session",
               given, answer)
    if engine.done:
        expect(parsed[1] == "quit", "done without quit", given, answer)
        engine.done = False
    return answer


_SGF_PIECES = ["(", ")", ";", "[", "]", "\\", "SZ[", "KM[", "AB[", "AW[", "B[", "W[", "[aa]",
               "[zz]", "[tt]", "[]", "[aa:ii]", "\u00e9", "\x00", "\n", "(;", ";B[ee]",
               "(;B[cc])", "GM[2]"]
_SGF_SIZES = ["9", "9", "9", "13", "19", "25", "26", "1", "0", "-9", "9:9", "", "x", "1e309",
              "99999999999999999999", "9\x1b[2J"]
_SGF_KOMI = ["6.5", "7.5", "0", "-3.5", "", "x", "nan", "inf", "-inf", "1e309", "1e308",
             "9" * 400, "7,5", "7\x005", "\r6.5"]
_SGF_POINTS = ["aa", "ee", "ii", "cc", "tt", "", "zz", "a", "aaa", "AA", "ss", "yy", "aa:cc",
               "\u00e9\u00e9"]


@st.composite
def sgf_texts(draw) -> str:
    """An SGF record of random properties, moves and variations, some characters mutated."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        depth = draw(st.sampled_from([10, 500, 3000]))
        return "(;FF[4]SZ[9]" + "(;B[ee]" * depth + ")" * (depth + 1)
    if kind == 1:
        return draw(S.random_text(200))
    root = [f"SZ[{draw(st.sampled_from(_SGF_SIZES))}]", f"KM[{draw(st.sampled_from(_SGF_KOMI))}]"]
    if draw(st.booleans()):
        stones = draw(st.lists(st.sampled_from(_SGF_POINTS), min_size=1, max_size=4))
        root.append(f"HA[{len(stones)}]AB" + "".join(f"[{p}]" for p in stones))
    root = draw(st.permutations(root + ["FF[4]", "GM[1]"]))
    moves = draw(st.lists(st.tuples(st.sampled_from("BWBWX"), st.sampled_from(_SGF_POINTS)),
                          max_size=12))
    text = "(;" + "".join(root) + "".join(f";{c}[{p}]" for c, p in moves)
    text += "(;B[aa])(;W[bb]))" if draw(st.booleans()) else ")"
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "repeat"]))
        if op == "insert":
            text = text[:i] + draw(st.sampled_from(_SGF_PIECES)) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)):]
        else:
            text = text[:i] + text[i:i + draw(st.integers(1, 20))] * draw(st.integers(2, 5)) \
                + text[i:]
    return text


SGF_FILES = st.tuples(sgf_texts(), st.sampled_from(["", " 1", " 3", " 0", " 99", " -1", " x"]))


# UCI -------------------------------------------------------------------------------

UCI_COMMANDS = ("uci", "debug", "isready", "setoption", "register", "ucinewgame", "position",
                "go", "stop", "ponderhit", "quit", "d")
"""UciEngine's command table (a test checks they agree)."""
_MOVE = r"[a-h][1-8][a-h][1-8][qrbn]?"
_TEXT = r"[^\x00-\x1f\x7f]+"
_INFO = (r" (?:depth|seldepth|time|nodes|nps|multipv|hashfull|currmovenumber) \d+"
         rf"| score (?:cp|mate) -?\d+(?: lowerbound| upperbound)?| wdl \d+ \d+ \d+"
         rf"| currmove {_MOVE}")
UCI_LINE = re.compile(
    rf"info string {_TEXT}|info(?:{_INFO})+(?: pv {_MOVE}(?: {_MOVE})*)?"
    rf"|id (?:name|author) {_TEXT}|uciok|readyok"
    rf"|option name {_TEXT} type (?:spin|check|string|combo|button)(?: {_TEXT})?"
    rf"|bestmove (?:{_MOVE}|0000)(?: ponder {_MOVE})?")
PERFT_LINE = re.compile(rf"{_MOVE}: \d+|Nodes searched: \d+|")
"""`go perft N`, Stockfish's debugging extension."""
BOARD_LINE = re.compile(r" \+(?:---\+){8}| \|(?: [ PNBRQKpnbrqk] \|){8} [1-8]"
                        r"|   a   b   c   d   e   f   g   h|Fen: \S+(?: \S+){5}|")
"""`d`: the board and its FEN."""
_UCI_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SLOW_PERFT = 4
"""`go perft` depths from here up take seconds to minutes by design: the fuzz asks for 3."""


def uci_command(line: str) -> tuple[str | None, list[str]]:
    """(the command UciEngine runs for `line`, its arguments): the first known word."""
    words = _UCI_CONTROL.sub(" ", line).split()
    for i, word in enumerate(words):
        if word in UCI_COMMANDS:
            return word, words[i + 1:]
    return None, words


def tame_uci(line: str) -> str:
    """`line`, with a deep `go perft N` (slow, not wrong) asking for depth 3 instead."""
    from arena.uci import MAX_PERFT_DEPTH

    command, args = uci_command(line)
    if (command == "go" and args[:1] == ["perft"] and len(args) == 2 and args[1].isascii()
            and args[1].isdigit() and len(args[1]) <= 4
            and SLOW_PERFT <= int(args[1]) <= MAX_PERFT_DEPTH):
        return "go perft 3"
    return line


def uci_snapshot(engine) -> tuple:
    return (engine.state.fen(), tuple(engine.state.history()), engine.position_given,
            tuple(sorted(engine.values.items())), id(engine.player), id(engine.rate))


def uci_answer_ok(command: str | None, args: list[str], text: str) -> str | None:
    """None if every line of `text` is allowed after `command`, else the first bad line."""
    extra = (PERFT_LINE if command == "go" and args[:1] == ["perft"]
             else BOARD_LINE if command == "d" else None)
    for line in text.splitlines():
        if not (UCI_LINE.fullmatch(line) or (extra is not None and extra.fullmatch(line))):
            return line
        if "internal error" in line or "search failed" in line or "warm-up failed" in line:
            return line
    return None


_FENS = ["rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
         "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
         "rnbqkbnr/ppp1pppp/8/3pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3",
         "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1", "4k3/8/8/8/8/8/8/4K3 w - - 0 1",
         "8/P7/8/8/8/8/8/k1K5 w - - 0 1"]
_BROKEN = [["8/8/8/8/8/8/8/8", "9/8/8/8/8/8/8/4K2k", "k7/8/8/8/8/8/8", "kK6/8/8/8/8/8/8/8",
            "4k3/8/8/8/8/8/8/3QK2X", "p3k3/8/8/8/8/8/8/4K3", "QQQQQQQQ/QQQQQQQQ/8/8/8/8/8/k1K5"],
           ["x", "W", "-"], ["KQkqK", "X", "kq", "Qk"], ["z9", "e", "e3", "d6"],
           ["2147483648", "18446744073709551616", "9" * 25, "\u00b2", "\u0663", "-1", "150",
            "9" * 5000, "99999"],
           ["0", "2147483648", "18446744073709551616", "9" * 25, "\u00b2", "\u0663", "-1",
            "9" * 5000, "99999"]]
"""Values that break one FEN field (board, side, castling, en passant, the two counters)."""


@st.composite
def fen_lines(draw) -> str:
    """`position fen ...` of a real FEN with one field broken (or none), the counters
    sometimes dropped, and sometimes moves."""
    fields = draw(st.sampled_from(_FENS)).split()
    broken = draw(st.sampled_from([None, 0, 1, 2, 3, 4, 4, 5, 5]))
    if broken is not None:
        fields[broken] = draw(st.sampled_from(_BROKEN[broken]))
    fields = fields[:draw(st.sampled_from([6, 6, 6, 4, 5]))]
    moves = " moves " + " ".join(draw(st.lists(st.sampled_from(S.UCI_WORDS[2:9]), max_size=3)))
    return "position fen " + " ".join(fields) + (moves if draw(st.booleans()) else "")


_NOISE = st.lists(st.sampled_from(["hello", "joho", "e2e4", " ", "\u2028", "\u2029", "\x85",
                                    "\x1c", "\x1e", "\u00e9", "\r", "\x00", "value", "7"]),
                  min_size=1, max_size=5).map("".join)
"""Unknown commands with the characters str.splitlines() breaks lines at."""


_DEPTHS = st.sampled_from(["1", "2", "0", "-1", "7", "99999999999", "\u00b2", "3\u00b2",
                           "\u0663", "\uff12", "9" * 5000, "1.5", "", "2 2"])
"""`go perft` depths (the deep ones are refused; 4-6 are asked as 3, see tame_uci)."""


def uci_sessions():
    corpus = S.lines(S.uci_corpus(), S.UCI_WORDS)
    line = st.one_of(corpus, corpus, fen_lines(), fen_lines(), _NOISE,
                     _DEPTHS.map(lambda depth: f"go perft {depth}"))
    return st.lists(line, min_size=5, max_size=10)


class UciTarget(Target):
    """UciEngine.handle over sessions of lines, each on a fresh engine (uniform, Nodes 2)."""

    name = "uci"
    inputs_strategy = staticmethod(uci_sessions)

    def open(self, workdir: Path) -> None:
        from games import get_game

        self.game = get_game("chess")

    def check(self, lines: list[str]) -> None:
        from arena.uci import UciEngine

        emitted: list[str] = []
        engine = UciEngine(self.game, emitted.append, {"Nodes": 2})
        try:
            for line in lines:
                self.inputs += 1
                uci_line(engine, tame_uci(line), emitted)
        finally:
            if engine.job is not None:
                engine.job.stop()
                engine.job.join(30)


def uci_line(engine, line: str, emitted: list[str]) -> str:
    """Feeds one line to a UciEngine and checks its answer and its search's output."""
    command, args = uci_command(line)
    before, job = uci_snapshot(engine), engine.job
    emitted.clear()
    answer = engine.handle(line)
    expect(isinstance(answer, str), "not a string", line, answer)
    expect(answer == "" or answer.endswith("\n"), "an unfinished line", line, answer)
    bad = uci_answer_ok(command, args, answer)
    expect(bad is None, f"not a UCI line: {bad!r}", line, answer)
    if command is None:
        expect(answer.startswith("info string unknown command") if args else answer == "",
               "bad input not answered (or blank input answered)", line, answer)
    error = answer.startswith("info string ") and answer.count("\n") == 1
    if error or command is None:
        expect(uci_snapshot(engine) == before, "a rejected command changed the engine",
               line, answer)
    if engine.job is not job:  # a search started: stop it, it must answer
        new = engine.job
        new.stop()
        new.join(30)
        expect(not new.thread.is_alive(), "the search did not stop", line, emitted)
    bad = uci_answer_ok(None, [], "\n".join(emitted))
    expect(bad is None, f"the search wrote a bad line: {bad!r}", line, emitted)
    if engine.job is not job:
        bests = [e for e in emitted if e.startswith("bestmove")]
        expect(len(bests) == 1 and emitted[-1] == bests[0], "not one final bestmove",
               line, emitted)
        move = bests[0].split()[1]
        expect(move == "0000" or move in engine.job.state.legal_moves_uci(),
               "an illegal bestmove", line, emitted)
    if engine.done:
        expect(command == "quit", "done without quit", line, answer)
        engine.done = False
    return answer


# The text prompt -------------------------------------------------------------------

TEXT_GAMES = {"tictactoe": ["a1", "b2", "c3", "a3", "zz", "0", "8", "9", "A1"],
              "connect4": ["1", "4", "7", "8", "0", "-1", "3"],
              "chess": ["e2e4", "e7e5", "Nf3", "O-O", "e2e5", "a7a8q", "d4", "0"],
              "go9": ["D4", "E5", "pass", "J9", "Z9", "I5", "80", "81", "d4"]}
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
REJECTED = "(type 'help' for commands)"


def text_examples():
    return st.sampled_from(sorted(TEXT_GAMES)).flatmap(lambda name: st.tuples(
        st.just(name), st.booleans(),
        S.sessions(S.text_corpus(TEXT_GAMES[name]), TEXT_GAMES[name])))


class TextTarget(Target):
    """TextSession.handle over sessions of lines against an instant scripted player."""

    name = "text"
    inputs_strategy = staticmethod(text_examples)

    def open(self, workdir: Path) -> None:
        from games import get_game

        self.games = {name: get_game(name) for name in TEXT_GAMES}

    def new_session(self, name: str, engine_first: bool):
        from arena.text import TextSession
        from tests.arena.fakes import ScriptedPlayer

        session = TextSession(self.games[name], ScriptedPlayer(), engine_first)
        session.start()
        return session

    def check(self, example: tuple[str, bool, list[str]]) -> None:
        name, engine_first, lines = example
        session = self.new_session(name, engine_first)
        for line in lines:
            self.inputs += 1
            was_done = session.done
            before = tuple(session.state.history())
            answer = session.handle(line)
            given = (name, line)
            expect(isinstance(answer, str), "not a string", given, answer)
            expect(not answer.startswith("error:") and "Traceback" not in answer,
                   "an exception reached the prompt", given, answer)
            expect(not _TEXT_CONTROL.search(answer), "control characters", given, answer)
            if was_done:
                expect(answer == "the game is over", "a finished game went on", given, answer)
                session = self.new_session(name, engine_first)
            elif not line.strip():
                expect(answer == "", "an answer to a blank line", given, answer)
            elif answer.endswith(REJECTED):
                expect("\n" not in answer, "a rejection of several lines", given, answer)
                expect(tuple(session.state.history()) == before and not session.done,
                       "a rejected move changed the game", given, answer)


# Config ------------------------------------------------------------------------------

@functools.cache
def config_keys() -> dict[str, type]:
    """{'section.key' (and 'game', 'algo'): the type of its default}."""
    import dataclasses

    from selfplay import config as cfg

    defaults = cfg.TrainConfig()
    keys = {"game": str, "algo": str}
    for section in cfg.SECTIONS:
        for name, value in dataclasses.asdict(getattr(defaults, section)).items():
            keys[f"{section}.{name}"] = type(value)
    return keys


CONFIG_VALUES = ["1", "0", "2", "true", "false", "auto", "cpu", "cuda", "cuda:1", "gumbel",
                 "puct", "wdl", "scalar", "local", "ray", "sprt", "winrate", "off", "0.5",
                 "1e-3", "onnx", "tictactoe", "muzero", "alphazero"]
TYPED_VALUES = {
    float: ["nan", "inf", "-inf", "NaN", "1e309", "-1e309", "0.5", "-0.0", "1_0.5", "1e-3"],
    int: ["9" * 25, "9223372036854775808", "-9223372036854775809", "0", "-1", "1", "\u0663",
          "\u00b2", "1e3", "9" * 5000],
    str: ["a\x1bb", "x\x00y", "tab\there", "\udcff", "a\udc80b", "\u00e9", "\x7f", 'q"uote',
          "back\\slash", "cuda:\u00b2", "\u0663", "auto", "0"],
    bool: ["true", "false", "1", "0", "yes", "TRUE", ""],
}
"""Values for a key of each type; lone surrogates stand for undecodable bytes in argv."""
FREE_TEXT = ["game", "run.address"]
"""The settings that take any text (config.toml must still hold it)."""


@st.composite
def override_items(draw) -> str:
    """'section.key=value': a real key with a value for its type (hostile or not), or a
    mutated key, or another separator, or any value."""
    c = S.DrawChooser(draw)
    keys = config_keys()
    if draw(st.booleans()):
        key = c.pick(FREE_TEXT if draw(st.booleans()) else list(keys))
        return key + "=" + c.pick(TYPED_VALUES[keys[key]])
    key = c.pick(list(keys)) if draw(st.booleans()) else S.mutate_line(list(keys), c).rstrip(
        "\r\n")
    sep = c.pick(["=", "=", " = ", "", "==", ":", "=\n"])
    kind = c.number(0, 2)
    value = (c.pick(S.HOSTILE) if kind == 0 else c.pick(CONFIG_VALUES) if kind == 1
             else draw(S.random_text(20)))
    return key + sep + value


def override_lists():
    return st.lists(st.one_of(override_items(), override_items(), override_items(),
                              S.random_text(30)), min_size=1, max_size=4)


def check_config_round_trip(config, given) -> None:
    """An accepted configuration is written as TOML that reads back to itself."""
    from selfplay import config as cfg

    text = cfg.to_toml(config)
    try:
        data = tomllib.loads(text.encode("utf-8").decode("utf-8"))  # as written and read
    except (UnicodeError, tomllib.TOMLDecodeError) as e:
        raise Violation(f"config.toml cannot be written or read ({e})\n  input: {given!r}") \
            from None
    again = cfg.from_dict(data)
    expect(again == config, "config.toml reads back to another configuration", given, text)
    expect(cfg.to_toml(again) == text, "config.toml is not stable", given, text)


class ConfigTarget(Target):
    """parse_overrides + merge over the tictactoe preset, then the TOML round trip."""

    name = "config"
    inputs_strategy = staticmethod(override_lists)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg

        self.base = cfg.preset("tictactoe")

    def check(self, items: list[str]) -> None:
        from selfplay import config as cfg

        self.inputs += 1
        try:
            config = cfg.merge(self.base, cfg.parse_overrides(items))
        except cfg.ConfigError as e:
            expect("\n" not in str(e), "a ConfigError of several lines", items, str(e))
            return
        except Exception as e:
            raise Violation(f"{type(e).__name__}: {e}\n  input: {items!r}") from e
        check_config_round_trip(config, items)


def _preset_texts() -> list[str]:
    from selfplay import config as cfg

    return [p.read_text(encoding="utf-8") for p in sorted(cfg.PRESETS.glob("*.toml"))]


@st.composite
def toml_files(draw) -> bytes:
    """A preset file with lines dropped, repeated, swapped or mutated; or random bytes."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    lines = draw(st.sampled_from(_preset_texts())).splitlines()
    c = S.DrawChooser(draw)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "swap", "mutate", "value", "section"]))
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "mutate":
            lines[i] = " ".join(S.mutate(lines[i].split(" "), c, S.HOSTILE))
        elif op == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = key + "= " + draw(st.sampled_from(
                ["nan", "inf", "-inf", "1e309", "-1", "0", "99999999999999999999", '"x"',
                 "true", "[1, 2]", "{a = 1}", "1979-05-27", '"\\u0000"', '"a\\nb"', "3.5",
                 '"auto"', "'''x'''"]))
        else:
            lines.insert(i, draw(st.sampled_from(["[search]", "[nope]", "[run]", "[[run]]",
                                                  "game = 3", "algo = \"x\"", "[search.x]"])))
        if not lines:
            lines = [""]
    ending = draw(st.sampled_from(["\n", "\r\n", ""]))
    return ending.join(lines).encode("utf-8", "surrogatepass")


class TomlTarget(Target):
    """load_toml of a mutated preset file, merged over the tictactoe preset."""

    name = "toml"
    inputs_strategy = staticmethod(toml_files)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg

        self.base = cfg.preset("tictactoe")

    def check(self, data: bytes) -> None:
        from selfplay import config as cfg

        self.inputs += 1
        path = Path("fuzz.toml")
        path.write_bytes(data)
        try:
            config = cfg.merge(self.base, cfg.load_toml(path))
        except cfg.ConfigError as e:
            expect("\n" not in str(e), "a ConfigError of several lines", data, str(e))
            return
        except Exception as e:
            raise Violation(f"{type(e).__name__}: {e}\n  input: {data!r}") from e
        check_config_round_trip(config, data)


# The CLI -----------------------------------------------------------------------------

CLI_LINES = [
    "train --game tictactoe --set search.num_simulations=8 --iterations 1",
    "train --game connect4 --algo muzero --run r1 --minutes 0.5 --seed 3",
    "train --set learner.learning_rate=0.01 --set run.actors=0 --actors 2 --backend local",
    "train --config cfg.toml --device cpu --address auto --backend ray --inference-server",
    "train --config bad.toml --no-inference-server --no-progress --actors auto",
    "train --run emptyrun --game go9 --set game=go9 --set arena.every=2",
    "play --game tictactoe --checkpoint ttt.safetensors --sims 4 --engine-first --seed 1",
    "play --checkpoint ttt.safetensors --agent random --episodes 1 --max-steps 5 --no-gif",
    "play --checkpoint missing.safetensors",
    "analyze --checkpoint ttt.safetensors --sims 8 --seed 2",
    "eval --checkpoint ttt.safetensors --vs minimax --sims 2",
    "eval --game connect4 --vs solved --data solved.jsonl",
    "eval --checkpoint ttt.safetensors --vs mcts --games 2 --mcts-sims 10 --no-progress",
    "eval --game tictactoe --vs minimax --run emptyrun --every 2",
    "arena emptyrun --games 2 --sims 2 --round-robin --opponent random --processes 1 "
    "--opening-plies 2 --move-time 0.1 --engine-option Hash=16 --every 1 --db x.sqlite",
    "elo --pgn games.pgn --anchor A --scale 400 --first-move-advantage --csv out.csv --los",
    "elo emptyrun --game chess",
    "gtp --sims 8 --resign-threshold 0.9 --seed 2",
    "gtp --game go13 --time-per-move 0.01",
    "gtp --checkpoint ttt.safetensors",
    "uci --nodes 8 --threads 1 --minibatch-size 2 --show-wdl --move-overhead 10",
    "uci --checkpoint ttt.safetensors",
    "games",
    "bench nonsense",
]
CLI_WORDS = ["--game", "--sims", "--set", "--checkpoint", "--seed", "--run", "--vs", "--help",
             "-h", "tictactoe", "connect4", "go9", "chess", "atari/Breakout", "nope",
             "search.num_simulations=3", "run.actors=\u00b2", "run.device=cuda:\u0663",
             "game=\x02", "run.address=a\nb", "run.address=\udcff", "\udcff", "x\ny",
             "--game=\n", "\r\n", "a\x00\nb", "search.c_scale=nan", "learner.augment=maybe",
             "cfg.toml", "bad.toml", "emptyrun", "ttt.safetensors", "--", "-", "=", "train",
             "play", "uci", "gtp"]
PGN = """[White "A"]\n[Black "B"]\n[Result "1-0"]\n\n1. e4 e5 1-0\n\n""" \
      """[White "B"]\n[Black "C"]\n[Result "1/2-1/2"]\n\n1. d4 d5 1/2-1/2\n\n""" \
      """[White "C"]\n[Black "A"]\n[Result "0-1"]\n\n1. c4 c5 0-1\n"""


MAX_ARGV = 400


@st.composite
def argvs(draw) -> list[str]:
    """A real command line's argv, mutated (an empty argument, NUL, huge numbers ...)."""
    c = S.DrawChooser(draw)
    # argparse is quadratic in the number of options (a min() over all of them per
    # option): an argv of thousands takes seconds and teaches nothing new.
    argv = S.mutate(c.pick(CLI_LINES).split(" "), c, S.HOSTILE + CLI_WORDS, max_repeat=20)
    argv = argv[:MAX_ARGV]
    if draw(st.booleans()):  # one argument replaced by a value with a line break in it
        i = c.number(0, len(argv) - 1) if argv else 0
        argv[i:i + 1] = [c.pick(_BREAKS)]
    if draw(st.booleans()):  # a real argv cannot hold NUL; main() may still be given one
        argv = [a.replace("\x00", "") for a in argv]
    return argv


_BREAKS = ["a\nb", "1\r2", "x\n", "--game=go\n9", "search.c_scale=1\n", "\u2028", "\x1b[2J"]


_USAGE = re.compile(r"usage: |\s")
_REASON = re.compile(r"tabula(?: [\w-]+)*: error: \S.*")


def _stub_summary(*args, **kwargs):
    return SimpleNamespace(line=lambda: "trained (stub)", checkpoint=None, interrupted=False)


def _cached_loader():
    """Player.from_checkpoint that loads each (file, game, backend, threads) once: the fuzz
    parses arguments; building an inference session per argv would be most of its time."""
    import dataclasses

    from engine.player import Player

    real, cache = Player.from_checkpoint.__func__, {}

    def from_checkpoint(cls, path, game=None, backend="auto", threads=None, **overrides):
        key = (str(path), None if game is None else game.info.name, backend, threads)
        if key not in cache:
            try:
                cache[key] = real(cls, path, game=game, backend=backend, threads=threads)
            except Exception as e:  # CheckpointError, OSError ...: raised again each time
                cache[key] = e
        base = cache[key]
        if isinstance(base, Exception):
            raise base
        search = dataclasses.replace(base.search, **overrides)  # validates, like the real one
        player = cls(base.game, base.evaluator, search, name=base.name)
        player.meta = getattr(base, "meta", None)
        return player

    return mock.patch.object(Player, "from_checkpoint", classmethod(from_checkpoint))


def _stub_arena(args) -> int:
    from tabula import arena_cmd

    arena_cmd._run_specs(Path(args.run), args)  # the checks before any game
    arena_cmd._rating_kwargs(args)
    return 0


class CliTarget(Target):
    """tabula.cli.main(argv) with training, the stdio loops and the games stubbed out."""

    name = "cli"
    inputs_strategy = staticmethod(argvs)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg
        from tabula.cli import build_parser
        from tests.conftest import make_checkpoint

        (workdir / "cfg.toml").write_text((cfg.PRESETS / "tictactoe.toml").read_text())
        (workdir / "bad.toml").write_text("[search\nnum_simulations = 3\n")
        (workdir / "games.pgn").write_text(PGN)
        (workdir / "solved.jsonl").write_text(
            '{"moves": "4444", "score": 0, "best_moves": [3], '
            '"child_scores": [0, 0, 0, 0, 0, 0, 0], "depth": 4}\n')
        (workdir / "emptyrun").mkdir(exist_ok=True)
        make_checkpoint(workdir / "ttt.safetensors", "tictactoe")
        self.loader = _cached_loader()
        self.parser = functools.cache(build_parser)  # ~10 ms to build; parsing is the subject

    @contextlib.contextmanager
    def session(self):
        """The long-running parts of the commands replaced (what they are given is parsed)."""
        import arena
        import arena.gtp
        import arena.uci
        import arena.watch
        import selfplay.loop
        from tabula import arena_cmd, cli

        patches = [self.loader, mock.patch.object(cli, "build_parser", self.parser),
                   mock.patch.object(selfplay.loop, "train", _stub_summary),
                   mock.patch.object(arena, "run_text", lambda *a, **k: 0, create=True),
                   mock.patch.object(arena, "run_analysis", lambda *a, **k: 0, create=True),
                   mock.patch.object(arena.watch, "run_watch", lambda *a, **k: 0),
                   mock.patch.object(arena.gtp, "run_gtp", lambda *a, **k: 0),
                   mock.patch.object(arena.uci, "run_uci", lambda *a, **k: 0),
                   mock.patch.object(arena.uci.UciEngine, "warm_up", lambda self: None),
                   mock.patch.object(cli, "_eval_minimax", lambda *a: 0),
                   mock.patch.object(cli, "_eval_solved", lambda *a: 0),
                   mock.patch.object(cli, "_eval_mcts", lambda *a: 0),
                   mock.patch.object(cli, "_bench", lambda *a: 0),
                   mock.patch.object(arena_cmd, "cmd_arena", _stub_arena),
                   mock.patch("sys.stdin", io.StringIO(""))]
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            yield

    def check(self, argv: list[str]) -> None:
        self.inputs += 1
        code, out, err = run_cli(argv)
        check_cli_exit(argv, code, err)


def run_cli(argv: list[str]) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of tabula.cli.main(argv), in this process."""
    from tabula import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except Exception as e:
            raise Violation(f"{type(e).__name__} escaped main: {e}\n  argv: {argv!r}\n"
                            f"  stderr: {err.getvalue()[-500:]!r}") from e
    return code, out.getvalue(), err.getvalue()


def check_cli_exit(argv: list[str], code, err: str) -> None:
    expect(code in (0, 2), f"exit status {code!r}", argv, err)
    expect("Traceback" not in err, "a traceback", argv, err)
    if code == 2:
        lines = err.rstrip("\n").split("\n")  # as a terminal or a log shows them
        expect(bool(lines) and _REASON.fullmatch(lines[-1]) is not None,
               "the last line is not 'tabula: error: <reason>'", argv, err)
        expect(all(_USAGE.match(line) for line in lines[:-1]),
               "more than the reason and argparse's usage", argv, err)


TARGETS = {"gtp": GtpTarget, "gtp-sgf": GtpSgfTarget, "uci": UciTarget, "text": TextTarget,
           "config": ConfigTarget, "toml": TomlTarget, "cli": CliTarget}
"""Every target by its name in scripts/fuzz_protocols.py."""
