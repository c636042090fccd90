"""`tabula bench muzero` on tiny settings: consistent counts, the real CLI, a bad game name.

No timing asserts beyond "positive": the machine is shared.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.muzero_net import MuZeroNet, MuZeroNetConfig
from selfplay import bench_muzero
from tests.extras import need

ROOT = Path(__file__).resolve().parents[2]


def _tabula(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tabula", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("root_mode", ["gumbel", "puct"])
def test_bench_muzero_counts_one_leaf_per_tree_per_step(root_mode):
    r = bench_muzero.bench_muzero("tictactoe", games=4, sims=4, moves=2, root_mode=root_mode,
                                  seed=0, seconds=0.2)
    assert {"game": "tictactoe", "sims": 4, "games": 4, "root_mode": root_mode}.items() \
        <= r.items()
    assert r["searches"] >= 1
    # Every simulation step expands one leaf in each of the 4 trees, in one recurrent call.
    assert r["simulations"] == 4 * 4 * r["searches"]
    assert r["mean_recurrent_batch"] == 4.0
    assert r["initial_evals"] == 4 * r["searches"]
    assert r["simulations_per_s"] > 0 and r["agent_steps_per_s"] > 0
    assert r["agent_steps"] == 4 * 2  # 2 timed moves in each of the 4 slots
    assert r["alone_recurrent_per_s"] > 0 and r["alone_initial_per_s"] > 0
    # The ratio is the network-alone time for the same evaluations over the search's time.
    assert r["ratio"] == pytest.approx(r["evals_per_s"] / r["alone_evals_per_s"])
    shares = [r["selfplay_share_network"], r["selfplay_share_tree"], r["selfplay_share_env"]]
    assert all(-1e-6 <= s <= 1 + 1e-6 for s in shares), shares
    lines = bench_muzero.format_result(r).splitlines()
    assert len(lines) == 5 and lines[-1].startswith("summary: tictactoe")


def test_randomised_heads_give_a_non_uniform_policy():
    torch.manual_seed(0)
    net = MuZeroNet((3, 3, 3), 9, MuZeroNetConfig(blocks=1, channels=8, head_channels=4,
                                                  hidden=8, value_support=5,
                                                  reward_support=5)).eval()
    obs = torch.rand(2, 3, 3, 3)
    logits = net.initial_inference(obs)[1]
    assert torch.count_nonzero(logits) == 0  # the fresh network: uniform policy
    bench_muzero.randomise_heads(net)
    logits = net.initial_inference(obs)[1]
    assert logits.std() > 0


def test_cli_on_pong():
    need("ale_py")
    proc = _tabula("bench", "muzero", "--game", "atari/Pong", "--games", "2", "--sims", "2",
                   "--moves", "2", "--seconds", "0.3", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert "muzero atari/Pong net 1x32 gumbel 2 sims, 2 games at once" in proc.stdout
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("summary: atari/Pong")]
    assert len(summary) == 1 and "agent steps/s" in summary[0], proc.stdout


def test_cli_unknown_game_is_one_error_line():
    need("ale_py")
    proc = _tabula("bench", "muzero", "--game", "atari/Breakot")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error:") \
        and "Breakout" in lines[0], proc.stderr
    assert proc.stdout == ""
