"""Helpers shared by the game tests."""

from __future__ import annotations

import numpy as np

from games import get_game

GAMES = ("tictactoe", "connect4")


def play(game_name: str, moves: str):
    """The state after space-separated move texts, e.g. play('connect4', '4 4 3')."""
    state = get_game(game_name).new_initial_state()
    for text in moves.split():
        state.apply(state.text_to_action(text))
    return state


def random_action(state, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(state.legal_mask())))


def random_state(game_name: str, rng: np.random.Generator, max_moves: int | None):
    """A state after up to `max_moves` random legal moves (None: to the end)."""
    state = get_game(game_name).new_initial_state()
    num_moves = 10**6 if max_moves is None else int(rng.integers(0, max_moves + 1))
    for _ in range(num_moves):
        if state.is_terminal():
            break
        state.apply(random_action(state, rng))
    return state


def board_from_text(spiel_state, height: int, width: int) -> np.ndarray:
    """int[height, width] from open_spiel's board text (top row first): 0 '.', 1 'x', 2 'o'."""
    rows = [line for line in str(spiel_state).splitlines() if line.strip()]
    assert len(rows) == height and all(len(r) == width for r in rows), rows
    return np.array([[".xo".index(ch) for ch in row] for row in rows])


# Search batches against ObjectBatch, the reference (test_*_batch.py).

def sentinel_buffers(game, num_leaves: int, fill: bool = True) -> list[np.ndarray]:
    """SearchBatch.expand's output buffers, pre-filled with sentinels (fill=True) so that
    entries a batch leaves unwritten show, or with zeros."""
    shape, num_actions = game.info.observation_shape, game.info.num_actions
    return [np.full((num_leaves, *shape), 7.0 if fill else 0.0, np.float32),
            np.full((num_leaves, num_actions), fill, bool),
            np.full(num_leaves, 5.0 if fill else 0.0, np.float32),
            np.full(num_leaves, fill, bool)]


def assert_same(outs_a, outs_b) -> None:
    for a, b in zip(outs_a, outs_b):
        np.testing.assert_array_equal(a, b)


def grow_random_trees(game, fast, slow, roots, rng: np.random.Generator, steps: int,
                      num_leaves: int, capacity: int, pick_parent, pick_action):
    """Expands the same random leaves in two search batches over `roots` for `steps`
    steps and asserts equal outputs every step (about 10% of leaves are skipped, with a
    garbage parent that must be ignored).

    Args:
      pick_parent(open_nodes, rng): index into a tree's list of (node, legal mask) of
        its created non-terminal nodes, oldest first.
      pick_action(mask, rng): the action to expand from that node.
    Returns:
      (expanded, terminals, wins): leaves created, terminal ones, and rewards of +1.
    """
    open_nodes = [[(0, r.legal_mask())] if not r.is_terminal() else [] for r in roots]
    next_id = [1] * len(roots)
    expanded = terminals = wins = 0
    for _ in range(steps):
        cols = [np.zeros(num_leaves, np.int32) for _ in range(4)]
        leaf_tree, leaf_parent, leaf_node, leaf_action = cols
        for l in range(num_leaves):
            b = int(rng.integers(len(roots)))
            leaf_tree[l] = b
            if not open_nodes[b] or next_id[b] >= capacity or rng.random() < 0.1:
                leaf_node[l], leaf_parent[l] = -1, 12345  # must be ignored
                continue
            parent, mask = open_nodes[b][pick_parent(open_nodes[b], rng)]
            leaf_parent[l], leaf_node[l] = parent, next_id[b]
            leaf_action[l] = pick_action(mask, rng)
            next_id[b] += 1
        outs_fast = sentinel_buffers(game, num_leaves)
        outs_slow = sentinel_buffers(game, num_leaves)
        fast.expand(*cols, *outs_fast)
        slow.expand(*cols, *outs_slow)
        assert_same(outs_fast, outs_slow)
        for l in np.flatnonzero(leaf_node >= 0):
            expanded += 1
            terminals += outs_slow[3][l]
            wins += outs_slow[2][l] == 1
            if not outs_slow[3][l]:
                open_nodes[leaf_tree[l]].append((leaf_node[l], outs_slow[1][l].copy()))
    return expanded, terminals, wins


def deep_parent(open_nodes, rng: np.random.Generator) -> int:
    """Recent (deep) nodes more often, so that paths reach past a history of positions."""
    k = len(open_nodes)
    return k - 1 - min(int(rng.geometric(0.3)) - 1, k - 1)


def any_parent(open_nodes, rng: np.random.Generator) -> int:
    return int(rng.integers(len(open_nodes)))


def legal_action(mask, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(mask)))
