"""kill -9 from outside, again and again: training and an arena tournament lose nothing.

One run directory (and one results database) lives through TABULA_KILLS
(default 10) real `kill -9`s at random moments: during start-up and resume,
self-play, learning, and the writes of shards, checkpoints and the train
state. After each kill the test checks what a restart finds, independently
of the code that wrote it: every shard and checkpoint reads, every finished
game on disk is still there byte for byte and counted exactly once, the
learner step went back by at most one checkpoint interval, and the restored
optimiser and random state are the ones saved with the weights.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from checkpoints import list_checkpoints, load_checkpoint
from selfplay.run import RunLock, RunState, prepare_run, remove_stale_temps
from tests.arena.gated_arena import open_gate
from tests.conftest import make_checkpoint
from tests.selfplay.util import TINY, all_shards, metrics, shard_games, train_state

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
KILLS = int(os.environ.get("TABULA_KILLS", "10"))
EVERY = 2  # run.checkpoint_every
STEPS_PER_ITERATION = 3  # learner.max_steps_per_iteration in TINY
TIMEOUT = 240
GATED = REPO / "tests" / "arena" / "gated_arena.py"
GATE_GAMES = 30
"""Most games one killed arena session may store."""


def _seed() -> int:
    return int(os.environ.get("TABULA_KILL_SEED", random.randrange(2**31)))


def _kill_after(proc: subprocess.Popen, ready, delay: float) -> bool:
    """Waits for `ready()` (or the deadline), sleeps `delay`, sends SIGKILL.

    Returns False when the process ended by itself first.
    """
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "no progress before the deadline"
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def _rows(run: Path) -> int:
    try:
        return (run / "metrics.csv").read_text().count("\n")
    except FileNotFoundError:
        return 0


def _shards(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in all_shards(run)}


def _check_resumable(run: Path, shards_seen: dict[str, bytes], top_step: int, where: str
                     ) -> tuple[int, int]:
    """What a restart finds after a kill; returns (iteration, learner step) resumed."""
    now = _shards(run)  # replay.archive: shards older than the window are moved, not lost
    for name, data in shards_seen.items():  # finished games on disk are never lost
        assert now.get(name) == data, (name, where)
    games = shard_games(run)  # every shard reads
    for path in list_checkpoints(run / "checkpoints"):  # none half-written
        load_checkpoint(path)
    saved = train_state(run)
    config = prepare_run(run, None)
    with RunLock(run):
        remove_stale_temps(run)
        assert not [p for p in run.rglob(".*.tmp")], where
        resumed = RunState(config, run)
    # Every finished game counted exactly once, and all of them in the window.
    assert resumed.counters["games"] == sum(games), where
    positions = sum(len(r) for p in all_shards(run)
                    for r in resumed._read_shard(p))
    assert resumed.counters["positions"] == positions, where
    assert resumed.replay.size == min(positions, resumed.replay.capacity), where
    # The learner went back at most one checkpoint interval.
    step = resumed.learner.step
    assert step == saved["step"] == load_checkpoint(resumed.checkpoint).meta["step"], where
    assert step >= top_step - EVERY * STEPS_PER_ITERATION, (step, top_step, where)
    # The optimiser state is the one of these weights: AdamW counted the same steps.
    opt = resumed.learner.optimizer.state_dict()["state"]
    if step:
        assert opt and all(int(s["step"]) == step for s in opt.values()), where
    else:
        assert not opt, where
    # The random state is the saved one (advanced by the actor's seed draw), not a fresh seed.
    expected = np.random.default_rng()
    expected.bit_generator.state = saved["extra"]["rng"]
    expected.integers(2**63)
    state = resumed.rng.bit_generator.state
    assert state == expected.bit_generator.state, where
    if resumed.counters["iteration"]:
        fresh = np.random.default_rng(config.run.seed)
        fresh.integers(2**63)
        assert state != fresh.bit_generator.state, where
    return resumed.counters["iteration"], step


def test_training_survives_repeated_kill_9(tmp_path):
    seed = _seed()
    rng = random.Random(seed)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tabula", "train", "--game", "tictactoe", "--run", str(run),
           *TINY, "--set", f"run.checkpoint_every={EVERY}", "--set", "replay.archive=true",
           "--iterations", "100000", "--no-progress"]
    shards_seen: dict[str, bytes] = {}
    top_step = 0
    moments = []
    for kill in range(KILLS):
        where = f"(kill {kill + 1} of {KILLS}; TABULA_KILL_SEED={seed})"
        rows = _rows(run)
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if kill > 0 and rng.random() < 0.3:  # during start-up or resume
            delay, ready = rng.uniform(0.3, 4.0), (lambda: True)
            moments.append(f"{delay:.2f} s after start")
        else:  # after this session's first iteration: play, learn, write
            delay, ready = rng.uniform(0.0, 1.5), (lambda: _rows(run) > max(rows, 1))
            moments.append(f"{delay:.2f} s after an iteration")
        assert _kill_after(proc, ready, delay), (proc.returncode, proc.stderr.read(), where)
        proc.stderr.close()
        if not (run / "train_state.safetensors").exists():
            continue  # killed before the first save: nothing to resume yet
        top_step = max([top_step, *(int(r["learner_step"]) for r in metrics(run)
                                    if r["learner_step"])])
        _check_resumable(run, shards_seen, top_step, where)
        shards_seen = _shards(run)
    assert len(moments) == KILLS
    # A last session finishes two more iterations and leaves a consistent run.
    iteration = train_state(run)["extra"]["counters"]["iteration"]
    cmd[cmd.index("--iterations") + 1] = str(iteration + 2)
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, (done.stderr, seed)
    assert done.stdout.startswith("trained 2 iterations"), (done.stdout, seed)
    _check_resumable(run, shards_seen, top_step, f"(after the last session; seed {seed})")
    state = train_state(run)["extra"]["counters"]
    assert state["games"] == sum(shard_games(run)) > 0
    # metrics.csv: one complete row per iteration of the surviving history, in order.
    rows = metrics(run)
    assert [int(r["iteration"]) for r in rows] == list(range(1, iteration + 3)), seed
    assert all(None not in r.values() for r in rows)
    assert not list(run.rglob(".*.tmp"))
    print(f"\ntraining: {KILLS} kill -9 survived (seed {seed}; {', '.join(moments)}); "
          f"{state['games']} finished games on disk, all counted once; "
          f"{len(list_checkpoints(run / 'checkpoints'))} checkpoints, all load")


def test_killed_learner_takes_its_actors_down_and_loses_no_chunk(tmp_path):
    """With an actor process: after kill -9 of the learner the actor exits, and the
    chunks it had written are taken into the replay by the next session."""
    import json

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tabula", "train", "--game", "tictactoe", "--run", str(run),
           *TINY, "--set", "run.checkpoint_every=1000", "--actors", "1", "--iterations",
           "100000", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert _kill_after(proc, lambda: _rows(run) > 2, 0.2), proc.stderr.read()
    proc.stderr.close()
    pids = list(json.loads((run / "actors.json").read_text()).values())
    assert pids
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"actors {pids} outlived their learner"
        time.sleep(0.1)
    shards = _shards(run)
    _check_resumable(run, shards, 0, "(actors)")
    waiting = {p.name: p.read_bytes() for p in (run / "incoming").glob("a*.msgpack")}
    iteration = train_state(run)["extra"]["counters"]["iteration"]
    cmd[cmd.index("--iterations") + 1] = str(iteration + 1)
    cmd[cmd.index("--actors") + 1] = "0"
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    after = _shards(run)
    assert all(after[name] == data for name, data in shards.items())
    new = set(after.values()) - set(shards.values())
    assert set(waiting.values()) <= new  # each waiting chunk became a shard as it was
    assert not list((run / "incoming").glob("a*.msgpack"))
    assert train_state(run)["extra"]["counters"]["games"] == sum(shard_games(run))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _games(db: Path) -> dict[tuple[str, int], tuple]:
    with sqlite3.connect(db, timeout=30) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("select match_key, idx, first, second, score, record "
                            "from games").fetchall()
    keyed = {(r[0], r[1]): r[2:] for r in rows}
    assert len(keyed) == len(rows)  # no game stored twice
    return keyed


def test_arena_tournament_survives_repeated_kill_9(tmp_path):
    # A round robin of 8 checkpoints: 28 matches played one after another. The games
    # of one match run in lockstep and finish within a few plies of each other, so a
    # session killed at a random moment leaves most matches to the next one.
    seed = _seed()
    rng = random.Random(seed)
    run = tmp_path / "run"
    players = 8
    for i in range(players):
        make_checkpoint(run / "checkpoints" / f"step-{10 * i:08d}.safetensors", "tictactoe",
                        seed=i, sims=2, step=10 * i)
    db = run / "arena.sqlite"
    per_match = max(10, 4 * KILLS)
    matches = players * (players - 1) // 2
    total = matches * per_match
    cmd = [sys.executable, "-m", "tabula", "arena", str(run), "--round-robin", "--games",
           str(per_match), "--sims", "2", "--no-progress"]
    # Each killed session stores at most GATE_GAMES games (tests/arena/gated_arena.py), so
    # that no machine is fast enough to finish the tournament before its kill.
    gate = tmp_path / "gate"
    open_gate(gate, GATE_GAMES)
    gated = [sys.executable, str(GATED), str(gate), *cmd[3:]]
    seen: dict = {}
    for kill in range(KILLS):
        where = f"(arena kill {kill + 1} of {KILLS}; TABULA_KILL_SEED={seed})"
        before = len(seen)
        proc = subprocess.Popen(gated, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

        def stored() -> int:
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    return conn.execute("select count(*) from games").fetchone()[0]
            except sqlite3.Error:
                return 0

        if rng.random() < 0.3:
            delay, ready = rng.uniform(0.3, 3.0), (lambda: True)
        else:
            delay, ready = rng.uniform(0.0, 0.5), (lambda: stored() > before)
        assert _kill_after(proc, ready, delay), (proc.stderr.read(), where)
        proc.stderr.close()
        if not db.exists():
            continue
        games = _games(db)
        for key, game in seen.items():  # nothing stored is lost or changed
            assert games.get(key) == game, (key, where)
        assert len(games) < total, where
        seen = games
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"arena: {total - len(seen)} games played" in done.stdout, done.stdout
    games = _games(db)
    assert all(games[key] == game for key, game in seen.items())
    keys = {key for key, _ in games}
    assert len(keys) == matches
    for key in keys:
        assert sorted(idx for k, idx in games if k == key) == list(range(per_match)), key
    print(f"\narena: {KILLS} kill -9 survived (seed {seed}); {len(seen)} games stored before "
          f"the last kill kept unchanged; {total} games in {matches} matches, each index once")


def test_a_second_trainer_on_the_same_run_is_refused_until_the_first_ends(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tabula", "train", "--game", "tictactoe", "--run", str(run),
           *TINY, "--iterations", "1", "--no-progress"]
    assert subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True,
                          timeout=TIMEOUT).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    cmd[cmd.index("--iterations") + 1] = "2"
    with RunLock(run):  # this process trains it
        refused = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                                 timeout=TIMEOUT)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"being trained by another process (pid {os.getpid()})" in refused.stderr
    assert {p: p.read_bytes() for p in run.rglob("*")
            if p.is_file() and p.name != ".lock"} == before
    # The lock went with its holder: now the same command resumes.
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0 and done.stdout.startswith("trained 1 iterations"), done.stderr
