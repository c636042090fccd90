"""The protocol and arena benchmarks run end to end on tiny budgets (numbers not checked)."""

from __future__ import annotations

from tests.conftest import make_checkpoint


def test_bench_perft_checks_the_published_counts(tabula):
    r = tabula("bench", "perft", "--depth", "2", "--reference-depth", "0")
    assert r.returncode == 0, r.stderr
    assert "all counts match the published table" in r.stdout
    assert r.stdout.count("(ok)") == 6


def test_bench_arena_gtp_and_uci_run(tabula, tmp_path):
    run = tmp_path / "run"
    for i, step in enumerate((0, 5)):
        make_checkpoint(run / "checkpoints" / f"step-{step:08d}.safetensors", "tictactoe",
                        seed=i, sims=2, step=step)
    r = tabula("bench", "arena", "--run", run, "--games", "4", "--sims", "2", "--processes", "1")
    assert r.returncode == 0 and "1 process: 4 games" in r.stdout, r.stderr
    r = tabula("bench", "gtp", "--moves", "3", "--gnugo", "")
    assert r.returncode == 0 and "genmoves, median" in r.stdout, r.stderr
    r = tabula("bench", "uci", "--movetime", "200", "--stops", "1", "--reference", "")
    assert r.returncode == 0 and "stop latency" in r.stdout, r.stderr
