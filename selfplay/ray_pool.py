"""The Ray backend: self-play workers as Ray actors, the learner in this process.

Each Ray actor is a `SelfPlayWorker` (the class local actor processes run).
Weights go out through Ray's object store (the checkpoint file's bytes, put
once per checkpoint and verified by every worker); chunks come back as shard
bytes and are written to the run directory's incoming/ here, so the learner
ingests them exactly as it ingests local actors' chunks, and workers on other
machines need no shared filesystem. The learner, the replay window and the
training-time arena run in this (the driver's) process: start the command on
the machine that should train (the one with the GPU).

Cluster use: `ray start --head` on one machine, `ray start --address HEAD:6379`
on the others, then `tabula train --backend ray --address auto --actors N` on
the head. Without --address a Ray instance is started on this machine.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

from checkpoints.files import atomic_write_bytes
from selfplay import config as cfg
from selfplay.parallel import check_actors, cores, record_death, resolve_actors
from selfplay.run import RunError
from selfplay.worker import INCOMING, SelfPlayWorker, incoming_name

INSTALL_HINT = "pip install 'tabula[ray]' (or pip install 'ray[default]')"
LOCAL_OBJECT_STORE = 512 * 2**20
"""Object store of a Ray instance this process starts: weights and chunks are small."""


def import_ray():
    """The ray module, or RunError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RunError(f"--backend ray needs Ray, an optional extra: {INSTALL_HINT}") from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Raises RunError unless HOST:PORT accepts a TCP connection ('' and 'auto' pass)."""
    if address in ("", "auto") or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RunError(f"--address {address!r}: expected auto or HOST:PORT (the head's "
                       "GCS port, 6379 by default)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise RunError(f"cannot reach a Ray cluster at {address} ({reason}); start its head "
                       "with `ray start --head` or check the address") from None


class RayPool:
    """N SelfPlayWorkers as Ray actors, restarted when they die."""

    def __init__(self, run_dir: Path, config: cfg.TrainConfig, log=print):
        self.ray = ray = import_ray()
        address = config.run.address
        check_address(address)
        self.started = not ray.is_initialized()
        if self.started:
            try:
                if address:
                    ray.init(address=address, logging_level=logging.WARNING,
                             log_to_driver=True)
                else:
                    ray.init(num_cpus=cores(), include_dashboard=False,
                             object_store_memory=LOCAL_OBJECT_STORE,
                             logging_level=logging.WARNING, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as e:
                text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise RunError(f"cannot start or join Ray at {address or 'this machine'}: "
                               f"{text}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # auto: every CPU of the cluster but the learner's, at least one.
        self.count = (max(1, cpus - 1) if config.run.actors == "auto"
                      else resolve_actors(config.run.actors))
        if self.count < 1:
            self.close()
            raise cfg.ConfigError("--backend ray needs at least one actor (--actors N or auto)")
        warning = check_actors(self.count, "ray", available=cpus)
        if warning:
            log(f"tabula: warning: {warning}")
        self.run_dir = Path(run_dir)
        self.config = config
        self.log = log
        # A Ray instance on this machine shares its cores with the learner.
        self.threads_for_learner = max(1, cores() - self.count) if not address else None
        self.actors: list = [None] * self.count
        self.pending: dict = {}
        self.incarnation = [0] * self.count
        self.deaths: list[list[float]] = [[] for _ in range(self.count)]
        self.dead: list[int] = []
        self.restarts = 0
        self.weights = None
        # With run.device cuda the learner (here) trains on the GPU; actors share the
        # cluster's GPUs in equal fractions, or infer on their CPU if it has none.
        # More actors than the cluster's CPUs share them (the warning above says so): with
        # num_cpus=1 each, the extra actors would wait for a free CPU for ever.
        self.cpu_share = min(1.0, cpus / self.count)
        gpus = float(ray.cluster_resources().get("GPU", 0))
        on_gpu = config.run.device.startswith("cuda") and gpus > 0
        self.gpu_share = min(1.0, gpus / self.count) if on_gpu else 0.0
        actor_device = "cuda" if on_gpu else "cpu"
        self.actor_config = cfg.to_dict(cfg.merge(config, {"run": {"device": actor_device}}))
        self.rss_by_actor: dict[int, int] = {}
        self.pid_by_actor: dict[int, int] = {}
        self.sequence = 0

    def start(self, resume_index: int) -> None:
        self.resume_index = resume_index
        (self.run_dir / INCOMING).mkdir(exist_ok=True)
        self.remote_class = self.ray.remote(num_cpus=self.cpu_share,
                                            max_restarts=0)(SelfPlayWorker)
        for k in range(self.count):
            self._spawn(k)

    def _spawn(self, k: int) -> None:
        seed = [self.config.run.seed, 1 + k, self.incarnation[k], self.resume_index]
        self.incarnation[k] += 1
        handle = self.remote_class.options(num_gpus=self.gpu_share).remote(
            self.actor_config, k, seed, 1)
        self.actors[k] = handle
        if self.weights is not None:
            handle.load_checkpoint_bytes.remote(*self.weights)
        self.pending[handle.play.remote()] = k

    def publish(self, checkpoint: Path) -> None:
        """Sends `checkpoint` to every worker (through the object store) for its next chunk."""
        self.weights = (Path(checkpoint).name, self.ray.put(Path(checkpoint).read_bytes()))
        for handle in self.actors:
            if handle is not None:
                handle.load_checkpoint_bytes.remote(*self.weights)

    def collect(self, timeout: float) -> list[dict]:
        """Finished chunks: their shards written to incoming/, their figures returned."""
        if not self.pending:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:
            more, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        out = []
        for ref in ready:
            k = self.pending.pop(ref)
            try:
                data, stats = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as e:
                self.dead.append(k)
                self.actors[k] = None
                self.rss_by_actor.pop(k, None)
                self.pid_by_actor.pop(k, None)
                self.log(f"actor {k} died ({str(e).strip().splitlines()[0][:120]}); "
                         "restarting it")
                continue
            if data:
                atomic_write_bytes(self.run_dir / INCOMING / incoming_name(k, self.sequence),
                                   data)
                self.sequence += 1
            self.rss_by_actor[k] = int(stats.get("rss", 0))
            self.pid_by_actor[k] = int(stats.get("pid", 0))
            out.append(stats)
            self.pending[self.actors[k].play.remote()] = k
        return out

    def supervise(self) -> None:
        while self.dead:
            k = self.dead.pop()
            self.deaths[k] = record_death(self.deaths[k], k)
            self.restarts += 1
            self._spawn(k)

    def kill(self, k: int) -> None:
        """Kills worker k at once (as a crash would; for tests and drills)."""
        if self.actors[k] is not None:
            self.ray.kill(self.actors[k], no_restart=True)

    def pids(self) -> dict[str, int]:
        """Worker process ids as reported with their last chunk (on their own machines)."""
        return {f"actor-{k}": pid for k, pid in sorted(self.pid_by_actor.items())
                if self.actors[k] is not None}

    def alive(self) -> int:
        return sum(1 for a in self.actors if a is not None)

    def rss(self) -> int:
        return sum(self.rss_by_actor.values())

    def batch_stats(self) -> dict | None:
        return None

    def close(self) -> None:
        for handle in getattr(self, "actors", []):
            if handle is not None:
                try:
                    self.ray.kill(handle, no_restart=True)
                except Exception:  # already gone  # noqa: BLE001
                    pass
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
