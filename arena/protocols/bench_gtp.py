"""`tabula bench gtp`: genmove latency and nodes/s of `tabula gtp`, with gnugo alongside.

Each engine runs as a real subprocess speaking GTP on a pipe (as a GUI
drives it). The engines play one game against themselves, `genmove b`,
`genmove w`, ... from an empty board, and every genmove's round-trip time
is measured; the first one (warm-up: model loading, JIT) is reported
separately. Nodes/s is the simulations per move over each genmove's time
(median). With a network (the checkpoint, else the model shipped for the
board) the same network is also timed alone at batch 16 between genmoves,
and nodes/s is given as a share of it. gnugo (if installed) plays the same
number of moves as the reference.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

NETWORK_ROUNDS_EVERY = 10
"""Genmoves between two network-alone measurements."""


class _Gtp:
    """A GTP engine in a subprocess (blocking request/answer)."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"engine exited after {command!r}")
            if not line.strip():
                if lines:
                    break
                continue
            lines.append(line.rstrip("\n"))
        answer = "\n".join(lines)
        if not answer.startswith("="):
            raise RuntimeError(f"{command!r} answered {answer!r}")
        return answer[1:].strip()

    def close(self) -> None:
        try:
            self.ask("quit")
        except (RuntimeError, OSError):
            pass
        self.proc.wait(5)


def measure(argv: list[str], size: int, moves: int,
            between: Callable[[], object] | None = None) -> tuple[float, list[float]]:
    """(first genmove seconds, the later genmoves' seconds) of one self-play game.
    `between` is called every NETWORK_ROUNDS_EVERY genmoves and at the end, while the
    engine waits (the network-alone measurement)."""
    engine = _Gtp(argv)
    try:
        engine.ask("protocol_version")
        engine.ask(f"boardsize {size}")
        engine.ask("clear_board")
        engine.ask("komi 7.5")
        times = []
        passes = 0
        for i in range(moves):
            if between is not None and i % NETWORK_ROUNDS_EVERY == 1:
                between()
            start = time.perf_counter()
            move = engine.ask(f"genmove {'bw'[i % 2]}")
            times.append(time.perf_counter() - start)
            passes = passes + 1 if move.lower() == "pass" else 0
            if move.lower() == "resign" or passes == 2:
                break
        if between is not None:
            between()
        return times[0], times[1:]
    finally:
        engine.close()


def _line(name: str, first: float, times: list[float], sims: int | None = None) -> str:
    if not times:
        return f"{name}: first genmove {first * 1000:.0f} ms, no further moves"
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    nodes = (f", {sims} simulations per move: nodes/s median {_nodes_per_s(sims, times):,.0f}"
             if sims else "")
    return (f"{name}: {len(times)} genmoves, median {statistics.median(times) * 1000:.0f} ms, "
            f"p90 {p90 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms "
            f"(first, with start-up: {first * 1000:.0f} ms){nodes}")


def _nodes_per_s(sims: int, times: list[float]) -> float:
    return statistics.median(sims / t for t in times)


def _network(args) -> str | None:
    """The checkpoint `tabula gtp` will play with these arguments, or None (uniform)."""
    from arena.matches.players import shipped_checkpoint

    if args.checkpoint:
        return args.checkpoint
    shipped = shipped_checkpoint(f"go{args.size}")
    uniform = "--uniform" in shlex.split(args.gtp_args)
    return str(shipped) if shipped.exists() and not uniform else None


def _sims_per_move(args, network: str | None) -> int | None:
    """Simulations of every genmove, or None when they are not known here (the clock
    decides, or the uniform network without --sims)."""
    from checkpoints import read_metadata

    given = shlex.split(args.gtp_args)
    if args.sims is not None:
        return args.sims
    if "--time-per-move" in given or "--sims" in given or network is None:
        return None
    return int(read_metadata(network)["extra"]["search"].get("num_simulations", 1))


def main(argv: list[str] | None = None) -> int:
    """Prints the genmove latency of tabula gtp and of gnugo."""
    from arena.matches.external import engine_argv

    p = argparse.ArgumentParser(prog="tabula bench gtp", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", metavar="PATH",
                   help="checkpoint (default: the model shipped for the board, else the "
                        "uniform network)")
    p.add_argument("--size", type=int, default=9, help="board size (default 9)")
    p.add_argument("--moves", type=int, default=40, help="genmoves per engine (default 40)")
    p.add_argument("--sims", type=int, metavar="N",
                   help="simulations per move (default: the engine's: the checkpoint's "
                        "training setting)")
    p.add_argument("--gtp-args", default="",
                   help="extra arguments for tabula gtp, e.g. '--batch 1'")
    p.add_argument("--gnugo", default="gnugo --mode gtp --level 1 --chinese-rules",
                   help="reference engine command ('' to skip)")
    p.add_argument("--match", type=int, default=0, metavar="N",
                   help="also play N games of tabula gtp against the reference, both as GTP "
                        "subprocesses, and count protocol errors and illegal moves")
    args = p.parse_args(argv)
    ours = [sys.executable, "-m", "tabula", "gtp", *shlex.split(args.gtp_args)]
    if args.checkpoint:
        ours += ["--checkpoint", str(Path(args.checkpoint))]
    else:
        ours += ["--game", f"go{args.size}"]
    if args.sims is not None:
        ours += ["--sims", str(args.sims)]
    network = _network(args)
    sims = _sims_per_move(args, network)
    alone = None
    if network is not None:
        from engine.bench_inference import NetworkAlone

        alone = NetworkAlone(network)
    first, times = measure(ours, args.size, args.moves,
                           alone.measure if alone is not None else None)
    print(_line(f"tabula gtp {shlex.join(ours[4:])}", first, times, sims), flush=True)
    if alone is not None:
        print(alone.summary(_nodes_per_s(sims, times) if sims and times else None),
              flush=True)
    if args.gnugo:
        reference = engine_argv(args.gnugo)
        if reference is None:
            print(f"reference skipped: {args.gnugo.split()[0]} is not installed")
            return 0
        first_ref, ref_times = measure(reference, args.size, args.moves)
        print(_line(args.gnugo, first_ref, ref_times))
        if times and ref_times:
            ratio = statistics.median(times) / statistics.median(ref_times)
            print(f"median latency ratio tabula/gnugo: {ratio:.2f}")
        if args.match:
            print(conformance_match(ours, reference, args.size, args.match))
    return 0


def conformance_match(ours: list[str], reference: list[str], size: int, games: int) -> str:
    """Plays `games` games between two GTP subprocesses; one line: results and failures."""
    from arena.matches.external import ExternalPlayer
    from arena.matches.match import MatchSettings, play_games
    from games import get_game

    game = get_game(f"go{size}") if size in (9, 13, 19) else get_game(f"go/{size}")
    a = ExternalPlayer("gtp", ours, game, name="tabula", timeout=60)
    b = ExternalPlayer("gtp", reference, game, name="gnugo", timeout=60)
    results = []
    start = time.perf_counter()
    try:
        play_games(game, a, b, range(games), MatchSettings(game.info.name, opening_plies=0),
                   results.append, lockstep=1)
    finally:
        a.close()
        b.close()
    points = sum(r.score if r.first == "tabula" else 1 - r.score for r in results)
    failures = [r.reason for r in results if r.reason and "resigned" not in r.reason]
    resigned = sum(1 for r in results if r.reason and "resigned" in r.reason)
    return (f"match tabula gtp vs {reference[0]}: {len(results)} games, tabula {points:g} points, "
            f"{resigned} resignations, {len(failures)} protocol errors or illegal moves"
            + (f" ({'; '.join(sorted(set(failures)))})" if failures else "")
            + f", {time.perf_counter() - start:.0f} s")
