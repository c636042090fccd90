"""`tabula bench selfplay`: self-play throughput against the network alone.

Plays real self-play moves (search, game rules, observations, records) with a
freshly initialised network, then times the same evaluator alone on batches
of the size self-play actually sent. The ratio of network evaluations per
second says how much the engine adds on top of the network: 1.0 means
nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from engine.eval_cache import with_cache
from engine.evaluator import make_evaluator
from engine.networks import NetworkConfig, PolicyValueNet
from engine.search import SearchConfig, Timings
from games import get_game
from selfplay.actor import Actor
from selfplay.config import SelfPlayConfig


def network_alone(evaluator, obs_shape, num_actions, batch, seconds, rng) -> float:
    """Evaluations/s of `evaluator` on random 0/1 observations of `batch` rows."""
    obs = (rng.random((batch,) + tuple(obs_shape)) < 0.3).astype(np.float32)
    mask = np.ones((batch, num_actions), np.bool_)
    evaluator.evaluate(obs, mask)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        evaluator.evaluate(obs, mask)
        done += batch
    return done / (time.perf_counter() - t0)


def bench_selfplay(game_name="connect4", blocks=5, channels=64, sims=64, games=256,
                   moves=4, root_mode="gumbel", backend="auto", seed=0, eval_cache=0,
                   warmup_moves=2) -> dict:
    """Measures self-play and the network alone in one run; returns the figures.

    `warmup_moves` moves are played before timing (compilation, allocations; with
    more, games finish and restart at different times, as in a long run, instead
    of all sharing their opening). With `eval_cache`, the search's evaluations
    go through a cache of that many positions (engine.eval_cache); the network
    alone is timed without it.
    """
    torch.manual_seed(seed)
    game = get_game(game_name)
    info = game.info
    net = PolicyValueNet(tuple(info.observation_shape), info.num_actions,
                         NetworkConfig(blocks=blocks, channels=channels))
    network = make_evaluator(net, backend, batch=games)
    evaluator = with_cache(network, eval_cache, info.num_actions)
    search = SearchConfig(num_simulations=sims, root_mode=root_mode)
    actor = Actor(game, search, SelfPlayConfig(parallel_games=games),
                  np.random.default_rng(seed))
    # Warm-up: compilation, allocations. At least two moves: the first plays from the
    # initial states, whose read-only arrays are other Numba signatures than later ones.
    actor.play(evaluator, max(2, warmup_moves))
    actor.timings = Timings()
    requested_before, hits_before = (getattr(evaluator, "requested", 0),
                                     getattr(evaluator, "hits", 0))
    before = actor.moves_played
    t0 = time.perf_counter()
    actor.play(evaluator, moves)
    elapsed = time.perf_counter() - t0
    t = actor.timings
    hits = getattr(evaluator, "hits", 0) - hits_before
    requested = getattr(evaluator, "requested", 0) - requested_before
    positions = actor.moves_played - before
    # The search's requests, less those the cache answered: what the network ran.
    network_evals = t.evaluations - hits
    mean_batch = network_evals / max(t.batches, 1)
    alone = network_alone(network, info.observation_shape, info.num_actions,
                          max(1, round(mean_batch)), max(2.0, elapsed / 2),
                          np.random.default_rng(seed))
    evals_per_s = network_evals / elapsed
    return {
        "game": game_name, "network": f"{blocks}x{channels}",
        "backend": getattr(network, "backend", backend), "asked_backend": backend,
        "root_mode": root_mode, "sims": sims, "games": games, "eval_cache": eval_cache,
        "cache_hit_rate": hits / requested if requested else 0.0,
        "evals_saved_per_position": hits / max(positions, 1),
        "positions_per_s": positions / elapsed,
        "evals_per_s": evals_per_s, "mean_batch": mean_batch,
        "network_alone_evals_per_s": alone, "ratio": evals_per_s / alone,
        "share_network": t.network_s / elapsed, "share_game": t.game_s / elapsed,
        "share_tree": t.tree_s / elapsed,
        "share_other": 1 - (t.network_s + t.game_s + t.tree_s) / elapsed,
    }


def format_result(r: dict) -> str:
    backend = r["backend"] + (" (auto)" if r.get("asked_backend") == "auto" else "")
    cache = (f"  eval cache {r['eval_cache']:,}: hit rate {r['cache_hit_rate']:.1%}, "
             f"{r['evals_saved_per_position']:.1f} network evaluations saved per position\n"
             if r.get("eval_cache") else "")
    return (
        f"self-play {r['game']} net {r['network']} backend {backend} {r['root_mode']} "
        f"{r['sims']} sims, {r['games']} games at once\n"
        f"{cache}"
        f"  positions/s          {r['positions_per_s']:10.1f}\n"
        f"  network evals/s      {r['evals_per_s']:10.0f}  (mean batch {r['mean_batch']:.1f})\n"
        f"  network alone evals/s{r['network_alone_evals_per_s']:10.0f}  (same batch, same backend)\n"
        f"  ratio                {r['ratio']:10.3f}\n"
        f"  time: network {r['share_network']:.1%}, game rules {r['share_game']:.1%}, "
        f"tree {r['share_tree']:.1%}, other {r['share_other']:.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench selfplay",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="connect4")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--sims", type=int, default=64)
    parser.add_argument("--games", type=int, default=256, help="parallel games")
    parser.add_argument("--moves", type=int, default=4, help="moves timed per game")
    parser.add_argument("--mode", default="gumbel", choices=["gumbel", "puct"])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-cache", type=int, default=0, metavar="N",
                        help="cache N positions' evaluations (selfplay.eval_cache; 0: none)")
    parser.add_argument("--warmup-moves", type=int, default=2, metavar="M",
                        help="moves played before timing (more: games at mixed stages)")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    result = bench_selfplay(args.game, args.blocks, args.channels, args.sims, args.games,
                            args.moves, args.mode, args.backend, args.seed,
                            args.eval_cache, args.warmup_moves)
    print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
