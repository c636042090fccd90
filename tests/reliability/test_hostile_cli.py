"""The `tabula` command given hostile files: exit status 2 and one line naming the file.

`train` resuming a run whose train state is truncated runs as a real process
(no traceback, the run directory as it was); the others run in this process
through `tabula.cli.main`, as the corpus of test_hostile_files.py runs `elo`,
`elo --pgn` and `train --config` on every file.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from tests.conftest import REPO
from tests.reliability.test_hostile_files import hf
from tabula.cli import main


def _hashes(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_resuming_a_damaged_train_state_fails_in_one_line(tmp_path):
    """The real command in a process of its own: exit 2, one line, the run as it was."""
    run = tmp_path / "run"
    for rel, data in hf.build_run(tmp_path / "build").items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data[:len(data) // 2] if rel == "train_state.safetensors"
                                else data)
    before = _hashes(run)
    result = subprocess.run([sys.executable, "-m", "tabula", "train", "--run", str(run),
                             "--no-progress"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"tabula: error: cannot resume {run}: "
                                    "train_state.safetensors is damaged"), result.stderr
    assert _hashes(run) == before


def test_a_pickle_as_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    marker = tmp_path / hf.MARKER
    for case in hf.pickle_cases(marker):
        path = tmp_path / f"{case.name}.safetensors"
        path.write_bytes(case.data)
        assert main(["play", "--game", "tictactoe", "--checkpoint", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"tabula: error: {path}: not a "), err
    assert not marker.exists()


def test_a_truncated_database_is_refused_in_one_line(tmp_path, capsys):
    db = tmp_path / "arena.sqlite"
    db.write_bytes(hf.build_arena_db(tmp_path)[:5000])
    data = db.read_bytes()
    assert main(["elo", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"tabula: error: {db}: the database is truncated" in err
    assert db.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == [
        "arena.sqlite"]


def test_a_checkpoint_of_another_game_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "tictactoe.safetensors"
    path.write_bytes(hf.build_checkpoint(tmp_path, "alphazero"))
    assert main(["play", "--game", "connect4", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: checkpoint is for tictactoe, not connect4" in err
