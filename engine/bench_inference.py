"""Inference benchmark: network forward passes per second per evaluator backend.

Measures `Evaluator.evaluate` (NumPy in, NumPy out, as the search calls it)
for each backend and batch size, after warm-up, and compares every backend
with eager torch at the same batch size. This is what 'auto' in
engine.evaluator is chosen from.

Run: tabula bench inference [--game go9 --blocks 4 --channels 32 ...]
(defaults: the Connect Four network, obs (3, 6, 7), 7 actions). After the
table, each batch size's line says which backend 'auto' picks there (its own
measurement, engine.backend_choice, as a training run would make it).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Sequence

import numpy as np
import torch

from engine.backend_choice import candidates, choose_backend, cpu_flags, cpu_model
from engine.evaluator import build_evaluator, make_evaluator
from engine.networks import NetworkConfig, PolicyValueNet

WARMUP_CALLS = 3
WARMUP_SECONDS = 0.25


def _time_calls(evaluator, obs: np.ndarray, mask: np.ndarray, seconds: float) -> tuple[int, float]:
    """Calls evaluator.evaluate until `seconds` pass; returns (calls, elapsed)."""
    calls = 0
    start = time.perf_counter()
    while True:
        evaluator.evaluate(obs, mask)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls, elapsed


def bench_inference(
    obs_shape: tuple[int, int, int],
    num_actions: int,
    net_config: NetworkConfig,
    batch_sizes: Sequence[int] = (1, 32, 128, 512),
    backends: Sequence[str] = ("torch", "torch_cl", "compile", "onnx"),
    seconds: float = 2.0,
    seed: int = 0,
    rounds: int = 5,
    threads: int | None = None,
) -> list[dict]:
    """Measures forward passes/s and positions/s per backend and batch size.

    For each batch size the backends take turns in `rounds` rounds of
    seconds / rounds each, so that they see the same machine noise (shared
    CPUs here vary by 2x over seconds); each rate is the median over rounds.
    Blocks for about len(backends) * len(batch_sizes) * seconds, plus
    warm-up and export/compile time ('compile' spends tens of seconds per new
    shape). Sets torch's thread count (and onnxruntime's) to `threads`,
    default os.cpu_count().

    Returns:
      One dict per (backend, batch): backend, batch, calls_per_s,
      positions_per_s, ms_per_call (median round), spread (fastest over
      slowest round rate), setup_s (building the evaluator, incl. export),
      load (1-minute load average after the batch size's rounds: other
      processes on the machine skew the numbers when it exceeds the cores),
      and vs_torch (positions/s over eager torch's at that batch, or None
      when 'torch' was not measured).
    """
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = PolicyValueNet(obs_shape, num_actions, net_config).eval()
    evaluators, setup = {}, {}
    for backend in backends:
        t0 = time.perf_counter()
        evaluators[backend] = make_evaluator(net, backend, threads=threads)
        setup[backend] = time.perf_counter() - t0
    rows: list[dict] = []
    for batch in batch_sizes:
        obs = rng.random((batch, *obs_shape), dtype=np.float32)
        mask = np.ones((batch, num_actions), dtype=bool)
        for ev in evaluators.values():
            for _ in range(WARMUP_CALLS):
                ev.evaluate(obs, mask)
            _time_calls(ev, obs, mask, WARMUP_SECONDS)
        rates: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(rounds):
            for backend, ev in evaluators.items():
                calls, elapsed = _time_calls(ev, obs, mask, seconds / rounds)
                rates[backend].append(calls / elapsed)
        for backend in backends:
            rate = float(np.median(rates[backend]))
            rows.append({
                "backend": backend,
                "batch": batch,
                "calls_per_s": rate,
                "positions_per_s": rate * batch,
                "ms_per_call": 1000.0 / rate,
                "spread": max(rates[backend]) / min(rates[backend]),
                "setup_s": setup[backend],
                "load": os.getloadavg()[0],
                "threads": threads,
            })
    eager = {r["batch"]: r["positions_per_s"] for r in rows if r["backend"] == "torch"}
    for r in rows:
        base = eager.get(r["batch"])
        r["vs_torch"] = r["positions_per_s"] / base if base else None
    return rows


def default_backends() -> tuple[str, ...]:
    """Eager torch (the reference), every 'auto' candidate here (bf16 where native), compile."""
    names = ["torch", *candidates(allow_bf16=True)]
    return tuple(names + ["compile"])


def auto_picks(obs_shape, num_actions, net_config: NetworkConfig, batch_sizes,
               threads: int | None = None, seed: int = 0) -> list[str]:
    """One line per batch: what 'auto' picks there, measured afresh (no cache)."""
    torch.manual_seed(seed)
    net = PolicyValueNet(obs_shape, num_actions, net_config).eval()
    return [f"auto at batch {b}: "
            f"{choose_backend(net, b, build_evaluator, threads, use_cache=False).describe()}"
            for b in batch_sizes]


def machine_line() -> str:
    """The CPU model and the flags that decide the backends' order."""
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"})
    return f"cpu: {cpu_model()} ({', '.join(flags) or 'no AVX2/AVX-512 flags'})"


class NetworkAlone:
    """A checkpoint's network timed alone, as the engines run it: `make_evaluator(net,
    'auto', threads)` on random observations with every move legal.

    Benchmarks of a search call `measure` between their own measurements, so that the
    network and the search see the same machine (load varies 2x over seconds here),
    and report the search's rate over `median()`.

    Args:
      path: an AlphaZero checkpoint (CheckpointError if it is not one).
      batch: positions per call (default INTERACTIVE_BATCH, what interactive play aims for).
      threads: inference threads (default: one per core, as the engines).
    """

    def __init__(self, path, batch: int | None = None, threads: int | None = None,
                 seed: int = 0):
        from engine.loading import load_network
        from engine.interactive import INTERACTIVE_BATCH

        net, _ = load_network(path)
        self.batch = batch or INTERACTIVE_BATCH
        self.evaluator = make_evaluator(net, "auto", threads, batch=self.batch)
        rng = np.random.default_rng(seed)
        self.obs = rng.random((self.batch, *net.obs_shape), dtype=np.float32)
        self.mask = np.ones((self.batch, net.num_actions), dtype=bool)
        for _ in range(WARMUP_CALLS):
            self.evaluator.evaluate(self.obs, self.mask)
        self.rates: list[float] = []
        """Positions per second of each `measure` call."""

    def measure(self, seconds: float = 1.0) -> float:
        """Positions per second over about `seconds` of calls; blocks."""
        calls, elapsed = _time_calls(self.evaluator, self.obs, self.mask, seconds)
        self.rates.append(calls * self.batch / elapsed)
        return self.rates[-1]

    def median(self) -> float:
        return float(np.median(self.rates)) if self.rates else float("nan")

    def summary(self, rate: float | None, what: str = "nodes/s") -> str:
        """One line: the median rate alone, and `rate` (the search's, named `what`) over it."""
        line = (f"network alone at batch {self.batch} (same network and backend, measured "
                f"between the searches): median {self.median():,.0f} positions/s over "
                f"{len(self.rates)} rounds")
        if rate is None:
            return line
        return f"{line}; {what} / network alone = {rate / self.median():.2f}"


def format_table(rows: list[dict]) -> str:
    """Formats bench_inference rows as a text table, one line per (backend, batch)."""
    header = (f"{'backend':<10} {'batch':>5} {'calls/s':>10} {'positions/s':>12} "
              f"{'ms/call':>9} {'vs torch':>8} {'spread':>6} {'setup s':>8} {'load':>5}")
    threads = sorted({r.get("threads") for r in rows} - {None})
    lines = [f"threads: {', '.join(map(str, threads)) or '?'}", header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["batch"], r["backend"])):
        ratio = "-" if r["vs_torch"] is None else f"{r['vs_torch']:.2f}x"
        lines.append(
            f"{r['backend']:<10} {r['batch']:>5} {r['calls_per_s']:>10.1f} "
            f"{r['positions_per_s']:>12.0f} {r['ms_per_call']:>9.3f} {ratio:>8} "
            f"{r['spread']:>6.2f} {r['setup_s']:>8.2f} {r['load']:>5.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default=None,
                   help="take the observation shape and actions from this game (e.g. go9)")
    p.add_argument("--obs-shape", type=int, nargs=3, default=(3, 6, 7))
    p.add_argument("--num-actions", type=int, default=7)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--value-head", default="scalar")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=(1, 32, 128, 512))
    p.add_argument("--backends", nargs="+", default=None,
                   help="default: torch, the 'auto' candidates (torch_bf16 where the CPU "
                        "has native bf16) and compile")
    p.add_argument("--no-auto", action="store_true", help="skip the lines of what auto picks")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="default: os.cpu_count()")
    args = p.parse_args(argv)
    config = NetworkConfig(blocks=args.blocks, channels=args.channels,
                           value_head=args.value_head)
    obs_shape, num_actions = tuple(args.obs_shape), args.num_actions
    if args.game:
        from games import get_game

        info = get_game(args.game).info
        obs_shape, num_actions = tuple(info.observation_shape), info.num_actions
    print(machine_line())
    rows = bench_inference(obs_shape, num_actions, config,
                           args.batch_sizes, args.backends or default_backends(), args.seconds,
                           rounds=args.rounds, threads=args.threads)
    print(format_table(rows))
    if not args.no_auto:
        for line in auto_picks(obs_shape, num_actions, config, args.batch_sizes, args.threads):
            print(line)


if __name__ == "__main__":
    main()


__all__ = ["NetworkAlone", "auto_picks", "bench_inference", "default_backends", "format_table",
           "machine_line"]
