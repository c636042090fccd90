"""`tabula play` on Atari (arena/protocols/watch.py): the real command on the Breakout ROM.

Every CLI case is a subprocess run in its own empty directory, so the default
GIF path and "no file written" can be checked. Runs are module fixtures,
shared by the tests that read them (each run costs a Python + torch start).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.extras import need  # noqa: I001

need("ale_py")
from PIL import Image  # noqa: E402

from arena.protocols.watch import (GIF_FRAME_MS, Episode, GifRecorder,  # noqa: E402
                                   mean_ci95, summary_line)
from tests.conftest import REPO, make_checkpoint  # noqa: E402

GAME = "atari/Breakout"
EPISODE_LINE = re.compile(r"^episode (\d+): return (-?[\d.]+) in (\d+) steps$")


def tabula(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "tabula", "play", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def muzero_checkpoint(path: Path, game: str = GAME) -> Path:
    """A tiny untrained MuZero net for `game`, values 0, with a random policy layer.

    Fully untrained, the policy is uniform and the search (temperature 0, no
    noise) picks NOOP every step, so the Breakout screen would never change;
    random policy weights make the agent move the paddle.
    """
    import torch

    from checkpoints import save_checkpoint
    from engine.muzero_net import MuZeroNet, MuZeroNetConfig

    torch.manual_seed(0)
    config = MuZeroNetConfig(blocks=1, channels=8, head_channels=4, hidden=16,
                             value_support=20, reward_support=20)
    net = MuZeroNet((4, 96, 96), 4, config).eval()
    torch.nn.init.normal_(net.policy_head.fc[-1].weight, std=3.0)
    save_checkpoint(path, net.state_dict(), {
        "game": game, "algo": "muzero", "network": config, "observation_shape": [4, 96, 96],
        "num_actions": 4, "step": 0,
        "extra": {"search": {"num_simulations": 8, "root_mode": "gumbel", "discount": 0.997}}})
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("watch_ckpt")
    return {"muzero": muzero_checkpoint(root / "tiny.safetensors"),
            "alphazero": make_checkpoint(root / "az.safetensors", GAME)}


def run_in(tmp_path_factory, name: str, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    cwd = tmp_path_factory.mktemp(name)
    return tabula(cwd, *args), cwd


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    return run_in(tmp_path_factory, "random", "--game", GAME, "--agent", "random",
                  "--episodes", "2", "--max-steps", "50", "--seed", "7", "--json", "out.json")


@pytest.fixture(scope="module")
def checkpoint_run(tmp_path_factory, checkpoints):
    return run_in(tmp_path_factory, "muzero", "--checkpoint", checkpoints["muzero"],
                  "--max-steps", "30", "--sims", "2", "--json", "out.json", "--no-progress")


def episodes_of(cwd: Path) -> list[tuple[float, int]]:
    doc = json.loads((cwd / "out.json").read_text())
    return [(e["return"], e["steps"]) for e in doc["episodes"]]


# the real command ------------------------------------------------------------

def test_random_agent_prints_episodes_summary_and_json(random_run):
    proc, cwd = random_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    printed = {int(m[1]): (float(m[2]), int(m[3]))
               for m in map(EPISODE_LINE.match, lines) if m}
    assert sorted(printed) == [1, 2]
    doc = json.loads((cwd / "out.json").read_text())
    assert doc["game"] == GAME and doc["agent"] == "random" and doc["checkpoint"] is None
    assert doc["seed"] == 7 and doc["simulations"] is None
    episodes = episodes_of(cwd)
    assert [printed[1], printed[2]] == episodes
    assert all(1 <= steps <= 50 for _, steps in episodes)
    returns = [r for r, _ in episodes]
    assert doc["mean"] == pytest.approx(np.mean(returns))
    summary = [line for line in lines if line.startswith(f"{GAME}: mean return ")]
    assert summary == [f"{GAME}: mean return {np.mean(returns):.1f} ± {doc['ci95']:.1f} (95% CI) "
                       f"over 2 episodes, min {min(returns):g}, max {max(returns):g}; "
                       "random agent (uniform legal actions)"]
    # The progress bar goes to stderr, the GIF to the default name.
    assert "step" in proc.stderr
    assert (cwd / "random-atari_Breakout.gif").is_file()
    assert "GIF of episode 1 written to random-atari_Breakout.gif" in lines


def test_checkpoint_agent_writes_an_animated_gif(checkpoint_run):
    proc, cwd = checkpoint_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --no-progress
    assert "episode 1: return 0 in 30 steps" in proc.stdout.splitlines()
    assert "tiny (MuZero, 2 simulations)" in proc.stdout
    doc = json.loads((cwd / "out.json").read_text())
    assert doc["simulations"] == 2 and doc["agent"] == "tiny"
    gif = cwd / "tiny-atari_Breakout.gif"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.size == (160, 210) and im.is_animated
        # Screens at steps 0, 2, ..., 30: 16 frames. Pillow merges identical
        # consecutive frames into a longer one, so count their display time.
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert 2 <= len(durations) <= 16
    assert sum(durations) == 16 * GIF_FRAME_MS


@pytest.mark.parametrize("which", ["random", "checkpoint"])
def test_same_seed_same_episodes(which, random_run, checkpoint_run, checkpoints,
                                 tmp_path):
    first, cwd = random_run if which == "random" else checkpoint_run
    assert first.returncode == 0, first.stderr
    args = (["--game", GAME, "--agent", "random", "--episodes", "2", "--max-steps", "50",
             "--seed", "7"] if which == "random" else
            ["--checkpoint", checkpoints["muzero"], "--max-steps", "30", "--sims", "2"])
    again = tabula(tmp_path, *args, "--json", "out.json", "--no-gif", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert episodes_of(tmp_path) == episodes_of(cwd)
    assert not list(tmp_path.glob("*.gif"))


BAD = {
    "unknown game": (["--game", "atari/Breakot", "--agent", "random"],
                     "unknown Atari game 'Breakot'; closest: Breakout"),
    "no agent": (["--game", GAME], "give --checkpoint PATH or --agent random"),
    "alphazero checkpoint": (["--checkpoint", "{alphazero}"],
                             "an alphazero checkpoint cannot play atari/Breakout"),
    "other atari game": (["--game", "atari/Pong", "--checkpoint", "{muzero}"],
                         "checkpoint is for atari/Breakout (muzero), not atari/Pong"),
    "missing checkpoint": (["--game", GAME, "--checkpoint", "{missing}"],
                           "checkpoint file not found"),
    "zero episodes": (["--game", GAME, "--agent", "random", "--episodes", "0"],
                      "--episodes must be at least 1, got 0"),
    "noise without a search": (["--game", GAME, "--agent", "random", "--noise"],
                               "--noise is for a checkpoint"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_error_line_and_no_file(case, checkpoints, tmp_path):
    args, message = BAD[case]
    paths = {**checkpoints, "missing": tmp_path / "missing.safetensors"}
    proc = tabula(tmp_path, *(a.format(**paths) for a in args), "--json", "out.json")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_noisy_search_is_recorded(tmp_path_factory, checkpoints):
    proc, cwd = run_in(tmp_path_factory, "noisy", "--checkpoint", checkpoints["muzero"],
                       "--max-steps", "20", "--sims", "2", "--json", "out.json", "--no-gif",
                       "--no-progress", "--noise")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((cwd / "out.json").read_text())
    assert doc["noise"] is True and [e["steps"] for e in doc["episodes"]] == [20]


# pieces ----------------------------------------------------------------------

class _FakeEnv:
    """A screen that changes every step."""

    episode_steps = 0

    def rgb(self) -> np.ndarray:
        return np.full((210, 160, 3), self.episode_steps, np.uint8)


def test_gif_recorder_keeps_every_second_screen_and_the_last_and_stops_at_the_cap():
    env, recorder = _FakeEnv(), GifRecorder(every=2, max_frames=100)
    for steps in range(8):  # reset, then 7 steps; the episode ends on an odd step
        env.episode_steps = steps
        recorder.capture(env, done=steps == 7)
    kept = [np.asarray(im.convert("RGB"))[0, 0, 0] for im in recorder.frames]
    assert kept == [0, 2, 4, 6, 7] and not recorder.cut

    capped = GifRecorder(every=2, max_frames=3)
    for steps in range(11):
        env.episode_steps = steps
        capped.capture(env, done=steps == 10)
    assert len(capped.frames) == 3 and capped.cut and capped.steps == 4
    with Image.open(io.BytesIO(capped.encode())) as im:
        assert im.n_frames == 3 and im.info["loop"] == 0


def test_mean_ci95_and_summary_by_hand():
    assert mean_ci95([4.0]) == (4.0, None)
    mean, ci = mean_ci95([1.0, 3.0])  # sample std sqrt(2), so 1.96 * sqrt(2) / sqrt(2)
    assert mean == 2.0 and ci == pytest.approx(1.959964)
    episodes = [Episode(1.0, 10), Episode(3.0, 12)]
    assert summary_line(GAME, episodes, "x") == (
        f"{GAME}: mean return 2.0 ± 2.0 (95% CI) over 2 episodes, min 1, max 3; x")
    assert summary_line(GAME, episodes[:1], "x") == (
        f"{GAME}: mean return 1.0 over 1 episode, min 1, max 1; x")
