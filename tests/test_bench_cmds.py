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
    r = tabula("bench", "gtp", "--moves", "3", "--gnugo", "")  # the shipped go9 model
    assert r.returncode == 0 and "genmoves, median" in r.stdout, r.stderr
    assert "16 simulations per move: nodes/s median " in r.stdout
    assert "network alone at batch 16 " in r.stdout and "nodes/s / network alone = " in r.stdout
    r = tabula("bench", "uci", "--movetime", "200", "--stops", "1", "--reference", "")
    assert r.returncode == 0 and "stop latency" in r.stdout, r.stderr
    assert "go movetime 200: bestmove after median" in r.stdout
    assert "network alone" not in r.stdout  # the uniform evaluator is no network
    chess = make_checkpoint(tmp_path / "chess.safetensors", "chess")
    r = tabula("bench", "uci", "--checkpoint", chess, "--movetime", "200", "--stops", "0",
               "--reference", "")
    assert r.returncode == 0 and "nps median" in r.stdout, r.stderr
    assert "network alone at batch 16 " in r.stdout and "nps / network alone = " in r.stdout


def test_bench_actors_runs_each_configuration(tabula):
    r = tabula("bench", "actors", "--game", "tictactoe", "--blocks", "1", "--channels", "8",
               "--sims", "2", "--games", "8", "--seconds", "1", "--configs", "0,1,1s")
    assert r.returncode == 0, r.stderr
    for label in ("in this process", "1 actor process, own networks",
                  "1 actor process, shared inference server"):
        assert label in r.stdout
    assert "ratio to in this process: 0 1.00" in r.stdout


def test_memory_growth_is_the_slope_after_the_window_filled():
    from selfplay.bench_memory import growth_per_hour

    # 100 MB/hour while filling (ignored), then exactly 6 MB/hour.
    rows = [{"minute": m, "total_mb": 500 + 100 * m / 60, "buffer_positions": 10 * m}
            for m in range(0, 30)]
    rows += [{"minute": m, "total_mb": 550 + 6 * m / 60, "buffer_positions": 300}
             for m in range(30, 60)]
    assert abs(growth_per_hour(rows, 300) - 6.0) < 1e-9
    assert growth_per_hour(rows[:31], 300) is None  # fewer than 3 samples after filling


def test_memory_descendants_finds_grandchildren():
    import subprocess
    import sys
    import time

    from selfplay.bench_memory import descendants

    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "print(p.pid, flush=True); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(parent.stdout.readline())
        time.sleep(0.1)
        assert grandchild in descendants(parent.pid)
        assert parent.pid not in descendants(parent.pid)
    finally:
        subprocess.run(["kill", str(grandchild)])
        parent.kill()
        parent.wait()
