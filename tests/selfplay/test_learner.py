"""The learner: it learns, its state round-trips exactly, augmentation moves the policy too."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.networks import NetworkConfig
from games import get_game
from selfplay.config import LearnerConfig
from selfplay.learner import Learner
from selfplay.replay import ReplayBuffer
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, random_record

TINY_NET = NetworkConfig(blocks=1, channels=8, value_hidden=8)


def _learner(seed=0, value_head="scalar", **learner):
    torch.manual_seed(seed)
    config = LearnerConfig(**{"batch_size": 16, "learning_rate": 1e-2, **learner})
    return Learner(get_game("tictactoe"), dataclasses.replace(TINY_NET, value_head=value_head),
                   config)


def _dataset(size=48, seed=0) -> ReplayBuffer:
    """A fixed tiny dataset: random boards, peaked policies, +-1/0 outcomes."""
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(size, TTT_SHAPE, TTT_ACTIONS)
    while buffer.size < size:
        r = random_record(rng, 6)
        r.policies = np.eye(TTT_ACTIONS, dtype=np.float32)[rng.integers(0, TTT_ACTIONS, 6)]
        buffer.add(r)
    return buffer


def _loss(learner: Learner, buffer: ReplayBuffer) -> float:
    """Policy cross-entropy + value loss over the whole dataset (batch statistics)."""
    obs = torch.from_numpy(buffer.obs[:buffer.size].astype(np.float32))
    with torch.no_grad():
        learner.net.train()
        logits, value = learner.net(obs)
        policy = -(torch.from_numpy(buffer.policy) * F.log_softmax(logits, 1)).sum(1).mean()
        target = torch.from_numpy(buffer.value)
        if learner.network_config.value_head == "wdl":
            value_loss = F.cross_entropy(value, (1 - torch.round(target)).long())
        else:
            value_loss = F.mse_loss(value, target)
    return float(policy + value_loss)


@pytest.mark.parametrize("value_head", ["scalar", "wdl"])
def test_a_few_steps_reduce_the_loss_on_a_fixed_dataset(value_head):
    buffer = _dataset()
    learner = _learner(value_head=value_head, augment=False)
    before = _loss(learner, buffer)
    stats = learner.train(buffer, 30, np.random.default_rng(0))
    after = _loss(learner, buffer)
    assert stats["learner/steps"] == 30 and learner.step == 30
    assert set(stats) == {"loss/policy", "loss/value", "loss/total", "learner/steps",
                          "learner/lr"}
    assert after < 0.8 * before, (before, after)


def test_training_is_deterministic_for_a_seed():
    buffer = _dataset()
    a, b = _learner(seed=3), _learner(seed=3)
    sa = a.train(buffer, 5, np.random.default_rng(9))
    sb = b.train(buffer, 5, np.random.default_rng(9))
    assert sa == sb
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert torch.equal(x, y), name


def test_train_stops_when_asked():
    learner = _learner()
    calls = iter([False, False, True])
    stats = learner.train(_dataset(), 10, np.random.default_rng(0), lambda: next(calls))
    assert stats["learner/steps"] == 2 and learner.step == 2


def _optimizer_tensors(learner):
    return {(index, key): value for index, slots in learner.optimizer.state_dict()["state"].items()
            for key, value in slots.items()}


def test_save_and_load_state_restore_optimizer_and_rng_exactly():
    buffer = _dataset()
    a = _learner(seed=1)
    a.train(buffer, 4, np.random.default_rng(0))
    extra = {"counters": {"iteration": 3}, "rng": {"state": 2**100}, "name": "x"}
    data = a.save_state(extra)
    after_save = torch.rand(5)  # what the RNG gives right after the save

    b = _learner(seed=2)  # another seed: different weights and RNG
    assert b.load_state(data) == extra
    assert torch.equal(torch.rand(5), after_save)
    assert b.step == a.step == 4
    ta, tb = _optimizer_tensors(a), _optimizer_tensors(b)
    assert ta.keys() == tb.keys() and len(ta) > 0
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
        assert ta[key].dtype == tb[key].dtype and tb[key].device.type == "cpu"
    assert a.optimizer.state_dict()["param_groups"] == [
        {**g, "betas": tuple(g["betas"])} for g in b.optimizer.state_dict()["param_groups"]]

    # With the same weights, both continue identically.
    b.net.load_state_dict(a.net.state_dict())
    torch.manual_seed(5)
    sa = a.train(buffer, 3, np.random.default_rng(7))
    torch.manual_seed(5)
    sb = b.train(buffer, 3, np.random.default_rng(7))
    assert sa == sb
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert torch.equal(x, y), name


def test_save_state_before_any_step():
    a = _learner()
    b = _learner(seed=4)
    assert b.load_state(a.save_state({})) == {} and b.step == 0
    b.train(_dataset(), 1, np.random.default_rng(0))  # the optimizer still works


def _one_stone_positions(cells):
    """obs[n]: the mover's one stone on cells[n]; policy 3/4 there, 1/4 on the centre."""
    n = len(cells)
    obs = np.zeros((n,) + TTT_SHAPE, np.float32)
    obs[:, 2] = 1.0
    rows, cols = np.divmod(np.asarray(cells), 3)
    obs[np.arange(n), 0, rows, cols] = 1.0
    obs[np.arange(n), 2, rows, cols] = 0.0
    policy = np.eye(TTT_ACTIONS, dtype=np.float32)[cells] * 0.75
    policy[:, 4] += 0.25  # the centre keeps a quarter in every symmetry
    return obs, policy


def test_augmentation_moves_policy_mass_with_the_board():
    learner = _learner(augment=True)
    cells = np.tile(np.array([0, 1, 2, 3, 5, 6, 7, 8]), 16)  # 128 positions off the centre
    obs, policy = _one_stone_positions(cells)
    new_obs, new_policy, _ = learner._augment(obs.copy(), policy.copy(), np.random.default_rng(0))
    assert new_obs.shape == obs.shape and new_policy.shape == policy.shape
    np.testing.assert_allclose(new_policy.sum(1), 1.0, rtol=1e-6)
    moved = 0
    for i in range(len(cells)):
        stone = int(np.flatnonzero(new_obs[i, 0].ravel())[0])
        assert new_obs[i, 0].sum() == 1 and new_obs[i, 1].sum() == 0
        assert new_obs[i, 2].ravel()[stone] == 0 and new_obs[i, 2].sum() == 8
        assert new_policy[i, stone] == pytest.approx(0.75)
        assert new_policy[i, 4] == pytest.approx(0.25)
        moved += stone != cells[i]
    # Random symmetries: most positions moved (identity and the fixing reflection are 2 of 8),
    # and copies of one position went different ways.
    assert moved > len(cells) // 2
    corner = new_policy[cells == 0].argmax(1)
    assert len(set(corner.tolist())) > 1 and set(corner.tolist()) <= {0, 2, 6, 8}


def test_training_batches_are_augmented_consistently(monkeypatch):
    learner = _learner(augment=True)
    buffer = ReplayBuffer(8, TTT_SHAPE, TTT_ACTIONS)
    buffer.obs[:], buffer.policy[:] = _one_stone_positions(np.array([0, 1, 2, 3, 5, 6, 7, 8]))
    buffer.size = 8
    seen = []
    monkeypatch.setattr(learner, "_step", lambda obs, policy, value, aux=None: seen.append(
        (obs.numpy().copy(), policy.numpy().copy())) or {"loss/policy": 0.0,
                                                         "loss/value": 0.0, "loss/total": 0.0})
    learner.train(buffer, 4, np.random.default_rng(0))
    obs = np.concatenate([o for o, _ in seen])
    policy = np.concatenate([p for _, p in seen])
    assert obs.shape == (4 * 16,) + TTT_SHAPE
    stones = obs[:, 0].reshape(len(obs), 9).argmax(1)
    np.testing.assert_allclose(policy[np.arange(len(obs)), stones], 0.75)
    np.testing.assert_allclose(policy[:, 4], 0.25)
    # The buffer itself is untouched.
    np.testing.assert_array_equal(buffer.obs[:, 0].reshape(8, 9).argmax(1),
                                  [0, 1, 2, 3, 5, 6, 7, 8])


def test_augmentation_off_changes_nothing():
    obs, policy = _one_stone_positions(np.arange(9))
    learner = _learner(augment=False)
    out = learner._augment(obs.copy(), policy.copy(), np.random.default_rng(0))
    np.testing.assert_array_equal(out[0], obs)
    np.testing.assert_array_equal(out[1], policy)


def test_connect4_augmentation_mirrors_columns():
    torch.manual_seed(0)
    game = get_game("connect4")
    learner = Learner(game, TINY_NET, LearnerConfig(augment=True))
    n = 64
    shape = game.info.observation_shape
    obs = np.zeros((n,) + tuple(shape), np.float32)
    cols = np.arange(n) % 7
    obs[np.arange(n), 0, shape[1] - 1, cols] = 1.0  # a bottom-row stone in column col
    policy = np.eye(7, dtype=np.float32)[cols]
    new_obs, new_policy, _ = learner._augment(obs, policy, np.random.default_rng(1))
    stone_cols = new_obs[:, 0, shape[1] - 1].argmax(1)
    np.testing.assert_array_equal(new_policy.argmax(1), stone_cols)
    assert set(stone_cols[cols != 3] == cols[cols != 3]) == {True, False}
