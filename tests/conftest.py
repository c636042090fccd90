"""Shared fixtures: tiny random-weight checkpoints (fast to load and to search with)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # The 'auto' backend caches its measurements per machine; tests (and the
    # CLI processes they start, which inherit this) use a cache of their own.
    os.environ["TABULA_CACHE_DIR"] = tempfile.mkdtemp(prefix="tabula-test-cache-")


def make_checkpoint(path: Path, game_name: str, seed: int = 0, sims: int = 8,
                    step: int = 0) -> Path:
    """Saves a 1-block, 8-channel PolicyValueNet with random weights for `game_name`."""
    import torch

    from checkpoints import save_checkpoint
    from engine.networks import NetworkConfig, PolicyValueNet
    from games import get_game

    info = get_game(game_name).info
    torch.manual_seed(seed)
    config = NetworkConfig(blocks=1, channels=8, value_hidden=8)
    net = PolicyValueNet(info.observation_shape, info.num_actions, config).eval()
    save_checkpoint(path, net.state_dict(), {
        "game": game_name, "network": config, "observation_shape": list(info.observation_shape),
        "num_actions": info.num_actions, "step": step,
        "extra": {"search": {"root_mode": "gumbel", "num_simulations": sims}}})
    return path


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """{'tictactoe': path, 'connect4': path}: tiny random checkpoints, made once per session."""
    root = tmp_path_factory.mktemp("ckpt")
    return {name: make_checkpoint(root / f"{name}.safetensors", name)
            for name in ("tictactoe", "connect4")}


def _run_tabula(*args: str, stdin: str = "", cwd: Path = REPO,
                timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tabula", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture
def tabula():
    """Runs the real CLI: tabula(*args, stdin='', cwd=REPO) -> CompletedProcess (text)."""
    return _run_tabula
