"""AlphaZero policy/value network: a residual tower with two heads.

The network maps observations float32[B, C, H, W] (from the point of view of
the player to move) to policy logits float32[B, A] and a value output. The
value head is either 'scalar' (tanh, float32[B] in [-1, 1]) or 'wdl' (three
logits for win/draw/loss, float32[B, 3]); `scalar_value` turns either into
float32[B] in [-1, 1].

This module depends on torch only; checkpoints build networks from it, never
the other way round.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

VALUE_HEADS = ("scalar", "wdl")
WDL_WIN, WDL_DRAW, WDL_LOSS = 0, 1, 2


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the residual policy/value network."""

    blocks: int = 5
    """Number of residual blocks in the tower."""
    channels: int = 64
    """Convolution channels in the stem and every residual block."""
    value_head: str = "scalar"
    """'scalar' (tanh value in [-1, 1]) or 'wdl' (3 logits: win, draw, loss)."""
    policy_channels: int = 2
    """Channels of the policy head's 1x1 convolution."""
    value_channels: int = 1
    """Channels of the value head's 1x1 convolution."""
    value_hidden: int = 64
    """Width of the value head's hidden fully connected layer."""
    global_pool: bool = False
    """KataGo's global pooling: every second residual block (the 2nd, 4th, ...) also
    pools a quarter of its channels over the whole board (mean and max) into biases for
    the others, so a block can see beyond its 3x3 reach (ko, counts, whose game it is)."""
    aux_heads: bool = False
    """Ownership and score heads (KataGo's auxiliary targets) for games that declare
    GameInfo.territory (Go): trained to predict who owns each point at the end and the
    final score margin, which teaches the tower to count. Play never uses them."""

    def __post_init__(self) -> None:
        for field in ("blocks", "channels", "policy_channels", "value_channels",
                      "value_hidden"):
            value = getattr(self, field)
            # bool is an int subclass; reject it so `blocks=True` is not 1.
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"NetworkConfig.{field} must be a positive int, got {value!r}")
        for field in ("global_pool", "aux_heads"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"NetworkConfig.{field} must be true or false, got "
                                 f"{getattr(self, field)!r}")
        if self.value_head not in VALUE_HEADS:
            raise ValueError(
                f"NetworkConfig.value_head must be one of {VALUE_HEADS}, "
                f"got {self.value_head!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain JSON-serialisable dict."""
        return dataclasses.asdict(self)


def network_config_from_dict(d: Mapping[str, Any]) -> NetworkConfig:
    """Builds a NetworkConfig from a dict, e.g. checkpoint metadata or TOML.

    Missing keys take their defaults. Raises ValueError naming unknown keys or
    invalid values.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"network config must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(NetworkConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(
            f"unknown network config key(s) {unknown}; valid keys: {sorted(known)}")
    return NetworkConfig(**d)


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the input, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(x + y)


class GlobalPoolingBlock(nn.Module):
    """A residual block whose first convolution gets per-channel biases from a global
    pooling of `pooled` extra channels (KataGo, Wu 2019, section 3.3): their mean and
    max over the board, through a linear layer. Then as ResidualBlock."""

    def __init__(self, channels: int, pooled: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.pool_conv = nn.Conv2d(channels, pooled, 3, padding=1, bias=False)
        self.pool_bn = nn.BatchNorm2d(pooled)
        self.pool_fc = nn.Linear(2 * pooled, channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.relu(self.pool_bn(self.pool_conv(x)))
        pooled = torch.cat([g.mean(dim=(2, 3)), g.amax(dim=(2, 3))], dim=1)
        y = self.conv1(x) + self.pool_fc(pooled)[:, :, None, None]
        y = self.bn2(self.conv2(F.relu(self.bn1(y))))
        return F.relu(x + y)


class PolicyValueNet(nn.Module):
    """AlphaZero residual tower with a policy head and a value head.

    Args:
      obs_shape: (C, H, W) of one observation.
      num_actions: A, the size of the policy vector.
      config: network sizes.
    """

    def __init__(self, obs_shape: tuple[int, int, int], num_actions: int,
                 config: NetworkConfig = NetworkConfig()):
        super().__init__()
        obs_shape = tuple(int(s) for s in obs_shape)
        if len(obs_shape) != 3 or min(obs_shape) <= 0:
            raise ValueError(
                f"obs_shape must be (C, H, W) with positive sizes, got {obs_shape}")
        if isinstance(num_actions, bool) or int(num_actions) != num_actions \
                or num_actions <= 0:
            raise ValueError(f"num_actions must be a positive int, got {num_actions!r}")
        if not isinstance(config, NetworkConfig):
            raise ValueError(
                f"config must be a NetworkConfig, got {type(config).__name__}")
        self.obs_shape = obs_shape
        self.num_actions = int(num_actions)
        self.config = config
        c_in, h, w = obs_shape
        ch = config.channels

        self.stem = nn.Sequential(
            nn.Conv2d(c_in, ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        )
        self.tower = nn.Sequential(*(
            GlobalPoolingBlock(ch, max(1, ch // 4)) if config.global_pool and i % 2 == 1
            else ResidualBlock(ch) for i in range(config.blocks)))

        pc = config.policy_channels
        self.policy_conv = nn.Sequential(
            nn.Conv2d(ch, pc, 1, bias=False), nn.BatchNorm2d(pc), nn.ReLU(inplace=True))
        self.policy_fc = nn.Linear(pc * h * w, self.num_actions)

        vc = config.value_channels
        self.value_conv = nn.Sequential(
            nn.Conv2d(ch, vc, 1, bias=False), nn.BatchNorm2d(vc), nn.ReLU(inplace=True))
        value_out = 1 if config.value_head == "scalar" else 3
        self.value_fc = nn.Sequential(
            nn.Linear(vc * h * w, config.value_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.value_hidden, value_out),
        )
        if config.aux_heads:
            self.ownership_conv = nn.Conv2d(ch, 1, 1)
            self.score_fc = nn.Sequential(
                nn.Linear(ch, config.value_hidden), nn.ReLU(inplace=True),
                nn.Linear(config.value_hidden, 1))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluates a batch.

        Args:
          obs: float32[B, C, H, W].
        Returns:
          policy_logits: float32[B, A].
          value_out: float32[B] in [-1, 1] ('scalar'), or float32[B, 3]
            win/draw/loss logits ('wdl').
        """
        return self._heads(self.tower(self.stem(obs)))

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # flatten(1) rather than view(): works for channels_last inputs too.
        policy = self.policy_fc(self.policy_conv(x).flatten(1))
        value = self.value_fc(self.value_conv(x).flatten(1))
        if self.config.value_head == "scalar":
            value = torch.tanh(value.squeeze(1))
        return policy, value

    def forward_aux(self, obs: torch.Tensor):
        """`forward` and the auxiliary heads (config.aux_heads), for training.

        Returns:
          (policy_logits, value_out) as `forward`, then ownership logits float32[B, H*W]
          (the mover owns a point with probability sigmoid) and the predicted score
          margin float32[B] in points divided by the board side, from the mover's side.
        """
        if not self.config.aux_heads:
            raise ValueError("this network has no auxiliary heads (network.aux_heads)")
        x = self.tower(self.stem(obs))
        policy, value = self._heads(x)
        ownership = self.ownership_conv(x).flatten(1)
        score = self.score_fc(x.mean(dim=(2, 3))).squeeze(1)
        return policy, value, ownership, score


def scalar_value(value_out: torch.Tensor, value_head: str) -> torch.Tensor:
    """Turns a value head's output into float32[B] in [-1, 1].

    Args:
      value_out: float32[B] ('scalar') or float32[B, 3] logits ('wdl').
      value_head: 'scalar' or 'wdl'.
    Returns:
      float32[B]: the value itself, or P(win) - P(loss) for 'wdl'.
    """
    if value_head == "scalar":
        return value_out
    if value_head == "wdl":
        probs = torch.softmax(value_out, dim=-1)
        return probs[..., WDL_WIN] - probs[..., WDL_LOSS]
    raise ValueError(f"value_head must be one of {VALUE_HEADS}, got {value_head!r}")


class ScalarValueNet(nn.Module):
    """Wraps a PolicyValueNet so that its value output is always float32[B].

    Used for inference (ONNX export, evaluators): forward returns
    (policy_logits float32[B, A], value float32[B] in [-1, 1]).
    """

    def __init__(self, net: PolicyValueNet):
        super().__init__()
        self.net = net
        self.value_head = net.config.value_head

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        policy, value = self.net(obs)
        return policy, scalar_value(value, self.value_head)


__all__ = [
    "GlobalPoolingBlock",
    "NetworkConfig",
    "PolicyValueNet",
    "ResidualBlock",
    "ScalarValueNet",
    "VALUE_HEADS",
    "network_config_from_dict",
    "scalar_value",
]
