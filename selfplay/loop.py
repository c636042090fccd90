"""The training loop (local backend): self-play, replay, learn, checkpoint, repeat.

A run directory holds everything a run needs to resume:

    config.toml                 the resolved configuration
    checkpoints/step-*.safetensors
    train_state.safetensors     optimiser, RNG states, counters, latest checkpoint,
                                next shard index
    replay/shard-*.msgpack      finished games, one shard per iteration
    metrics.csv                 one row per iteration

Each iteration writes its shard, trains, then writes the checkpoint and the
train state, all atomically; a run killed at any moment resumes from the last
train state and loses at most the games that were in flight (shards written
after that train state are read back and counted).
"""

from __future__ import annotations

import csv
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.evaluator import make_evaluator
from engine.muzero_search import MuZeroInference
from selfplay import config as cfg
from selfplay.evaluation import TrainingArena
from selfplay.muzero_actor import reanalyze
from selfplay.run import RunError, _finished, _Run, prepare_run

__all__ = ["METRICS", "RunError", "Summary", "prepare_run", "train"]

METRICS = ["iteration", "time_s", "learner_step", "games", "positions", "buffer_positions",
           "selfplay/games", "selfplay/positions_per_s", "selfplay/evals_per_s",
           "selfplay/mean_batch", "selfplay/mean_game_length", "selfplay/first_player_score",
           "loss/policy", "loss/value", "loss/total", "learner/steps", "learner/steps_per_s",
           "loss/reward", "selfplay/episodes", "selfplay/mean_return", "reanalyze/positions"]


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
        for sig in self.SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
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


def _append_metrics(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())


def _iteration(run: _Run, evaluator, stop) -> dict:
    c = run.config
    actor = run.actor
    moves_before, evals_before = actor.moves_played, actor.timings.evaluations
    batches_before = actor.timings.batches
    t0 = time.perf_counter()
    records = actor.play(evaluator, c.selfplay.moves_per_iteration, stop)
    t1 = time.perf_counter()
    moves = actor.moves_played - moves_before
    evals = actor.timings.evaluations - evals_before
    if records:
        run.write_shard(records)
        for r in records:
            run.replay.add(r)
        run.counters["games"] += sum(_finished(r) for r in records)
        run.counters["positions"] += sum(len(r) for r in records)
    extra: dict = {}
    if run.muzero:
        returns = actor.episode_returns
        extra["selfplay/episodes"] = len(returns)
        extra["selfplay/mean_return"] = float(np.mean(returns)) if returns else float("nan")
        returns.clear()
        fraction = c.muzero.reanalyze_fraction
        if fraction > 0 and run.replay.size and not stop():
            count = math.ceil(moves * fraction / (1 - fraction))
            extra["reanalyze/positions"] = reanalyze(
                run.replay, evaluator, c.search, count, run.rng, actor.value_bounds,
                batch=c.selfplay.parallel_games)
        records = [r for r in records if _finished(r)]  # games, for the statistics below
    losses: dict = {}
    t2 = time.perf_counter()
    # At least one position: sampling an empty window fails (min_positions may be 0).
    if run.replay.size >= max(c.replay.min_positions, 1) and not stop():
        steps = min(c.learner.max_steps_per_iteration,
                    max(1, math.ceil(moves * c.learner.replay_ratio / c.learner.batch_size)))
        losses = run.learner.train(run.replay, steps, run.rng, stop)
    t3 = time.perf_counter()
    run.counters["iteration"] += 1
    return {
        "iteration": run.counters["iteration"], "learner_step": run.learner.step,
        "games": run.counters["games"], "positions": run.counters["positions"],
        "buffer_positions": run.replay.size, "selfplay/games": len(records),
        "selfplay/positions_per_s": moves / max(t1 - t0, 1e-9),
        "selfplay/evals_per_s": evals / max(t1 - t0, 1e-9),
        "selfplay/mean_batch": evals / max(actor.timings.batches - batches_before, 1),
        "selfplay/mean_game_length": (float(np.mean([len(r) for r in records]))
                                      if records else float("nan")),
        "selfplay/first_player_score": (float(np.mean([(r.returns[0] + 1) / 2 for r in records]))
                                        if records and records[0].returns is not None
                                        and len(records[0].returns) > 1 else float("nan")),
        **extra,
        **losses,
        "learner/steps_per_s": losses.get("learner/steps", 0) / max(t3 - t2, 1e-9),
    }


def _actor_evaluator(run: _Run, arena: TrainingArena):
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


def _checkpoint_evaluator(run: _Run, path: Path):
    from checkpoints import load_muzero_network, load_network

    if run.muzero:
        return MuZeroInference(load_muzero_network(path)[0])
    net, _ = load_network(path)
    return make_evaluator(net.eval(), run.config.selfplay.inference_backend)


def _budget_left(config: cfg.TrainConfig, run: _Run, start: float) -> bool:
    r = config.run
    if r.max_iterations and run.counters["iteration"] >= r.max_iterations:
        return False
    if r.max_minutes and time.perf_counter() - start >= r.max_minutes * 60:
        return False
    return True


def train(config: cfg.TrainConfig | None, run_dir: Path, overrides: dict | None = None,
          progress: bool = True) -> Summary:
    """Trains (or resumes) the run in `run_dir` until its budget is spent. Blocks.

    Ctrl-C stops after the current move or gradient step and saves; a second
    Ctrl-C interrupts at once.
    """
    from tqdm import tqdm

    run_dir = Path(run_dir)
    config = prepare_run(run_dir, config, overrides)
    run = _Run(config, run_dir)
    summary = Summary(run_dir)
    start = time.perf_counter()
    total = config.run.max_iterations or None
    # The iteration last saved: counters and shards advance even in iterations
    # without training, so comparing learner steps would lose them on resume.
    saved_at = run.counters["iteration"] if run.checkpoint else -1
    with _Stop() as stop, tqdm(total=total, initial=run.counters["iteration"],
                               disable=not progress, unit="it", dynamic_ncols=True,
                               desc=f"train {config.game}") as bar:
        arena = TrainingArena(config, run_dir, stop)
        evaluator = _actor_evaluator(run, arena)
        while _budget_left(config, run, start) and not stop():
            row = _iteration(run, evaluator, stop)
            row["time_s"] = time.perf_counter() - start
            summary.iterations += 1
            summary.last = row
            if row["iteration"] % config.run.checkpoint_every == 0 or stop():
                summary.checkpoint = run.save()
                saved_at = run.counters["iteration"]
                if arena.enabled() and not stop():
                    for line in arena.after_checkpoint(summary.checkpoint):
                        bar.write(line)
            _append_metrics(run_dir / "metrics.csv", row)
            bar.update(1)
            bar.set_postfix_str(
                f"games {row['games']} pos/s {row['selfplay/positions_per_s']:.0f} "
                f"loss {row.get('loss/total', float('nan')):.3f}")
            evaluator = _actor_evaluator(run, arena)
        if saved_at != run.counters["iteration"] or run.checkpoint is None:
            summary.checkpoint = run.save()
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
