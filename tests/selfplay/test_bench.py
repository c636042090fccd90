"""`tabula bench selfplay` on a tiny configuration: consistent figures, no timing asserts."""

from __future__ import annotations

import pytest

from selfplay import bench


def test_bench_selfplay_returns_consistent_figures(monkeypatch):
    # The network-alone measurement runs for at least 2 s; a quarter second will do here.
    real = bench.network_alone
    monkeypatch.setattr(bench, "network_alone",
                        lambda ev, shape, actions, batch, seconds, rng:
                        real(ev, shape, actions, batch, 0.25, rng))
    r = bench.bench_selfplay("tictactoe", blocks=1, channels=8, sims=4, games=4, moves=2,
                             root_mode="gumbel", backend="torch", seed=0)
    assert {"game": "tictactoe", "network": "1x8", "backend": "torch", "root_mode": "gumbel",
            "sims": 4, "games": 4}.items() <= r.items()
    assert r["positions_per_s"] > 0 and r["evals_per_s"] > 0
    assert r["network_alone_evals_per_s"] > 0 and r["ratio"] > 0
    assert r["ratio"] == pytest.approx(r["evals_per_s"] / r["network_alone_evals_per_s"])
    # One evaluation batch per simulation step, at most one row per game.
    assert 0 < r["mean_batch"] <= 4
    shares = [r[k] for k in ("share_network", "share_game", "share_tree", "share_other")]
    assert all(-1e-6 <= s <= 1 + 1e-6 for s in shares), shares  # parts of the elapsed time
    assert sum(shares) == pytest.approx(1.0)
    text = bench.format_result(r)
    assert "ratio" in text and "tictactoe" in text and "1x8" in text


def test_bench_selfplay_with_the_cache_counts_only_network_evaluations(monkeypatch):
    real = bench.network_alone
    monkeypatch.setattr(bench, "network_alone",
                        lambda ev, shape, actions, batch, seconds, rng:
                        real(ev, shape, actions, batch, 0.25, rng))
    args = dict(blocks=1, channels=8, sims=8, games=8, moves=2, root_mode="gumbel",
                backend="torch", seed=0)
    plain = bench.bench_selfplay("tictactoe", **args)
    cached = bench.bench_selfplay("tictactoe", eval_cache=1000, **args)
    # Same seed, exact cache: the same moves, so the saved evaluations are the difference.
    assert 0 < cached["cache_hit_rate"] < 1
    saved = cached["evals_saved_per_position"] * cached["positions_per_s"]
    assert cached["evals_per_s"] + saved == pytest.approx(
        plain["evals_per_s"] * cached["positions_per_s"] / plain["positions_per_s"], rel=1e-6)
    assert "hit rate" in bench.format_result(cached)
    assert "hit rate" not in bench.format_result(plain)
