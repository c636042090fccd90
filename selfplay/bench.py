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
                   moves=4, root_mode="gumbel", backend="auto", seed=0) -> dict:
    """Measures self-play and the network alone in one run; returns the figures."""
    torch.manual_seed(seed)
    game = get_game(game_name)
    info = game.info
    net = PolicyValueNet(tuple(info.observation_shape), info.num_actions,
                         NetworkConfig(blocks=blocks, channels=channels))
    evaluator = make_evaluator(net, backend)
    search = SearchConfig(num_simulations=sims, root_mode=root_mode)
    actor = Actor(game, search, SelfPlayConfig(parallel_games=games),
                  np.random.default_rng(seed))
    # Warm-up: compilation, allocations. Two moves: the first plays from the initial
    # states, whose read-only arrays are other Numba signatures than later ones.
    actor.play(evaluator, 2)
    actor.timings = Timings()
    before = actor.moves_played
    t0 = time.perf_counter()
    actor.play(evaluator, moves)
    elapsed = time.perf_counter() - t0
    t = actor.timings
    mean_batch = t.mean_batch()
    alone = network_alone(evaluator, info.observation_shape, info.num_actions,
                          max(1, round(mean_batch)), max(2.0, elapsed / 2),
                          np.random.default_rng(seed))
    evals_per_s = t.evaluations / elapsed
    return {
        "game": game_name, "network": f"{blocks}x{channels}", "backend": backend,
        "root_mode": root_mode, "sims": sims, "games": games,
        "positions_per_s": (actor.moves_played - before) / elapsed,
        "evals_per_s": evals_per_s, "mean_batch": mean_batch,
        "network_alone_evals_per_s": alone, "ratio": evals_per_s / alone,
        "share_network": t.network_s / elapsed, "share_game": t.game_s / elapsed,
        "share_tree": t.tree_s / elapsed,
        "share_other": 1 - (t.network_s + t.game_s + t.tree_s) / elapsed,
    }


def format_result(r: dict) -> str:
    return (
        f"self-play {r['game']} net {r['network']} backend {r['backend']} {r['root_mode']} "
        f"{r['sims']} sims, {r['games']} games at once\n"
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
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    result = bench_selfplay(args.game, args.blocks, args.channels, args.sims, args.games,
                            args.moves, args.mode, args.backend, args.seed)
    print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
