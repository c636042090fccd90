"""The analysis-engine fuzz targets: batches of hostile JSON query lines, four games.

A query is built from parts, each valid or hostile, so that whether the engine
must answer it is known without asking the engine: the id (strings, 64-bit
integers; or too long, too big, NaN, nested, a bool), `moves` (a random game's
moves as action ids or texts; or with one entry out of range, of the wrong
type, past the end of the game, or too many), `sims` (or 0, too many, a float,
a string, NaN) and the text around them (truncated, junk before or after,
wrapped in thousands of brackets, padded past MAX_LINE_BYTES).

Properties, per batch given to AnalysisEngine.answer (and per line of a real
`tabula analyze` process, tests/fuzz/test_fuzz_analysis.py):
  - one JSON object per line, in order, no NaN: {"id", "error"} or a full answer;
  - the id echoed when the line holds one the engine accepts, else null;
  - a query built of valid parts is answered, one with a hostile part is refused;
  - an answer's move is legal in the position its moves reach (replayed here from
    the line), `visits`/`prior` cover exactly the legal moves, the values are finite.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, expect

ANALYSIS_GAMES = ("connect4", "tictactoe", "go9", "chess")
PLIES = {"connect4": 24, "tictactoe": 7, "go9": 40, "chess": 40}
"""Most moves of the random game a query starts from."""
SIMS = 4
"""The engine's default simulations in the fuzz (a query asks for 1-8)."""
ANSWER_KEYS = {"id", "move", "action", "value", "raw_value", "to_play", "visits", "prior", "q"}
MAX_ID = 2**63 - 1

GOOD_IDS = ["0", "1", "-1", "42", str(MAX_ID), str(-MAX_ID), '"a"', '""', '"' + "x" * 256 + '"',
            '"\\u00e9"', '"\\u2028"', '"\\ud83d\\udca5"', '"\\ud800"', '"q 1"']
"""Ids as JSON text (a lone surrogate is a valid JSON string: echoed escaped)."""
BAD_IDS = ["0.0", str(MAX_ID + 1), str(-MAX_ID - 1), "9" * 30, "9" * 5000, '"' + "x" * 257 + '"',
           "true", "false", "null", "1.5", "NaN", "-Infinity", "1e400", "[1]", "{}",
           "[" * 3000 + "]" * 3000, '{"id": 1}']
GOOD_SIMS = [None, "1", "2", "4", "8"]
BAD_SIMS = ["0", "-1", "100001", "9" * 40, "9" * 5000, "1.5", '"8"', "true", "null", "[]",
            "NaN", "Infinity", "1e400", "[" * 3000 + "]" * 3000]
BAD_MOVES = ["-1", "9" * 30, "9" * 5000, '""', '"zz"', '"\\u0000"', '"\\u0663"', "1.5",
             "true", "null", "[]", "{}", "NaN", "[" * 3000 + "]" * 3000]
"""Entries of `moves` no game accepts (a text or an id out of range, a wrong type)."""
TEXT_MUTATIONS = ("truncate", "junk_before", "junk_after", "wrap", "array", "scalar",
                  "unknown_key", "missing_id", "missing_moves", "too_many_moves", "long")
JUNK = ["x", "}", "{", "]", ",", "\x00", "\u2028", "//", "'", "\ufeff", "NaN", '"a"', "{}"]


def _legal(state) -> list[int]:
    return [int(a) for a in state.legal_mask().nonzero()[0]]


def query_line(game, c: S.Chooser, max_line: int) -> tuple[str, bool]:
    """(a query line for `game`, whether the engine must answer it): see the module doc."""
    valid = True
    state = game.new_initial_state()
    moves = []
    for _ in range(c.number(0, PLIES[game.info.name])):
        if state.is_terminal():
            break
        legal = _legal(state)
        action = legal[c.number(0, len(legal) - 1)]
        moves.append(str(action) if c.pick((0, 1)) else json.dumps(state.action_to_text(action)))
        state.apply(action)
    if state.is_terminal():
        valid = False  # nothing to analyse
    kind = c.number(0, 9)
    if kind == 0 and moves:  # one entry no game accepts
        moves[c.number(0, len(moves) - 1)] = c.pick(BAD_MOVES)
        valid = False
    elif kind == 1 and not state.is_terminal():  # an illegal move after a legal prefix
        illegal = [a for a in range(game.info.num_actions) if a not in set(_legal(state))]
        if illegal:
            moves.append(str(illegal[c.number(0, len(illegal) - 1)]))
            valid = False
    qid = c.pick(GOOD_IDS if c.number(0, 3) else BAD_IDS)
    valid &= qid in GOOD_IDS
    sims = c.pick(GOOD_SIMS if c.number(0, 3) else BAD_SIMS)
    valid &= sims in GOOD_SIMS
    parts = [f'"id": {qid}', f'"moves": [{", ".join(moves)}]']
    if sims is not None:
        parts.append(f'"sims": {sims}')
    mutation = c.pick(TEXT_MUTATIONS) if c.number(0, 2) == 0 else None
    if mutation == "unknown_key":
        parts.insert(c.number(0, len(parts)), f'"{c.pick(["color", "ID", "", "sims "])}": 1')
    elif mutation == "missing_id":
        parts.pop(0)
    elif mutation == "missing_moves":
        parts.pop(1)
    elif mutation == "too_many_moves":
        parts[1] = '"moves": [' + ", ".join(["0"] * 10_001) + "]"
    if c.number(0, 1):
        parts = parts[::-1]
    line = "{" + ", ".join(parts) + "}"
    if mutation == "truncate":
        line = line[:c.number(0, len(line) - 1)]
    elif mutation == "junk_before":
        line = c.pick(JUNK) + line
    elif mutation == "junk_after":
        line += c.pick(JUNK)
    elif mutation == "wrap":
        depth = c.pick([1, 3, 100, 3000, 100_000])
        line = "[" * depth + line + "]" * depth
    elif mutation == "array":
        line = f"[{line}]"
    elif mutation == "scalar":
        line = c.pick(["null", "1", '"q"', "[]", "NaN", "true", "9" * 5000])
    elif mutation == "long":
        line = line[:-1] + " " * (max_line + 1) + "}"
    if mutation is not None:
        valid = False
    elif c.number(0, 9) == 0:  # whitespace around is fine
        line = c.pick([" ", "\t", "\r"]) + line + c.pick([" ", "\t", "\r", "\r\n"])
    return line, valid


def expected_id(line: str, max_line: int):
    """The id an answer must carry: the line's, if the engine accepts it, else None."""
    if len(line) > max_line:
        return None
    try:
        data = json.loads(line)
    except Exception:  # ValueError, RecursionError
        return None
    qid = data.get("id") if isinstance(data, dict) else None
    if isinstance(qid, str) and len(qid) <= 256:
        return qid
    if isinstance(qid, int) and not isinstance(qid, bool) and -MAX_ID <= qid <= MAX_ID:
        return qid
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} in an answer")


def check_answer(game, line: str, valid: bool | None, answer: str, max_line: int) -> None:
    """The properties of one answer line to one query line (see the module doc); `valid`
    None: the line is random, whether it is answered is not checked."""
    try:
        data = json.loads(answer, parse_constant=_no_constant)
    except ValueError as e:
        expect(False, f"an answer that is not strict JSON: {e}", line[:300], answer)
    expect(isinstance(data, dict), "not an object", line[:300], answer)
    expect(data.get("id", "absent") == expected_id(line, max_line), "wrong id",
           line[:300], answer)
    if set(data) == {"id", "error"}:
        expect(isinstance(data["error"], str) and data["error"], "an empty error",
               line[:300], answer)
        expect(valid is not True, "a valid query refused", line[:300], answer)
        expect("search failed" not in data["error"], "a search failed", line[:300], answer)
        return
    expect(set(data) == ANSWER_KEYS, "wrong keys", line[:300], answer)
    expect(valid is not False, "a hostile query answered", line[:300], answer)
    query = json.loads(line)
    state = game.new_initial_state()
    for move in query["moves"]:
        state.apply(move if isinstance(move, int) else state.text_to_action(move))
    legal = _legal(state)
    texts = {state.action_to_text(a) for a in legal}
    expect(data["action"] in legal and data["move"] == state.action_to_text(data["action"]),
           "an illegal move", line[:300], answer)
    expect(data["to_play"] == state.to_play(), "wrong side to move", line[:300], answer)
    expect(set(data["visits"]) == texts and set(data["prior"]) == texts,
           "visits or priors not over the legal moves", line[:300], answer)
    sims = query.get("sims", SIMS)
    expect(all(isinstance(v, int) and v >= 0 for v in data["visits"].values())
           and 1 <= sum(data["visits"].values()) <= sims, "bad visits", line[:300], answer)
    numbers = [data["value"], data["raw_value"], *data["prior"].values(), *data["q"].values()]
    expect(all(math.isfinite(x) and -1.0001 <= x <= 1.0001 for x in numbers),
           "a value out of range", line[:300], answer)


def make_player(game_name: str, workdir: Path):
    """A deterministic Player of a tiny random network for `game_name`, SIMS simulations."""
    from arena import load_player
    from tests.conftest import make_checkpoint

    path = make_checkpoint(workdir / f"{game_name}-analysis.safetensors", game_name)
    return load_player(game_name, path, SIMS)


class AnalysisTarget(Target):
    """AnalysisEngine.answer over batches of query lines for one game (a tiny random net).

    The example is (seed-free) choices drawn by Hypothesis: the batch size, then each
    line's parts, so that shrinking works on the query's structure."""

    name = ""
    game_name = ""

    @staticmethod
    def inputs_strategy():
        return st.data()

    def open(self, workdir: Path) -> None:
        from arena.protocols.analysis import MAX_LINE_BYTES, AnalysisEngine

        player = make_player(self.game_name, workdir)
        self.game = player.game
        self.max_line = MAX_LINE_BYTES
        self.engine = AnalysisEngine(self.game, player, SIMS)

    def check(self, data) -> None:
        c = S.DrawChooser(data.draw)
        queries = [query_line(self.game, c, self.max_line) for _ in range(c.number(1, 6))]
        lines = [line for line, _ in queries]
        self.inputs += len(lines)
        answers = self.engine.answer(lines)
        expect(isinstance(answers, list) and len(answers) == len(lines),
               "not one answer per line", [line[:100] for line in lines], answers)
        for (line, valid), answer in zip(queries, answers):
            expect(isinstance(answer, str) and "\n" not in answer, "not one line",
                   line[:300], answer)
            check_answer(self.game, line, valid, answer, self.max_line)


def analysis_target(game_name: str) -> type[AnalysisTarget]:
    return type(f"AnalysisTarget_{game_name}", (AnalysisTarget,),
                {"name": f"analysis-{game_name}", "game_name": game_name})


ANALYSIS_TARGETS = {f"analysis-{g}": analysis_target(g) for g in ANALYSIS_GAMES}


# A real `tabula analyze` process -------------------------------------------------------

BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc", b"\xf4\x90\x80\x80"]


def process_lines(game, count: int, seed: int, max_line: int) -> list[tuple[bytes, bool | None]]:
    """`count` input lines for one process: mostly query lines, some with bad UTF-8,
    some random text, some blank (no answer is due)."""
    c = S.RandomChooser(seed)
    out: list[tuple[bytes, bool | None]] = []
    for _ in range(count):
        kind = c.number(0, 19)
        if kind < 16:
            line, valid = query_line(game, c, max_line)
            out.append((line.replace("\n", " ").encode("utf-8", "surrogatepass"), valid))
        elif kind == 16:
            line, _ = query_line(game, c, max_line)
            raw = line.replace("\n", " ").encode("utf-8", "surrogatepass")
            i = c.number(0, len(raw))
            out.append((raw[:i] + c.pick(BAD_BYTES) + raw[i:], None))
        elif kind == 17:
            out.append((S.random_line(c).replace("\n", " ").encode("utf-8", "surrogatepass"),
                        None))
        else:
            out.append((c.pick([b"", b" ", b"\t", b"\r", b"\x1c"]), None))
    return out


def blank(raw: bytes) -> bool:
    """Whether the engine skips the line (no answer): only whitespace, as str.strip()."""
    return not raw.decode("utf-8", "replace").strip()


@dataclass
class ProcessReport:
    """What one `tabula analyze` process did with its lines."""

    game: str
    lines: int = 0
    queries: int = 0
    """Lines due an answer (not blank)."""
    answered: int = 0
    errors: int = 0
    """Answers that are {"id", "error"}."""
    lost: int = 0
    """Queries without an answer."""
    exit_code: int | None = None
    tracebacks: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_process(game_name: str, checkpoint: Path, count: int, seed: int, cwd: Path,
                timeout: float = 1800) -> ProcessReport:
    """Feeds `count` fuzzed lines to one `tabula analyze` process and checks every answer."""
    from arena.protocols.analysis import MAX_LINE_BYTES
    from games import get_game
    from tests.conftest import REPO

    game = get_game(game_name)
    lines = process_lines(game, count, seed, MAX_LINE_BYTES)
    report = ProcessReport(game_name, lines=len(lines))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tabula", "analyze", "--game", game_name, "--checkpoint",
         str(checkpoint), "--sims", str(SIMS)], cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
        input=b"".join(raw + b"\n" for raw, _ in lines), capture_output=True, timeout=timeout)
    report.seconds = time.perf_counter() - start
    report.exit_code = proc.returncode
    report.tracebacks = proc.stderr.count(b"Traceback")
    due = [(raw, valid) for raw, valid in lines if not blank(raw)]
    answers = proc.stdout.decode("utf-8", "replace").split("\n")
    if answers and answers[-1] == "":
        answers.pop()
    report.queries, report.answered = len(due), len(answers)
    report.lost = max(0, len(due) - len(answers))
    for (raw, valid), answer in zip(due, answers):
        try:
            check_answer(game, raw.decode("utf-8", "replace"), valid, answer, MAX_LINE_BYTES)
        except AssertionError as e:
            report.violations.append(str(e))
        try:
            report.errors += "error" in json.loads(answer)
        except ValueError:
            pass  # a violation already
    if len(answers) > len(due):
        report.violations.append(f"{len(answers) - len(due)} answers too many")
    return report

