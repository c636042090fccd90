"""GoBatch (games/go_batch.py) against ObjectBatch over GoState, the reference."""

import numpy as np
import pytest

from games import GameError, ObjectBatch
from games.go import GoGame
from games.go_batch import GoBatch
from tests.games.util import assert_same, deep_parent, grow_random_trees, legal_action
from tests.games.util import sentinel_buffers as buffers


def random_move(state, rng) -> int:
    """A random legal move, rarely a pass: games reach captures and repeated positions."""
    legal = np.flatnonzero(state.legal_mask())
    weights = np.where(legal == state.game.pass_action, 0.05, 1.0)
    return int(rng.choice(legal, p=weights / weights.sum()))


def random_root(game, rng, max_moves, handicap=()):
    """A state after up to `max_moves` random moves."""
    state = game.new_initial_state(handicap)
    for _ in range(int(rng.integers(0, max_moves + 1))):
        if state.is_terminal():
            break
        state.apply(random_move(state, rng))
    return state


def finished(game, rng):
    state = random_root(game, rng, 10**6)
    assert state.is_terminal()
    return state


# (game, handicap stones of some roots, moves before the roots)
CASES = [
    (GoGame(9), (), 40),
    (GoGame(9, max_game_length=30), (), 25),                # games end by the move limit
    (GoGame(5, superko=True), (), 30),
    (GoGame(5, rules="native"), (), 30),
    (GoGame(3, komi=0.5), (), 6),                          # positions recur often on 3x3
    (GoGame(3, komi=0.5, superko=True), (), 6),
    (GoGame(9, superko=True), ("C3", "G7", "C7"), 30),
    (GoGame(7, komi=0), ("C3", "E5"), 20),                 # draws by area
]
IDS = ["go9", "go9-length", "go5-superko", "go5-native", "go3", "go3-superko",
       "go9-superko-handicap", "go7-handicap-draws"]


def roots_for(game, handicap, max_moves, rng, num_trees):
    roots = [random_root(game, rng, max_moves, handicap if i % 2 else ())
             for i in range(num_trees - 1)]
    return roots + [finished(game, rng)]


@pytest.mark.parametrize("game, handicap, max_moves", CASES, ids=IDS)
def test_observe_roots_matches_object_batch(game, handicap, max_moves):
    rng = np.random.default_rng(1)
    roots = roots_for(game, handicap, max_moves, rng, 9)
    fast, slow = game.new_search_batch(roots, 4), ObjectBatch(roots, 4)
    assert isinstance(fast, GoBatch)
    outs_fast, outs_slow = buffers(game, 9)[:2], buffers(game, 9)[:2]
    fast.observe_roots(*outs_fast)
    slow.observe_roots(*outs_slow)
    assert_same(outs_fast, outs_slow)
    assert not outs_fast[1][-1].any()


@pytest.mark.parametrize("game, handicap, max_moves", CASES, ids=IDS)
def test_random_trees_match_object_batch(game, handicap, max_moves):
    rng = np.random.default_rng(42)
    num_trees, capacity, num_leaves = 7, 120, 16
    roots = roots_for(game, handicap, max_moves, rng, num_trees)
    fast, slow = game.new_search_batch(roots, capacity), ObjectBatch(roots, capacity)

    def action(mask, rng):  # passes often, so that trees also end by two passes
        return game.pass_action if rng.random() < 0.15 else legal_action(mask, rng)

    expanded, terminals, _ = grow_random_trees(game, fast, slow, roots, rng, 20, num_leaves,
                                               capacity, deep_parent, action)
    assert expanded > 200 and terminals > 0


@pytest.mark.parametrize("before", [0, 8])
@pytest.mark.parametrize("game", [GoGame(3, komi=0.5), GoGame(3, komi=0.5, superko=True),
                                  GoGame(4, komi=0.5, rules="native"),
                                  GoGame(5, max_game_length=40)],
                         ids=["go3", "go3-superko", "go4-native", "go5-length"])
def test_whole_random_games_match_states(game, before):
    """One tree per game, one leaf per tree and step: node t is the position t moves
    after the root, itself `before` moves into the game."""
    rng = np.random.default_rng(7)
    num_games = 60
    states = [game.new_initial_state() for _ in range(num_games)]
    for _ in range(before):
        for state in states:
            if not state.is_terminal():
                state.apply(random_move(state, rng))
    fast = game.new_search_batch(states, game.max_game_length + 1)
    trees = np.arange(num_games, dtype=np.int32)
    repeated = 0
    for t in range(game.max_game_length):
        node = np.array([-1 if s.is_terminal() else t + 1 for s in states], np.int32)
        if (node < 0).all():
            break
        action = np.array([0 if s.is_terminal() else random_move(s, rng) for s in states],
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
                repeated += state.passes() < 2 and len(state.moves()) < game.max_game_length
    assert all(s.is_terminal() for s in states)
    if game.rules == "open_spiel" and not game.superko and game.size == 3:
        assert repeated > 5  # open_spiel ends these by a repeated position


def test_a_board_of_the_handicap_setup_recurring_ends_the_game():
    """open_spiel remembers the boards of the setup too (here Black A1 alone)."""
    game = GoGame(3, komi=0.5)
    root = game.new_initial_state(["A1", "C3"])
    moves = "C2 C1 B1 A2 B3 A3 B2 A3 A2 pass C3 pass A3 pass C1 A1".split()
    batch = game.new_search_batch([root], len(moves) + 1)
    state = root.clone()
    for t, move in enumerate(moves):
        action = state.text_to_action(move)
        outs = buffers(game, 1)
        batch.expand(*[np.array([v], np.int32) for v in (0, t, t + 1, action)], *outs)
        reward = state.apply(action)
        assert (outs[2][0], outs[3][0]) == (reward, state.is_terminal())
        np.testing.assert_array_equal(outs[1][0], state.legal_mask())
    assert state.is_terminal() and state.passes() == 0 and state.returns().tolist() == [1, -1]
    assert state.board().ravel().tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_expand_errors():
    game = GoGame(5)
    roots = [game.new_initial_state(), finished(game, np.random.default_rng(0))]
    fast = game.new_search_batch(roots, 4)
    outs = buffers(game, 1)

    def expand(tree, parent, node, action, out=outs):
        fast.expand(*[np.array([v], np.int32) for v in (tree, parent, node, action)], *out)

    with pytest.raises(GameError, match="parent node is terminal"):
        expand(1, 0, 1, 3)
    with pytest.raises(GameError, match="parent node is not created"):
        expand(0, 2, 1, 3)
    expand(0, 0, 1, 12)  # C3
    with pytest.raises(GameError, match="illegal action"):
        expand(0, 1, 2, 12)  # occupied
    with pytest.raises(GameError, match="illegal action"):
        expand(0, 1, 2, 26)
    with pytest.raises(ValueError, match="out of range"):
        expand(0, 0, 4, 3)
    with pytest.raises(ValueError, match="out of range"):
        expand(2, 0, 1, 3)
    with pytest.raises(ValueError, match="node == parent"):
        expand(0, 1, 1, 3)
    with pytest.raises(ValueError, match="obs_out"):
        expand(0, 1, 2, 3, out=[np.zeros((1, 17, 4, 5), np.float32)] + outs[1:])
    with pytest.raises(ValueError, match="mask_out"):
        expand(0, 1, 2, 3, out=[outs[0], np.zeros((1, 26), np.int8)] + outs[2:])
