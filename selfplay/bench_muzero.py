"""`tabula bench muzero`: MuZero search and self-play throughput against the network alone.

With the game's MuZero preset network (for Atari: 32 channels, 1 block, 16
Gumbel simulations, 16 games at once), measures in one run:

1. search alone: `run_muzero_search` on the B real root observations of the
   self-play slots (just reset), repeated for `seconds`;
2. the network alone: `recurrent` on B random latents and `initial` on the B
   root observations, no search around them;
3. self-play: `MuZeroActor.play` (search, environment or game steps,
   trajectories) after one warm-up move.

The ratio is the time the network alone would take for the search's
evaluations (one `initial` per search, one `recurrent` per simulation step)
over the time the search took: 1.0 means the tree adds nothing.

The network is freshly initialised, whose policy would be uniform and value 0
(its heads' last Linear layers start at zero). For a more realistic tree
shape those last layers (policy, value and reward heads) are drawn from
N(0, 0.05^2) after torch.manual_seed(seed): the figures are of an untrained
but not degenerate network, not of a trained one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
import torch

from engine.muzero_net import MuZeroNet
from engine.muzero_search import MuZeroInference, run_muzero_search
from engine.search import Timings
from games import get_game
from selfplay.config import preset
from selfplay.muzero_actor import MuZeroActor

HEAD_STD = 0.05
"""Standard deviation of the randomised last layers of the heads."""


def randomise_heads(net: MuZeroNet, std: float = HEAD_STD) -> None:
    """Draws the heads' last Linear layers (zero at init) from N(0, std^2), in place."""
    with torch.no_grad():
        for head in (net.policy_head, net.value_head, net.reward_head):
            for p in head.fc[-1].parameters():
                p.normal_(0.0, std)


def search_alone(model, obs, masks, search, value_bounds, seconds, rng) -> dict:
    """Repeats one batched search of the B roots for `seconds` (after one warm-up)."""
    run_muzero_search(model, obs, masks, search, rng, add_noise=True,
                      value_bounds=value_bounds)  # warm-up: kernels, allocations
    t, searches, t0 = Timings(), 0, time.perf_counter()
    while searches == 0 or time.perf_counter() - t0 < seconds:
        run_muzero_search(model, obs, masks, search, rng, add_noise=True, timings=t,
                          value_bounds=value_bounds)
        searches += 1
    elapsed = time.perf_counter() - t0
    b = len(obs)
    initial_evals = b * searches  # one `initial` call of B rows per search
    recurrent_evals = t.evaluations - initial_evals
    recurrent_calls = t.batches - searches
    return {
        "searches": searches, "elapsed_s": elapsed, "simulations": recurrent_evals,
        "simulations_per_s": recurrent_evals / elapsed, "searches_per_s": searches / elapsed,
        "initial_evals": initial_evals, "recurrent_evals": recurrent_evals,
        "evals_per_s": t.evaluations / elapsed,
        "mean_recurrent_batch": recurrent_evals / max(recurrent_calls, 1),
        "search_share_network": t.network_s / elapsed, "search_share_tree": t.tree_s / elapsed,
    }


def _rate(call, rows: int, seconds: float) -> float:
    """Rows per second of `call()` (one batch of `rows`) repeated for `seconds`."""
    call()
    done, t0 = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - t0 < seconds:
        call()
        done += rows
    return done / (time.perf_counter() - t0)


def network_alone(model, net: MuZeroNet, obs, seconds: float, rng) -> tuple[float, float]:
    """(recurrent, initial) evaluations/s at batch B = len(obs).

    `recurrent` runs on random latents in [0, 1] (latents are min-max normalised)
    for 3/4 of `seconds`, `initial` on the real observations for 1/4.
    """
    b = len(obs)
    latent = torch.from_numpy(rng.random((b,) + tuple(net.latent_shape), dtype=np.float32))
    actions = rng.integers(0, net.num_actions, size=b)
    recurrent = _rate(lambda: model.recurrent(latent, actions), b, 0.75 * seconds)
    initial = _rate(lambda: model.initial(obs), b, 0.25 * seconds)
    return recurrent, initial


def selfplay_rate(actor: MuZeroActor, model, moves: int) -> dict:
    """Agent steps/s of `moves` moves in every slot, after one warm-up move."""
    actor.play(model, 1)
    actor.timings = Timings()
    before = actor.moves_played
    t0 = time.perf_counter()
    actor.play(model, moves)
    elapsed = time.perf_counter() - t0
    t = actor.timings
    return {
        "agent_steps": actor.moves_played - before, "selfplay_elapsed_s": elapsed,
        "agent_steps_per_s": (actor.moves_played - before) / elapsed,
        "selfplay_share_network": t.network_s / elapsed,
        "selfplay_share_tree": t.tree_s / elapsed,
        # The actor does not time its environment steps: the rest of the time is
        # environment (or game rules) plus the actor's own bookkeeping.
        "selfplay_share_env": 1 - (t.network_s + t.tree_s) / elapsed,
    }


def bench_muzero(game_name: str = "atari/Breakout", games: int = 16, sims: int = 16,
                 moves: int = 20, root_mode: str = "gumbel", seed: int = 0,
                 seconds: float = 5.0) -> dict:
    """Measures MuZero search, the network alone and self-play in one run.

    Args:
      seconds: duration of the search-alone measurement; the network alone runs
        for 0.6 of it. Self-play's duration follows from `moves`.
    Returns:
      the figures (see format_result for their meaning).
    """
    game = get_game(game_name)
    info = game.info
    config = preset(game_name, "muzero")
    search = dataclasses.replace(config.search, num_simulations=sims, root_mode=root_mode)
    selfplay = dataclasses.replace(config.selfplay, parallel_games=games)
    torch.manual_seed(seed)
    net = MuZeroNet(tuple(info.observation_shape), info.num_actions, config.muzero_network)
    randomise_heads(net)
    model = MuZeroInference(net)
    rng = np.random.default_rng(seed)
    actor = MuZeroActor(game, search, selfplay, config.muzero, rng, seed=seed)
    # The actor's slots, just reset, are the roots: a second set of Atari
    # environments would cost ~0.4 s each to create.
    obs, masks = actor._observe()

    result = {"game": info.name, "network": f"{config.muzero_network.blocks}x"
              f"{config.muzero_network.channels}", "root_mode": root_mode, "sims": sims,
              "games": games, "moves": moves, "threads": torch.get_num_threads()}
    result.update(search_alone(model, obs, masks, search, actor.value_bounds, seconds, rng))
    rec, ini = network_alone(model, net, obs, 0.6 * seconds, np.random.default_rng(seed))
    alone_s = result["initial_evals"] / ini + result["recurrent_evals"] / rec
    result.update({
        "alone_recurrent_per_s": rec, "alone_initial_per_s": ini,
        "alone_evals_per_s": (result["initial_evals"] + result["recurrent_evals"]) / alone_s,
        "ratio": alone_s / result["elapsed_s"],
    })
    result.update(selfplay_rate(actor, model, moves))
    return result


def format_result(r: dict) -> str:
    return "\n".join([
        f"muzero {r['game']} net {r['network']} {r['root_mode']} {r['sims']} sims, "
        f"{r['games']} games at once, {r['threads']} torch threads",
        f"  search alone       {r['simulations_per_s']:10.0f} simulations/s, "
        f"{r['searches_per_s']:.2f} searches/s of {r['games']} trees, mean recurrent batch "
        f"{r['mean_recurrent_batch']:.1f}; time: network {r['search_share_network']:.1%}, "
        f"tree {r['search_share_tree']:.1%}",
        f"  network alone      {r['alone_recurrent_per_s']:10.0f} recurrent evals/s, "
        f"{r['alone_initial_per_s']:.0f} initial evals/s (batch {r['games']}); ratio "
        f"{r['ratio']:.3f} (search evals/s {r['evals_per_s']:.0f} over network alone "
        f"{r['alone_evals_per_s']:.0f})",
        f"  self-play          {r['agent_steps_per_s']:10.1f} agent steps/s ({r['agent_steps']} "
        f"in {r['selfplay_elapsed_s']:.2f} s); time: network "
        f"{r['selfplay_share_network']:.1%}, tree {r['selfplay_share_tree']:.1%}, "
        f"environment and actor {r['selfplay_share_env']:.1%}",
        f"summary: {r['game']} {r['network']} {r['sims']} sims x {r['games']} games: "
        f"{r['simulations_per_s']:.0f} simulations/s at {r['ratio']:.2f} of the network "
        f"alone, {r['agent_steps_per_s']:.1f} agent steps/s in self-play",
    ])


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench muzero",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="atari/Breakout")
    parser.add_argument("--games", type=_positive_int, default=16, help="parallel games (B)")
    parser.add_argument("--sims", type=_positive_int, default=16)
    parser.add_argument("--moves", type=_positive_int, default=20,
                        help="self-play moves timed per game")
    parser.add_argument("--root-mode", default="gumbel", choices=["gumbel", "puct"])
    parser.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1,
                        help="torch threads (default: all cores)")
    parser.add_argument("--seconds", type=_positive_float, default=5.0,
                        help="search-alone duration; the network alone runs 0.6 of it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = bench_muzero(args.game, args.games, args.sims, args.moves, args.root_mode,
                          args.seed, args.seconds)
    print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
