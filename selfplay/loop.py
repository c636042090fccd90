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
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from checkpoints import (
    CheckpointError,
    atomic_write_bytes,
    checkpoint_name,
    load_checkpoint,
    save_checkpoint,
)
from engine.evaluator import make_evaluator
from engine.muzero_net import MuZeroNet
from engine.muzero_search import MuZeroInference
from games import get_game
from selfplay import config as cfg
from selfplay.actor import Actor
from selfplay.evaluation import TrainingArena
from selfplay.learner import Learner
from selfplay.muzero_actor import MuZeroActor, is_environment, reanalyze
from selfplay.muzero_learner import MuZeroLearner
from selfplay.muzero_replay import (SegmentReplay, load_segments_window, read_segments,
                                    write_segments)
from selfplay.records import game_texts, read_shard, write_shard
from selfplay.replay import ReplayBuffer, load_window, shard_paths

METRICS = ["iteration", "time_s", "learner_step", "games", "positions", "buffer_positions",
           "selfplay/games", "selfplay/positions_per_s", "selfplay/evals_per_s",
           "selfplay/mean_batch", "selfplay/mean_game_length", "selfplay/first_player_score",
           "loss/policy", "loss/value", "loss/total", "learner/steps", "learner/steps_per_s",
           "loss/reward", "selfplay/episodes", "selfplay/mean_return", "reanalyze/positions"]


class RunError(ValueError):
    """A run directory that cannot be used as asked; the message says why."""


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


def prepare_run(run_dir: Path, config: cfg.TrainConfig | None,
                overrides: dict | None = None) -> cfg.TrainConfig:
    """Resolves the configuration of a new or existing run directory.

    A new run takes `config` and writes it. An existing run keeps its saved
    configuration; `overrides` may change only the [run] section (budget,
    seed excluded) and the [arena] section; other settings may be repeated with their saved values
    (so the command that started a run also resumes it), and a different
    game or a different value is refused.
    """
    run_dir = Path(run_dir)
    saved = run_dir / "config.toml"
    if saved.exists():
        existing = cfg.from_dict(cfg.load_toml(saved))
        if config is not None and config.game != existing.game:
            raise RunError(f"run directory {run_dir} holds a {existing.game} run, not "
                           f"{config.game}; use another --run directory or --game {existing.game}")
        return _resumed_config(run_dir, existing, overrides or {})
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunError(f"{run_dir} exists and is not a Tabula run directory (no config.toml); "
                       "choose a new --run directory")
    if config is None:
        raise RunError(f"{run_dir} is not a run directory; give --game to start a new run")
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "replay").mkdir(exist_ok=True)
    atomic_write_bytes(saved, cfg.to_toml(config).encode())
    return config


def _resumed_config(run_dir: Path, existing: cfg.TrainConfig,
                    overrides: dict) -> cfg.TrainConfig:
    """The saved configuration with `overrides` applied to [run] (seed excluded) and [arena].

    Raises:
      ConfigError: unknown keys or ill-typed values in `overrides`.
      RunError: `overrides` change the game or a setting outside [run].
    """
    requested = cfg.merge(existing, overrides)
    if requested.algo != existing.algo:
        raise RunError(f"run directory {run_dir} holds a {existing.algo} run, not "
                       f"{requested.algo}; use another --run directory")
    if requested.game != existing.game:
        raise RunError(f"run directory {run_dir} holds a {existing.game} run, not "
                       f"{requested.game}; use another --run directory")
    changed = [f"{section}.{key} {value!r} -> {getattr(getattr(requested, section), key)!r}"
               for section in cfg.SECTIONS if section not in ("run", "arena")
               for key, value in dataclasses.asdict(getattr(existing, section)).items()
               if getattr(getattr(requested, section), key) != value]
    if changed:
        raise RunError(f"run directory {run_dir} already has a configuration; only [run] "
                       f"and [arena] settings can change when resuming (not {', '.join(changed)})")
    # The seed is the run's, not the session's: the random state comes from train_state.
    return dataclasses.replace(requested,
                               run=dataclasses.replace(requested.run, seed=existing.run.seed))


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


def _metadata(config, game, learner, counters, parent):
    info = game.info
    extra = {"iteration": counters["iteration"], "search": dataclasses.asdict(config.search)}
    if config.algo == "muzero":
        extra["muzero"] = dataclasses.asdict(config.muzero)
    return {"game": config.game, "algo": config.algo, "network": learner.network_config,
            "observation_shape": list(info.observation_shape), "num_actions": info.num_actions,
            "step": learner.step, "games": counters["games"],
            "positions": counters["positions"], "parent": parent,
            "extra": extra}


def _append_metrics(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())


class _Run:
    """The state of one training run in memory."""

    def __init__(self, config: cfg.TrainConfig, run_dir: Path):
        self.config = config
        self.run_dir = run_dir
        self.game = get_game(config.game)
        info = self.game.info
        self.muzero = config.algo == "muzero"
        if not self.muzero and is_environment(self.game):
            raise RunError(f"{config.game} is an environment without known rules; train it "
                           "with --algo muzero (learned dynamics)")
        if config.run.device.startswith("cuda") and not torch.cuda.is_available():
            raise RunError(f"run.device is {config.run.device!r} but torch finds no CUDA "
                           "device; use --set run.device=cpu")
        torch.manual_seed(config.run.seed)
        self.rng = np.random.default_rng(config.run.seed)
        self.counters = {"iteration": 0, "games": 0, "positions": 0}
        self.checkpoint: Path | None = None
        if self.muzero:
            mz = config.muzero
            self.learner = MuZeroLearner(self.game, config.muzero_network, config.learner, mz,
                                         config.run.device)
            self.replay = SegmentReplay(
                config.replay.window_positions, info.observation_shape, info.num_actions,
                frames=is_environment(self.game), unroll_steps=mz.unroll_steps,
                td_steps=mz.td_steps, discount=config.search.discount,
                prioritized=mz.prioritized, alpha=mz.priority_alpha, beta=mz.priority_beta)
        else:
            self.learner = Learner(self.game, config.network, config.learner, config.run.device)
            self.replay = ReplayBuffer(config.replay.window_positions, info.observation_shape,
                                       info.num_actions)
        self._resume()
        actor_rng = np.random.default_rng(self.rng.integers(2**63))
        if self.muzero:
            # Environments are seeded per slot; the iteration makes resumed runs differ.
            self.actor = MuZeroActor(self.game, config.search, config.selfplay, config.muzero,
                                     actor_rng, seed=config.run.seed * 7919
                                     + self.counters["iteration"])
        else:
            self.actor = Actor(self.game, config.search, config.selfplay, actor_rng)

    def _resume(self) -> None:
        state_path = self.run_dir / "train_state.safetensors"
        info = self.game.info
        replay_dir = self.run_dir / "replay"
        next_shard = self._load_train_state(state_path) if state_path.exists() else None
        if next_shard is not None:
            # Shards written after the train state (the run was killed between
            # the two writes) hold finished games the counters must include.
            for path in shard_paths(replay_dir):
                if _shard_index(path) >= next_shard:
                    records = self._read_shard(path)
                    self.counters["games"] += sum(_finished(r) for r in records)
                    self.counters["positions"] += sum(len(r) for r in records)
        if self.muzero:
            load_segments_window(self.replay, shard_paths(replay_dir), self.config.game)
        else:
            load_window(self.replay, replay_dir, self.config.game,
                        info.observation_shape, info.num_actions)

    def _read_shard(self, path: Path) -> list:
        info = self.game.info
        if self.muzero:
            return read_segments(path, self.config.game, info.observation_shape,
                                 info.num_actions, self.replay.frames)
        return read_shard(path, self.config.game, info.observation_shape, info.num_actions)

    def _load_train_state(self, path: Path) -> int | None:
        """Restores learner, counters, RNG and weights; returns the next shard index saved."""
        try:
            extra = self.learner.load_state(path.read_bytes())
            self.counters = {k: int(extra["counters"][k])
                             for k in ("iteration", "games", "positions")}
            self.rng.bit_generator.state = extra["rng"]
            name = str(extra["checkpoint"])
            next_shard = extra.get("next_shard")
        except (OSError, SafetensorError, ValueError, KeyError, TypeError, RuntimeError) as e:
            raise RunError(f"cannot resume {self.run_dir}: {path.name} is damaged "
                           f"({_first_line(e)}); restore it or start a new --run "
                           "directory") from None
        self.checkpoint = self.run_dir / "checkpoints" / name
        try:
            self.learner.net.load_state_dict(load_checkpoint(self.checkpoint).state_dict)
        except (CheckpointError, RuntimeError) as e:
            # CheckpointError's advice (use an earlier checkpoint) does not apply
            # here: the optimiser state in train_state belongs to this one.
            reason = _first_line(e).split("; ")[0].removeprefix(f"{self.checkpoint}: ")
            raise RunError(f"cannot resume {self.run_dir}: its latest checkpoint "
                           f"{self.checkpoint} (named by {path.name}) is unusable ({reason}); "
                           "restore that file or start a new --run directory") from None
        return int(next_shard) if isinstance(next_shard, int) else None

    def evaluator(self):
        self.learner.net.eval()
        net = self.learner.net
        if self.muzero:
            if self.config.run.device != "cpu":
                net = MuZeroNet(tuple(self.game.info.observation_shape),
                                self.game.info.num_actions, self.config.muzero_network)
                net.load_state_dict(self.learner.state_dict_cpu())
            return MuZeroInference(net)
        if self.config.run.device != "cpu":
            net = type(net)(tuple(self.game.info.observation_shape), self.game.info.num_actions,
                            self.config.network)
            net.load_state_dict(self.learner.state_dict_cpu())
        return make_evaluator(net, self.config.selfplay.inference_backend)

    def save(self) -> Path:
        name = checkpoint_name(self.learner.step)
        path = self.run_dir / "checkpoints" / name
        parent = self.checkpoint.name if self.checkpoint and self.checkpoint != path else None
        save_checkpoint(path, self.learner.state_dict_cpu(),
                        _metadata(self.config, self.game, self.learner, self.counters, parent))
        self.checkpoint = path
        extra = {"counters": self.counters, "rng": self.rng.bit_generator.state,
                 "checkpoint": name, "next_shard": self._next_shard()}
        atomic_write_bytes(self.run_dir / "train_state.safetensors",
                           self.learner.save_state(json.loads(json.dumps(extra))))
        return path

    def _next_shard(self) -> int:
        paths = shard_paths(self.run_dir / "replay")
        return _shard_index(paths[-1]) + 1 if paths else 0

    def write_shard(self, records) -> None:
        index = self._next_shard()
        info = self.game.info
        if self.muzero:
            write_segments(self.run_dir / "replay" / f"shard-{index:08d}.msgpack",
                           self.config.game, info.observation_shape, info.num_actions,
                           self.replay.frames, records)
            return
        write_shard(self.run_dir / "replay" / f"shard-{index:08d}.msgpack", self.config.game,
                    info.observation_shape, info.num_actions, records)
        text = game_texts(self.game, records, self.counters["games"])
        if text is not None:  # e.g. Go: the games as SGF, for GUIs
            suffix = getattr(self.game, "record_format", "txt")
            atomic_write_bytes(self.run_dir / "games" / f"shard-{index:08d}.{suffix}",
                               text.encode())


def _finished(record) -> bool:
    """A finished game: every AlphaZero record; a MuZero segment that ends its game."""
    return bool(getattr(record, "done", True))


def _shard_index(path: Path) -> int:
    """12 for replay/shard-00000012.msgpack."""
    return int(path.stem.split("-")[1])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
