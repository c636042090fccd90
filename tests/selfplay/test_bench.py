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
