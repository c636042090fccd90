"""ChessBatch (games/chess_batch.py) against ObjectBatch over ChessState, the reference."""

import numpy as np
import pytest

from games import GameError, ObjectBatch
from games.chess import ChessGame
from games.chess_batch import ChessBatch
from tests.games.util import assert_same, deep_parent, grow_random_trees, legal_action
from tests.games.util import sentinel_buffers

FENS = [
    None,                                                                  # the start
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",  # castling
    "4k3/8/8/8/3p4/8/4P3/4K3 w - - 0 1",                                   # en passant
    "8/P6k/8/8/8/8/6Kp/8 w - - 0 1",                                       # promotions
    "k7/8/1K6/8/8/8/8/7R w - - 93 80",                                     # mates, 50 moves
    "k7/8/8/8/8/8/6r1/7K w - - 0 1",                                       # material
    "k7/8/8/1Q6/8/8/8/7K w - - 0 1",                                       # stalemates
    "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",                                # back rank
]
CHESS = ChessGame()  # buffer shapes only


def buffers(num_leaves):
    return sentinel_buffers(CHESS, num_leaves)


def random_state(game, rng, fen, max_moves):
    state = game.new_initial_state(fen)
    for _ in range(int(rng.integers(0, max_moves + 1))):
        if state.is_terminal():
            break
        state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
    return state


def roots_for(game, rng, num_trees):
    """Every FEN's position, then some a few moves later, and a finished game."""
    roots = [random_state(game, rng, FENS[i % len(FENS)], 0 if i < len(FENS) else 12)
             for i in range(num_trees - 1)]
    finished = game.new_initial_state("k7/8/8/8/8/8/8/7K w - - 0 1")  # dead position
    assert finished.is_terminal()
    return roots + [finished]


@pytest.mark.parametrize("max_game_length", [512, 10])
def test_observe_roots_matches_object_batch(max_game_length):
    game = ChessGame(max_game_length)
    roots = roots_for(game, np.random.default_rng(0), 15)
    fast, slow = game.new_search_batch(roots, 4), ObjectBatch(roots, 4)
    assert isinstance(fast, ChessBatch)
    outs_fast, outs_slow = buffers(15)[:2], buffers(15)[:2]
    fast.observe_roots(*outs_fast)
    slow.observe_roots(*outs_slow)
    assert_same(outs_fast, outs_slow)
    assert not outs_fast[1][-1].any()


@pytest.mark.parametrize("max_game_length", [512, 16])
def test_random_trees_match_object_batch(max_game_length):
    game = ChessGame(max_game_length)
    rng = np.random.default_rng(42)
    num_trees, capacity, num_leaves = 15, 60, 24
    roots = roots_for(game, rng, num_trees)
    fast, slow = game.new_search_batch(roots, capacity), ObjectBatch(roots, capacity)
    expanded, terminals, wins = grow_random_trees(game, fast, slow, roots, rng, 16,
                                                  num_leaves, capacity, deep_parent,
                                                  legal_action)
    assert expanded > 200 and terminals > 5 and wins > 0


@pytest.mark.parametrize("fen, max_game_length, reasons", [
    (None, 60, {"move limit"}),
    ("4k3/8/8/8/8/8/8/R3K3 w Q - 0 1", 150,
     {"threefold repetition", "insufficient material"}),
    ("k7/8/1K6/8/8/8/8/7R w - - 60 80", 512, {"fifty-move rule"}),
])
def test_whole_random_games_match_states(fen, max_game_length, reasons):
    """One tree per game, one leaf per tree and step: node t is the position t plies
    after the root, itself 4 plies into the game; the games end in every way listed."""
    game = ChessGame(max_game_length)
    rng = np.random.default_rng(7)
    num_games = 30
    states = [game.new_initial_state(fen) for _ in range(num_games)]
    for state in states:
        for _ in range(4):
            if not state.is_terminal():
                state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
    fast = game.new_search_batch(states, max_game_length + 1)
    trees = np.arange(num_games, dtype=np.int32)
    for t in range(max_game_length):
        node = np.array([-1 if s.is_terminal() else t + 1 for s in states], np.int32)
        if (node < 0).all():
            break
        action = np.array([0 if s.is_terminal() else rng.choice(np.flatnonzero(
            s.legal_mask())) for s in states], np.int32)
        outs = buffers(num_games)
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
    assert reasons <= {s.draw_reason() for s in states}


@pytest.mark.parametrize("fen", ["k7/8/1K6/8/8/8/8/7R w - - 0 1",
                                 "K7/8/1k6/8/8/8/8/7r b - - 0 1"])
def test_checkmate_rewards_the_mover(fen):
    game = ChessGame()
    root = game.new_initial_state(fen)
    action = root.text_to_action("h1h8")
    batch = game.new_search_batch([root], 2)
    outs = buffers(1)
    batch.expand(*[np.array([v], np.int32) for v in (0, 0, 1, action)], *outs)
    assert outs[2][0] == root.clone().apply(action) == 1.0 and outs[3][0]


def test_expand_errors():
    game = ChessGame()
    roots = [game.new_initial_state(), game.new_initial_state("k7/8/8/8/8/8/8/7K w - - 0 1")]
    fast = game.new_search_batch(roots, 4)
    outs = buffers(1)
    e2e4 = roots[0].text_to_action("e2e4")

    def expand(tree, parent, node, action, out=outs):
        fast.expand(*[np.array([v], np.int32) for v in (tree, parent, node, action)], *out)

    with pytest.raises(GameError, match="parent node is terminal"):
        expand(1, 0, 1, e2e4)
    with pytest.raises(GameError, match="parent node is not created"):
        expand(0, 2, 1, e2e4)
    with pytest.raises(GameError, match="illegal action"):
        expand(0, 0, 1, 0)
    with pytest.raises(ValueError, match="out of range"):
        expand(0, 0, 4, e2e4)
    with pytest.raises(ValueError, match="out of range"):
        expand(2, 0, 1, e2e4)
    with pytest.raises(ValueError, match="node == parent"):
        expand(0, 0, 0, e2e4)
    with pytest.raises(ValueError, match="obs_out"):
        expand(0, 0, 1, e2e4, out=[np.zeros((1, 119, 8, 7), np.float32)] + outs[1:])
    with pytest.raises(ValueError, match="mask_out"):
        expand(0, 0, 1, e2e4, out=[outs[0], np.zeros((1, 4674), np.int8)] + outs[2:])
    expand(0, 0, 1, e2e4)
    assert outs[1][0].sum() == 20 and not outs[3][0]
