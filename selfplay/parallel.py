"""Actor pools: self-play in other processes (local) or on a Ray cluster, one learner.

Both pools run `SelfPlayWorker`s (selfplay/worker.py) and deliver their
chunks as shard files in the run directory's `incoming/`; the learner (the
process that called `train`) moves each into `replay/`, trains on it and
publishes new checkpoints. The run directory keeps the same format as a
single-process run, so a run can switch between backends when it resumes.

    local   N actor processes (multiprocessing, spawn) that read checkpoints
            from the run directory; optionally one shared inference process
            batching all actors' network calls (AlphaZero).
    ray     N Ray actors, anywhere in the cluster; weights travel through
            Ray's object store and chunks come back to the learner, so
            workers need no shared filesystem (see selfplay/ray_pool.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from pathlib import Path

from selfplay import config as cfg
from selfplay import telemetry
from selfplay.run import RunError
from selfplay.worker import INCOMING, actor_process, write_latest

RESTART_LIMIT = 5
"""An actor that dies this many times within RESTART_WINDOW seconds stops the run."""
RESTART_WINDOW = 120.0


class PoolError(RunError):
    """The actors cannot go on (e.g. one keeps crashing); the message says why."""


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


AUTO_MIN_CORES = 3
"""auto starts actor processes from this many cores up."""


def resolve_actors(setting: str, available: int | None = None) -> int:
    """The number of actor processes `run.actors` asks for on `available` CPUs.

    auto: on 1 or 2 cores none (self-play and training alternate in one
    process, each using every core: on this 2-core machine that trained on
    1.45x the positions with 1.55x the learner steps of one actor process
    beside the learner in the same 6 minutes, whose learner idled while its
    single-threaded actor played; docs/BENCHMARKS.md); from 3 cores one actor
    per core but the learner's.
    """
    available = available or cores()
    if setting != "auto":
        return int(setting)
    return 0 if available < AUTO_MIN_CORES else available - 1


def check_actors(count: int, backend: str, available: int | None = None) -> str | None:
    """A warning for a count that oversubscribes the machine; raises for absurd ones."""
    available = available or cores()
    if backend == "local" and count > 4 * available:
        raise cfg.ConfigError(
            f"--actors {count}: this machine has {available} cores; more than "
            f"{4 * available} actor processes only fight over them (use --actors auto)")
    if count > available:
        return (f"{count} actors on {available} cores: they share the cores (and the "
                "learner's); --actors auto suits this machine")
    return None


def record_death(deaths: list[float], k: int, detail: str = "") -> list[float]:
    """`deaths` (times actor k died) with this death added and old ones dropped.

    Raises PoolError when the actor died RESTART_LIMIT times within RESTART_WINDOW.
    """
    now = time.monotonic()
    recent = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
    if len(recent) >= RESTART_LIMIT:
        raise PoolError(f"actor {k} died {len(recent)} times in {RESTART_WINDOW:.0f} s"
                        f"{detail}; see the errors above. The run is saved; fix the cause "
                        "and resume")
    return recent


def threads_per_actor(actors: int, available: int | None = None) -> int:
    available = available or cores()
    return max(1, available // (actors + 1))


class LocalPool:
    """N actor processes on this machine, restarted when they die.

    Args:
      run_dir: the run directory (actors read checkpoints from it and write
        their chunks to its incoming/).
      config: the run's configuration.
      actors: how many actor processes.
      log: prints a line for the user (the progress bar's write).
    """

    def __init__(self, run_dir: Path, config: cfg.TrainConfig, log=print,
                 threads: int | None = None, server_threads: int | None = None):
        actors = resolve_actors(config.run.actors)
        if actors < 1:
            raise cfg.ConfigError("the local backend runs actor processes only with "
                                  "run.actors >= 1 (0 plays in the learner's process)")
        warning = check_actors(actors, "local")
        if warning:
            log(f"tabula: warning: {warning}")
        self.run_dir = Path(run_dir)
        self.config = config
        self.count = actors
        self.log = log
        self.ctx = mp.get_context("spawn")
        self.stats = self.ctx.Queue()
        self.stop_event = self.ctx.Event()
        self.threads = threads or threads_per_actor(actors)
        self.threads_for_learner = max(1, cores() - actors)
        # Without its own network an actor needs no threads for inference; the
        # server then gets the cores the actors would have used, less the learner's.
        self.server_threads = server_threads or max(1, cores() - 1)
        self.server = None
        self.processes: list = [None] * actors
        self.incarnation = [0] * actors
        self.deaths: list[list[float]] = [[] for _ in range(actors)]
        self.restarts = 0

    def start(self, resume_index: int) -> None:
        """Starts the actors (and the inference server), after the first checkpoint exists."""
        # A killed actor's half writes were deleted by selfplay.run.remove_stale_temps.
        (self.run_dir / INCOMING).mkdir(exist_ok=True)
        self.resume_index = resume_index
        if self.config.run.inference_server:
            self._start_server()
        for k in range(self.count):
            self._spawn(k)

    def _start_server(self) -> None:
        from engine.inference_server import InferenceServer
        from games import get_game
        from selfplay.worker import CheckpointSource

        from selfplay.algorithms import algorithm

        if not algorithm(self.config.algo).shared_inference:
            raise cfg.ConfigError("run.inference_server serves AlphaZero networks; MuZero "
                                  "actors keep their own (set run.inference_server=false)")
        info = get_game(self.config.game).info
        source = CheckpointSource(str(self.run_dir), self.config.selfplay.inference_backend,
                                  self.config.run.device, self.server_threads,
                                  batch=self.count * self.config.inference_batch())
        self.server = InferenceServer(source, self.count, tuple(info.observation_shape),
                                      info.num_actions, self.config.selfplay.parallel_games,
                                      ctx=self.ctx)
        self.server.start()

    def _spawn(self, k: int) -> None:
        seed = [self.config.run.seed, 1 + k, self.incarnation[k], self.resume_index]
        evaluator = self.server.client(k) if self.server is not None else None
        p = self.ctx.Process(
            target=actor_process, name=f"tabula-actor-{k}", daemon=True,
            args=(cfg.to_dict(self.config), str(self.run_dir), k, seed, self.threads,
                  self.stats, self.stop_event, evaluator))
        p.start()
        self.processes[k] = p
        self.incarnation[k] += 1

    def publish(self, checkpoint: Path) -> None:
        """Tells the actors (or the inference server) to play with `checkpoint`."""
        write_latest(self.run_dir, checkpoint)

    def collect(self, timeout: float) -> list[dict]:
        """Chunk figures reported since the last call (waits up to `timeout` for one)."""
        out = []
        try:
            out.append(self.stats.get(timeout=timeout))
            while True:
                out.append(self.stats.get_nowait())
        except queue.Empty:
            pass
        return out

    def supervise(self) -> None:
        """Restarts actors that died (logged); raises PoolError for one that keeps dying."""
        if self.server is not None and not self.server.is_alive():
            raise PoolError("the inference server process died; see the lines above. "
                            "Resume with the same command (the run is saved)")
        for k, p in enumerate(self.processes):
            if p is None or p.is_alive():
                continue
            code, pid = p.exitcode, p.pid
            p.close()
            self.deaths[k] = record_death(self.deaths[k], k, f" (last exit code {code})")
            self.restarts += 1
            self.log(f"actor {k} (pid {pid}) died with exit code {code}; restarting it")
            self._spawn(k)

    def pids(self) -> dict[str, int]:
        out = {f"actor-{k}": p.pid for k, p in enumerate(self.processes)
               if p is not None and p.pid is not None}
        server_pid = getattr(self.server, "pid", None)
        if server_pid is not None:
            out["inference-server"] = server_pid
        return out

    def alive(self) -> int:
        return sum(1 for p in self.processes if p is not None and p.is_alive())

    def rss(self) -> int:
        return sum(telemetry.rss_bytes(pid) for pid in self.pids().values())

    def batch_stats(self) -> dict | None:
        return self.server.stats() if self.server is not None else None

    def close(self) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + 30
        for p in self.processes:
            if p is None:
                continue
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        if self.server is not None:
            self.server.close()
        try:  # drain so the queue's feeder thread can exit
            while True:
                self.stats.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass
