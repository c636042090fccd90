"""The Numba SearchBatch against ObjectBatch and open_spiel."""

import numpy as np
import pytest

from games import GameError, ObjectBatch, get_game
from tests.games.util import (GAMES, any_parent, assert_same, grow_random_trees, legal_action,
                              random_action, random_state)
from tests.games.util import sentinel_buffers as buffers


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
    expanded, terminals, _ = grow_random_trees(game, fast, slow, roots, rng, 12, num_leaves,
                                               capacity, any_parent, legal_action)
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
