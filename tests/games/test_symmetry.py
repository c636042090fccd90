"""Symmetries: the transformed observation is the observation of the transformed game."""

import numpy as np
import pytest

from games import GameError, get_game
from tests.games.util import GAMES, random_action


def map_action(game, k, action):
    """The image of `action` under symmetry k, via a one-hot policy."""
    one_hot = np.zeros((1, game.info.num_actions), np.float32)
    one_hot[0, action] = 1.0
    obs = np.zeros((1, *game.info.observation_shape), np.float32)
    _, policy = game.apply_symmetry(k, obs, one_hot)
    assert policy.sum() == 1.0
    return int(policy[0].argmax())


@pytest.mark.parametrize("name", GAMES)
def test_symmetry_consistent_with_play(name):
    game = get_game(name)
    rng = np.random.default_rng(3)
    for k in range(game.info.num_symmetries):
        for _ in range(40):
            state, image = game.new_initial_state(), game.new_initial_state()
            while not state.is_terminal() and rng.random() > 0.1:
                action = random_action(state, rng)
                state.apply(action)
                image.apply(map_action(game, k, action))
            obs = state.observation()[None]
            mask = state.legal_mask()[None].astype(np.float32)
            sym_obs, sym_mask = game.apply_symmetry(k, obs, mask)
            np.testing.assert_array_equal(sym_obs, image.observation()[None])
            np.testing.assert_array_equal(sym_mask[0] > 0, image.legal_mask())
            np.testing.assert_array_equal(image.returns(), state.returns())


@pytest.mark.parametrize("name", GAMES)
def test_symmetries_are_distinct_permutations(name):
    game = get_game(name)
    n, shape, num_actions = 2, game.info.observation_shape, game.info.num_actions
    rng = np.random.default_rng(0)
    obs = rng.random((n, *shape)).astype(np.float32)
    policy = rng.random((n, num_actions)).astype(np.float32)
    seen = []
    for k in range(game.info.num_symmetries):
        sym_obs, sym_policy = game.apply_symmetry(k, obs, policy)
        assert sym_obs.shape == obs.shape and sym_obs.dtype == np.float32
        assert sym_policy.shape == policy.shape and sym_policy.dtype == np.float32
        np.testing.assert_array_equal(np.sort(sym_policy, axis=1), np.sort(policy, axis=1))
        assert not any(np.array_equal(sym_obs, s) for s in seen)
        seen.append(sym_obs)
    identity_obs, identity_policy = game.apply_symmetry(0, obs, policy)
    np.testing.assert_array_equal(identity_obs, obs)
    identity_obs[...] = -1.0  # a copy, not a view
    assert (obs >= 0).all()


def test_tictactoe_symmetry_examples():
    game = get_game("tictactoe")
    # k=1: a quarter turn counter-clockwise moves the top-right corner c1 to the top-left a1.
    assert map_action(game, 1, 2) == 0
    assert map_action(game, 1, 0) == 6
    assert [map_action(game, k, 4) for k in range(8)] == [4] * 8
    assert sorted(map_action(game, k, 1) for k in range(8)) == [1, 1, 3, 3, 5, 5, 7, 7]


def test_connect4_mirror_examples():
    game = get_game("connect4")
    assert [map_action(game, 1, a) for a in range(7)] == [6, 5, 4, 3, 2, 1, 0]
    assert [map_action(game, 0, a) for a in range(7)] == list(range(7))


@pytest.mark.parametrize("name, k", [("tictactoe", 8), ("tictactoe", -1), ("connect4", 2)])
def test_bad_symmetry_index(name, k):
    game = get_game(name)
    obs = np.zeros((1, *game.info.observation_shape), np.float32)
    with pytest.raises(GameError, match="symmetry"):
        game.apply_symmetry(k, obs, np.zeros((1, game.info.num_actions), np.float32))
