"""`tabula bench arena`: match throughput (games/s) with 1 and with N worker processes.

Both players are checkpoints (default: the first and last of a run
directory, else the shipped Connect Four model against itself under two
names) searching `--sims` simulations per move. The same games (same
seed, openings and indices) are played once per process count, so the
figures compare like with like; nothing is stored.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _specs(args):
    from arena.matches.players import PlayerSpec, checkpoint_spec, shipped_checkpoint
    from checkpoints import list_checkpoints, read_metadata

    if args.run:
        paths = list_checkpoints(Path(args.run) / "checkpoints")
        if len(paths) < 2:
            raise ValueError(f"{args.run} needs at least two checkpoints")
        game = read_metadata(paths[0])["game"]
        return game, checkpoint_spec(paths[0], game, args.sims), \
            checkpoint_spec(paths[-1], game, args.sims)
    path = shipped_checkpoint(args.game)
    if not path.exists():
        raise ValueError(f"no model is shipped for {args.game}; give --run DIR")
    a = checkpoint_spec(path, args.game, args.sims)
    return args.game, a, PlayerSpec(a.name + "-b", a.kind, a.target, a.sims, a.step)


def main(argv: list[str] | None = None) -> int:
    """Prints games/s for each process count and the speed-up over one process."""
    from arena.matches.match import MatchSettings, run_match

    p = argparse.ArgumentParser(prog="tabula bench arena", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", metavar="DIR", help="run directory: its first and last checkpoints")
    p.add_argument("--game", default="connect4", help="without --run: the shipped model's game")
    p.add_argument("--sims", type=int, default=100, help="simulations per move (default 100)")
    p.add_argument("--games", type=int, default=64, help="games per measurement (default 64)")
    p.add_argument("--opponent", metavar="SPEC",
                   help="second player instead of the last checkpoint (e.g. mcts:200)")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2],
                   help="process counts to measure (default 1 2)")
    args = p.parse_args(argv)
    if args.games < 2 or args.sims < 1 or min(args.processes) < 1:
        raise ValueError("--games must be >= 2, --sims and --processes >= 1")
    game, a, b = _specs(args)
    if args.opponent:
        from arena.matches.players import parse_player
        b = parse_player(args.opponent, game, args.sims)
    print(f"{game}: {a.name} vs {b.name}, {args.sims} simulations per move, "
          f"{args.games} games per measurement")
    rates = {}
    for n in args.processes:
        results = []
        start = time.perf_counter()
        run_match(game, a, b, range(args.games), MatchSettings(game, seed=0), results.append,
                  processes=n)
        seconds = time.perf_counter() - start
        plies = sum(len(r.moves) for r in results)
        rates[n] = len(results) / seconds
        print(f"{n} process{'es' if n > 1 else ''}: {len(results)} games in {seconds:.1f} s = "
              f"{rates[n]:.3f} games/s ({plies / seconds:.1f} moves/s)", flush=True)
    base = rates[args.processes[0]]
    for n in args.processes[1:]:
        print(f"speed-up {n} vs {args.processes[0]} processes: {rates[n] / base:.2f}x")
    return 0
