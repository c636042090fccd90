"""`tabula bench actors`: self-play positions/s with 1..N actor processes, with and without
the shared inference server, against self-play in this process, in one run.

Each configuration runs the real local pool (selfplay/parallel.py): spawned
actor processes playing with a checkpoint of a freshly initialised network,
writing their chunks to a scratch run directory, reporting their figures.
After every actor has delivered a first chunk (start-up, compilation), the
chunks of the next `--seconds` are counted: positions/s is each actor's own
rate summed over actors. Configurations:

    0     the actor in this process (the single-process loop's self-play)
    N     N actor processes, each with its own network (onnxruntime)
    Ns    N actor processes sending their batches to one inference server
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from selfplay import config as cfg
from selfplay import telemetry
from selfplay.parallel import LocalPool, cores
from selfplay.run import RunState, prepare_run
from selfplay.worker import INCOMING, SelfPlayWorker


def _config(game: str, blocks: int, channels: int, sims: int, games: int, moves: int,
            actors: str, server: bool) -> cfg.TrainConfig:
    return cfg.merge(cfg.preset(game), {
        "network": {"blocks": blocks, "channels": channels},
        "search": {"num_simulations": sims},
        "selfplay": {"parallel_games": games, "moves_per_iteration": moves},
        "run": {"actors": actors, "inference_server": server}})


def _in_process(config: cfg.TrainConfig, run_dir: Path, seconds: float) -> dict:
    """Self-play in this process with all cores, as the single-process loop plays."""
    worker = SelfPlayWorker(cfg.to_dict(config), 0, [config.run.seed, 0], threads=cores())
    worker.load_checkpoint(RunState(config, run_dir).save())
    worker.play()  # warm-up
    chunks, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunks.append(worker.play()[1])
    return telemetry.combine(chunks) | {"chunks": len(chunks), "rss_mb": telemetry.rss_bytes()
                                        / 2**20}


def _pool(config: cfg.TrainConfig, run_dir: Path, seconds: float, actors: int) -> dict:
    """N actor processes with no learner: they share every core."""
    threads = max(1, cores() // actors)
    pool = LocalPool(run_dir, config, log=lambda line: None, threads=threads,
                     server_threads=cores())
    run = RunState(config, run_dir)
    pool.publish(run.save())
    del run
    pool.start(0)
    try:
        warm: set[int] = set()
        deadline = time.monotonic() + 600
        while len(warm) < actors:  # every actor started, compiled and played a chunk
            warm.update(c["actor"] for c in pool.collect(timeout=0.5))
            pool.supervise()
            if time.monotonic() > deadline:
                raise RuntimeError("actors did not start within 600 s")
        before = pool.batch_stats()
        chunks, start = [], time.perf_counter()
        while time.perf_counter() - start < seconds:
            chunks += pool.collect(timeout=0.5)
            for path in (run_dir / INCOMING).glob("a*.msgpack"):
                path.unlink(missing_ok=True)
        after = pool.batch_stats()
        row = telemetry.combine(chunks) | {"chunks": len(chunks),
                                           "rss_mb": pool.rss() / 2**20}
        if before and after and after["batches"] > before["batches"]:
            row["selfplay/mean_batch"] = ((after["evaluations"] - before["evaluations"])
                                          / (after["batches"] - before["batches"]))
        return row
    finally:
        pool.close()


def bench_actors(game="connect4", blocks=4, channels=48, sims=32, games=256, moves=2,
                 seconds=40.0, configs=("0", "1", "2", "1s", "2s")) -> list[dict]:
    torch.manual_seed(0)
    results = []
    for name in configs:
        server = name.endswith("s")
        actors = int(name.rstrip("s"))
        config = _config(game, blocks, channels, sims, games, moves, str(actors), server)
        with tempfile.TemporaryDirectory(prefix="tabula-bench-actors-") as tmp:
            run_dir = Path(tmp) / "run"
            config = prepare_run(run_dir, config)
            row = (_in_process(config, run_dir, seconds) if actors == 0
                   else _pool(config, run_dir, seconds, actors))
        row["config"] = name
        results.append(row)
        print(_line(row), flush=True)
    return results


def _label(name: str) -> str:
    if name == "0":
        return "in this process"
    n = int(name.rstrip("s"))
    kind = "shared inference server" if name.endswith("s") else "own networks"
    return f"{n} actor process{'es' if n > 1 else ''}, {kind}"


def _line(r: dict) -> str:
    return (f"  {_label(r['config']):44s} {r['selfplay/positions_per_s']:8.1f} pos/s "
            f"{r['selfplay/sims_per_s']:9.0f} sims/s  batch {r['selfplay/mean_batch']:6.1f}  "
            f"network {r['time/network']:.0%}  rss {r['rss_mb']:.0f} MB  ({r['chunks']} chunks)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench actors",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="connect4")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--channels", type=int, default=48)
    parser.add_argument("--sims", type=int, default=32)
    parser.add_argument("--games", type=int, default=256, help="parallel games per actor")
    parser.add_argument("--moves", type=int, default=2, help="moves per chunk")
    parser.add_argument("--seconds", type=float, default=40.0, help="timed seconds per config")
    parser.add_argument("--configs", default="0,1,2,1s,2s",
                        help="comma-separated: 0 (this process), N (processes), Ns (with server)")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if not c.rstrip("s").isdigit() or (c.endswith("s") and c == "0s"):
            parser.error(f"--configs: {c!r} is not 0, N or Ns")
    print(f"self-play {args.game} net {args.blocks}x{args.channels}, {args.sims} sims, "
          f"{args.games} games per actor, {cores()} cores, {args.seconds:.0f} s per config")
    results = bench_actors(args.game, args.blocks, args.channels, args.sims, args.games,
                           args.moves, args.seconds, configs)
    base = results[0]["selfplay/positions_per_s"]
    print(f"ratio to {_label(results[0]['config'])}: " + ", ".join(
        f"{r['config']} {r['selfplay/positions_per_s'] / base:.2f}" for r in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
