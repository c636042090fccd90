"""Tests for engine.eval_cache: repeated observations are answered without the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.eval_cache import CachedEvaluator, observation_keys
from engine.evaluator import make_evaluator
from engine.networks import NetworkConfig, PolicyValueNet
from engine.search import SearchConfig, run_search
from games import get_game

A = 4


class Counting:
    """A deterministic evaluator (logits and value from the observation) that counts rows."""

    def __init__(self):
        self.rows = 0
        self.calls = 0

    def evaluate(self, obs, mask):
        self.rows += len(obs)
        self.calls += 1
        flat = obs.reshape(len(obs), -1)
        logits = np.stack([flat.sum(1) * (a + 1) for a in range(A)], 1).astype(np.float32)
        return logits, np.tanh(flat[:, 0]).astype(np.float32)


def _obs(values) -> np.ndarray:
    return np.array([[[v, 0.5], [0.0, 1.0]] for v in values], np.float32)


def test_keys_equal_for_equal_observations_and_differ_otherwise():
    obs = _obs([0.0, 1.0, 0.0, -0.0])
    keys = observation_keys(obs)
    assert keys[0] == keys[2]
    assert keys[0] != keys[1]
    assert keys[0] != keys[3]  # -0.0 has other bits: a miss is safe, a false hit is not
    # A key does not depend on the row's place in the batch.
    assert observation_keys(obs[2:3])[0] == keys[0]
    # One changed bit anywhere changes the key.
    rng = np.random.default_rng(0)
    base = rng.random((1, 3, 6, 7), dtype=np.float32)
    flips = np.repeat(base, 50, axis=0)
    words = flips.reshape(50, -1).view(np.uint32)
    for i in range(50):
        words[i, rng.integers(words.shape[1])] ^= np.uint32(1 << int(rng.integers(32)))
    assert len(set(observation_keys(flips).tolist()) | {observation_keys(base)[0]}) == 51


def test_hits_answer_exactly_what_the_network_would_and_only_misses_reach_it():
    inner = Counting()
    cached = CachedEvaluator(inner, capacity=16, num_actions=A)
    mask = np.ones((3, A), bool)
    first = cached.evaluate(_obs([1, 2, 1]), mask)  # the repeat inside the batch: once
    assert inner.rows == 2 and inner.calls == 1
    second = cached.evaluate(_obs([2, 3, 1]), mask)
    assert inner.rows == 3  # only 3 was new
    expected = Counting().evaluate(_obs([2, 3, 1]), mask)
    np.testing.assert_array_equal(second[0], expected[0])
    np.testing.assert_array_equal(second[1], expected[1])
    np.testing.assert_array_equal(first[0][0], first[0][2])
    assert (cached.requested, cached.hits) == (6, 3)
    assert cached.hit_rate() == 0.5
    assert cached.evaluate(_obs([1, 2, 3]), mask) is not None and inner.calls == 2  # all hits


def test_the_cache_is_bounded_and_forgets_the_oldest_first():
    inner = Counting()
    cached = CachedEvaluator(inner, capacity=3, num_actions=A)
    mask = np.ones((1, A), bool)
    for v in [1, 2, 3, 4]:  # 4 pushes 1 out
        cached.evaluate(_obs([v]), mask)
    assert len(cached) == 3 and inner.rows == 4
    cached.evaluate(_obs([4]), mask)
    cached.evaluate(_obs([2]), mask)
    assert inner.rows == 4  # 2 and 4 were kept
    cached.evaluate(_obs([1]), mask)
    assert inner.rows == 5  # 1 was forgotten


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        CachedEvaluator(Counting(), capacity=0, num_actions=A)


@pytest.mark.parametrize("root_mode", ["puct", "gumbel"])
def test_a_search_with_the_cache_is_the_search_without_it(root_mode):
    game = get_game("connect4")
    info = game.info
    torch.manual_seed(0)
    net = PolicyValueNet(info.observation_shape, info.num_actions,
                         NetworkConfig(blocks=1, channels=8, value_hidden=8)).eval()
    plain = make_evaluator(net, "torch")
    cached = CachedEvaluator(make_evaluator(net, "torch"), 10_000, info.num_actions)
    config = SearchConfig(num_simulations=32, root_mode=root_mode,
                          max_num_considered_actions=4)
    results = []
    for ev in (plain, cached):
        states = [game.new_initial_state() for _ in range(8)]  # 8 games, one opening
        batch = game.new_search_batch(states, config.num_simulations + 1)
        results.append(run_search(batch, ev, config, info.num_actions, info.observation_shape,
                                  np.random.default_rng(1), add_noise=True))
    a, b = results
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_allclose(a.policy, b.policy, atol=1e-6)
    np.testing.assert_allclose(a.value, b.value, atol=1e-6)
    # Eight trees from one root share their first positions.
    assert cached.hits > 0.3 * cached.requested
