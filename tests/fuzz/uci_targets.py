"""The UCI fuzz target: sessions of lines to UciEngine.handle, its searches stopped."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, expect

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


TAME_NODES = 64
"""`go nodes N` and `go depth D` ask for at most this many simulations in the fuzz: a
search of thousands (up to the tree's memory cap) is slow, not wrong, and a `go`
waits for a search with limits to finish."""


def tame_uci(line: str) -> str:
    """`line`, with a deep `go perft N` (slow, not wrong) asking for depth 3 instead, and
    a big `go nodes`/`go depth` for TAME_NODES simulations."""
    from arena.protocols.uci import MAX_PERFT_DEPTH

    command, args = uci_command(line)
    if (command == "go" and args[:1] == ["perft"] and len(args) == 2 and args[1].isascii()
            and args[1].isdigit() and len(args[1]) <= 4
            and SLOW_PERFT <= int(args[1]) <= MAX_PERFT_DEPTH):
        return "go perft 3"
    if command == "go" and ("nodes" in args or "depth" in args):
        words = line.split(" ")
        for i in range(len(words) - 1):
            value = words[i + 1]
            number = re.fullmatch(r"[0-9]+", value) and (10**6 if len(value) > 6
                                                         else int(value))
            if words[i] == "nodes" and number and number > TAME_NODES:
                words[i + 1] = str(TAME_NODES)
            elif words[i] == "depth" and number and number > 6:
                words[i + 1] = "6"
        return " ".join(words)
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
    """Sessions of (line, stop): after a line with stop, a search it started is stopped
    at once; otherwise it may still run when the next line (a `go` too) arrives."""
    corpus = S.lines(S.uci_corpus(), S.UCI_WORDS)
    line = st.one_of(corpus, corpus, fen_lines(), fen_lines(), _NOISE,
                     _DEPTHS.map(lambda depth: f"go perft {depth}"))
    return st.lists(st.tuples(line, st.booleans()), min_size=5, max_size=10)


def searching_go(command: str | None, args: list[str]) -> bool:
    """Whether the line is a `go` that must be answered by one bestmove: every go but a
    perft of depth 1..MAX_PERFT_DEPTH (which prints perft lines instead)."""
    from arena.protocols.uci import MAX_PERFT_DEPTH

    if command != "go":
        return False
    perft = (args[:1] == ["perft"] and len(args) == 2 and args[1].isascii()
             and args[1].isdigit() and len(args[1]) <= 4
             and 1 <= int(args[1]) <= MAX_PERFT_DEPTH)
    return not perft


class Bestmoves:
    """The engine's emit: keeps the lines of the current input line, counts bestmoves."""

    def __init__(self):
        self.lines: list[str] = []
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            self.count += line.startswith("bestmove")


class UciTarget(Target):
    """UciEngine.handle over sessions of lines, each on a fresh engine (uniform, Nodes 2).

    Besides each answer's form: every `go` but a perft gets exactly one bestmove, from
    its own search or at once (a finished game), also when it arrives while another
    search runs; counted over the whole session, after it is stopped."""

    name = "uci"
    inputs_strategy = staticmethod(uci_sessions)

    def open(self, workdir: Path) -> None:
        from games import get_game

        self.game = get_game("chess")

    def check(self, session: list[tuple[str, bool]]) -> None:
        from arena.protocols.uci import UciEngine

        out = Bestmoves()
        engine = UciEngine(self.game, out, {"Nodes": 2})
        gos = 0
        try:
            for line, stop in session:
                self.inputs += 1
                line = tame_uci(line)
                gos += searching_go(*uci_command(line))
                answer = uci_line(engine, line, out, stop)
                out.count += sum(a.startswith("bestmove") for a in answer.splitlines())
                expect(out.count <= gos, "more bestmoves than searching gos", line,
                       (answer, out.lines))
        finally:
            if engine.job is not None:
                engine.job.stop()
                engine.job.join(30)
        expect(out.count == gos, f"{gos} searching gos, {out.count} bestmoves",
               [line for line, _ in session], out.lines)


def uci_line(engine, line: str, out: Bestmoves, stop: bool = True) -> str:
    """Feeds one line to a UciEngine and checks its answer and, with `stop`, the output
    of a search it started (stopped at once)."""
    command, args = uci_command(line)
    before, job = uci_snapshot(engine), engine.job
    with out.lock:
        out.lines.clear()
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
    if engine.job is not job and stop:  # a search started: stop it, it must answer
        new = engine.job
        new.stop()
        new.join(30)
        expect(not new.thread.is_alive(), "the search did not stop", line, out.lines)
        emitted = list(out.lines)
        bests = [e for e in emitted if e.startswith("bestmove")]
        expect(len(bests) >= 1 and emitted[-1] == bests[-1], "no final bestmove",
               line, emitted)
        move = bests[-1].split()[1]
        expect(move == "0000" or move in new.state.legal_moves_uci(),
               "an illegal bestmove", line, emitted)
    with out.lock:
        emitted = list(out.lines)
    bad = uci_answer_ok(None, [], "\n".join(emitted))
    expect(bad is None, f"a search wrote a bad line: {bad!r}", line, emitted)
    if engine.done:
        expect(command == "quit", "done without quit", line, answer)
        engine.done = False
    return answer


# A real `tabula uci` process driven like an outside fuzzer ------------------------------

@dataclass
class OverlapReport:
    """What one `tabula uci` process answered to lines sent without waiting."""

    lines: int = 0
    gos: int = 0
    """Lines that are a `go` owed one bestmove (searching_go)."""
    bestmoves: int = 0
    bad_lines: list[str] = field(default_factory=list)
    """Output lines that are no UCI, perft or board line, or an internal error."""


def overlapping_session(count: int, seed: int, cwd: Path) -> OverlapReport:
    """Sends `count` mutated lines (quit removed) to one `tabula uci --nodes 4` without
    waiting for answers, so searches overlap, then stop and isready; counts the searching
    gos and the bestmoves that came back."""
    from tests.fuzz.processes import EngineProcess

    lines = [tame_uci(line.replace("\n", " ")) for line in
             S.session_lines(S.uci_corpus(), S.UCI_WORDS, count, seed=seed)]
    lines = [line for line in lines if uci_command(line)[0] != "quit"]
    lines += ["position startpos", "go infinite", "go nodes 4", "go ponder", "go wtime x",
              "go perft 99", "go perft 1"]
    engine = EngineProcess("uci", "--nodes", "4", cwd=cwd)
    report = OverlapReport(lines=len(lines))
    ready = 1  # the isready sent at the end
    for line in lines:
        engine.send(line)
        command, args = uci_command(line)
        report.gos += searching_go(command, args)
        ready += command == "isready"
    engine.send("stop")
    engine.send("isready")
    out: list[str] = []
    # Every readyok and every owed bestmove (a search may answer after the last readyok).
    while out.count("readyok") < ready or sum(o.startswith("bestmove") for o in out) < \
            report.gos:
        out.append(engine.line())
    engine.send("isready")
    out += engine.until(lambda out: out == "readyok")[:-1]  # and nothing more comes
    report.bestmoves = sum(o.startswith("bestmove") for o in out)
    report.bad_lines = [o for o in out if "internal error" in o or not any(
        form.fullmatch(o) for form in (UCI_LINE, PERFT_LINE, BOARD_LINE))]
    engine.close()
    return report
