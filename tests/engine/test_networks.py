"""Tests for engine.networks: shapes, value ranges, config validation."""

import dataclasses

import numpy as np
import pytest
import torch

from engine.networks import (
    GlobalPoolingBlock,
    NetworkConfig,
    PolicyValueNet,
    network_config_from_dict,
    scalar_value,
)

OBS_SHAPE = (3, 6, 7)
NUM_ACTIONS = 7
SMALL = dict(blocks=2, channels=8, value_hidden=16)


def _net(value_head: str = "scalar", seed: int = 0) -> PolicyValueNet:
    torch.manual_seed(seed)
    return PolicyValueNet(OBS_SHAPE, NUM_ACTIONS, NetworkConfig(value_head=value_head, **SMALL))


def test_config_defaults():
    c = NetworkConfig()
    assert (c.blocks, c.channels, c.value_head) == (5, 64, "scalar")
    assert (c.policy_channels, c.value_channels, c.value_hidden) == (2, 1, 64)


@pytest.mark.parametrize("value_head", ["scalar", "wdl"])
@pytest.mark.parametrize("batch", [1, 5])
def test_output_shapes(value_head, batch):
    net = _net(value_head).eval()
    policy, value = net(torch.randn(batch, *OBS_SHAPE))
    assert policy.shape == (batch, NUM_ACTIONS)
    assert policy.dtype == torch.float32
    if value_head == "scalar":
        assert value.shape == (batch,)
    else:
        assert value.shape == (batch, 3)


def test_scalar_value_in_range_even_for_large_inputs():
    net = _net("scalar").eval()
    with torch.no_grad():
        # Push the value head towards saturation: tanh keeps it in [-1, 1].
        net.value_fc[-1].bias.fill_(50.0)
        _, value = net(torch.randn(16, *OBS_SHAPE) * 100)
    assert torch.all(value <= 1.0) and torch.all(value >= -1.0)
    assert torch.allclose(value, torch.ones(16))


def test_wdl_scalar_value_is_win_minus_loss():
    logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, -10.0], [1.0, 2.0, 3.0]])
    v = scalar_value(logits, "wdl")
    p = torch.softmax(logits, dim=-1)
    assert v.shape == (3,)
    assert torch.allclose(v, p[:, 0] - p[:, 2])
    assert abs(v[0].item()) < 1e-7
    assert v[1].item() > 0.99
    net = _net("wdl").eval()
    with torch.no_grad():
        _, out = net(torch.randn(8, *OBS_SHAPE))
    v = scalar_value(out, "wdl")
    assert v.shape == (8,) and torch.all(v.abs() <= 1.0)


def test_scalar_value_passthrough_and_unknown_head():
    v = torch.tensor([0.5, -0.25])
    assert scalar_value(v, "scalar") is v
    with pytest.raises(ValueError, match="value_head"):
        scalar_value(v, "categorical")


def test_training_step_changes_weights():
    net = _net("scalar").train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    policy, value = net(torch.randn(4, *OBS_SHAPE))
    loss = policy.logsumexp(-1).mean() + value.square().mean()
    loss.backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_channels_last_input_gives_same_output():
    net = _net("scalar").eval()
    x = torch.randn(3, *OBS_SHAPE)
    with torch.no_grad():
        p1, v1 = net(x)
        p2, v2 = net(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(p1, p2, atol=1e-5) and torch.allclose(v1, v2, atol=1e-5)


@pytest.mark.parametrize("field", ["blocks", "channels", "policy_channels",
                                   "value_channels", "value_hidden"])
@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_config_rejects_non_positive_ints(field, bad):
    with pytest.raises(ValueError, match=field):
        NetworkConfig(**{field: bad})


def test_config_rejects_unknown_value_head():
    with pytest.raises(ValueError, match="value_head.*'scalar', 'wdl'"):
        NetworkConfig(value_head="categorical")


def test_config_from_dict_round_trip_and_unknown_keys():
    c = NetworkConfig(blocks=3, channels=16, value_head="wdl")
    assert network_config_from_dict(dataclasses.asdict(c)) == c
    assert network_config_from_dict(c.to_dict()) == c
    assert network_config_from_dict({}) == NetworkConfig()
    with pytest.raises(ValueError, match=r"\['filters', 'layers'\]"):
        network_config_from_dict({"blocks": 2, "layers": 3, "filters": 8})
    with pytest.raises(ValueError, match="dict"):
        network_config_from_dict([("blocks", 2)])


@pytest.mark.parametrize("obs_shape", [(6, 7), (0, 6, 7), (3, 6, 7, 1)])
def test_net_rejects_bad_obs_shape(obs_shape):
    with pytest.raises(ValueError, match="obs_shape"):
        PolicyValueNet(obs_shape, NUM_ACTIONS, NetworkConfig(**SMALL))


def test_net_rejects_bad_num_actions():
    with pytest.raises(ValueError, match="num_actions"):
        PolicyValueNet(OBS_SHAPE, 0, NetworkConfig(**SMALL))


# ---------------------------------------------------------------------------
# Global pooling blocks (KataGo).


def _tower_corner(net, obs):
    """The tower's features at the point (0, 0)."""
    with torch.no_grad():
        return net.tower(net.stem(obs))[:, :, 0, 0]


@pytest.mark.parametrize("global_pool", [False, True])
def test_global_pooling_sees_the_far_corner(global_pool):
    # Stem and two blocks are five 3x3 convolutions: the feature at (0, 0) depends on
    # points within 5 steps only, unless a block pools the whole board.
    torch.manual_seed(0)
    net = PolicyValueNet((4, 19, 19), 362, NetworkConfig(blocks=2, channels=16,
                                                         global_pool=global_pool)).eval()
    obs = torch.zeros(1, 4, 19, 19)
    far = obs.clone()
    far[0, 0, 18, 18] = 1.0
    changed = not torch.allclose(_tower_corner(net, obs), _tower_corner(net, far))
    assert changed == global_pool
    assert isinstance(net.tower[1], GlobalPoolingBlock) == global_pool
    assert not isinstance(net.tower[0], GlobalPoolingBlock)


def test_global_pooling_exports_to_onnx_with_the_same_numbers():
    from engine.evaluator import make_evaluator

    torch.manual_seed(1)
    net = PolicyValueNet((17, 9, 9), 82, NetworkConfig(blocks=4, channels=16,
                                                       global_pool=True)).eval()
    obs = np.random.default_rng(0).random((5, 17, 9, 9)).astype(np.float32)
    mask = np.ones((5, 82), bool)
    lt, vt = make_evaluator(net, "torch").evaluate(obs, mask)
    lo, vo = make_evaluator(net, "onnx").evaluate(obs, mask)
    np.testing.assert_allclose(lo, lt, atol=1e-4)
    np.testing.assert_allclose(vo, vt, atol=1e-4)
