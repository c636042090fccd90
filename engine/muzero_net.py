"""MuZero's three networks (representation, dynamics, prediction) with categorical supports.

Follows the MuZero paper's appendix (Schrittwieser et al. 2020) and
EfficientZero's Atari network, shrunk for a CPU:

- representation `h`: observation float32[B, C, H, W] -> latent float32[B, C', h, w],
  min-max normalised to [0, 1] per sample (MuZero appendix G). For observations
  at least 32 pixels high ('auto') the input is first downsampled 16x as in
  MuZero's Atari network (96x96 -> 6x6) with one residual block per stage.
- dynamics `g`: (latent, action) -> (next latent, reward logits). The action is
  a learned plane (nn.Embedding(A, h*w)) stacked onto the latent, so the same
  code serves 4 Atari actions and 7 Connect Four columns.
- prediction `f`: latent -> (policy logits, value logits).

Values and rewards are predicted as logits over a categorical support of
integers -S..S of the transformed scalar h(x) (MuZero appendix F);
`scalar_to_support` builds the two-hot training target and `support_to_scalar`
reads a prediction back. The final layers of the value, reward and policy
heads start at zero, so a fresh network predicts value 0, reward 0 and a
uniform policy exactly (as EfficientZero does).

Gradient scaling inside the unroll (MuZero's scale_gradient by 1/2 on the
latent) belongs to the training loop, not to this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from engine.networks import ResidualBlock

DOWNSAMPLE_MODES = ("auto", "none", "always")
AUTO_DOWNSAMPLE_MIN_HEIGHT = 32
"""'auto' downsamples observations at least this many pixels high."""
H_EPS = 1e-3
"""The epsilon of MuZero's value transform h (appendix F)."""
_MIN_MAX_EPS = 1e-5
"""A latent whose max - min is below this is not stretched (EfficientZero)."""


@dataclass(frozen=True)
class MuZeroNetConfig:
    """Sizes of the MuZero representation, dynamics and prediction networks."""

    blocks: int = 2
    """Residual blocks in each of the representation, dynamics and prediction towers."""
    channels: int = 64
    """Channels of a latent state (and of every residual block after downsampling)."""
    downsample: str = "auto"
    """'auto': downsample 16x when the observation is >= 32 pixels high (Atari);
    'none': the latent keeps the board's H x W; 'always': downsample anyway."""
    value_support: int = 300
    """Value logits cover the integers -S..S (2S+1 bins) of h(value)."""
    reward_support: int = 300
    """Reward logits cover the integers -S..S (2S+1 bins) of h(reward)."""
    head_channels: int = 16
    """Channels of the 1x1 convolution in front of each fully connected head."""
    hidden: int = 64
    """Hidden width of the value, reward and policy fully connected layers."""

    def __post_init__(self) -> None:
        for field in ("blocks", "channels", "value_support", "reward_support",
                      "head_channels", "hidden"):
            value = getattr(self, field)
            # bool is an int subclass; reject it so `blocks=True` is not 1.
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"MuZeroNetConfig.{field} must be a positive int, got {value!r}")
        if self.downsample not in DOWNSAMPLE_MODES:
            raise ValueError(
                f"MuZeroNetConfig.downsample must be one of {DOWNSAMPLE_MODES}, "
                f"got {self.downsample!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain JSON-serialisable dict."""
        return dataclasses.asdict(self)


def muzero_config_from_dict(d: Mapping[str, Any]) -> MuZeroNetConfig:
    """Builds a MuZeroNetConfig from a dict, e.g. checkpoint metadata or TOML.

    Missing keys take their defaults. Raises ValueError naming unknown keys or
    invalid values.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"muzero network config must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(MuZeroNetConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(
            f"unknown muzero network config key(s) {unknown}; valid keys: {sorted(known)}")
    return MuZeroNetConfig(**d)


# ---------------------------------------------------------------------------
# Value transform and categorical supports (MuZero appendix F).


def h(x: torch.Tensor, eps: float = H_EPS) -> torch.Tensor:
    """MuZero's value transform sign(x)(sqrt(|x| + 1) - 1) + eps x, elementwise.

    sqrt(z + 1) - 1 is computed as z / (sqrt(z + 1) + 1), which is the same
    number without cancellation for tiny |x|.

    Args:
      x: float tensor of any shape.
    Returns:
      A tensor of the same shape and dtype.
    """
    z = x.abs()
    return torch.sign(x) * (z / (torch.sqrt(z + 1) + 1)) + eps * x


def h_inv(x: torch.Tensor, eps: float = H_EPS) -> torch.Tensor:
    """The exact inverse of `h`, elementwise.

    With u = sqrt(|y| + 1), h(y) = x solves eps u^2 + u - (1 + eps + |x|) = 0.
    Writing t = u - 1 = 2|x| / (1 + 2eps + sqrt((1 + 2eps)^2 + 4 eps |x|))
    (the quadratic formula, rationalised to avoid cancellation near 0) gives
    |y| = u^2 - 1 = t (t + 2).

    Args:
      x: float tensor of any shape.
    Returns:
      A tensor of the same shape and dtype.
    """
    z = x.abs()
    a = 1 + 2 * eps
    t = 2 * z / (a + torch.sqrt(a * a + 4 * eps * z))
    return torch.sign(x) * t * (t + 2)


def scalar_to_support(x: torch.Tensor, support: int) -> torch.Tensor:
    """Two-hot target over the integers -S..S for the transformed scalars h(x).

    h(x) is clamped to [-S, S]; its mass is split between the two neighbouring
    integers so that the expectation of the distribution is exactly the
    clamped h(x).

    Args:
      x: float32[...] scalars (e.g. [B] rewards, or [B, K] unrolled targets).
      support: S >= 1.
    Returns:
      float32[..., 2S+1] probabilities summing to 1; bin i stands for i - S.
    """
    if support < 1:
        raise ValueError(f"support must be >= 1, got {support!r}")
    y = h(x.float()).clamp(-support, support)
    low = y.floor()
    upper_mass = y - low
    low_index = (low + support).long()
    # At y == S the upper bin would be 2S+1 (out of range) but carries no mass.
    high_index = (low_index + 1).clamp(max=2 * support)
    out = torch.zeros(*x.shape, 2 * support + 1, dtype=torch.float32, device=x.device)
    out.scatter_add_(-1, low_index.unsqueeze(-1), (1 - upper_mass).unsqueeze(-1))
    out.scatter_add_(-1, high_index.unsqueeze(-1), upper_mass.unsqueeze(-1))
    return out


def support_to_scalar(logits: torch.Tensor, support: int) -> torch.Tensor:
    """Reads scalars back from logits over -S..S: h_inv of the softmax expectation.

    The expectation is summed as sum_{i=1..S} i (p_i - p_-i), so that a
    symmetric distribution (e.g. all-zero logits) gives exactly 0.

    Args:
      logits: float32[..., 2S+1].
      support: S >= 1.
    Returns:
      float32[...].
    """
    if logits.shape[-1] != 2 * support + 1:
        raise ValueError(
            f"logits have {logits.shape[-1]} bins, support {support} needs {2 * support + 1}")
    probs = torch.softmax(logits.float(), dim=-1)
    positive = probs[..., support + 1:]
    negative = probs[..., :support].flip(-1)
    values = torch.arange(1, support + 1, dtype=probs.dtype, device=probs.device)
    return h_inv(((positive - negative) * values).sum(-1))


# ---------------------------------------------------------------------------
# Building blocks.


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _halved(n: int) -> int:
    """Output size of a kernel-3, stride-2, padding-1 conv or pool on n cells."""
    return (n - 1) // 2 + 1


class DownSample(nn.Module):
    """MuZero's Atari downsampling (96x96 -> 6x6) with one residual block per stage.

    conv3x3 stride 2 (-> channels/2), res block, conv3x3 stride 2 (-> channels),
    res block, avgpool stride 2, res block, avgpool stride 2. MuZero uses
    2, 3 and 3 blocks at the three stages; one each keeps it affordable on a CPU.
    """

    def __init__(self, c_in: int, channels: int):
        super().__init__()
        half = max(1, channels // 2)
        self.layers = nn.Sequential(
            _conv_bn_relu(c_in, half, stride=2),
            ResidualBlock(half),
            _conv_bn_relu(half, channels, stride=2),
            ResidualBlock(channels),
            nn.AvgPool2d(3, stride=2, padding=1),
            ResidualBlock(channels),
            nn.AvgPool2d(3, stride=2, padding=1),
        )

    @staticmethod
    def output_size(n: int) -> int:
        """Spatial size after the four stride-2 stages."""
        for _ in range(4):
            n = _halved(n)
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Head(nn.Module):
    """1x1 conv-BN-ReLU, then Linear-ReLU-Linear; the last Linear starts at zero.

    No BatchNorm after the flatten, so a batch of one trains without error.
    """

    def __init__(self, channels: int, cells: int, config: MuZeroNetConfig, out: int):
        super().__init__()
        hc = config.head_channels
        self.conv = _conv_bn_relu(channels, hc, kernel=1)
        self.fc = nn.Sequential(
            nn.Linear(hc * cells, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, out),
        )
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        # flatten(1) rather than view(): works for channels_last inputs too.
        return self.fc(self.conv(latent).flatten(1))


def _min_max_normalise(x: torch.Tensor) -> torch.Tensor:
    """Scales each sample of float32[B, ...] to [0, 1] (MuZero appendix G)."""
    flat = x.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    scale = flat.max(dim=1, keepdim=True).values - low
    # A (near-)constant latent is not blown up: it maps to ~0 instead.
    scale = torch.where(scale < _MIN_MAX_EPS, scale + _MIN_MAX_EPS, scale)
    return ((flat - low) / scale).view_as(x)


# ---------------------------------------------------------------------------
# The network.


class MuZeroNet(nn.Module):
    """MuZero representation, dynamics and prediction networks.

    Args:
      obs_shape: (C, H, W) of one observation.
      num_actions: A, the size of the policy and of the action embedding.
      config: network sizes.

    Attributes:
      latent_shape: (channels, h, w) of one latent state.

    The heads have no BatchNorm after flattening, so a batch of one trains.
    A 1x1 latent (downsample='always' on a small board) with a batch of one
    in train mode still fails in the convolutional BatchNorm2d layers
    (PyTorch needs more than one value per channel); use eval mode there.
    """

    def __init__(self, obs_shape: tuple[int, int, int], num_actions: int,
                 config: MuZeroNetConfig = MuZeroNetConfig()):
        super().__init__()
        obs_shape = tuple(int(s) for s in obs_shape)
        if len(obs_shape) != 3 or min(obs_shape) <= 0:
            raise ValueError(
                f"obs_shape must be (C, H, W) with positive sizes, got {obs_shape}")
        if isinstance(num_actions, bool) or int(num_actions) != num_actions \
                or num_actions <= 0:
            raise ValueError(f"num_actions must be a positive int, got {num_actions!r}")
        if not isinstance(config, MuZeroNetConfig):
            raise ValueError(
                f"config must be a MuZeroNetConfig, got {type(config).__name__}")
        self.obs_shape = obs_shape
        self.num_actions = int(num_actions)
        self.config = config
        c_in, height, width = obs_shape
        ch = config.channels

        downsample = config.downsample == "always" or (
            config.downsample == "auto" and height >= AUTO_DOWNSAMPLE_MIN_HEIGHT)
        if downsample:
            self.stem = nn.Sequential(DownSample(c_in, ch))
            height, width = DownSample.output_size(height), DownSample.output_size(width)
        else:
            self.stem = _conv_bn_relu(c_in, ch)
        self.latent_shape = (ch, height, width)
        cells = height * width

        self.representation = nn.Sequential(*(ResidualBlock(ch) for _ in range(config.blocks)))

        # nn.Embedding's N(0, 1) init: distinct actions give distinct latents from the start.
        self.action_embedding = nn.Embedding(self.num_actions, cells)
        self.dynamics_conv = _conv_bn_relu(ch + 1, ch)
        self.dynamics_tower = nn.Sequential(*(ResidualBlock(ch) for _ in range(config.blocks)))
        self.reward_head = _Head(ch, cells, config, 2 * config.reward_support + 1)

        self.prediction_tower = nn.Sequential(*(ResidualBlock(ch) for _ in range(config.blocks)))
        self.policy_head = _Head(ch, cells, config, self.num_actions)
        self.value_head = _Head(ch, cells, config, 2 * config.value_support + 1)

    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        """Encodes observations.

        Args:
          obs: float32[B, C, H, W].
        Returns:
          float32[B, *latent_shape], each sample min-max normalised to [0, 1].
        """
        return _min_max_normalise(self.representation(self.stem(obs)))

    def dynamics(self, latent: torch.Tensor,
                 actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advances latent states by one action each.

        Args:
          latent: float32[B, *latent_shape].
          actions: int64[B] in [0, A).
        Returns:
          next_latent: float32[B, *latent_shape], min-max normalised per sample.
          reward_logits: float32[B, 2R+1] over -R..R (R = config.reward_support).
        """
        _, height, width = self.latent_shape
        plane = self.action_embedding(actions.long()).view(-1, 1, height, width)
        x = torch.cat([latent, plane.to(latent.dtype)], dim=1)
        x = self.dynamics_tower(self.dynamics_conv(x))
        next_latent = _min_max_normalise(x)
        return next_latent, self.reward_head(next_latent)

    def predict(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy and value of latent states.

        Args:
          latent: float32[B, *latent_shape].
        Returns:
          policy_logits: float32[B, A].
          value_logits: float32[B, 2V+1] over -V..V (V = config.value_support).
        """
        x = self.prediction_tower(latent)
        return self.policy_head(x), self.value_head(x)

    def initial_inference(
            self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """represent then predict.

        Args:
          obs: float32[B, C, H, W].
        Returns:
          latent float32[B, *latent_shape], policy_logits float32[B, A],
          value_logits float32[B, 2V+1].
        """
        latent = self.represent(obs)
        policy_logits, value_logits = self.predict(latent)
        return latent, policy_logits, value_logits

    def recurrent_inference(
            self, latent: torch.Tensor, actions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """dynamics then predict on the new latent.

        Args:
          latent: float32[B, *latent_shape].
          actions: int64[B] in [0, A).
        Returns:
          next_latent float32[B, *latent_shape], reward_logits float32[B, 2R+1],
          policy_logits float32[B, A], value_logits float32[B, 2V+1].
        """
        next_latent, reward_logits = self.dynamics(latent, actions)
        policy_logits, value_logits = self.predict(next_latent)
        return next_latent, reward_logits, policy_logits, value_logits


__all__ = [
    "AUTO_DOWNSAMPLE_MIN_HEIGHT",
    "DOWNSAMPLE_MODES",
    "DownSample",
    "H_EPS",
    "MuZeroNet",
    "MuZeroNetConfig",
    "h",
    "h_inv",
    "muzero_config_from_dict",
    "scalar_to_support",
    "support_to_scalar",
]
