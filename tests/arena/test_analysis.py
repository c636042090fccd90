"""The JSON-lines analysis engine: AnalysisEngine.answer with a fake player."""

from __future__ import annotations

import io
import json

import pytest

from arena.protocols.analysis import AnalysisEngine, run_analysis
from games import get_game
from tests.arena.fakes import BrokenPlayer, ScriptedPlayer


def engine(player=None, default_sims=8):
    return AnalysisEngine(get_game("connect4"), player or ScriptedPlayer(), default_sims)


def answers(lines, player=None):
    return [json.loads(a) for a in engine(player).answer(lines)]


def test_answer_fields_and_move_texts():
    (a,) = answers(['{"id": "q", "moves": [3, "4", 2]}'])
    assert a["id"] == "q" and a["to_play"] == 1
    assert a["action"] == 0 and a["move"] == "1"
    assert set(a["visits"]) == set("1234567") and sum(a["visits"].values()) == 8
    assert a["q"] == {"1": 0.25}
    assert abs(sum(a["prior"].values()) - 1) < 1e-3


@pytest.mark.parametrize("line, message", [
    ("not json", "not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"moves": []}', "missing 'id'"),
    ('{"id": [1], "moves": []}', "'id' must be"),
    ('{"id": 1}', "missing 'moves'"),
    ('{"id": 1, "moves": [], "color": 1}', "unknown key(s) ['color']"),
    ('{"id": 1, "moves": "34"}', "'moves' must be a list"),
    ('{"id": 1, "moves": [3.0]}', "moves[0]: must be an int or a string"),
    ('{"id": 1, "moves": [3, 3, 3, 3, 3, 3, 3]}', "moves[6]"),
    ('{"id": 1, "moves": [9]}', "moves[0]"),
    ('{"id": 1, "moves": ["x"]}', "moves[0]: bad Connect Four move"),
    ('{"id": 1, "moves": [], "sims": 0}', "'sims' must be an integer"),
    ('{"id": 1, "moves": [], "sims": true}', "'sims' must be an integer"),
    ('{"id": 1, "moves": [0, 6, 0, 6, 0, 6, 0]}', "the game is over"),
])
def test_bad_queries_get_an_error_with_their_id(line, message):
    (a,) = answers([line])
    assert set(a) == {"id", "error"} and message in a["error"]
    if '"id": 1' in line:
        assert a["id"] == 1


def test_one_batch_per_sims_value_answers_in_input_order():
    player = ScriptedPlayer()
    lines = ['{"id": 0, "moves": []}', '{"id": 1, "moves": [], "sims": 4}', "oops",
             '{"id": 2, "moves": [1]}', '{"id": 3, "moves": [2], "sims": 4}']
    out = answers(lines, player)
    assert [a.get("id") for a in out] == [0, 1, None, 2, 3]
    assert sorted(player.calls) == [(2, 4), (2, 8)]
    assert [sum(a["visits"].values()) for a in out if "visits" in a] == [8, 4, 8, 4]


def test_failing_search_answers_errors_and_goes_on():
    out = answers(['{"id": 5, "moves": []}'], BrokenPlayer())
    assert out == [{"id": 5, "error": "search failed: network exploded"}]


def test_stdio_loop_skips_blank_lines_and_ends_at_eof():
    out = io.StringIO()
    rc = run_analysis(engine(), io.StringIO('{"id": 1, "moves": []}\n\n{"id": 2}\n'), out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rc == 0 and [x["id"] for x in lines] == [1, 2] and "error" in lines[1]
