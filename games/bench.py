"""Benchmark of SearchBatch.expand: a game's batch against ObjectBatch.

Run `python -m games.bench [game ...]`. Each step expands L leaves, one per
tree, from a random created non-terminal node by a random legal action, as a
search would; both batches replay the same recorded leaves.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from games.base import Game, ObjectBatch
from games.registry import get_game


def record_leaves(game: Game, num_trees: int, steps: int, seed: int = 0):
    """Random valid leaves for `steps` expand calls over `num_trees` trees.

    Returns:
      roots (list of State) and a list of `steps` tuples of int32[num_trees]
      arrays (leaf_tree, leaf_parent, leaf_node, leaf_action).
    """
    rng = np.random.default_rng(seed)
    roots = []
    for _ in range(num_trees):
        state = game.new_initial_state()
        for _ in range(rng.integers(0, 4)):
            state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        roots.append(state)
    batch = ObjectBatch(roots, steps + 1)
    shape, num_actions = game.info.observation_shape, game.info.num_actions
    obs = np.zeros((num_trees, *shape), np.float32)
    masks = np.zeros((num_trees, num_actions), bool)
    batch.observe_roots(obs, masks)
    open_nodes = [[(0, masks[b].copy())] for b in range(num_trees)]
    calls = []
    for step in range(steps):
        tree = np.arange(num_trees, dtype=np.int32)
        parent = np.zeros(num_trees, np.int32)
        node = np.full(num_trees, step + 1, np.int32)
        action = np.zeros(num_trees, np.int32)
        for b in range(num_trees):
            if not open_nodes[b]:
                node[b] = -1
                continue
            parent[b], mask = open_nodes[b][rng.integers(len(open_nodes[b]))]
            action[b] = rng.choice(np.flatnonzero(mask))
        reward = np.zeros(num_trees, np.float32)
        terminal = np.zeros(num_trees, bool)
        batch.expand(tree, parent, node, action, obs, masks, reward, terminal)
        for b in range(num_trees):
            if node[b] >= 0 and not terminal[b]:
                open_nodes[b].append((node[b], masks[b].copy()))
        calls.append((tree, parent, node, action))
    return roots, calls


def time_expand(batch, calls, shape, num_actions) -> float:
    """Seconds per leaf of `batch.expand` over the recorded calls."""
    num_leaves = len(calls[0][0])
    obs = np.zeros((num_leaves, *shape), np.float32)
    masks = np.zeros((num_leaves, num_actions), bool)
    reward = np.zeros(num_leaves, np.float32)
    terminal = np.zeros(num_leaves, bool)
    start = time.perf_counter()
    for call in calls:
        batch.expand(*call, obs, masks, reward, terminal)
    elapsed = time.perf_counter() - start
    return elapsed / sum(int((c[2] >= 0).sum()) for c in calls)


def bench(name: str, num_leaves: int = 256, steps: int = 64, repeats: int = 5) -> dict:
    """µs per leaf of the game's batch and of ObjectBatch (best of `repeats`)."""
    game = get_game(name)
    roots, calls = record_leaves(game, num_leaves, steps)
    shape, num_actions = game.info.observation_shape, game.info.num_actions
    time_expand(game.new_search_batch(roots, steps + 1), calls[:1], shape, num_actions)
    fast = min(time_expand(game.new_search_batch(roots, steps + 1), calls, shape,
                           num_actions) for _ in range(repeats))
    slow = time_expand(ObjectBatch(roots, steps + 1), calls, shape, num_actions)
    return {"game": name, "leaves": num_leaves, "fast_us": fast * 1e6, "object_us": slow * 1e6}


if __name__ == "__main__":
    for game_name in sys.argv[1:] or ["tictactoe", "connect4"]:
        r = bench(game_name)
        print(f"{r['game']:>10}  L={r['leaves']}  expand: {r['fast_us']:.3f} us/leaf  "
              f"ObjectBatch: {r['object_us']:.2f} us/leaf  "
              f"speed-up x{r['object_us'] / r['fast_us']:.0f}")
