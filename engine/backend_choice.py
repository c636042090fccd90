"""The 'auto' inference backend: the fastest one measured on this machine.

Which backend runs a network fastest depends on the CPU (AVX-512 with
native bf16 or not), the network's shape and the batch the caller sends:
on one 2-core machine onnxruntime fp32 was 5-10x torch at batch 1 while
torch with bf16 autocast was 1.3-1.7x onnxruntime at batch 256. So 'auto'
is not a constant: the first time a network shape is evaluated at a batch
size on a machine, every candidate backend is timed at that batch (about a
second) and the fastest is used; the choice is cached per machine, network
shape, batch and thread count in `backends.json` under the cache directory,
so later runs and resumed runs use the same backend without measuring.

Candidates on the CPU: 'onnx' (onnxruntime fp32), 'torch_cl' (torch
channels_last fp32) and, where the CPU has native bf16 (AVX512_BF16 or
AMX) and AUTO_BF16 allows it, 'torch_bf16'. torch.compile is measured by
`tabula bench inference` but is not a candidate here: compiling takes tens
of seconds per batch shape, far beyond the second this choice may cost.
A CUDA network stays in torch (engine.evaluator).

The cache directory is $TABULA_CACHE_DIR, else $XDG_CACHE_HOME/tabula, else
~/.cache/tabula. A cache that cannot be read is measured over; one that
cannot be written only costs the measurement next time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

CACHE_FILE = "backends.json"
CACHE_VERSION = 1
CPU_CANDIDATES = ("onnx", "torch_cl", "torch_bf16")
AUTO_BF16 = False
"""May 'auto' choose bf16? Off until the Connect Four learning curve shows
bf16 self-play learns at least as well per evaluation as fp32 (issue 17;
docs/BENCHMARKS.md). 'torch_bf16' can always be asked for by name."""
MEASURE_SECONDS = 0.6
"""Timing budget over all candidates, after one warm-up call each."""
MEASURE_ROUNDS = 3

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_memo: dict[str, "Choice"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Choice:
    """The backend 'auto' picked and the figures it was picked from."""

    backend: str
    batch: int
    rates: dict[str, float] = field(default_factory=dict)
    """Positions per second of each candidate measured, at `batch`."""
    cached: bool = False
    """True when read from the cache rather than measured now."""

    def describe(self) -> str:
        """One line: the choice, the batch, and every candidate's rate."""
        figures = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in
                            sorted(self.rates.items(), key=lambda kv: -kv[1]))
        how = "cached measurement" if self.cached else "measured"
        return f"inference backend {self.backend} ({how} at batch {self.batch}: {figures})"


def cpu_flags() -> set[str]:
    """The CPU feature flags in /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    """The CPU model name ('model name' in /proc/cpuinfo, else platform's)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX512_BF16 or AMX-BF16)?"""
    return bool(cpu_flags() & set(_BF16_FLAGS))


def candidates(allow_bf16: bool | None = None) -> tuple[str, ...]:
    """The CPU backends 'auto' times here: bf16 only where native and allowed."""
    allow = AUTO_BF16 if allow_bf16 is None else allow_bf16
    return tuple(c for c in CPU_CANDIDATES
                 if c != "torch_bf16" or (allow and native_bf16()))


@functools.cache
def machine_id() -> str:
    """What makes timings on this machine comparable: CPU, its relevant flags, versions.

    Fixed for the process: the serial training loop asks for an evaluator every
    iteration, and /proc/cpuinfo need not be read each time."""
    import torch
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = "none"
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                  "amx_bf16", "amx_int8", "avx_vnni"})
    return f"{cpu_model()}|{','.join(flags)}|torch {torch.__version__}|onnxruntime {ort}"


def network_signature(net) -> str:
    """A short hash of the network's shape: observation, actions, parameter shapes."""
    parts = [repr(tuple(net.obs_shape)), str(net.num_actions)]
    parts += [f"{name}:{tuple(t.shape)}" for name, t in net.state_dict().items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """$TABULA_CACHE_DIR, else $XDG_CACHE_HOME/tabula, else ~/.cache/tabula."""
    if os.environ.get("TABULA_CACHE_DIR"):
        return Path(os.environ["TABULA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tabula"


def _key(net, batch: int, threads: int, names: tuple[str, ...]) -> str:
    return "|".join([machine_id(), network_signature(net), f"batch {batch}",
                     f"threads {threads}", ",".join(names)])


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("choices")
    return entries if isinstance(entries, dict) else {}


def _write_cache(path: Path, key: str, choice: Choice) -> None:
    from checkpoints.files import atomic_write_bytes

    entries = _read_cache(path)
    entries[key] = {"backend": choice.backend, "batch": choice.batch, "rates": choice.rates,
                    "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    text = json.dumps({"version": CACHE_VERSION, "choices": entries}, indent=1, sort_keys=True)
    try:
        atomic_write_bytes(path, text.encode())
    except OSError:
        pass  # an unwritable cache only costs the measurement next time


def _from_entry(entry, names: tuple[str, ...], batch: int) -> Choice | None:
    if not isinstance(entry, dict) or entry.get("backend") not in names:
        return None
    rates = entry.get("rates")
    if not isinstance(rates, dict) or not all(isinstance(v, (int, float)) for v in rates.values()):
        return None
    return Choice(entry["backend"], batch, {str(k): float(v) for k, v in rates.items()}, True)


def measure(factories: dict[str, Callable[[], object]], obs_shape: tuple[int, ...],
            num_actions: int, batch: int, seconds: float = MEASURE_SECONDS,
            rounds: int = MEASURE_ROUNDS, seed: int = 0) -> dict[str, float]:
    """Positions/s of each evaluator `factories` builds, at `batch` (blocking).

    The candidates take turns in `rounds` rounds so they see the same machine
    noise; each rate is the median round's. A factory or evaluator that
    raises is left out.
    """
    rng = np.random.default_rng(seed)
    obs = rng.random((batch, *obs_shape), dtype=np.float32)
    mask = np.ones((batch, num_actions), dtype=bool)
    built = {}
    for name, make in factories.items():
        try:
            ev = make()
            ev.evaluate(obs, mask)  # warm-up: first-call allocations, oneDNN kernel choice
            built[name] = ev
        except Exception:  # noqa: BLE001 - a backend that cannot run here is no candidate
            continue
    slice_s = seconds / max(1, rounds * len(built))
    samples: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, ev in built.items():
            calls, start = 0, time.perf_counter()
            while True:
                ev.evaluate(obs, mask)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= slice_s:
                    break
            samples[name].append(calls * batch / elapsed)
    return {name: float(np.median(r)) for name, r in samples.items()}


@contextlib.contextmanager
def _file_lock(enabled: bool):
    """Holds an exclusive lock on the cache directory's lock file (where possible).

    Actor processes starting together would otherwise measure at the same
    time, each slowed by the others, and could pick different backends; with
    the lock the first measures and the rest read its choice.
    """
    if not enabled:
        yield
        return
    try:
        import fcntl
        cache_dir().mkdir(parents=True, exist_ok=True)
        fd = os.open(cache_dir() / (CACHE_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):
        yield  # no locking here (another OS, a read-only cache): measuring twice is harmless
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def choose_backend(net, batch: int, build: Callable, threads: int | None = None,
                   names: tuple[str, ...] | None = None, use_cache: bool = True) -> Choice:
    """The fastest CPU backend for `net` at `batch` here (measured once, then cached).

    Args:
      net: a PolicyValueNet on the CPU.
      batch: the batch size the caller will send.
      build: build(net, name, threads) -> an Evaluator running backend `name`
        (engine.evaluator.build_evaluator; this module imports no evaluator).
      threads: intra-op threads of the evaluators (default os.cpu_count()).
      names: candidate backends (default `candidates()`).
      use_cache: read and write the cache file (the in-process memo is always used).
    """
    batch = max(1, int(batch))
    threads = threads or os.cpu_count() or 1
    names = tuple(names) if names is not None else candidates()
    key = _key(net, batch, threads, names)
    with _lock, _file_lock(use_cache):
        if key in _memo:
            return _memo[key]
        path = cache_dir() / CACHE_FILE
        choice = _from_entry(_read_cache(path).get(key), names, batch) if use_cache else None
        if choice is None:
            factories = {name: (lambda name=name: build(net, name, threads))
                         for name in names}
            rates = measure(factories, tuple(net.obs_shape), net.num_actions, batch)
            if not rates:
                raise RuntimeError(f"no inference backend runs here (tried {', '.join(names)})")
            choice = Choice(max(rates, key=rates.get), batch, rates, False)
            if use_cache:
                _write_cache(path, key, choice)
        _memo[key] = choice
        return choice


def forget() -> None:
    """Clears the in-process memo (tests; the cache file is left alone)."""
    with _lock:
        _memo.clear()


__all__ = ["AUTO_BF16", "CPU_CANDIDATES", "Choice", "cache_dir", "candidates",
           "choose_backend", "cpu_flags", "cpu_model", "forget", "machine_id", "measure",
           "native_bf16", "network_signature"]
