"""Search quality against truth with several leaves per step (virtual loss): Connect Four.

    python scripts/leaves_sweep.py --sims 16 32 64 --leaves 1 4 8 16 --modes gumbel puct

For every (root mode, simulations, leaves per tree and step) the shipped Connect
Four model searches the solved development positions (/work/shared/data, 1012
positions, searched 256 at a time) and the share of moves that keep the
win/draw/loss and that are optimal is printed, with the number of positions
where the move differs from the one-leaf search's (same mode and simulations)
and how many of those changes gained or lost the value. Noise-free search, so
each setting is deterministic. Run from the repository root.
"""

from __future__ import annotations

import argparse
import time

from arena.matches.players import shipped_checkpoint
from arena.exact.solved import DEFAULT_DATA, evaluate_solved, keeps_value, load_positions
from engine.player import Player


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sims", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--leaves", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--modes", nargs="+", default=["gumbel", "puct"])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--checkpoint", default=str(shipped_checkpoint("connect4")))
    args = p.parse_args()
    positions = load_positions(args.data)
    base = Player.from_checkpoint(args.checkpoint)
    print(f"{len(positions)} positions; keeps / best in %; vs 1 leaf: moves changed "
          "(value kept -> lost, lost -> kept)")
    for mode in args.modes:
        for sims in args.sims:
            reference = None
            for k in [1] + [k for k in args.leaves if k != 1]:
                player = base.with_search(root_mode=mode, num_simulations=sims,
                                          leaves_per_step=k)
                start = time.perf_counter()
                report = evaluate_solved(base.game, player, positions)
                seconds = time.perf_counter() - start
                moves = [m for m, _ in report.moves]
                if reference is None:
                    reference = moves
                changed = [(pos, a, b) for pos, a, b in zip(positions, reference, moves)
                           if a != b]
                lost = sum(keeps_value(pos, a) and not keeps_value(pos, b)
                           for pos, a, b in changed)
                gained = sum(keeps_value(pos, b) and not keeps_value(pos, a)
                             for pos, a, b in changed)
                t = report.total
                print(f"{mode:<6} sims {sims:>4} leaves {k:>3}: keeps {100 * t.search_keeps / t.n:5.1f}"
                      f"  best {100 * t.search_best / t.n:5.1f}  changed {len(changed):>4} "
                      f"(lost {lost:>3}, gained {gained:>3})  {seconds:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
