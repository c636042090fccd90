"""MuZero search (learned dynamics) against hand computation and the slow reference.

The "learned model" here is exact: a latent is the encoded action path, the
dynamics appends the action and returns the path's reward, prediction returns
the path's priors and value. So the engine's batched latent search must make
exactly the choices of tests/reference_mcts.py run on the same path game with
all actions legal below the root, no terminal nodes, and min-max normalisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.interactive import VIRTUAL_LOSS_STEPS
from engine.muzero_search import run_muzero_search
from engine.search import SearchConfig
from tests.reference_mcts import RandomPathGame, RefConfig, TableGame, decode, encode, search


class PathModel:
    """A LatentModel over path games: tree b is games[b] searched from ()."""

    def __init__(self, games):
        self.games = list(games)
        self.num_actions = self.games[0].num_actions
        self.recurrent_batches = []

    def initial(self, obs):
        logits, values = [], []
        for row in obs:
            b, path = decode(row)
            lg, v = self.games[b].evaluate(path)
            logits.append(lg)
            values.append(v)
        return torch.from_numpy(np.asarray(obs, np.float32)), np.stack(logits), np.asarray(values)

    def recurrent(self, latent, actions):
        self.recurrent_batches.append(len(actions))
        out, rewards, logits, values = [], [], [], []
        for row, a in zip(latent.numpy(), actions):
            b, path = decode(row)
            child, reward, _ = self.games[b].step(path, int(a))
            lg, v = self.games[b].evaluate(child)
            out.append(encode(b, child))
            rewards.append(reward)
            logits.append(lg)
            values.append(v)
        return (torch.from_numpy(np.stack(out)), np.asarray(rewards, np.float32),
                np.stack(logits), np.asarray(values, np.float32))


def _reference(game, cfg, gumbel=None):
    """The reference search with the model's view: root legal from the game, all below."""
    root_legal = game.legal(())
    legal = lambda path: root_legal if path == () else list(range(game.num_actions))
    step = lambda path, a: game.step(path, a)[:2] + (False,)
    return search((), legal, step, game.evaluate, game.num_actions, cfg, gumbel=gumbel)


def _engine(games, config, value_bounds=None, gumbel=None):
    model = PathModel(games)
    obs = np.stack([encode(b, ()) for b in range(len(games))])
    mask = np.stack([g.legal_mask(()) for g in games])
    rng = None
    if gumbel is not None:
        class Fixed:  # rng.gumbel returns the given noise
            def gumbel(self, size):
                return np.asarray(gumbel, np.float64).reshape(size)
        rng = Fixed()
    result = run_muzero_search(model, obs, mask, config, rng=rng, add_noise=gumbel is not None,
                               value_bounds=value_bounds)
    return result, model


def test_chain_puct_with_min_max_hand_computed():
    # Two actions, uniform priors, value 0 everywhere; action 0 pays 1, action 1 pays 0;
    # gamma 0.9, three simulations. By hand (see the bounds at each step):
    #  sim 1: bounds empty -> raw Q; both children unvisited, tie -> action 0.
    #         Q(0) = 1 -> bounds [1, 1]; root value_sum 1.
    #  sim 2: bounds still flat -> raw: a0 = 1.7678*0.5/2 + 1 = 1.44 beats
    #         a1 = (0.5 - 0.25) + 1.7678*0.5 = 1.13; leaf (0,0). Q((0,)) = 1.45.
    #  sim 3: bounds [1, 1.45]: a0 normalises to 1.0 (1.36) against fpu 0.76; in (0,),
    #         a0 (normalised 0, 0.44) beats fpu -0.48; leaf (0,0,0).
    # Values: (0,0,0) 0; (0,0) 1/1... root value_sum = 0 + 1 + 1.9 + 2.71 = 5.61.
    game = TableGame(2, rewards={p: 1.0 for p in [(0,), (0, 0), (0, 0, 0), (1, 0)]})
    config = SearchConfig(num_simulations=3, root_mode="puct", discount=0.9,
                          dirichlet_fraction=0.0)
    result, _ = _engine([game], config)
    assert result.visits[0].tolist() == [3, 0]
    assert result.value[0] == pytest.approx(5.61 / 4, abs=1e-5)
    assert result.q[0, 0] == pytest.approx(1 + 0.9 * 2.9 / 3, abs=1e-5)
    assert result.action[0] == 0


def test_min_max_normalisation_changes_the_choice():
    # Rewards of 10 dwarf the exploration term without normalisation; with
    # min-max bounds the search still explores the second action. The same
    # tree with fixed bounds (-1, 1) would not: checked against the reference.
    game = TableGame(2, rewards={(0,): 10.0, (1,): 9.0})
    config = SearchConfig(num_simulations=8, root_mode="puct", discount=0.9,
                          dirichlet_fraction=0.0)
    result, _ = _engine([game], config)
    ref = _reference(game, RefConfig(num_simulations=8, discount=0.9, q_bounds=None))
    assert result.visits[0].tolist() == ref.visits
    assert result.visits[0, 1] > 0


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_models(mode, seed):
    game = RandomPathGame(seed, num_actions=5, terminal_prob=0.0, max_depth=99,
                          step_rewards=True)
    config = SearchConfig(num_simulations=24, root_mode=mode, discount=0.95,
                          dirichlet_fraction=0.0, max_num_considered_actions=4)
    gumbel = np.random.default_rng(seed).gumbel(size=5) if mode == "gumbel" else None
    result, _ = _engine([game], config, gumbel=gumbel)
    ref = _reference(game, RefConfig(mode=mode, num_simulations=24, discount=0.95,
                                     q_bounds=None, max_num_considered_actions=4),
                     gumbel=None if gumbel is None else list(np.float32(gumbel)))
    assert result.visits[0].tolist() == ref.visits
    assert result.value[0] == pytest.approx(ref.value, abs=1e-4)
    visited = result.visits[0] > 0
    np.testing.assert_allclose(result.q[0][visited], np.asarray(ref.q)[visited], atol=1e-4)
    if mode == "gumbel":
        assert result.action[0] == ref.action
        np.testing.assert_allclose(result.policy[0], ref.policy, atol=1e-4)


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [3, 8])
@pytest.mark.parametrize("seed", range(3))
def test_several_leaves_per_step_match_the_reference(mode, k, seed):
    # Interactive play (engine.interactive) searches a lone position with several
    # leaves per step; a MuZero player does so through the learned model.
    game = RandomPathGame(seed + 40, num_actions=5, terminal_prob=0.0, max_depth=99,
                          step_rewards=True)
    config = SearchConfig(num_simulations=24, root_mode=mode, discount=0.95,
                          dirichlet_fraction=0.0, max_num_considered_actions=4,
                          leaves_per_step=k)
    result, model = _engine([game], config)
    ref = _reference(game, RefConfig(mode=mode, num_simulations=24, discount=0.95,
                                     q_bounds=None, max_num_considered_actions=4,
                                     leaves_per_step=k,
                                     # the driver's rule (engine.search): 24 / 3 steps
                                     gumbel_virtual_loss=24 >= VIRTUAL_LOSS_STEPS * k))
    assert result.visits[0].tolist() == ref.visits and sum(ref.visits) == 24
    assert result.value[0] == pytest.approx(ref.value, abs=1e-4)
    assert max(model.recurrent_batches) > 1 and sum(model.recurrent_batches) == 24


@pytest.mark.parametrize("seed", range(3))
def test_two_player_discount_minus_one_with_fixed_bounds(seed):
    # Board games under MuZero: rewards for the mover, discount -1, Q in [-1, 1].
    game = RandomPathGame(seed, num_actions=4, terminal_prob=0.0, max_depth=99,
                          step_rewards=True)
    config = SearchConfig(num_simulations=20, root_mode="puct", discount=-1.0,
                          dirichlet_fraction=0.0)
    result, _ = _engine([game], config, value_bounds=(-1.0, 1.0))
    ref = _reference(game, RefConfig(num_simulations=20, discount=-1.0, q_bounds=(-1.0, 1.0)))
    assert result.visits[0].tolist() == ref.visits
    assert result.value[0] == pytest.approx(ref.value, abs=1e-4)


def test_batch_of_trees_one_recurrent_call_per_step():
    games = [RandomPathGame(s, num_actions=4, terminal_prob=0.0, max_depth=99,
                            step_rewards=True) for s in range(5)]
    config = SearchConfig(num_simulations=10, root_mode="puct", discount=0.9,
                          dirichlet_fraction=0.0)
    result, model = _engine(games, config)
    # Every step expands one leaf in each of the 5 trees in a single call.
    assert model.recurrent_batches == [5] * 10
    for b, game in enumerate(games):
        ref = _reference(game, RefConfig(num_simulations=10, discount=0.9, q_bounds=None))
        assert result.visits[b].tolist() == ref.visits, b


def test_root_mask_restricts_only_the_root():
    game = TableGame(3, legal={(): [1, 2]}, rewards={(1,): 1.0})
    config = SearchConfig(num_simulations=12, root_mode="puct", discount=0.9,
                          dirichlet_fraction=0.0)
    result, _ = _engine([game], config)
    assert result.visits[0, 0] == 0
    assert result.visits[0].sum() == 12
    assert math.isclose(result.policy[0].sum(), 1.0, rel_tol=1e-6)
