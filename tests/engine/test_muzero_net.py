"""Tests for engine.muzero_net: value transform, supports, shapes, fresh-net outputs, learning."""

import dataclasses
import math

import pytest
import torch

from engine.muzero_net import (
    MuZeroNet,
    MuZeroNetConfig,
    h,
    h_inv,
    muzero_config_from_dict,
    scalar_to_support,
    support_to_scalar,
)

BOARD_OBS = (3, 3, 3)
BOARD_ACTIONS = 9
ATARI_OBS = (4, 96, 96)
ATARI_ACTIONS = 4
SMALL = MuZeroNetConfig(blocks=1, channels=8, value_support=10, reward_support=10,
                        head_channels=4, hidden=16)


def _h_reference(x: float, eps: float = 1e-3) -> float:
    """h in float64 from its definition."""
    return math.copysign(math.sqrt(abs(x) + 1) - 1, x) + eps * x


def _x_with_h(target: float, eps: float = 1e-3) -> float:
    """The x >= 0 with h(x) = target, from the quadratic in u = sqrt(x + 1), float64."""
    u = (-1 + math.sqrt(1 + 4 * eps * (1 + eps + target))) / (2 * eps)
    return u * u - 1


def _net(obs_shape=BOARD_OBS, num_actions=BOARD_ACTIONS, config=SMALL, seed=0) -> MuZeroNet:
    torch.manual_seed(seed)
    return MuZeroNet(obs_shape, num_actions, config)


# --- h and h_inv -------------------------------------------------------------------------


@pytest.mark.parametrize("x, expected", [
    (0.0, 0.0),
    (3.0, 1.0 + 0.003),
    (-8.0, -2.0 - 0.008),
    (99.0, 9.0 + 0.099),
])
def test_h_hand_values(x, expected):
    assert h(torch.tensor([x])).item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_h_matches_float64_definition():
    xs = [-1e4, -37.5, -1.0, -1e-3, 1e-3, 0.5, 2.0, 1234.5]
    got = h(torch.tensor(xs, dtype=torch.float64))
    assert got.tolist() == pytest.approx([_h_reference(x) for x in xs], rel=1e-12)


@pytest.mark.parametrize("dtype, rel", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
def test_h_inv_round_trip_over_a_wide_range(dtype, rel):
    mags = torch.cat([torch.tensor([1e-6, 1e-3, 0.5, 1.0, 7.0, 1e5]),
                      torch.logspace(-6, 5, 200)]).to(dtype)
    xs = torch.cat([torch.zeros(1, dtype=dtype), mags, -mags])
    for back in (h_inv(h(xs)), h(h_inv(xs))):
        assert back.dtype == dtype
        assert back[0].item() == 0.0
        assert torch.allclose(back, xs, rtol=rel, atol=0.0)


def test_h_inv_hand_values():
    # Independent of h: h(3) = 1.003 and h(-8) = -2.008 by hand.
    assert h_inv(torch.tensor([1.003, -2.008], dtype=torch.float64)).tolist() == \
        pytest.approx([3.0, -8.0], rel=1e-12)


def test_h_and_h_inv_are_strictly_increasing():
    xs = torch.linspace(-1e4, 1e4, 20001, dtype=torch.float64)
    assert torch.all(torch.diff(h(xs)) > 0)
    assert torch.all(torch.diff(h_inv(xs)) > 0)


# --- supports ----------------------------------------------------------------------------


def test_scalar_to_support_two_hot_hand_cases():
    # Support 2: bins stand for -2, -1, 0, 1, 2.
    xs = torch.tensor([_x_with_h(0.25), 0.0, _x_with_h(1.0), -_x_with_h(1.5), _x_with_h(2.0)])
    expected = torch.tensor([
        [0.0, 0.0, 0.75, 0.25, 0.0],
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.5, 0.5, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ])
    got = scalar_to_support(xs, 2)
    assert got.shape == (5, 5) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-5)


def test_scalar_to_support_clamps_beyond_the_support():
    got = scalar_to_support(torch.tensor([1e6, -1e6, _x_with_h(2.5)]), 2)
    expected = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0],
                             [1.0, 0.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0, 1.0]])
    assert torch.equal(got, expected)


def test_scalar_to_support_keeps_leading_dimensions():
    x = torch.randn(4, 3) * 5
    got = scalar_to_support(x, 10)
    assert got.shape == (4, 3, 21)
    assert torch.allclose(got.sum(-1), torch.ones(4, 3))
    assert torch.all(got >= 0)
    assert (got > 0).sum(-1).max() <= 2


def test_support_round_trip_inside_the_support():
    support = 10
    limit = _x_with_h(support) * 0.999
    xs = torch.linspace(-limit, limit, 501)
    two_hot = scalar_to_support(xs, support)
    back = support_to_scalar(torch.log(two_hot), support)
    assert back.shape == xs.shape
    assert torch.allclose(back, xs, rtol=1e-4, atol=1e-4)


def test_support_to_scalar_of_hand_distributions():
    support = 2
    # Uniform -> exactly 0; all mass on bin +1 (or -1) -> the x with h(x) = 1 (or -1).
    logits = torch.tensor([[0.0] * 5, [-1e9, -1e9, -1e9, 0.0, -1e9], [-1e9, 0.0, -1e9, -1e9, -1e9]])
    got = support_to_scalar(logits, support)
    assert got[0].item() == 0.0
    assert _h_reference(got[1].item()) == pytest.approx(1.0, rel=1e-6)
    assert _h_reference(got[2].item()) == pytest.approx(-1.0, rel=1e-6)
    with pytest.raises(ValueError, match="bins"):
        support_to_scalar(torch.zeros(2, 7), support)


# --- shapes ------------------------------------------------------------------------------


def _assert_min_max_normalised(latent: torch.Tensor) -> None:
    flat = latent.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(len(flat)), atol=1e-6)
    assert torch.allclose(flat.max(1).values, torch.ones(len(flat)), atol=1e-6)


def test_atari_shapes_with_the_default_config():
    net = _net(ATARI_OBS, ATARI_ACTIONS, MuZeroNetConfig()).eval()
    assert net.latent_shape == (64, 6, 6)
    with torch.inference_mode():
        latent, policy, value = net.initial_inference(torch.rand(2, *ATARI_OBS))
        nxt, reward, policy2, value2 = net.recurrent_inference(latent, torch.tensor([0, 3]))
    assert latent.shape == nxt.shape == (2, 64, 6, 6)
    assert policy.shape == policy2.shape == (2, ATARI_ACTIONS)
    assert value.shape == value2.shape == reward.shape == (2, 601)
    assert all(t.dtype == torch.float32 for t in (latent, policy, value, nxt, reward))
    _assert_min_max_normalised(latent)
    _assert_min_max_normalised(nxt)


@pytest.mark.parametrize("downsample, latent_hw", [("auto", (3, 3)), ("none", (3, 3)),
                                                   ("always", (1, 1))])
def test_board_latent_size_follows_downsample(downsample, latent_hw):
    config = dataclasses.replace(SMALL, downsample=downsample)
    net = _net(config=config).eval()
    assert net.latent_shape == (8, *latent_hw)
    with torch.inference_mode():
        latent = net.represent(torch.randn(5, *BOARD_OBS))
        nxt, reward = net.dynamics(latent, torch.arange(5))
    assert latent.shape == nxt.shape == (5, 8, *latent_hw)
    assert reward.shape == (5, 21)


def test_downsample_none_keeps_a_large_observation_size():
    config = dataclasses.replace(SMALL, downsample="none")
    assert _net((2, 40, 33), 3, config).latent_shape == (8, 40, 33)
    assert _net((2, 40, 33), 3, SMALL).latent_shape == (8, 3, 3)


def test_board_latents_are_min_max_normalised_per_sample():
    net = _net().eval()
    obs = torch.randn(6, *BOARD_OBS)
    obs[3] *= 100  # scale of one sample must not leak into the others
    with torch.inference_mode():
        latent = net.represent(obs)
        nxt, _ = net.dynamics(latent, torch.tensor([0, 1, 2, 3, 4, 8]))
    _assert_min_max_normalised(latent)
    _assert_min_max_normalised(nxt)


def test_constant_latent_maps_to_zero_not_nan():
    net = _net().eval()
    with torch.no_grad():
        for p in net.representation.parameters():
            p.zero_()
        net.stem[0].weight.zero_()  # stem conv: constant output for every input
    latent = net.represent(torch.randn(2, *BOARD_OBS))
    assert torch.all(torch.isfinite(latent)) and torch.all(latent == 0)


@pytest.mark.parametrize("obs_shape, num_actions", [(BOARD_OBS, BOARD_ACTIONS),
                                                    ((4, 64, 64), ATARI_ACTIONS)])
def test_batch_of_one_trains(obs_shape, num_actions):
    net = _net(obs_shape, num_actions).train()
    latent, policy, value = net.initial_inference(torch.rand(1, *obs_shape))
    _, reward, policy2, value2 = net.recurrent_inference(latent, torch.tensor([1]))
    loss = sum(t.square().sum() for t in (policy, value, reward, policy2, value2)) + latent.sum()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


# --- a fresh network ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fresh_network_predicts_zero_value_reward_and_uniform_policy(mode):
    net = _net(ATARI_OBS, ATARI_ACTIONS, dataclasses.replace(SMALL, value_support=300,
                                                             reward_support=300))
    net.train(mode == "train")
    with torch.no_grad():
        latent, policy, value = net.initial_inference(torch.rand(3, *ATARI_OBS))
        _, reward, policy2, value2 = net.recurrent_inference(latent, torch.tensor([0, 1, 3]))
    for v in (support_to_scalar(value, 300), support_to_scalar(reward, 300),
              support_to_scalar(value2, 300)):
        assert torch.equal(v, torch.zeros(3))
    for p in (policy, policy2):
        assert torch.equal(torch.softmax(p, -1), torch.full((3, ATARI_ACTIONS), 0.25))


def test_dynamics_depends_on_the_action():
    net = _net().eval()
    with torch.inference_mode():
        latent = net.represent(torch.randn(1, *BOARD_OBS)).expand(BOARD_ACTIONS, -1, -1, -1)
        nxt, _ = net.dynamics(latent, torch.arange(BOARD_ACTIONS))
    flat = nxt.flatten(1)
    distances = torch.cdist(flat, flat)
    off_diagonal = distances[~torch.eye(BOARD_ACTIONS, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-3


def test_one_optimiser_step_moves_the_reward_off_zero():
    net = _net().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    obs = torch.randn(4, *BOARD_OBS)
    actions = torch.tensor([0, 1, 0, 1])
    _, reward = net.dynamics(net.represent(obs), actions)
    target = scalar_to_support(torch.ones(4), SMALL.reward_support)
    loss = -(target * torch.log_softmax(reward, -1)).sum(-1).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        _, reward = net.dynamics(net.represent(obs), actions)
    assert torch.all(support_to_scalar(reward, SMALL.reward_support) > 0)


# --- learning ----------------------------------------------------------------------------


def test_learns_a_two_step_reward_toy():
    """Action 0 gives reward +1 and action 1 gives -1, at both unroll steps."""
    torch.manual_seed(0)
    config = dataclasses.replace(SMALL, channels=16, reward_support=5, value_support=5)
    net = MuZeroNet(BOARD_OBS, 2, config).train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    obs = torch.randn(16, *BOARD_OBS)
    actions = torch.randint(0, 2, (16, 2))
    rewards = 1.0 - 2.0 * actions.float()  # [16, 2]
    targets = scalar_to_support(rewards, config.reward_support)  # [16, 2, 11]

    def unroll():
        latent = net.represent(obs)
        out = []
        for k in range(2):
            latent, reward = net.dynamics(latent, actions[:, k])
            out.append(reward)
        return torch.stack(out, 1)  # [16, 2, 11]

    for _ in range(100):
        loss = -(targets * torch.log_softmax(unroll(), -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        predicted = support_to_scalar(unroll(), config.reward_support)
    assert (predicted - rewards).abs().max() < 0.2


# --- config ------------------------------------------------------------------------------


def test_config_defaults_and_round_trip():
    c = MuZeroNetConfig()
    assert (c.blocks, c.channels, c.downsample) == (2, 64, "auto")
    assert (c.value_support, c.reward_support, c.head_channels, c.hidden) == (300, 300, 16, 64)
    assert muzero_config_from_dict(SMALL.to_dict()) == SMALL
    assert muzero_config_from_dict({}) == MuZeroNetConfig()


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"\['filters', 'support'\]"):
        muzero_config_from_dict({"blocks": 2, "support": 3, "filters": 8})
    with pytest.raises(ValueError, match="dict"):
        muzero_config_from_dict([("blocks", 2)])


@pytest.mark.parametrize("field", ["blocks", "channels", "value_support", "reward_support",
                                   "head_channels", "hidden"])
@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_config_from_dict_rejects_bad_values(field, bad):
    with pytest.raises(ValueError, match=field):
        muzero_config_from_dict({field: bad})


def test_config_rejects_unknown_downsample():
    with pytest.raises(ValueError, match="downsample.*'auto', 'none', 'always'"):
        muzero_config_from_dict({"downsample": "strided"})


@pytest.mark.parametrize("obs_shape", [(6, 7), (0, 6, 7), (3, 6, 7, 1)])
def test_net_rejects_bad_obs_shape(obs_shape):
    with pytest.raises(ValueError, match="obs_shape"):
        MuZeroNet(obs_shape, BOARD_ACTIONS, SMALL)


def test_net_rejects_bad_num_actions_and_config():
    with pytest.raises(ValueError, match="num_actions"):
        MuZeroNet(BOARD_OBS, 0, SMALL)
    with pytest.raises(ValueError, match="config"):
        MuZeroNet(BOARD_OBS, BOARD_ACTIONS, SMALL.to_dict())
