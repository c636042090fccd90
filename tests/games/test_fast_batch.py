"""The Numba SearchBatch against ObjectBatch and open_spiel."""

import numpy as np
import pytest

from games import GameError, ObjectBatch, get_game
from tests.games.util import GAMES, random_action, random_state


def buffers(game, num_leaves, fill=True):
    """Output buffers pre-filled with sentinels, so unwritten entries show."""
    shape, num_actions = game.info.observation_shape, game.info.num_actions
    return [np.full((num_leaves, *shape), 7.0 if fill else 0.0, np.float32),
            np.full((num_leaves, num_actions), fill, bool),
            np.full(num_leaves, 5.0 if fill else 0.0, np.float32),
            np.full(num_leaves, fill, bool)]


def assert_same(outs_a, outs_b):
    for a, b in zip(outs_a, outs_b):
        np.testing.assert_array_equal(a, b)


def roots_for(name, rng, num_trees):
    """Roots at various depths, including a finished game."""
    roots = [random_state(name, rng, 8) for _ in range(num_trees - 1)]
    finished = random_state(name, rng, None)
    assert finished.is_terminal()
    return roots + [finished]


@pytest.mark.parametrize("name", GAMES)
def test_observe_roots_matches_object_batch(name):
    game = get_game(name)
    roots = roots_for(name, np.random.default_rng(0), 9)
    fast = game.new_search_batch(roots, 4)
    slow = ObjectBatch(roots, 4)
    outs_fast, outs_slow = buffers(game, 9)[:2], buffers(game, 9)[:2]
    fast.observe_roots(*outs_fast)
    slow.observe_roots(*outs_slow)
    assert_same(outs_fast, outs_slow)
    assert not outs_fast[1][-1].any()


@pytest.mark.parametrize("name", GAMES)
def test_random_trees_match_object_batch(name):
    game = get_game(name)
    rng = np.random.default_rng(42)
    num_trees, capacity, num_leaves = 7, 80, 16
    roots = roots_for(name, rng, num_trees)
    fast = game.new_search_batch(roots, capacity)
    slow = ObjectBatch(roots, capacity)
    assert fast.num_trees == slow.num_trees == num_trees
    # Per tree: created non-terminal nodes with their legal masks, and the next free id.
    open_nodes = [[(0, r.legal_mask())] if not r.is_terminal() else [] for r in roots]
    next_id = [1] * num_trees
    expanded = terminals = 0
    for _ in range(12):
        cols = [np.zeros(num_leaves, np.int32) for _ in range(4)]
        leaf_tree, leaf_parent, leaf_node, leaf_action = cols
        for l in range(num_leaves):
            b = int(rng.integers(num_trees))
            leaf_tree[l] = b
            if not open_nodes[b] or next_id[b] >= capacity or rng.random() < 0.1:
                leaf_node[l] = -1
                leaf_parent[l] = 12345  # must be ignored
                continue
            parent, mask = open_nodes[b][rng.integers(len(open_nodes[b]))]
            leaf_parent[l], leaf_node[l] = parent, next_id[b]
            leaf_action[l] = rng.choice(np.flatnonzero(mask))
            next_id[b] += 1
        outs_fast, outs_slow = buffers(game, num_leaves), buffers(game, num_leaves)
        fast.expand(*cols, *outs_fast)
        slow.expand(*cols, *outs_slow)
        assert_same(outs_fast, outs_slow)
        for l in np.flatnonzero(leaf_node >= 0):
            expanded += 1
            terminals += outs_slow[3][l]
            if not outs_slow[3][l]:
                open_nodes[leaf_tree[l]].append((leaf_node[l], outs_slow[1][l].copy()))
    assert expanded > 100 and terminals > 0


@pytest.mark.parametrize("name", GAMES)
def test_whole_random_games_match_open_spiel(name):
    """One tree per game, one leaf per tree and step: node t is the position after t moves."""
    game = get_game(name)
    rng = np.random.default_rng(7)
    num_games = 150
    states = [game.new_initial_state() for _ in range(num_games)]
    fast = game.new_search_batch(states, game.info.max_game_length + 1)
    trees = np.arange(num_games, dtype=np.int32)
    for t in range(game.info.max_game_length):
        node = np.array([-1 if s.is_terminal() else t + 1 for s in states], np.int32)
        if (node < 0).all():
            break
        action = np.array([0 if s.is_terminal() else random_action(s, rng) for s in states],
                          np.int32)
        outs = buffers(game, num_games)
        fast.expand(trees, np.full(num_games, t, np.int32), node, action, *outs)
        obs, mask, reward, terminal = outs
        for b in np.flatnonzero(node >= 0):
            state = states[b]
            assert reward[b] == state.apply(int(action[b]))
            assert terminal[b] == state.is_terminal()
            np.testing.assert_array_equal(mask[b], state.legal_mask())
            if not terminal[b]:
                np.testing.assert_array_equal(obs[b], state.observation())
            else:
                assert not obs[b].any()
    assert all(s.is_terminal() for s in states)


def test_accepts_int64_leaf_arrays():
    game = get_game("connect4")
    fast = game.new_search_batch([game.new_initial_state()], 3)
    outs = buffers(game, 1)
    fast.expand(np.array([0]), np.array([0]), np.array([1]), np.array([3]), *outs)
    assert outs[1][0].all() and outs[0][0, 1, 0, 3] == 1.0


def test_expand_errors():
    game = get_game("connect4")
    roots = [game.state_from_actions([0, 1, 0, 1, 0, 1, 0]), game.new_initial_state()]
    fast = game.new_search_batch(roots, 4)
    outs = buffers(game, 1)

    def expand(tree, parent, node, action, out=outs):
        fast.expand(*[np.array([v], np.int32) for v in (tree, parent, node, action)], *out)

    with pytest.raises(GameError, match="parent node is terminal"):
        expand(0, 0, 1, 3)
    with pytest.raises(GameError, match="parent node is not created"):
        expand(1, 2, 1, 3)
    with pytest.raises(GameError, match="illegal action"):
        expand(1, 0, 1, 7)
    with pytest.raises(ValueError, match="out of range"):
        expand(1, 0, 4, 3)
    with pytest.raises(ValueError, match="out of range"):
        expand(2, 0, 1, 3)
    with pytest.raises(ValueError, match="node == parent"):
        expand(1, 0, 0, 3)
    with pytest.raises(ValueError, match="obs_out"):
        expand(1, 0, 1, 3, out=[np.zeros((1, 3, 7, 6), np.float32)] + outs[1:])
    with pytest.raises(ValueError, match="mask_out"):
        expand(1, 0, 1, 3, out=[outs[0], np.zeros((1, 7), np.int8)] + outs[2:])
    # The failed illegal expand left node 1 uncreated; a full column is illegal too.
    with pytest.raises(GameError, match="not created"):
        expand(1, 1, 2, 3)
    for node in range(1, 4):
        expand(1, node - 1, node, 0)
    with pytest.raises(GameError, match="illegal action"):
        fast2 = game.new_search_batch([game.state_from_actions([0] * 6)], 2)
        fast2.expand(*[np.array([v], np.int32) for v in (0, 0, 1, 0)], *outs)


def test_illegal_root_history():
    class FakeRoot:
        def history(self):
            return [3, 3, 3, 3, 3, 3, 3]

    with pytest.raises(GameError, match="ply 6"):
        get_game("connect4").new_search_batch([FakeRoot()], 2)
