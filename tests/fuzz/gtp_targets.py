"""GTP fuzz targets: sessions of lines to GtpEngine.handle, and loadsgf of mutated records."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, expect
from tests.guards import hang_guard

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
        from arena.protocols.gtp import GtpOptions
        from tabula.gtp_cmd import _player

        for name in S.SGF_FILES:
            shutil.copy(S.DATA / "gtp" / name, workdir / name)
        args = SimpleNamespace(checkpoint=None, game=None, time_per_move=None, sims=8,
                               resign_threshold=0.95, seed=0, uniform=True, batch=1)
        self.player, self.resize = _player(args)
        self.options = GtpOptions(max_sims=16)  # the clock cannot make a search slow

    def engine(self):
        from arena.protocols.gtp import GtpEngine

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
    """Feeds one line to a GtpEngine and checks the answer (properties: tests/fuzz/targets.py)."""
    from arena.protocols.gtp import parse_line

    given = line if context is None else (context, line)
    parsed = parse_line(line)
    before = gtp_snapshot(engine)
    with hang_guard(what=f"the answer to {line[:60]!r}"):  # minutes: a blow-up
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
