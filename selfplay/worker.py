"""One self-play actor as a unit of work: the same class runs in a local process and as a Ray actor.

A `SelfPlayWorker` holds an Actor (AlphaZero) or MuZeroActor and the network
it plays with. `play()` plays one chunk (`selfplay.moves_per_iteration` moves
in each of its parallel games) and returns the finished games as shard bytes
(the replay format, msgpack) with the chunk's figures; the learner writes the
bytes into the run directory. New weights arrive as a checkpoint file path
(local processes) or the checkpoint's bytes (Ray's object store); either way
they are verified (sha256) before use.

`actor_process` is the body of a local actor process: it follows the run
directory's `latest.json` (the checkpoint the actors should play with) and
writes its chunks to `incoming/` atomically, the disk being the queue.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from selfplay import config as cfg
from selfplay import telemetry

INCOMING = "incoming"
LATEST = "latest.json"


class SelfPlayWorker:
    """Plays self-play chunks with the newest weights it was given.

    Args:
      config: the run's configuration as a dict (cfg.to_dict), so it crosses
        process and machine boundaries as plain data.
      actor_id: this actor's number (names its files, seeds its games).
      seed_words: integers seeding its random generator (run seed, actor id,
        incarnation, ...): every actor and every restart plays other games.
      threads: torch / onnxruntime threads for its network.
      evaluator: a shared evaluator (the inference server's client); when
        given, weights are the server's business and `load_*` do nothing.
    """

    def __init__(self, config: dict, actor_id: int, seed_words: list[int], threads: int = 1,
                 evaluator=None):
        import torch

        from games import get_game
        from selfplay.algorithms import algorithm

        torch.set_num_threads(max(1, threads))
        self.config = cfg.from_dict(config)
        self.actor_id = actor_id
        self.threads = max(1, threads)
        self.game = get_game(self.config.game)
        self.algo = algorithm(self.config.algo)
        rng = np.random.default_rng(np.random.SeedSequence([int(w) for w in seed_words]))
        self.actor = self.algo.new_actor(self.game, self.config, rng,
                                         seed=int(rng.integers(2**31)))
        self._shared = evaluator is not None
        self.evaluator = evaluator
        self.checkpoint: str | None = None

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Plays from now on with the checkpoint at `path` (verified)."""
        if self._shared:
            return
        self.evaluator = self.algo.checkpoint_evaluator(path, self.game, self.config,
                                                        threads=self.threads,
                                                        device=self.config.run.device)
        self.checkpoint = Path(path).name

    def load_checkpoint_bytes(self, name: str, data: bytes) -> None:
        """As load_checkpoint, for a checkpoint sent as bytes (Ray's object store)."""
        if self._shared or name == self.checkpoint:
            return
        with tempfile.TemporaryDirectory(prefix="tabula-weights-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            self.load_checkpoint(path)

    def play(self, should_stop=lambda: False) -> tuple[bytes, dict]:
        """Plays one chunk; returns (shard bytes, or b"" if no game finished; figures)."""
        from selfplay.algorithms import is_finished

        if self.evaluator is None:
            raise RuntimeError(f"actor {self.actor_id} has no weights yet")
        c = self.config
        before = telemetry.snapshot(self.actor.timings)
        moves_before = self.actor.moves_played
        sims_before = getattr(self.actor, "simulations", 0)
        hits_before = getattr(self.evaluator, "hits", 0)
        start = time.perf_counter()
        records = self.actor.play(self.evaluator, c.selfplay.moves_per_iteration, should_stop)
        seconds = time.perf_counter() - start
        moves = self.actor.moves_played - moves_before
        finished = [r for r in records if is_finished(r)]
        sims = (self.actor.simulations - sims_before if hasattr(self.actor, "simulations")
                else moves * c.search.num_simulations)  # MuZero's actor: full searches
        stats = telemetry.chunk_stats(before, self.actor.timings, moves, sims,
                                      len(finished), seconds)
        stats.update(actor=self.actor_id, pid=os.getpid(), rss=telemetry.rss_bytes(),
                     checkpoint=self.checkpoint,
                     backend=getattr(self.evaluator, "backend", ""),
                     cache_hits=getattr(self.evaluator, "hits", 0) - hits_before)
        stats.update(self.algo.take_chunk_extras(self.actor))
        if not records:
            return b"", stats
        return self.algo.encode_records(c, self.game, self.actor, records), stats


def read_latest(run_dir: Path) -> str | None:
    """The checkpoint name `latest.json` tells actors to play with, or None."""
    try:
        name = json.loads((Path(run_dir) / LATEST).read_text())["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return name if isinstance(name, str) and "/" not in name else None


def write_latest(run_dir: Path, checkpoint: Path) -> None:
    from checkpoints.files import atomic_write_bytes

    atomic_write_bytes(Path(run_dir) / LATEST,
                       json.dumps({"checkpoint": Path(checkpoint).name}).encode())


def incoming_name(actor_id: int, sequence: int) -> str:
    return f"a{actor_id:03d}-{os.getpid()}-{sequence:06d}.msgpack"


def actor_process(config: dict, run_dir: str, actor_id: int, seed_words: list[int],
                  threads: int, stats_queue, stop_event, evaluator=None) -> None:
    """The body of a local actor process (multiprocessing, spawn).

    Plays chunks until `stop_event` is set or the learner process is gone,
    switching to the checkpoint named in latest.json before each chunk.
    """
    import signal

    from checkpoints.files import atomic_write_bytes

    # Ctrl-C reaches the whole process group: the learner decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_dir = Path(run_dir)
    parent = os.getppid()
    worker = SelfPlayWorker(config, actor_id, seed_words, threads, evaluator)

    def should_stop() -> bool:
        return stop_event.is_set() or os.getppid() != parent

    sequence = 0
    while not should_stop():
        name = read_latest(run_dir)
        if name is None and worker.evaluator is None:
            time.sleep(0.2)  # the learner writes the first checkpoint
            continue
        if name is not None and name != worker.checkpoint:
            worker.load_checkpoint(run_dir / "checkpoints" / name)
        data, stats = worker.play(should_stop)
        if data:
            atomic_write_bytes(run_dir / INCOMING / incoming_name(actor_id, sequence), data)
            sequence += 1
        stats_queue.put(stats)


class CheckpointSource:
    """Weights for the shared inference server: the checkpoint latest.json names.

    `poll()` returns a new evaluator when latest.json names another
    checkpoint than last time (the first call waits for one), else None.
    """

    def __init__(self, run_dir: str, backend: str, device: str, threads: int,
                 batch: int | None = None):
        self.run_dir = run_dir
        self.backend = backend
        self.batch = batch
        self.device = device
        self.threads = threads
        self.checkpoint: str | None = None

    def poll(self):
        from engine.loading import load_network
        from engine.evaluator import make_evaluator

        name = read_latest(Path(self.run_dir))
        while name is None and self.checkpoint is None:
            time.sleep(0.2)
            name = read_latest(Path(self.run_dir))
        if name is None or name == self.checkpoint:
            return None
        net, _ = load_network(Path(self.run_dir) / "checkpoints" / name, map_location=self.device)
        self.checkpoint = name
        return make_evaluator(net, self.backend, threads=self.threads, batch=self.batch)
