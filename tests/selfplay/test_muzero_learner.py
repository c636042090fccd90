"""The MuZero learner's gradient path, checked against MuZero's pseudocode.

The pseudocode unrolls `value, reward, logits, hidden = recurrent(hidden, action)`
and THEN `hidden = scale_gradient(hidden, 0.5)`: a loss k steps down the unroll
reaches the representation's output with its gradient halved k - 1 times (the
first dynamics step is not halved). The reference below unrolls the same network
with no scaling at all, so the expected gradient is 0.5 ** (k - 1) times it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.muzero_net import MuZeroNetConfig, scalar_to_support  # noqa: E402
from games import get_game  # noqa: E402
from selfplay.config import LearnerConfig, MuZeroConfig  # noqa: E402
from selfplay.muzero_learner import MuZeroLearner  # noqa: E402


def _ce(logits, target):
    return -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1)


def _batch(rng, n, unroll, num_actions, obs_shape, only_step):
    """A batch whose losses are masked out except at unroll step `only_step`."""
    k1 = unroll + 1
    policy = rng.random((n, k1, num_actions)).astype(np.float32)
    policy /= policy.sum(axis=2, keepdims=True)
    on = np.zeros((n, k1), np.float32)
    on[:, only_step] = 1.0
    return {
        "obs": rng.integers(0, 2, size=(n,) + obs_shape).astype(np.float32),
        "actions": rng.integers(0, num_actions, size=(n, unroll)).astype(np.int64),
        "value": rng.uniform(-1, 1, size=(n, k1)).astype(np.float32), "value_mask": on,
        "reward": rng.uniform(-1, 1, size=(n, k1)).astype(np.float32),
        "reward_mask": on.copy(), "policy": policy, "policy_mask": on.copy(),
        "weight": np.ones(n, np.float32), "index": np.arange(n, dtype=np.int64),
    }


@pytest.mark.parametrize("unroll,step", [(1, 1), (2, 1), (2, 2), (3, 3)])
def test_gradient_into_the_representation_is_halved_after_each_dynamics_step(unroll, step):
    torch.manual_seed(0)
    game = get_game("tictactoe")
    net_config = MuZeroNetConfig(blocks=1, channels=8, head_channels=4, hidden=16,
                                 value_support=5, reward_support=5)
    muzero = MuZeroConfig(unroll_steps=unroll)
    learner = MuZeroLearner(game, net_config, LearnerConfig(batch_size=4), muzero)
    net = learner.net.eval()  # no batch statistics: both passes compute the same function
    with torch.no_grad():  # the output layers start at zero, which passes no gradient back
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    info = game.info
    batch = _batch(np.random.default_rng(1), 4, unroll, info.num_actions,
                   tuple(info.observation_shape), step)

    initial = net.initial_inference
    seen = {}

    def capture(obs):
        latent, logits, value_logits = initial(obs)
        latent.retain_grad()
        seen["latent"] = latent
        return latent, logits, value_logits

    net.initial_inference = capture
    total, _, _ = learner.losses(batch)
    total.backward()
    got = seen["latent"].grad
    del net.initial_inference

    # The reference: the same losses at `step`, unrolled with no gradient scaling.
    t = {k: torch.from_numpy(v) for k, v in batch.items()}
    latent, _, _ = initial(t["obs"])
    root = latent.detach().requires_grad_()
    hidden = root
    for k in range(1, step + 1):
        hidden, reward_logits, logits, value_logits = net.recurrent_inference(
            hidden, t["actions"][:, k - 1])
    loss = (1.0 / unroll) * (
        _ce(logits, t["policy"][:, step])
        + muzero.value_loss_weight * _ce(value_logits, scalar_to_support(
            t["value"][:, step], net_config.value_support))
        + _ce(reward_logits, scalar_to_support(t["reward"][:, step],
                                               net_config.reward_support)))
    loss.mean().backward()
    expected = root.grad * 0.5 ** (step - 1)
    assert float(expected.abs().max()) > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


# Symmetries ------------------------------------------------------------------------------

def _observation_after(game, actions):
    state = game.new_initial_state()
    for a in actions:
        state.apply(int(a))
    return state.observation()


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_symmetric_moves_reach_the_symmetric_position(name):
    """The action permutation the learner derives from apply_symmetry agrees with the rules:
    playing the moved actions from the start gives the moved observation."""
    game = get_game(name)
    learner = MuZeroLearner(game, MuZeroNetConfig(blocks=1, channels=8, head_channels=4,
                                                  hidden=8, value_support=2, reward_support=2),
                            LearnerConfig(batch_size=4), MuZeroConfig())
    perms = learner.action_permutations()
    assert perms is not None and len(perms) == game.info.num_symmetries
    rng = np.random.default_rng(5)
    for k in range(1, len(perms)):
        for _ in range(5):
            state, moves = game.new_initial_state(), []
            while not state.is_terminal() and len(moves) < 6:
                moves.append(int(rng.choice(np.flatnonzero(state.legal_mask()))))
                state.apply(moves[-1])
            obs = state.observation()[None].astype(np.float32)
            moved_obs, _ = game.apply_symmetry(k, obs.copy(),
                                               np.zeros((1, game.info.num_actions), np.float32))
            assert np.array_equal(_observation_after(game, perms[k][moves]), moved_obs[0])


def test_augmented_unroll_moves_observation_actions_and_policies_together():
    game = get_game("tictactoe")
    learner = MuZeroLearner(game, MuZeroNetConfig(blocks=1, channels=8, head_channels=4,
                                                  hidden=8, value_support=2, reward_support=2),
                            LearnerConfig(batch_size=4), MuZeroConfig())
    rng = np.random.default_rng(0)
    # Rows: the empty board after moves [0, 4] (top-left corner, centre), then 2 more moves.
    state = game.new_initial_state()
    state.apply(0), state.apply(4)
    batch = _batch(rng, 2, 2, 9, game.info.observation_shape, 1)
    batch["obs"][:] = state.observation()
    batch["actions"][:] = [[2, 6], [2, 6]]
    batch["policy"][:] = 0.0
    batch["policy"][:, :, 8] = 1.0  # all mass on the bottom-right corner
    before = {k: v.copy() for k, v in batch.items()}
    out = learner._augment_unroll(batch, rng, ks=np.array([0, 1]))
    assert np.array_equal(out["obs"][0], before["obs"][0])
    assert np.array_equal(out["actions"][0], [2, 6])
    perm = learner.action_permutations()[1]
    # Symmetry 1 moves the corner 8 to perm[8]: every policy's mass follows it, and the
    # moved actions from the moved position replay the moved game.
    assert np.all(out["policy"][1, :, perm[8]] == 1.0) and out["policy"][1].sum() == 3.0
    assert np.array_equal(out["actions"][1], perm[[2, 6]])
    assert np.array_equal(out["obs"][1], _observation_after(game, perm[[0, 4]]))
    # With augment off, the batch is left as it is.
    plain = MuZeroLearner(game, learner.network_config, LearnerConfig(batch_size=4,
                                                                      augment=False),
                          MuZeroConfig())
    again = {k: v.copy() for k, v in before.items()}
    assert all(np.array_equal(plain._augment_unroll(again, rng)[k], before[k]) for k in before)
