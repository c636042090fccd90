"""`tabula bench learning`: curves of strength against truth along a run."""

from __future__ import annotations

import csv

import pytest

from checkpoints import list_checkpoints
from selfplay import config as cfg
from selfplay.bench_learning import wilson
from selfplay.loop import train
from tests.selfplay.util import tiny_overrides


def test_wilson_interval_matches_published_values():
    # Wilson score intervals at 95% (Newcombe 1998, table I): 0/10 -> 0 to 0.2775,
    # 5/10 -> 0.2366 to 0.7634, 10/10 -> 0.7225 to 1.
    for k, low, high in ((0, 0.0, 0.2775), (5, 0.2366, 0.7634), (10, 0.7225, 1.0)):
        share, lo, hi = wilson(k, 10)
        assert share == k / 10
        assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def _run(tmp_path, name: str, game: str, iterations: int):
    run = tmp_path / name
    config = cfg.merge(cfg.preset(game), tiny_overrides(
        f"run.max_iterations={iterations}", "run.checkpoint_every=1"))
    train(config, run, progress=False)
    return run


def _rows(run):
    with open(run / "learning.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_tictactoe_run_gets_a_minimax_curve_and_reuses_it(tmp_path, tabula):
    run = _run(tmp_path, "ttt", "tictactoe", 3)
    proc = tabula("bench", "learning", "--run", str(run))
    assert proc.returncode == 0, proc.stderr
    rows = _rows(run)
    names = [p.name for p in list_checkpoints(run / "checkpoints")]
    assert [r["checkpoint"] for r in rows] == names
    for r in rows:
        share, low, high, n = (float(r[k]) for k in ("minimax", "minimax_low",
                                                      "minimax_high", "minimax_n"))
        assert 0 <= low <= share <= high <= 1 and n > 100
        assert int(r["positions"]) > 0 and int(r["evaluations"]) >= int(r["positions"])
    assert [int(r["positions"]) for r in rows] == sorted(int(r["positions"]) for r in rows)
    assert (run / "learning.png").stat().st_size > 1000
    # Rows measured with the same settings are reused, not measured again.
    again = tabula("bench", "learning", "--run", str(run))
    assert again.returncode == 0 and "minimax" not in again.stdout.split("checkpoints; last")[0]
    assert _rows(run) == rows
    other = _run(tmp_path, "ttt2", "tictactoe", 2)
    assert tabula("bench", "learning", "--run", str(other), "--no-progress").returncode == 0
    out = tmp_path / "both.png"
    both = tabula("bench", "learning", "--compare", str(run), str(other), "--out", str(out))
    assert both.returncode == 0, both.stderr
    assert "ttt:" in both.stdout and "ttt2:" in both.stdout and out.stat().st_size > 1000


def test_connect4_strict_counts_only_won_and_drawn_positions(tmp_path, tabula):
    from arena import DEFAULT_DATA, load_positions

    if not DEFAULT_DATA.exists():
        pytest.skip(f"no solved positions at {DEFAULT_DATA}")
    positions = load_positions(DEFAULT_DATA)
    run = _run(tmp_path, "c4", "connect4", 1)
    # mcts with no games (the default --games 0) is listed but not measured.
    proc = tabula("bench", "learning", "--run", str(run), "--sims", "2",
                  "--measures", "strict,keeps,mcts")
    assert proc.returncode == 0, proc.stderr
    assert "mcts" not in proc.stdout.split("checkpoints; last")[0]
    row = _rows(run)[-1]
    assert int(row["strict_n"]) == sum(p.score >= 0 for p in positions)
    assert int(row["keeps_n"]) == len(positions)
    # Every lost position is kept by any move: the strict share can only be lower.
    lost = len(positions) - int(row["strict_n"])
    kept_strict = round(float(row["strict"]) * int(row["strict_n"]))
    assert round(float(row["keeps"]) * len(positions)) == kept_strict + lost


def test_bad_requests_exit_2_with_a_reason(tmp_path, tabula):
    proc = tabula("bench", "learning", "--run", str(tmp_path / "none"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    run = _run(tmp_path, "ttt", "tictactoe", 1)
    proc = tabula("bench", "learning", "--run", str(run), "--measures", "gnugo")
    assert proc.returncode == 2 and "no measure gnugo" in proc.stderr
    # Training a new run needs its game (tabula train alone would pick tic-tac-toe).
    proc = tabula("bench", "learning", "--run", str(tmp_path / "new"), "--minutes", "1")
    assert proc.returncode == 2 and "give --game" in proc.stderr
    assert not (tmp_path / "new").exists()


def test_an_open_spiel_game_is_measured_against_random_and_mcts(tmp_path, tabula):
    run = _run(tmp_path, "hex", "spiel/hex(board_size=3)", 1)
    proc = tabula("bench", "learning", "--run", str(run), "--measures", "random,mcts",
                  "--games", "4", "--opponent-sims", "20")
    assert proc.returncode == 0, proc.stderr
    row = _rows(run)[-1]
    for m in ("random", "mcts"):
        share, low, high, n = (float(row[m + k]) for k in ("", "_low", "_high", "_n"))
        # 4 games, each scored 0, 1/2 or 1: the share is a multiple of 1/8.
        assert n == 4 and 0 <= low <= share <= high <= 1 and (share * 8).is_integer()
    # The match measures alone need games; the reason names the measure.
    proc = tabula("bench", "learning", "--run", str(run))
    assert proc.returncode == 2 and "the measure 'mcts' plays games" in proc.stderr
    proc = tabula("bench", "learning", "--run", str(run), "--measures", "minimax")
    assert proc.returncode == 2 and "no measure minimax (it has mcts, random, first)" in \
        proc.stderr


def test_each_kind_of_game_gets_the_measures_it_can_have(monkeypatch):
    from selfplay.bench_learning import game_measures
    from tests.conftest import REPO

    monkeypatch.syspath_prepend(str(REPO / "docs" / "examples"))
    assert game_measures("tictactoe") == (("minimax", "first"), ("minimax",))
    assert game_measures("spiel/breakthrough(columns=5,rows=5)")[0] == ("mcts", "random", "first")
    # A user's game has no open_spiel rules for MCTSBot; an environment has no opponent.
    assert game_measures("hexapawn:Hexapawn") == (("random", "first"), ("random",))
    assert game_measures("gym/CartPole-v1") == (("return",), ("return",))
