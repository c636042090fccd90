"""`tabula train` end to end through real subprocesses: files, resume, kill -9, Ctrl-C, bad input.

Every process is tiny (tictactoe, a 1x8 network, 8 games, 4 simulations) and
runs with one torch thread; most of each one's time is Python start-up, so one
run lives through all the scenarios (the `session` fixture) and the tests
check what each step left behind.
"""

from __future__ import annotations

import dataclasses

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from checkpoints import list_checkpoints, load_checkpoint
from selfplay import config as cfg
from selfplay.replay import shard_paths
from tabula import cli
from tests.selfplay.util import TINY, metrics, shard_games, tiny_overrides, train_state

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # see conftest.py
TIMEOUT = 240
# The columns metrics.csv documents (selfplay/loop.py), in order.
COLUMNS = ["iteration", "time_s", "learner_step", "games", "positions", "buffer_positions",
           "selfplay/games", "selfplay/positions_per_s", "selfplay/evals_per_s",
           "selfplay/mean_batch", "selfplay/mean_game_length", "selfplay/first_player_score",
           "loss/policy", "loss/value", "loss/total", "learner/steps", "learner/steps_per_s",
           # MuZero's (empty in AlphaZero runs).
           "loss/reward", "selfplay/episodes", "selfplay/mean_return", "reanalyze/positions",
           # Telemetry (actors/* and memory/actors_mb empty without actor processes).
           "selfplay/sims_per_s", "time/network", "time/tree", "time/rules",
           "replay/games", "replay/bytes", "memory/learner_mb", "memory/actors_mb",
           "actors/alive", "actors/restarts",
           # Resources, to show they stay bounded (selfplay/telemetry.py).
           "process/open_files", "process/threads", "process/children",
           # Learning per evaluation: cumulative network evaluations, the learning rate,
           # the positions the (growing) window samples from.
           "evaluations", "learner/lr", "replay/sampled",
           # Go's auxiliary heads (network.aux_heads; empty otherwise).
           "loss/ownership", "loss/score",
           # The inference backend self-play ran, and the evaluation cache's hit rate.
           "selfplay/backend", "selfplay/cache_hit_rate"]
STEPS_PER_ITERATION = 3  # learner.max_steps_per_iteration in TINY


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tabula", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=ENV)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"tabula train did not finish in {TIMEOUT} s: {err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_for(condition, proc: subprocess.Popen, what: str) -> None:
    """Polls `condition()` while `proc` runs; fails if it ends or takes too long."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"training ended before {what}: rc {proc.returncode}\n"
                        f"{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} after {TIMEOUT} s")
        time.sleep(0.02)


def _snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """relative path -> (mtime_ns, sha256) of every file under `directory`.

    Leaves out `.lock`: the run-directory lock holds the pid of the last process
    that took it, a refused resume included.
    """
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns,
                                            hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".lock"}


def _assert_intact(run: Path) -> None:
    """Every checkpoint loads (hash verified) and every shard reads."""
    checkpoints = list_checkpoints(run / "checkpoints")
    assert checkpoints
    for path in checkpoints:
        load_checkpoint(path)
    shard_games(run)


def _assert_one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _learner_steps_never_drop_more_than_one_interval(run: Path, every: int) -> None:
    steps = [int(row["learner_step"]) for row in metrics(run)]
    for before, after in zip(steps, steps[1:]):
        assert after >= before - every * STEPS_PER_ITERATION, steps


GAME = ["--game", "tictactoe"]
RARELY = ["--set", "run.checkpoint_every=1000"]  # checkpoints only when the session ends
OFTEN = ["--set", "run.checkpoint_every=1"]  # [run] settings may change on resume
FOREVER = ["--iterations", "100000", "--minutes", "3"]


def _tamper_saved_checkpoint(run: Path) -> None:
    """Flips a weight byte of the checkpoint the train state resumes from."""
    path = run / "checkpoints" / train_state(run)["extra"]["checkpoint"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte belongs to a tensor
    path.write_bytes(bytes(data))


# Bad input, by name: (arguments, how to prepare the directory, words of the error line).
BAD = {
    "another game's run": (["--game", "connect4"], "copy",
                           ["holds a tictactoe run, not connect4"]),
    "unknown --set key": (["--set", "search.num_simulation=8"], "copy",
                          ["unknown config key search.num_simulation",
                           "did you mean search.num_simulations?"]),
    "changed [search]": (["--set", "search.num_simulations=8"], "copy",
                         ["only [run] and [arena] settings can change", "search.num_simulations 4 -> 8"]),
    "not a run": (["--game", "tictactoe"], "not a run",
                  ["not a Tabula run directory (no config.toml)"]),
    "tampered checkpoint": ([], "tamper", ["cannot resume", "hash mismatch", "step-"]),
    "new run, unknown section": (["--set", "serch.num_simulations=8"], "new",
                                 ["unknown config section 'serch' (did you mean search?)"]),
}
BAD_IN_SUBPROCESSES = ["another game's run"]  # the others run in-process below


def _bad_run_dir(source: Path, root: Path, how: str) -> Path:
    run = root / "run"
    if how == "not a run":
        run.mkdir(parents=True)
        (run / "notes.txt").write_text("my notes")
    elif how in ("copy", "tamper"):
        shutil.copytree(source, run)
        if how == "tamper":
            _tamper_saved_checkpoint(run)
    return run


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One run through three `tabula train` processes, as a user might live it.

    1. A new run, stopped with Ctrl-C (SIGINT) after its first iteration.
    2. The same command, now checkpointing every iteration and without an
       iteration budget, killed with SIGKILL at a random moment after it
       saved its first checkpoint.
    3. The same command with a budget of two more iterations; alongside it,
       a bad-input command on a copy of the killed run.
    Returns what each step left behind; the tests below check it.
    """
    run = tmp_path_factory.mktemp("train") / "run"
    r = SimpleNamespace(run=run, seed=random.randrange(10**6))
    rand = random.Random(r.seed)
    r.int_delay, r.kill_delay = rand.uniform(0.0, 0.5), rand.uniform(0.0, 1.5)
    state_path = run / "train_state.safetensors"
    procs = [_start("--run", run, "--no-progress", *TINY, *GAME, *RARELY, *FOREVER)]
    try:
        _wait_for(lambda: (run / "metrics.csv").exists(), procs[0], "an iteration")
        time.sleep(r.int_delay)
        procs[0].send_signal(signal.SIGINT)
        r.stopped = _finish(procs[0])
        r.stopped_state = train_state(run)
        r.stopped_metrics = metrics(run)
        r.stopped_checkpoints = list_checkpoints(run / "checkpoints")
        r.stopped_shards = shard_games(run)

        saved = _mtime(state_path)
        procs = [_start("--run", run, "--no-progress", *TINY, *GAME, *OFTEN, *FOREVER)]
        _wait_for(lambda: _mtime(state_path) != saved, procs[0], "a new checkpoint")
        time.sleep(r.kill_delay)
        r.shards_at_kill = {p.name: p.read_bytes() for p in shard_paths(run / "replay")}
        procs[0].send_signal(signal.SIGKILL)
        r.killed = _finish(procs[0])
        r.killed_state = train_state(run)
        r.killed_metrics = metrics(run)
        r.killed_newest = load_checkpoint(list_checkpoints(run / "checkpoints")[-1]).meta

        r.bad_dirs, r.bad_before, bad = {}, {}, {}
        for i, name in enumerate(BAD_IN_SUBPROCESSES):
            args, how, _ = BAD[name]
            r.bad_dirs[name] = _bad_run_dir(run, run.parent / f"bad{i}", how)
            r.bad_before[name] = _snapshot(r.bad_dirs[name])
            bad[name] = _start("--run", r.bad_dirs[name], "--no-progress", *TINY, *args)
        r.budget = r.killed_state["extra"]["counters"]["iteration"] + 2
        procs = [_start("--run", run, "--no-progress", *TINY, *GAME, *OFTEN,
                        "--iterations", r.budget), *bad.values()]
        r.finished = _finish(procs[0])
        r.bad_results = {name: _finish(proc) for name, proc in bad.items()}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return r


def test_ctrl_c_saves_and_prints_the_summary(session):
    first = session.stopped
    # A clean stop: exit 130 (the shell's code for a command stopped by Ctrl-C,
    # so `tabula train ... && next` does not go on), the summary, no traceback.
    assert first.returncode == 130, first.stderr
    assert "Traceback" not in first.stderr
    line = first.stdout.splitlines()[0]
    assert line.startswith("trained ") and "(interrupted; resume with the same command)" in line
    # The checkpoint is at the current learner step (periodic ones are 1000 iterations apart).
    state, rows = session.stopped_state, session.stopped_metrics
    assert len(session.stopped_checkpoints) == 1 and str(session.stopped_checkpoints[0]) in line
    meta = load_checkpoint(session.stopped_checkpoints[0]).meta
    assert meta["step"] == state["step"] == int(rows[-1]["learner_step"])
    assert f"learner step {state['step']}" in line
    assert state["extra"]["counters"]["iteration"] == len(rows)
    assert state["extra"]["counters"]["games"] == sum(session.stopped_shards)


def test_kill_9_at_a_random_moment_then_resume(session):
    run = session.run
    where = f"(kill {session.kill_delay:.2f} s after a checkpoint; seed {session.seed})"
    assert session.killed.returncode == -signal.SIGKILL, where
    # The killed session resumed the stopped one and saved at least once.
    before, saved = session.stopped_state, session.killed_state
    assert saved["extra"]["counters"]["iteration"] > before["extra"]["counters"]["iteration"]
    assert saved["step"] > before["step"], where
    # What the kill left: the train state at most one interval behind the newest checkpoint.
    assert saved["step"] <= session.killed_newest["step"] <= saved["step"] + STEPS_PER_ITERATION

    proc = session.finished
    assert proc.returncode == 0, (where, proc.stderr)
    assert proc.stdout.startswith("trained 2 iterations"), where
    _assert_intact(run)
    for name, data in session.shards_at_kill.items():  # finished games on disk are never lost
        assert (run / "replay" / name).read_bytes() == data, (name, where)
    rows = metrics(run)
    counted = saved["extra"]["counters"]["iteration"]
    # An iteration's row is written before its save: a kill between the two leaves one
    # row past the saved iteration, which the resume drops and plays again. Every saved
    # iteration keeps its row.
    kept = [r for r in session.killed_metrics if int(r["iteration"]) <= counted]
    n = len(kept)
    assert len(session.killed_metrics) - n in (0, 1), where
    assert rows[:n] == kept
    assert n == counted, where
    assert [int(r["iteration"]) for r in rows] == [*range(1, n + 1), counted + 1, counted + 2]
    assert int(rows[n]["learner_step"]) > saved["step"], where
    _learner_steps_never_drop_more_than_one_interval(run, every=1)
    final = train_state(run)["extra"]["counters"]
    assert final["iteration"] == counted + 2, where
    assert final["games"] == sum(shard_games(run)), where


def test_resumed_sessions_continue_the_counters(session):
    rows = metrics(session.run)
    first = len(session.stopped_metrics)
    assert rows[:first] == session.stopped_metrics
    steps = [int(r["learner_step"]) for r in rows]
    games = [int(r["games"]) for r in rows]
    # The stopped session's last iteration may have been cut short; each later one trains.
    assert steps[first] > steps[first - 1] and games[first] > games[first - 1]
    assert train_state(session.run)["step"] == steps[-1]
    checkpoints = list_checkpoints(session.run / "checkpoints")
    parents = {p.name: load_checkpoint(p).meta["parent"] for p in checkpoints}
    assert parents[checkpoints[0].name] is None
    assert parents[checkpoints[-1].name] in parents  # each checkpoint names an earlier one
    assert all(parent is None or parent < name for name, parent in parents.items())


def test_a_run_writes_everything_it_needs(session):
    run, proc = session.run, session.finished
    out = proc.stdout.splitlines()
    assert out[0].startswith("trained ") and "learner step" in out[0]
    assert out[1].startswith("play against it: tabula play --game tictactoe --checkpoint ")
    assert "Traceback" not in proc.stderr
    # The resolved configuration of the new run, exactly as first asked.
    saved = cfg.from_dict(cfg.load_toml(run / "config.toml"))
    assert saved == cfg.merge(cfg.preset("tictactoe"), tiny_overrides(
        "run.checkpoint_every=1000", "run.max_iterations=100000", "run.max_minutes=3"))
    # Metrics: the documented columns, consistent with the shards.
    rows = metrics(run)
    assert (run / "metrics.csv").read_text().splitlines()[0].split(",") == COLUMNS
    games = shard_games(run)
    assert min(games) > 0
    # The last session's two iterations wrote the last two shards; `games` counts
    # every game on disk (including those of an iteration the kill cut short).
    assert [int(r["selfplay/games"]) for r in rows[-2:]] == games[-2:]
    assert [int(r["games"]) for r in rows[-2:]] == [sum(games[:-1]), sum(games)]
    assert all(float(r["loss/total"]) > 0 for r in rows if r["learner/steps"])
    for r in rows:  # telemetry: 4 simulations per move, a split of the actor's time
        assert float(r["selfplay/sims_per_s"]) == pytest.approx(
            4 * float(r["selfplay/positions_per_s"]), rel=1e-3)
        assert sum(float(r[k]) for k in ("time/network", "time/tree", "time/rules")) == \
            pytest.approx(1.0, abs=1e-3)
        assert 0 < int(r["replay/games"]) <= int(r["games"])
        assert int(r["replay/bytes"]) > 0 and float(r["memory/learner_mb"]) > 50
        assert r["memory/actors_mb"] == r["actors/alive"] == ""
    # Checkpoints: verified, the train state names the last, counters agree.
    checkpoints = list_checkpoints(run / "checkpoints")
    metas = [load_checkpoint(p).meta for p in checkpoints]
    assert metas[-1]["step"] == int(rows[-1]["learner_step"]) > 0
    assert metas[-1]["games"] == sum(games)
    assert metas[-1]["extra"]["iteration"] == int(rows[-1]["iteration"])
    # The whole search configuration, so a Player searches as training did.
    assert metas[-1]["extra"]["search"] == dataclasses.asdict(saved.search)
    assert metas[-1]["extra"]["search"]["num_simulations"] == 4
    state = train_state(run)
    assert state["extra"]["checkpoint"] == checkpoints[-1].name
    assert state["extra"]["counters"] == {"iteration": int(rows[-1]["iteration"]),
                                          "games": sum(games),
                                          "positions": int(rows[-1]["positions"]),
                                          "evaluations": int(rows[-1]["evaluations"])}
    assert metas[-1]["extra"]["evaluations"] == int(rows[-1]["evaluations"])
    assert state["step"] == metas[-1]["step"]
    assert str(checkpoints[-1]) in out[0]


@pytest.mark.parametrize("name", BAD_IN_SUBPROCESSES)
def test_bad_input_through_the_real_command(session, name):
    proc = session.bad_results[name]
    _assert_one_line_error(proc, *BAD[name][2])
    assert str(session.bad_dirs[name]) in proc.stderr and proc.stdout == ""
    assert _snapshot(session.bad_dirs[name]) == session.bad_before[name]  # same bytes, mtimes


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_written(session, name, tmp_path, capsys):
    # In-process (cli.main, as `tabula` runs it) to save a start-up per case.
    args, how, words = BAD[name]
    run = _bad_run_dir(session.run, tmp_path, how)
    before = _snapshot(run) if run.exists() else None
    assert cli.main(["train", "--run", str(run), "--no-progress", *TINY, *args]) == 2
    out, err = capsys.readouterr()
    _assert_one_line_error(subprocess.CompletedProcess([], 2, out, err), *words)
    assert out == ""
    assert (_snapshot(run) if run.exists() else None) == before
