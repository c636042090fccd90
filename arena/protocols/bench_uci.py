"""`tabula bench uci`: nodes per second and `stop` latency of `tabula uci`.

The engine runs as a real subprocess on a pipe, as a GUI drives it. nps is
read from the last `info` line of a `go movetime` search on each test
position; the stop latency is the time from writing `stop` to reading
`bestmove`, after `go infinite` has run for a moment; the movetime use is
the time from writing `go movetime` to reading `bestmove` (what a GUI's clock
sees). Stockfish (if installed) is measured the same way as the reference.
"""

from __future__ import annotations

import argparse
import queue
import shlex
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable

FENS = [
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10",
]


class _Uci:
    """A UCI engine in a subprocess with a reader thread (lines into a queue)."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def until(self, prefix: str, timeout: float = 60.0) -> tuple[str, list[str]]:
        """Reads lines until one starts with `prefix`; (that line, the lines before)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"engine exited waiting for {prefix!r}")
            if line.startswith(prefix):
                return line, seen
            seen.append(line)

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def _nps(lines: list[str]) -> int | None:
    for line in reversed(lines):
        words = line.split()
        if words[:1] == ["info"] and "nps" in words:
            return int(words[words.index("nps") + 1])
    return None


def measure(argv: list[str], movetime_ms: int, stops: int,
            between: Callable[[], object] | None = None
            ) -> tuple[list[int], list[float], list[float]]:
    """([nps per position], [stop latencies in seconds], [seconds from `go movetime` to
    bestmove per position]). `between` is called before each position's search and after
    the last, while the engine waits (the network-alone measurement)."""
    engine = _Uci(argv)
    try:
        engine.send("uci")
        engine.until("uciok")
        engine.send("isready")
        engine.until("readyok")
        rates, answers = [], []
        for fen in FENS:
            if between is not None:
                between()
            engine.send(f"position fen {fen}")
            start = time.perf_counter()
            engine.send(f"go movetime {movetime_ms}")
            _, seen = engine.until("bestmove")
            answers.append(time.perf_counter() - start)
            rate = _nps(seen)
            if rate is not None:
                rates.append(rate)
        if between is not None:
            between()
        latencies = []
        for i in range(stops):
            engine.send(f"position fen {FENS[i % len(FENS)]}")
            engine.send("go infinite")
            time.sleep(0.5)
            start = time.perf_counter()
            engine.send("stop")
            engine.until("bestmove")
            latencies.append(time.perf_counter() - start)
        return rates, latencies, answers
    finally:
        engine.close()


def _line(name: str, rates: list[int], latencies: list[float], answers: list[float],
          movetime_ms: int) -> str:
    nps = f"nps median {statistics.median(rates):,.0f}" if rates else "no nps reported"
    stop = (f"stop latency median {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms over {len(latencies)}") if latencies else ""
    used = (f"; go movetime {movetime_ms}: bestmove after median "
            f"{statistics.median(answers) * 1000:.0f} ms, max {max(answers) * 1000:.0f} ms "
            f"({max(answers) * 1000 / movetime_ms:.0%} of the budget)") if answers else ""
    return f"{name}: {nps}; {stop}{used}"


def main(argv: list[str] | None = None) -> int:
    """Prints nps and stop latency for tabula uci and the reference engine, and, with a
    checkpoint, the nps over the network alone (engine.bench_inference.NetworkAlone)."""
    from arena.matches.external import engine_argv

    p = argparse.ArgumentParser(prog="tabula bench uci", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", metavar="PATH",
                   help="checkpoint (default: uniform network, and no network-alone ratio)")
    p.add_argument("--uci-args", default="",
                   help="extra arguments for tabula uci, e.g. '--minibatch-size 1'")
    p.add_argument("--movetime", type=int, default=3000, help="ms per nps search (default 3000)")
    p.add_argument("--stops", type=int, default=10, help="stop measurements (default 10)")
    p.add_argument("--reference", default="stockfish", help="reference engine ('' to skip)")
    args = p.parse_args(argv)
    ours = [sys.executable, "-m", "tabula", "uci", *shlex.split(args.uci_args)]
    if args.checkpoint:
        ours += ["--checkpoint", args.checkpoint]
    alone = None
    if args.checkpoint:
        from engine.bench_inference import NetworkAlone

        alone = NetworkAlone(args.checkpoint)
    rates, latencies, answers = measure(ours, args.movetime, args.stops,
                                        alone.measure if alone is not None else None)
    print(_line(f"tabula uci {shlex.join(ours[4:])}".strip(), rates, latencies, answers,
                args.movetime), flush=True)
    if alone is not None:
        print(alone.summary(statistics.median(rates) if rates else None, "nps"), flush=True)
    if args.reference:
        reference = engine_argv(args.reference)
        if reference is None:
            print(f"reference skipped: {args.reference.split()[0]} is not installed")
            return 0
        ref_rates, ref_latencies, ref_answers = measure(reference, args.movetime, args.stops)
        print(_line(args.reference, ref_rates, ref_latencies, ref_answers, args.movetime))
    return 0
