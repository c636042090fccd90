"""Solved Connect Four evaluation on a three-line file with a fake analyzer."""

from __future__ import annotations

import numpy as np
import pytest

from arena.exact.solved import evaluate_solved, keeps_value, load_positions
from games import get_game
from tests.arena.fakes import ScriptedPlayer

LINES = [  # Three lines of /work/shared/data/connect4_dev.jsonl.
    '{"moves": "6251", "score": 18, "best_moves": [3], '
    '"child_scores": [0, 2, 2, 18, 0, -2, -2], "depth": 4}',
    '{"moves": "5455", "score": 0, "best_moves": [3], '
    '"child_scores": [-4, -4, -3, 0, -3, -4, -5], "depth": 4}',
    '{"moves": "73355", "score": 18, "best_moves": [3], '
    '"child_scores": [-4, -3, -2, 18, 0, -4, -4], "depth": 5}',
]


@pytest.fixture
def positions(tmp_path):
    path = tmp_path / "three.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return load_positions(path)


def test_load(positions):
    assert [p.moves for p in positions] == ["6251", "5455", "73355"]
    assert positions[0].best_moves == (3,) and positions[2].depth == 5


def test_keeps_value_uses_the_sign(positions):
    p = positions[0]  # score 18; child scores [0, 2, 2, 18, 0, -2, -2]
    assert keeps_value(p, 3) and keeps_value(p, 1)
    assert not keeps_value(p, 0) and not keeps_value(p, 5) and not keeps_value(p, 9)


def test_fractions_are_exact(positions):
    # Search moves by position: 1 (keeps the win, not best), 3 (best), 4 (loses the win).
    search = {"6251": 1, "5455": 3, "73355": 4}
    game = get_game("connect4")

    def pick(state):
        return search["".join(str(a + 1) for a in state.history())]

    player = ScriptedPlayer(pick)
    report = evaluate_solved(game, player, positions, sims=5)
    assert player.calls == [(3, 5)]  # one batch
    total = report.total
    assert (total.n, total.search_keeps, total.search_best) == (3, 2, 1)
    # The fake prior is uniform over legal moves, so its argmax is column 0
    # everywhere, which keeps the value in none of the three positions.
    assert (total.policy_keeps, total.policy_best) == (0, 0)
    assert report.moves == [(1, 0), (3, 0), (4, 0)]
    table = report.table()
    assert "0-9" in table and "66.7%" in table and "33.3%" in table


def test_bad_line_names_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(LINES[0] + "\n{\"moves\": \"44\"}\n")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_positions(path)


def test_policy_argmax_ignores_illegal_moves(tmp_path):
    path = tmp_path / "full.jsonl"
    # Column 1 (0-based 0) is full after "111111"; the prior puts its mass there anyway.
    path.write_text('{"moves": "111111", "score": 0, "best_moves": [3], '
                    '"child_scores": [null, 0, 0, 0, 0, 0, 0], "depth": 6}\n')
    positions = load_positions(path)

    class Player(ScriptedPlayer):
        def analyze(self, states, num_simulations=None, add_noise=False):
            out = super().analyze(states, num_simulations)
            for a in out:
                a.prior = np.array([0.9, 0.01, 0.02, 0.03, 0.02, 0.01, 0.01], np.float32)
            return out

    report = evaluate_solved(get_game("connect4"), Player(), positions)
    assert report.moves == [(1, 3)]
    assert report.total.policy_best == 1
