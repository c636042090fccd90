"""A training run's state: its directory, configuration, learner, replay, actor.

`prepare_run` resolves the configuration of a new or resumed run directory;
`RunState` builds the pieces of the chosen algorithm (AlphaZero: rules in the
search; MuZero: learned dynamics) and reads, writes and resumes them. The
loop that drives them is selfplay/loop.py.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from checkpoints import (
    CheckpointError,
    checkpoint_name,
    load_checkpoint,
    save_checkpoint,
)
from checkpoints.files import atomic_move, atomic_write_bytes
from engine.evaluator import cuda_problem
from games import get_game
from selfplay import config as cfg
from selfplay.algorithms import algorithm, is_finished
from selfplay.records import ReplayError
from selfplay.replay import shard_paths, window_full


class RunError(ValueError):
    """A run directory that cannot be used as asked; the message says why."""


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


class RunLock:
    """Holds `run_dir/.lock` exclusively while one process trains the run.

    Two learners on one directory would write the same shard and checkpoint
    names; the second is refused with the first one's pid. The kernel drops
    the lock when its process ends, however it ends (kill -9 included).
    """

    NAME = ".lock"

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        path = self.run_dir / self.NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunError(f"cannot write to run directory {self.run_dir}: "
                           f"{e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunError(f"cannot lock run directory {self.run_dir}: "
                               f"{e.strerror or e}") from None
            raise RunError(f"run directory {self.run_dir} is being trained by another "
                           f"process (pid {holder}); wait for it or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Deletes the hidden temporary files of writes a killed process left; returns them.

    Every file in a run directory is written as `.NAME.XXXX.tmp` and renamed;
    a temporary file only survives its writer being killed. Call it holding
    the RunLock, before actors start.
    """
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, *(run_dir / sub for sub in ("checkpoints", "replay", "games",
                                                          "incoming"))):
        for path in folder.glob(".*.tmp"):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def _metadata(config, game, learner, counters, parent):
    info = game.info
    extra = {"iteration": counters["iteration"], "evaluations": counters["evaluations"],
             "search": dataclasses.asdict(config.search),
             **algorithm(config.algo).metadata_extra(config)}
    return {"game": config.game, "algo": config.algo, "network": learner.network_config,
            "observation_shape": list(info.observation_shape), "num_actions": info.num_actions,
            "step": learner.step, "games": counters["games"],
            "positions": counters["positions"], "parent": parent,
            "extra": extra}


class RunState:
    """The state of one training run in memory."""

    def __init__(self, config: cfg.TrainConfig, run_dir: Path):
        self.config = config
        self.run_dir = run_dir
        self.game = get_game(config.game)
        self.algo = algorithm(config.algo)
        if (refusal := self.algo.refuse(self.game)) is not None:
            raise RunError(refusal)
        if (problem := cuda_problem(config.run.device)) is not None:
            raise RunError(problem)
        torch.manual_seed(config.run.seed)
        self.rng = np.random.default_rng(config.run.seed)
        self.counters = {"iteration": 0, "games": 0, "positions": 0, "evaluations": 0}
        self.progress = 0.0
        """The share of the session's budget spent (the learning-rate schedule's clock)."""
        self.checkpoint: Path | None = None
        self.learner = self.algo.new_learner(self.game, config)
        self.replay = self.algo.new_replay(self.game, config)
        self._sizes: dict[str, tuple[int, int]] = {}
        """(positions, window bytes) of the shards this process wrote, took in or loaded."""
        self._resume()
        self._actor_rng = np.random.default_rng(self.rng.integers(2**63))
        self._actor = None

    @property
    def actor(self):
        """The in-process actor, built on first use (runs with actor processes never use it)."""
        if self._actor is None:
            # Environments are seeded per slot; the iteration makes resumed runs differ.
            seed = self.config.run.seed * 7919 + self.counters["iteration"]
            self._actor = self.algo.new_actor(self.game, self.config, self._actor_rng, seed)
        return self._actor

    def _resume(self) -> None:
        state_path = self.run_dir / "train_state.safetensors"
        replay_dir = self.run_dir / "replay"
        # Without a train state every shard is new: the run was stopped (killed,
        # disk full) before its first save.
        next_shard = self._load_train_state(state_path) if state_path.exists() else 0
        if next_shard is not None:
            # Shards written after the train state (the run was killed between
            # the two writes) hold finished games the counters must include.
            for path in shard_paths(replay_dir):
                if _shard_index(path) >= next_shard:
                    records = self._read_shard(path)
                    self.counters["games"] += sum(is_finished(r) for r in records)
                    self.counters["positions"] += sum(len(r) for r in records)
        self.algo.load_window(self.replay, shard_paths(replay_dir), replay_dir, self.config,
                              self.game, self._sizes)

    def _read_shard(self, path: Path) -> list:
        return self.algo.read_records(path, self.config, self.game, self.replay)

    def _load_train_state(self, path: Path) -> int | None:
        """Restores learner, counters, RNG and weights; returns the next shard index saved."""
        try:
            extra = self.learner.load_state(path.read_bytes())
            self.counters = {k: int(extra["counters"][k])
                             for k in ("iteration", "games", "positions")}
            # Network evaluations were first counted in December 2026.
            self.counters["evaluations"] = int(extra["counters"].get("evaluations", 0))
            self.rng.bit_generator.state = extra["rng"]
            name = str(extra["checkpoint"])
            next_shard = extra.get("next_shard")
        except (OSError, SafetensorError, ValueError, KeyError, TypeError, RuntimeError,
                OverflowError) as e:  # OverflowError: a crafted RNG state
            raise RunError(f"cannot resume {self.run_dir}: {path.name} is damaged "
                           f"({_first_line(e)}); restore it or start a new --run "
                           "directory") from None
        self.checkpoint = self.run_dir / "checkpoints" / name
        try:
            self.learner.load_playing_weights(load_checkpoint(self.checkpoint).state_dict)
        except (CheckpointError, RuntimeError) as e:
            # CheckpointError's advice (use an earlier checkpoint) does not apply
            # here: the optimiser state in train_state belongs to this one.
            reason = _first_line(e).split("; ")[0].removeprefix(f"{self.checkpoint}: ")
            raise RunError(f"cannot resume {self.run_dir}: its latest checkpoint "
                           f"{self.checkpoint} (named by {path.name}) is unusable ({reason}); "
                           "restore that file or start a new --run directory") from None
        return int(next_shard) if isinstance(next_shard, int) else None

    def evaluator(self):
        """The learner's current weights for self-play, on run.device (a snapshot)."""
        self.learner.net.eval()
        return self.algo.playing_evaluator(self.learner, self.game, self.config)

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
        self.prune_replay()
        return path

    def prune_replay(self) -> list[Path]:
        """Deletes (or, with replay.archive, moves to replay/archive/) the shards older than
        those that fill the window, once a train state no longer needs them; returns them.

        A resumed run reads its counters from the train state and its window from the
        newest shards until the window is full (window_full), so older shards serve
        nothing. Called after the train state is written: every shard it counts is
        counted, and a kill at any point leaves a run that resumes the same.
        """
        paths = shard_paths(self.run_dir / "replay")
        positions = nbytes = 0
        for i in range(len(paths) - 1, -1, -1):
            size = self._sizes.get(paths[i].name)
            if size is None:
                return []  # a shard of unknown size before the window is full: keep all
            positions, nbytes = positions + size[0], nbytes + size[1]
            if window_full(positions, nbytes, self.replay.capacity, self.replay.max_bytes):
                break
        else:
            return []  # the window is not full yet
        old = paths[:i]
        archive = self.run_dir / "replay" / "archive"
        if old and self.config.replay.archive:
            archive.mkdir(exist_ok=True)
        for path in old:
            if self.config.replay.archive:
                atomic_move(path, archive / path.name)
            else:
                path.unlink(missing_ok=True)
            self._sizes.pop(path.name, None)
        return old

    def _size(self, records) -> tuple[int, int]:
        return self.algo.records_size(records)

    def _next_shard(self) -> int:
        paths = shard_paths(self.run_dir / "replay")
        return _shard_index(paths[-1]) + 1 if paths else 0

    def write_shard(self, records) -> None:
        index = self._next_shard()
        self.algo.write_records(self.run_dir / "replay" / f"shard-{index:08d}.msgpack",
                                self.config, self.game, self.replay, records)
        self._sizes[f"shard-{index:08d}.msgpack"] = self._size(records)
        self._write_texts(records, index)

    def _write_texts(self, records, index: int) -> None:
        text = self.algo.texts(self.game, records, self.counters["games"])
        if text is not None:  # e.g. Go: the games as SGF, for GUIs
            suffix = self.game.info.record_format
            atomic_write_bytes(self.run_dir / "games" / f"shard-{index:08d}.{suffix}",
                               text.encode())

    def add(self, records) -> None:
        """Adds records (already on disk) to the window and the counters."""
        for r in records:
            self.replay.add(r)
        self.counters["games"] += sum(is_finished(r) for r in records)
        self.counters["positions"] += sum(len(r) for r in records)

    def ingest(self, path: Path) -> list:
        """Moves an actor's chunk from incoming/ into replay/ as the next shard; returns its records.

        The file is validated first; one that cannot be read is moved to
        incoming/rejected/ and ReplayError raised (naming it).
        """
        try:
            records = self._read_shard(path)
        except ReplayError:
            rejected = path.parent / "rejected"
            rejected.mkdir(exist_ok=True)
            os.replace(path, rejected / path.name)
            raise
        index = self._next_shard()
        atomic_move(path, self.run_dir / "replay" / f"shard-{index:08d}.msgpack")
        self._sizes[f"shard-{index:08d}.msgpack"] = self._size(records)
        self._write_texts(records, index)
        self.add(records)
        return records


def _shard_index(path: Path) -> int:
    """12 for replay/shard-00000012.msgpack."""
    return int(path.stem.split("-")[1])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
