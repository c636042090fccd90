"""The training loop: self-play, replay, learn, checkpoint, repeat.

A run directory holds everything a run needs to resume:

    config.toml                 the resolved configuration
    checkpoints/step-*.safetensors
    train_state.safetensors     optimiser, RNG states, counters, latest checkpoint,
                                next shard index
    replay/shard-*.msgpack      finished games, one shard per iteration (or actor chunk)
    incoming/a*.msgpack         actor chunks not yet taken into replay/
    latest.json                 the checkpoint actor processes play with
    metrics.csv                 one row per iteration
    .lock                       held by the process training the run

With run.actors 0 an iteration plays a chunk in this process, writes its
shard and trains. Otherwise actors (selfplay/parallel.py: local processes or
Ray) play all the time and an iteration takes in the chunks that arrived,
trains on them and, every checkpoint_every iterations, publishes a new
checkpoint. Shards, checkpoints and the train state are written atomically;
a run killed at any moment resumes from the last train state and loses at
most the games that were in flight (shards and chunks written after that
train state are read back and counted).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from selfplay import config as cfg
from selfplay import telemetry
from selfplay.evaluation import TrainingArena
from selfplay.parallel import resolve_actors
from selfplay.pools import make_pool
from selfplay.records import ReplayError
from selfplay.algorithms import is_finished
from selfplay.run import RunError, RunLock, RunState, prepare_run, remove_stale_temps
from selfplay.worker import INCOMING

__all__ = ["METRICS", "RunError", "Summary", "prepare_run", "train"]

METRICS = ["iteration", "time_s", "learner_step", "games", "positions", "buffer_positions",
           "selfplay/games", "selfplay/positions_per_s", "selfplay/evals_per_s",
           "selfplay/mean_batch", "selfplay/mean_game_length", "selfplay/first_player_score",
           "loss/policy", "loss/value", "loss/total", "learner/steps", "learner/steps_per_s",
           "loss/reward", "selfplay/episodes", "selfplay/mean_return", "reanalyze/positions",
           "selfplay/sims_per_s", "time/network", "time/tree", "time/rules",
           "replay/games", "replay/bytes", "memory/learner_mb", "memory/actors_mb",
           "actors/alive", "actors/restarts", "process/open_files", "process/threads",
           "process/children", "evaluations", "learner/lr", "replay/sampled",
           "loss/ownership", "loss/score", "selfplay/backend",
           "selfplay/cache_hit_rate"]


@dataclass
class Summary:
    """What a call to `train` did."""

    run_dir: Path
    iterations: int = 0
    games: int = 0
    positions: int = 0
    learner_step: int = 0
    seconds: float = 0.0
    checkpoint: Path | None = None
    interrupted: bool = False
    last: dict = field(default_factory=dict)

    def line(self) -> str:
        loss = self.last.get("loss/total")
        loss_text = f", loss {loss:.3f}" if isinstance(loss, float) else ""
        stop = " (interrupted; resume with the same command)" if self.interrupted else ""
        return (f"trained {self.iterations} iterations in {self.seconds / 60:.1f} min: "
                f"{self.games} games, {self.positions} positions, learner step "
                f"{self.learner_step}{loss_text}; checkpoint {self.checkpoint}{stop}")


class _Stop:
    """Turns the first Ctrl-C (or SIGTERM) into a request to stop cleanly.

    The loop checks the request between moves and gradient steps, saves and
    returns; a second Ctrl-C interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def __enter__(self):
        return self.install()

    def install(self) -> "_Stop":
        """Takes the signals (again: ray.init installs a SIGTERM handler that aborts)."""
        for sig in self.SIGNALS:
            try:
                previous = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                continue
            self._previous.setdefault(sig, previous)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def __call__(self) -> bool:
        return self.requested


def _append_metrics(path: Path, row: dict) -> int:
    """Appends one row (and the header to a new file), whole or not at all (blocking).

    Returns the file's size before the row, so that a caller can take it back.

    Raises:
      OSError naming `path` (e.g. disk full); the file is then as it was.
    """
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=METRICS, extrasaction="ignore")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        data = text.getvalue().encode()
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as e:
            # A full disk takes part of a row: cut it off, so the file stays readable.
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise OSError(e.errno, e.strerror, str(path)) from e
    finally:
        os.close(fd)
    return size


def _take_back_metrics(path: Path, size: int) -> None:
    """Cuts metrics.csv back to `size` bytes: the row of an iteration whose save failed."""
    try:
        os.truncate(path, size)
    except OSError:
        pass  # the resume's _repair_metrics drops a row past the saved iteration anyway


def _repair_metrics(path: Path, iteration: int) -> None:
    """Makes metrics.csv agree with the train state a run resumes from.

    A run killed after appending rows but before saving resumes at an earlier
    iteration: its rows past `iteration` describe learner steps that are gone
    and are dropped, as is a row cut short. Older files get today's columns.
    """
    if not path.exists():
        return
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return  # damaged beyond repair: left for the user; new rows are still appended
    rows = list(csv.DictReader(text.splitlines()))
    kept = [r for r in rows
            if r.get("iteration", "").isdigit() and int(r["iteration"]) <= iteration
            and None not in r.values() and None not in r]
    header = text.split("\n", 1)[0].split(",")
    if len(kept) == len(rows) and header == METRICS and text.endswith("\n"):
        return
    from checkpoints.files import atomic_write_bytes

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRICS, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_bytes(path, out.getvalue().encode())


def _iteration(run: RunState, evaluator, stop) -> dict:
    c = run.config
    actor = run.actor
    moves_before = actor.moves_played
    sims_before = getattr(actor, "simulations", None)  # MuZero's actor: full searches only
    before = telemetry.snapshot(actor.timings)
    hits_before = getattr(evaluator, "hits", 0)
    t0 = time.perf_counter()
    records = actor.play(evaluator, c.selfplay.moves_per_iteration, stop)
    t1 = time.perf_counter()
    moves = actor.moves_played - moves_before
    sims = (moves * c.search.num_simulations if sims_before is None
            else actor.simulations - sims_before)
    chunk = telemetry.chunk_stats(before, actor.timings, moves, sims,
                                  sum(is_finished(r) for r in records), t1 - t0)
    chunk["backend"] = getattr(evaluator, "backend", "")
    chunk["cache_hits"] = getattr(evaluator, "hits", 0) - hits_before
    chunk.update(run.algo.take_chunk_extras(actor))
    if records:
        run.write_shard(records)
        run.add(records)
    return _learn(run, evaluator, stop, records, moves, [chunk],
                  run.algo.value_bounds(run.game))


def _learn(run: RunState, evaluator, stop, records: list, moves: int, chunks: list[dict],
           value_bounds) -> dict:
    """The algorithm's work before training (MuZero: reanalyse), training on the new
    positions; the iteration's metrics row."""
    c = run.config
    records, extra = run.algo.before_training(run, evaluator, records, moves, chunks,
                                              value_bounds, stop)
    losses: dict = {}
    t2 = time.perf_counter()
    # At least one position: sampling an empty window fails (min_positions may be 0).
    if run.replay.size >= max(c.replay.min_positions, 1) and moves and not stop():
        steps = min(c.learner.max_steps_per_iteration,
                    max(1, math.ceil(moves * c.learner.replay_ratio / c.learner.batch_size)))
        losses, trained = run.algo.train(run, steps, stop)
        extra.update(trained)
    t3 = time.perf_counter()
    run.counters["iteration"] += 1
    # Network evaluations: the search's requests less those the cache answered.
    run.counters["evaluations"] += sum(int(ch.get("evaluations", 0)) - int(ch.get("cache_hits", 0))
                                       for ch in chunks)
    return {
        "iteration": run.counters["iteration"], "learner_step": run.learner.step,
        "games": run.counters["games"], "positions": run.counters["positions"],
        "evaluations": run.counters["evaluations"],
        "buffer_positions": run.replay.size, "selfplay/games": len(records),
        **telemetry.combine(chunks),
        "selfplay/mean_game_length": (float(np.mean([len(r) for r in records]))
                                      if records else float("nan")),
        "selfplay/first_player_score": (float(np.mean([(r.returns[0] + 1) / 2 for r in records]))
                                        if records and records[0].returns is not None
                                        and len(records[0].returns) > 1 else float("nan")),
        "replay/games": run.replay.games, "replay/bytes": run.replay.nbytes(),
        "memory/learner_mb": telemetry.rss_bytes() / 2**20,
        "process/open_files": telemetry.open_files(), "process/threads": telemetry.threads(),
        "process/children": telemetry.child_processes(),
        **extra,
        **losses,
        "learner/steps_per_s": losses.get("learner/steps", 0) / max(t3 - t2, 1e-9),
    }


def _incoming(run_dir: Path) -> list[Path]:
    """Actor chunks waiting in incoming/, oldest first."""
    paths = []
    for p in (run_dir / INCOMING).glob("a*.msgpack"):
        try:
            paths.append((p.stat().st_mtime_ns, p.name, p))
        except FileNotFoundError:
            pass
    return [p for *_, p in sorted(paths)]


def _ingest(run: RunState, paths: list[Path], log) -> list:
    """Takes actor chunks into the replay; a damaged one is set aside with a warning."""
    records: list = []
    for path in paths:
        try:
            records += run.ingest(path)
        except ReplayError as e:
            log(f"tabula: warning: {e}; moved to {INCOMING}/rejected/")
    return records


def _parallel_iteration(run: RunState, pool, stop, log, go_on) -> dict | None:
    """Waits for actor chunks, moves them into the replay, trains: one iteration.

    Returns None when `go_on()` turned false (stop or budget) before a chunk came.
    """
    chunks: list[dict] = []
    paths: list[Path] = []
    while not paths:
        if not go_on():
            return None
        pool.supervise()
        chunks += pool.collect(timeout=0.2)
        paths = _incoming(run.run_dir)
    batch_before = pool.batch_stats()
    records = _ingest(run, paths, log)
    chunks += pool.collect(timeout=0)
    moves = sum(len(r) for r in records)
    evaluator = (run.evaluator() if run.algo.wants_evaluator_for_learning(run.config)
                 else None)
    row = _learn(run, evaluator, stop, records, moves, chunks, run.algo.value_bounds(run.game))
    batch_after = pool.batch_stats()
    if batch_before and batch_after and batch_after["batches"] > batch_before["batches"]:
        row["selfplay/mean_batch"] = ((batch_after["evaluations"] - batch_before["evaluations"])
                                      / (batch_after["batches"] - batch_before["batches"]))
    row["memory/actors_mb"] = pool.rss() / 2**20
    row["actors/alive"] = pool.alive()
    row["actors/restarts"] = pool.restarts
    return row


def _actor_evaluator(run: RunState, arena: TrainingArena):
    """The newest weights, or with gating the promoted checkpoint's (once there is one)."""
    if not arena.gating:
        return run.evaluator()
    path = arena.promoted_path() or run.checkpoint
    if path is None:  # gating before the first checkpoint: the initial weights
        return run.evaluator()
    cached = getattr(arena, "evaluator_cache", None)
    if cached is None or cached[0] != path:
        arena.evaluator_cache = (path, _checkpoint_evaluator(run, path))
    return arena.evaluator_cache[1]


def _checkpoint_evaluator(run: RunState, path: Path):
    return run.algo.checkpoint_evaluator(path, run.game, run.config)


def _budget_left(config: cfg.TrainConfig, run: RunState, start: float) -> bool:
    r = config.run
    if r.max_iterations and run.counters["iteration"] >= r.max_iterations:
        return False
    if r.max_minutes and time.perf_counter() - start >= r.max_minutes * 60:
        return False
    return True


def _budget_used(config: cfg.TrainConfig, run: RunState, start: float) -> float:
    """The share (0 to 1) of this session's budget spent: the larger of the iteration and
    the time shares; 0 without a budget."""
    r = config.run
    used = 0.0
    if r.max_iterations:
        used = run.counters["iteration"] / r.max_iterations
    if r.max_minutes:
        used = max(used, (time.perf_counter() - start) / (r.max_minutes * 60))
    return min(used, 1.0)


def train(config: cfg.TrainConfig | None, run_dir: Path, overrides: dict | None = None,
          progress: bool = True) -> Summary:
    """Trains (or resumes) the run in `run_dir` until its budget is spent. Blocks.

    With run.actors 0 self-play and training alternate in this process;
    otherwise actor processes (run.backend local) or Ray actors (ray) play
    while this process trains. Ctrl-C stops after the current move or
    gradient step and saves; a second Ctrl-C interrupts at once.

    Raises:
      RunError, ConfigError: the run directory or settings cannot be used.
      PoolError: actors keep dying (the run is saved first).
      OSError: a file cannot be written (read-only directory: before any work;
        disk full: every file written so far is whole), naming the path.

    The directory is locked (selfplay.run.RunLock) while it trains; temporary
    files a killed session left are deleted, and metrics.csv rows past the
    resumed iteration dropped.
    """
    from checkpoints.files import check_writable

    run_dir = Path(run_dir)
    config = prepare_run(run_dir, config, overrides)
    # A read-only or foreign directory is refused now, not at the first save.
    check_writable(run_dir, *(run_dir / sub for sub in ("checkpoints", "replay", "games",
                                                        "incoming", "metrics.csv")))
    with RunLock(run_dir):
        return _train_locked(config, run_dir, progress)


def _train_locked(config: cfg.TrainConfig, run_dir: Path, progress: bool) -> Summary:
    from selfplay.progress import training_progress

    remove_stale_temps(run_dir)
    run = RunState(config, run_dir)
    _repair_metrics(run_dir / "metrics.csv", run.counters["iteration"])
    summary = Summary(run_dir)
    start = time.perf_counter()
    total = config.run.max_iterations or None
    pool = None
    with _Stop() as stop, training_progress(total, run.counters["iteration"],
                                            f"train {config.game}", progress) as bar:
        log = bar.write if progress else print
        if config.run.backend == "ray" or resolve_actors(config.run.actors) > 0:
            pool = make_pool(run_dir, config, log)
            stop.install()
        try:
            _train_loop(run, config, pool, summary, stop, bar, log, start, progress)
        finally:
            if pool is not None:
                pool.close()
    summary.checkpoint = run.checkpoint
    summary.interrupted = stop()
    summary.seconds = time.perf_counter() - start
    if (run_dir / "metrics.csv").exists():
        from selfplay.plots import plot_metrics
        try:
            plot_metrics(run_dir / "metrics.csv", run_dir / "metrics.png", f"{config.game} training")
        except (OSError, ValueError) as e:  # a plot is a convenience; the run is saved
            print(f"tabula: note: could not draw {run_dir / 'metrics.png'}: {e}")
    summary.games = run.counters["games"]
    summary.positions = run.counters["positions"]
    summary.learner_step = run.learner.step
    return summary


def _train_loop(run: RunState, config: cfg.TrainConfig, pool, summary: Summary, stop, bar, log,
                start: float, progress_bar: bool = True) -> None:
    run_dir = run.run_dir
    # The iteration last saved: counters and shards advance even in iterations
    # without training, so comparing learner steps would lose them on resume.
    saved_at = run.counters["iteration"] if run.checkpoint else -1
    arena = TrainingArena(config, run_dir, stop)
    _ingest(run, _incoming(run_dir), log)  # chunks that arrived after the last save
    if pool is None:
        evaluator = _actor_evaluator(run, arena)
    else:
        if run.checkpoint is None:  # the actors start from the initial weights
            run.save()
            saved_at = run.counters["iteration"]
        published = _actor_checkpoint(run, arena)
        pool.publish(published)
        pool.start(run.counters["iteration"])
        pids = _write_pids(run_dir, pool)
        if pool.threads_for_learner:
            torch.set_num_threads(pool.threads_for_learner)
        log(f"tabula: {pool.count} {config.run.backend} actor{'s' if pool.count > 1 else ''} "
            f"playing {published.name}; the learner trains as their games arrive")
    def go_on() -> bool:
        return _budget_left(config, run, start) and not stop()

    backend_logged = ""

    try:
        while go_on():
            run.progress = _budget_used(config, run, start)
            if pool is None:
                row = _iteration(run, evaluator, stop)
            else:
                row = _parallel_iteration(run, pool, stop, log, go_on)
                if pool.pids() != pids:
                    pids = _write_pids(run_dir, pool)
                if row is None:
                    break
            row["time_s"] = time.perf_counter() - start
            summary.iterations += 1
            summary.last = row
            # The row goes first: a kill -9 after it and before the save leaves a row
            # that the resume drops (_repair_metrics), never a saved iteration without
            # its row. A save that fails (a full disk) takes the row back.
            size = _append_metrics(run_dir / "metrics.csv", row)
            if row["iteration"] % config.run.checkpoint_every == 0 or stop():
                try:
                    summary.checkpoint = run.save()
                except OSError:
                    _take_back_metrics(run_dir / "metrics.csv", size)
                    raise
                saved_at = run.counters["iteration"]
                if arena.enabled() and not stop():
                    for line in arena.after_checkpoint(summary.checkpoint):
                        log(line)
            if (config.selfplay.inference_backend == "auto" and row.get("selfplay/backend")
                    and row["selfplay/backend"] != backend_logged):
                # What 'auto' measured, once (and again if it changes); a backend set by
                # name needs no announcement. On stderr, with the progress: stdout's
                # first line stays the summary.
                backend_logged = row["selfplay/backend"]
                choice = getattr(evaluator, "choice", None) if pool is None else None
                note = (f"tabula: {choice.describe()}" if choice is not None
                        else f"tabula: self-play inference backend {backend_logged} (auto)")
                if progress_bar:
                    bar.write(note, file=sys.stderr)
                else:
                    print(note, file=sys.stderr, flush=True)
            bar.update(1)
            bar.set_postfix_str(_progress_text(row))
            if pool is None:
                evaluator = _actor_evaluator(run, arena)
            else:
                newest = _actor_checkpoint(run, arena)
                if newest != published:
                    pool.publish(newest)
                    published = newest
    except BaseException:
        if saved_at != run.counters["iteration"] or run.checkpoint is None:
            try:
                summary.checkpoint = run.save()
            except OSError:  # e.g. the disk is full: report the error that stopped the run
                pass
        raise
    if saved_at != run.counters["iteration"] or run.checkpoint is None:
        summary.checkpoint = run.save()


def _progress_text(row: dict) -> str:
    def num(key, fmt=".0f"):
        value = row.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    text = (f"games {row['games']} pos/s {num('selfplay/positions_per_s')} "
            f"sims/s {num('selfplay/sims_per_s')} batch {num('selfplay/mean_batch')} "
            f"net/tree/rules {num('time/network', '.0%')}/{num('time/tree', '.0%')}/"
            f"{num('time/rules', '.0%')} replay {row['replay/games']}g "
            f"{row['replay/bytes'] / 2**20:.0f}MB rss {num('memory/learner_mb')}MB")
    if "memory/actors_mb" in row:
        text += f"+{num('memory/actors_mb')}MB"
    return text + f" loss {row.get('loss/total', float('nan')):.3f}"


def _actor_checkpoint(run: RunState, arena: TrainingArena) -> Path:
    """The checkpoint actor processes play with: the newest, or with gating the promoted one."""
    return (arena.promoted_path() if arena.gating else None) or run.checkpoint


def _write_pids(run_dir: Path, pool) -> dict:
    """actors.json: the actor (and server) processes, for the user and for tests."""
    from checkpoints.files import atomic_write_bytes

    pids = pool.pids()
    atomic_write_bytes(run_dir / "actors.json", json.dumps(pids).encode())
    return pids
