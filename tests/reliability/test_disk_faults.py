"""A full disk and a read-only directory, on a real tmpfs: `tabula train` and `tabula arena`.

Each fault is real: the run directory or results database lives on a small
tmpfs that the command fills, or that is remounted read-only. The command
must stop with exit 2 and one line naming the path and what to do, leave
every file whole (no temporary files), and resume with the same command
once there is room. Mounting needs root (CAP_SYS_ADMIN); elsewhere these
tests are skipped and say why.

One training run and one tournament each live through all three steps
(fill the disk, make room and resume, remount read-only), in module-scoped
fixtures, since most of each command's time is Python start-up.
"""

from __future__ import annotations

import csv
import errno
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from checkpoints import list_checkpoints, load_checkpoint
from checkpoints.files import atomic_write_bytes, check_writable
from tests.selfplay.util import TINY, shard_games, train_state

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TIMEOUT = 180
# Room for the config and three or four iterations' checkpoints, train states and shards
# (about 16 KB each, and a 24 KB train state written beside the old one): full in seconds.
TRAIN_KB = 160
ARENA_KB = 176  # two tiny checkpoints (24 KB), the WAL index (32 KB) and a few games
ROOMY_KB = 8192
TRAIN = ["--no-progress", *TINY, "--game", "tictactoe", "--set", "run.checkpoint_every=1"]
ARENA_GAMES = 30


@functools.lru_cache(maxsize=1)
def _mount_problem() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting a tmpfs needs root (CAP_SYS_ADMIN)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount not found"
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"mount -t tmpfs is not permitted here: {r.stderr.strip()}"
        subprocess.run(["umount", d], check=True)
    return None


pytestmark = pytest.mark.skipif(_mount_problem() is not None,
                                reason=str(_mount_problem()))


class Tmpfs:
    """A tmpfs mounted at `path`; resized or made read-only by remounting."""

    def __init__(self, path: Path, size_kb: int):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)])

    def remount(self, options: str) -> None:
        _run(["mount", "-o", f"remount,{options}", str(self.path)])

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, (cmd, r.stderr)


@pytest.fixture(scope="module")
def mounts(tmp_path_factory):
    """mounts(size_kb) -> a new Tmpfs; every one is unmounted at the end, even on failure."""
    made: list[Tmpfs] = []
    root = tmp_path_factory.mktemp("mnt")

    def mount(size_kb: int) -> Tmpfs:
        made.append(Tmpfs(root / str(len(made)), size_kb))
        return made[-1]

    yield mount
    for fs in made:
        fs.unmount()


@pytest.fixture
def tmpfs(mounts):
    """A fresh 16 KB tmpfs."""
    return mounts(16)


def _tabula(*args) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-m", "tabula", *map(str, args)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"tabula {args[0]} did not finish in {TIMEOUT} s: {err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _fill(directory: Path) -> None:
    """Takes every free byte of `directory`'s file system."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
        # Closing flushes the rest of the buffer: full again.
        try:
            f.close()
        except OSError:
            pass


# Pieces: atomic writes, metrics rows, the error line ----------------------------------------

def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmpfs):
    path = tmpfs.path / "state.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(OSError) as info:
        atomic_write_bytes(path, os.urandom(64 * 1024))  # more than the disk holds
    # Named after the file asked for (write() errors name none; mkstemp's the temp file).
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmpfs.path.iterdir()) == ["state.bin"]

    tmpfs.remount("ro")
    with pytest.raises(OSError) as info:
        atomic_write_bytes(path, b"new")
    assert info.value.errno == errno.EROFS and info.value.filename == str(path)
    with pytest.raises(OSError) as info:
        check_writable(tmpfs.path / "missing", tmpfs.path)
    assert info.value.errno == errno.EROFS and info.value.filename == str(tmpfs.path)
    tmpfs.remount("rw")
    check_writable(tmpfs.path, path)


def test_a_metrics_row_is_whole_or_absent_on_a_full_disk(tmpfs):
    # Before: a row was cut where the disk filled up and metrics.csv no longer parsed.
    from selfplay.loop import METRICS, _append_metrics

    path = tmpfs.path / "metrics.csv"
    row = {k: 1.2345678 for k in METRICS}
    _append_metrics(path, row)
    header = path.stat().st_size
    _append_metrics(path, row)
    row_bytes = path.stat().st_size - header
    while path.stat().st_size + row_bytes <= 4096:  # fill the first page but for part of a row
        _append_metrics(path, row)
    before = path.read_bytes()
    _fill(tmpfs.path)
    with pytest.raises(OSError) as info:
        _append_metrics(path, row)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before

    # A new file that got no room for its header stays empty and gets one later.
    (tmpfs.path / "filler").unlink()
    new = tmpfs.path / "new.csv"
    _fill(tmpfs.path)
    with pytest.raises(OSError):
        _append_metrics(new, row)
    assert new.read_bytes() == b""
    (tmpfs.path / "filler").unlink()
    _append_metrics(new, row)
    with open(new, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and list(rows[0]) == METRICS


def test_disk_errors_are_one_line_with_the_path_and_advice():
    from tabula.cli import _error_line

    line = _error_line(OSError(errno.ENOSPC, "No space left on device", "/r/train_state"))
    assert line.startswith("/r/train_state: No space left on device; disk full: free space")
    assert "run the same command again" in line
    line = _error_line(OSError(errno.EROFS, "Read-only file system", "/r"))
    assert line.startswith("/r: Read-only file system; remount it read-write")
    assert _error_line(PermissionError(errno.EPERM, "Operation not permitted")) == \
        "[Errno 1] Operation not permitted"  # not about a file: as it was


def test_a_failing_save_does_not_hide_the_error_that_stopped_training(tmp_path, monkeypatch):
    # Before: the save on the way out failed too (the disk is still full) and its
    # error replaced the first one.
    import torch

    from selfplay import config as cfg
    from selfplay import loop
    from selfplay.run import RunState
    from tests.selfplay.util import tiny_overrides

    calls = []

    def append(path, row):
        calls.append(row["iteration"])
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def save(self):
        raise OSError(errno.ENOSPC, "No space left on device", "train_state.safetensors")

    monkeypatch.setattr(loop, "_append_metrics", append)
    monkeypatch.setattr(RunState, "save", save)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = cfg.merge(cfg.preset("tictactoe"), tiny_overrides(
            "run.max_iterations=3", "run.checkpoint_every=1000"))
        with pytest.raises(OSError) as info:
            loop.train(config, tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert info.value.filename == str(tmp_path / "run" / "metrics.csv")


# `tabula train` ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def training(mounts):
    """A run on a small tmpfs: filled up, resumed with room, then remounted read-only."""
    fs = mounts(TRAIN_KB)
    run = fs.path / "run"
    r = SimpleNamespace(run=run)
    r.full = _tabula("train", "--run", run, *TRAIN, "--iterations", 100000, "--minutes", 2)
    r.full_files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    r.full_state = train_state(run)
    r.full_intact = _check_run(run)  # while the disk is still full
    fs.remount(f"size={ROOMY_KB}k")
    r.budget = r.full_state["extra"]["counters"]["iteration"] + 2
    r.resumed = _tabula("train", "--run", run, *TRAIN, "--iterations", r.budget)
    r.resumed_intact = _check_run(run)
    fs.remount("ro")
    r.before = _hashes(run)
    r.read_only = _tabula("train", "--run", run, *TRAIN, "--iterations", r.budget + 2)
    r.after = _hashes(run)
    fs.remount("rw")
    return r


def _check_run(run: Path) -> dict:
    """Loads every file of a run directory the way a resumed run reads it; what it found."""
    from safetensors.torch import load_file

    from selfplay import config as cfg
    from selfplay.loop import METRICS

    assert not list(run.rglob("*.tmp")), "temporary files left behind"
    cfg.from_dict(cfg.load_toml(run / "config.toml"))
    checkpoints = list_checkpoints(run / "checkpoints")
    for path in checkpoints:
        load_checkpoint(path)  # hash verified
    state = train_state(run)
    load_file(run / "train_state.safetensors")
    assert (run / "checkpoints" / state["extra"]["checkpoint"]).exists()
    games = shard_games(run)
    rows = []
    if (run / "metrics.csv").exists():
        with open(run / "metrics.csv", newline="") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == METRICS
            rows = list(reader)
        for row in rows:
            assert None not in row and None not in row.values(), row
    iterations = [int(r["iteration"]) for r in rows]
    assert iterations == sorted(set(iterations))
    return {"checkpoints": len(checkpoints), "shards": len(games), "rows": iterations,
            "iteration": state["extra"]["counters"]["iteration"]}


def test_train_on_a_full_disk_stops_with_one_line_and_whole_files(training):
    line = _assert_one_line_error(training.full, str(training.run) + "/",
                                  "No space left on device", "disk full",
                                  "run the same command again")
    assert training.full.stdout == ""
    # It trained a while before the disk filled, and what it saved is whole.
    found = training.full_intact
    assert found["iteration"] >= 1 and found["checkpoints"] >= 1 and found["shards"] >= 1, found
    # A row per saved iteration; the last one's may be missing (the disk filled up
    # between the train state and its row), none is past it.
    rows = found["rows"]
    assert rows[:found["iteration"] - 1] == list(range(1, found["iteration"])), (found, line)
    assert rows[-1] <= found["iteration"], (found, line)


def test_train_resumes_with_the_same_command_once_there_is_room(training):
    proc = training.resumed
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("trained 2 iterations"), proc.stdout
    found = training.resumed_intact
    assert found["iteration"] == training.budget
    assert found["rows"][-2:] == [training.budget - 1, training.budget]
    assert found["shards"] > training.full_intact["shards"]
    assert (training.run / "metrics.png").exists()


def test_train_refuses_a_read_only_run_directory_before_any_work(training):
    _assert_one_line_error(training.read_only, f"{training.run}: Read-only file system",
                           "remount it read-write")
    assert training.read_only.stdout == ""
    assert training.after == training.before


# `tabula arena` ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tournament(mounts):
    """A tournament whose database fills a small tmpfs, resumed with room, then read-only."""
    from tests.conftest import make_checkpoint

    fs = mounts(ARENA_KB)
    run = fs.path / "run"
    for i, step in enumerate((0, 10)):
        make_checkpoint(run / "checkpoints" / f"step-{step:08d}.safetensors", "tictactoe",
                        seed=i, sims=2, step=step)
    r = SimpleNamespace(run=run, db=run / "arena.sqlite")
    command = ["arena", run, "--games", ARENA_GAMES, "--sims", "2", "--no-progress"]
    r.full = _tabula(*command)
    r.full_games = _stored_games(r.db)  # while the disk is still full
    r.full_tmp = list(run.rglob("*.tmp"))
    fs.remount(f"size={ROOMY_KB}k")
    r.resumed = _tabula(*command)
    r.resumed_games = _stored_games(r.db)
    fs.remount("ro")
    r.before = _hashes(run)
    command[3] = ARENA_GAMES + 20
    r.read_only = _tabula(*command)
    r.after = _hashes(run)
    fs.remount("rw")
    return r


def _stored_games(db_path: Path) -> list:
    """Every stored game, read through the results API (the database must open)."""
    import sqlite3

    from arena.matches.results import ResultsDB

    with ResultsDB(db_path, readonly=True) as db:
        games = db.games()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:  # closed at once: an open connection keeps the tmpfs from being remounted
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    for g in games:
        assert g.record.rstrip().endswith(("1-0", "0-1", "1/2-1/2")), g.record
    return games


def test_arena_on_a_full_disk_stops_with_one_line_and_keeps_its_games(tournament):
    _assert_one_line_error(tournament.full, f"{tournament.db}: No space left on device",
                           "run the same command again")
    assert 0 < len(tournament.full_games) < ARENA_GAMES
    assert not tournament.full_tmp


def test_arena_resumes_without_duplicating_games(tournament):
    proc = tournament.resumed
    assert proc.returncode == 0, proc.stderr
    kept = len(tournament.full_games)
    assert f"arena: {ARENA_GAMES - kept} games played" in proc.stdout
    games = tournament.resumed_games
    assert sorted(g.index for g in games) == list(range(ARENA_GAMES))
    # The games stored before the disk filled are the same rows, unchanged.
    assert games[:kept] == tournament.full_games
    assert (tournament.run / "elo.csv").exists()


def test_arena_refuses_a_read_only_directory_before_playing(tournament):
    _assert_one_line_error(tournament.read_only, f"{tournament.run}: Read-only file system",
                           "remount it read-write")
    assert tournament.after == tournament.before
