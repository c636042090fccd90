"""Playing strength of interactive batching: the same model, several leaves per step vs one.

    python scripts/leaves_arena.py --games 600 --sims 32 --mode gumbel

Both players are the shipped Connect Four model (or --checkpoint) at the same
simulations per move, deterministic (temperature 0, no noise). "batched" selects
the leaves per step a lone position gets in interactive play
(engine.interactive.interactive_leaves(--batch, 1 tree, sims, mode)); "single" one
leaf per step. Trees are searched independently, so each player searches all the
games' positions where it is to move in one call (arena.matches.match lockstep), which gives
the same moves as one position at a time and runs faster. Games start from
--opening-plies random moves, each opening played from both sides. Prints the score
of "batched" and the Elo difference with its 95% interval (arena.matches.elo).
"""

from __future__ import annotations

import argparse
import time

from arena.matches.elo import rate
from arena.matches.match import MatchSettings, play_games
from arena.matches.players import SearchPlayer, shipped_checkpoint
from engine.interactive import INTERACTIVE_BATCH, interactive_leaves
from engine.player import Player


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(shipped_checkpoint("connect4")))
    p.add_argument("--games", type=int, default=400)
    p.add_argument("--sims", type=int, default=32)
    p.add_argument("--mode", default="gumbel", choices=("gumbel", "puct"))
    p.add_argument("--batch", type=int, default=INTERACTIVE_BATCH)
    p.add_argument("--leaves", type=int,
                   help="leaves per step of 'batched' (default: what --batch gives)")
    p.add_argument("--opening-plies", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    base = Player.from_checkpoint(args.checkpoint).with_search(
        root_mode=args.mode, num_simulations=args.sims, leaves_per_step=1)
    k = args.leaves or interactive_leaves(args.batch, 1, args.sims, args.mode)
    batched = SearchPlayer("batched", base.with_search(leaves_per_step=k))
    single = SearchPlayer("single", base)
    game = base.game
    print(f"{game.info.name}, {args.mode}, {args.sims} simulations: batched = {k} leaves per "
          f"step, single = 1; {args.games} games, {args.opening_plies} random opening plies",
          flush=True)
    results = []
    start = time.perf_counter()
    play_games(game, batched, single, range(args.games),
               MatchSettings(game.info.name, args.seed, args.opening_plies), results.append)
    points = sum(r.score if r.first == "batched" else 1 - r.score for r in results)
    wins = sum((r.score == 1.0) == (r.first == "batched") and r.score != 0.5 for r in results)
    draws = sum(r.score == 0.5 for r in results)
    ratings = rate([(r.first, r.second, r.score) for r in results], anchor="single")
    elo = ratings.by_name()["batched"]
    print(f"batched: {points:g}/{len(results)} = {points / len(results):.3f} "
          f"(W {wins} D {draws} L {len(results) - wins - draws}); Elo vs single "
          f"{elo.elo:+.0f} [{elo.low:+.0f}, {elo.high:+.0f}] (95%); "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
