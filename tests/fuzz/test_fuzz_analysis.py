"""Fuzzing the analysis engine: AnalysisEngine.answer in-process for four games, and a
real `tabula analyze` process per game fed hundreds of hostile lines; regression tests
for what the fuzz and an outside fuzzer found."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings

from tests.conftest import make_checkpoint
from tests.fuzz.analysis_targets import ANALYSIS_GAMES, AnalysisTarget, run_process

BATCHES = settings(max_examples=60, deadline=None, derandomize=True, database=None)
PROCESS_LINES = 300


@pytest.mark.parametrize("game", ANALYSIS_GAMES)
def test_answer_every_batch(open_target, game):
    target = open_target(f"analysis-{game}")

    @BATCHES
    @given(data=AnalysisTarget.inputs_strategy())
    def run(data):
        target.check(data)

    run()


@pytest.mark.parametrize("game", ANALYSIS_GAMES)
def test_one_process_answers_every_hostile_line(game, tmp_path):
    """No exit, no traceback, no lost answer, every answer right (tests/fuzz/analysis_targets)."""
    checkpoint = make_checkpoint(tmp_path / f"{game}.safetensors", game)
    report = run_process(game, checkpoint, PROCESS_LINES, seed=7, cwd=tmp_path)
    assert report.exit_code == 0 and report.tracebacks == 0, report
    assert report.lost == 0 and not report.violations, report.violations[:3]
    assert 0 < report.errors < report.queries  # both kinds of answer were exercised


# What the fuzz found ---------------------------------------------------------------

@pytest.fixture(scope="module")
def engine():
    from arena.protocols.analysis import AnalysisEngine
    from games import get_game
    from tests.arena.fakes import ScriptedPlayer

    return AnalysisEngine(get_game("connect4"), ScriptedPlayer(), 8)


def _one(engine, line):
    (answer,) = engine.answer([line])
    return json.loads(answer)


@pytest.mark.parametrize("depth", [1_000, 5_000, 100_000])
def test_deep_nesting_is_an_error_not_a_crash(engine, depth):
    """An outside fuzzer: RecursionError from json.loads ended the process (status 1)."""
    answer = _one(engine, "[" * depth + "]" * depth)
    assert answer["id"] is None and "error" in answer
    answer = _one(engine, '{"id": 3, "moves": ' + "[" * depth + "]" * depth + "}")
    assert "error" in answer  # the id too is unreadable when the line cannot be parsed
    assert _one(engine, '{"id": 4, "moves": []}')["id"] == 4  # and the engine goes on


@pytest.mark.parametrize("qid", ["NaN", "[NaN]", "Infinity", "1e400", str(2**63),
                                 '"' + "x" * 257 + '"'])
def test_an_unacceptable_id_is_not_echoed(engine, qid):
    """{"id": NaN} was echoed into json.dumps(allow_nan=False), which raised."""
    answer = _one(engine, '{"id": ' + qid + ', "moves": []}')
    assert answer["id"] is None and "'id' must be" in answer["error"]


def test_bounds_on_moves_sims_and_line_length(engine):
    from arena.protocols.analysis import MAX_LINE_BYTES, MAX_MOVES, max_sims

    answer = _one(engine, '{"id": 1, "moves": [' + ", ".join(["3"] * (MAX_MOVES + 1)) + "]}")
    assert answer == {"id": 1,
                      "error": f"'moves' has {MAX_MOVES + 1} entries; at most {MAX_MOVES}"}
    answer = _one(engine, '{"id": 1, "moves": [], "sims": ' + "9" * 5000 + "}")
    assert answer["id"] is None and answer["error"].startswith("not JSON")
    answer = _one(engine, '{"id": 1, "moves": [], "sims": 100001}')
    assert "'sims' must be an integer in 1..100000" in answer["error"]
    answer = _one(engine, '{"id": 1, "moves": []' + " " * MAX_LINE_BYTES + "}")
    assert answer["id"] is None and "at most 1048576" in answer["error"]
    # One tree of chess's 4,674 actions within 256 MiB: 8 bytes per node and action.
    assert 7_000 < max_sims(4674) < 7_200 and max_sims(7) == 100_000


def test_the_stdio_loop_survives_bad_bytes_and_an_overlong_line(engine):
    """Text-mode reading died on bad UTF-8 in the reader thread: the loop then waited
    for ever. A line over MAX_LINE_BYTES is skipped to its end and answered."""
    from arena.protocols.analysis import MAX_LINE_BYTES, run_analysis

    data = (b'{"id": 1, "moves": ["\xff"]}\n' + b'{"id": 2, "moves": [3]}'
            + b" " * MAX_LINE_BYTES + b"\n\n  \n" + b'{"id": 3, "moves": []}\n')
    out = io.StringIO()
    assert run_analysis(engine, io.TextIOWrapper(io.BytesIO(data)), out) == 0
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [a["id"] for a in answers] == [1, None, 3]
    assert "error" in answers[0] and "at most" in answers[1]["error"] and "move" in answers[2]
