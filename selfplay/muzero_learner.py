"""The MuZero learner: K-step unrolled training of representation, dynamics and prediction.

Loss per sample (MuZero appendix G / EfficientZero): at the root and after each
of K dynamics steps, cross-entropy of the categorical value and reward
supports against the two-hot targets, plus policy cross-entropy; the unrolled
steps' losses are scaled by 1/K and the gradient of every latent the dynamics
produced is halved on its way back (MuZero's scale_gradient after each
recurrent step; the representation's output enters the first step unscaled). With prioritized replay each sample is weighted by its importance
sampling weight and the root value error becomes its new priority.
With `learner.augment` and a game with symmetries, each sample is shown in a
random symmetric form: its observation moved by `apply_symmetry`, and its
unrolled actions and policy targets by the action permutation the same
symmetry makes (the dynamics learn the rules in every orientation at once).
Optimiser and RNG state round-trip as the AlphaZero learner's do, and CUDA
training uses its mixed precision (autocast, GradScaler for fp16) the same way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.muzero_net import MuZeroNet, MuZeroNetConfig, scalar_to_support, support_to_scalar
from selfplay.config import LearnerConfig, MuZeroConfig
from selfplay.learner import Learner


def _scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x * scale + x.detach() * (1.0 - scale)


class MuZeroLearner(Learner):
    """Trains a MuZeroNet from SegmentReplay samples."""

    def __init__(self, game, network: MuZeroNetConfig, config: LearnerConfig,
                 muzero: MuZeroConfig, device: str = "cpu"):
        self.muzero = muzero
        self._perms = _action_permutations(game)
        super().__init__(game, network, config, device)

    def _build_net(self, network: MuZeroNetConfig) -> MuZeroNet:
        info = self.game.info
        return MuZeroNet(tuple(info.observation_shape), info.num_actions, network)

    def train(self, replay, steps: int, rng: np.random.Generator,
              should_stop=lambda: False) -> dict[str, float]:
        """Runs up to `steps` gradient steps; returns mean losses. Blocks."""
        self.net.train()
        keys = ("loss/policy", "loss/value", "loss/reward", "loss/total")
        totals = dict.fromkeys(keys, 0.0)
        done = 0
        for _ in range(steps):
            if should_stop():
                break
            batch = self._augment_unroll(replay.sample(self.config.batch_size, rng), rng)
            losses, priorities = self._step(batch)
            if replay.prioritized:
                replay.update_priorities(batch["index"], priorities)
            for key in keys:
                totals[key] += losses[key]
            done += 1
        return {k: v / max(done, 1) for k, v in totals.items()} | {
            "learner/steps": done, "learner/lr": self.optimizer.param_groups[0]["lr"]}

    def action_permutations(self) -> np.ndarray | None:
        """perm int64[S, A]: symmetry k sends action a to perm[k, a] (_action_permutations)."""
        return self._perms

    def _augment_unroll(self, batch: dict, rng: np.random.Generator,
                        ks: np.ndarray | None = None) -> dict:
        """The batch with row i in symmetric form ks[i] (random when None; 0 = as is)."""
        perms = self.action_permutations() if self.config.augment else None
        if perms is None:
            return batch
        n = len(batch["obs"])
        ks = rng.integers(0, len(perms), size=n) if ks is None else ks
        for k in range(1, len(perms)):
            rows = np.flatnonzero(ks == k)
            if not len(rows):
                continue
            no_policy = np.zeros((len(rows), perms.shape[1]), np.float32)
            batch["obs"][rows], _ = self.game.apply_symmetry(k, batch["obs"][rows], no_policy)
            moved = np.empty_like(batch["policy"][rows])
            moved[..., perms[k]] = batch["policy"][rows]  # action a's mass goes to perm[a]
            batch["policy"][rows] = moved
            batch["actions"][rows] = perms[k][batch["actions"][rows]]
        return batch

    def losses(self, batch: dict) -> tuple[torch.Tensor, dict, np.ndarray]:
        """The weighted total loss of a batch, its parts, and new priorities."""
        # The sample indices stay on the host: only the caller's priority update uses them.
        t = {k: self._to_device(v) for k, v in batch.items() if k != "index"}
        cfg = self.network_config
        unroll = t["actions"].shape[1]
        latent, logits, value_logits = self.net.initial_inference(t["obs"])
        value_loss = _ce(value_logits, scalar_to_support(t["value"][:, 0], cfg.value_support))
        value_loss = value_loss * t["value_mask"][:, 0]
        policy_loss = _ce(logits, t["policy"][:, 0]) * t["policy_mask"][:, 0]
        reward_loss = torch.zeros_like(value_loss)
        with torch.no_grad():
            root_value = support_to_scalar(value_logits, cfg.value_support)
            priorities = (root_value - t["value"][:, 0]).abs().cpu().numpy()
        for k in range(1, unroll + 1):
            latent, reward_logits, logits, value_logits = self.net.recurrent_inference(
                latent, t["actions"][:, k - 1])
            # MuZero's pseudocode: halve the gradient after each dynamics step, so the
            # representation's gradient through the first step is not halved.
            latent = _scale_gradient(latent, 0.5)
            scale = 1.0 / unroll
            value_loss = value_loss + scale * t["value_mask"][:, k] * _ce(
                value_logits, scalar_to_support(t["value"][:, k], cfg.value_support))
            reward_loss = reward_loss + scale * t["reward_mask"][:, k] * _ce(
                reward_logits, scalar_to_support(t["reward"][:, k], cfg.reward_support))
            policy_loss = policy_loss + scale * t["policy_mask"][:, k] * _ce(
                logits, t["policy"][:, k])
        w = t["weight"]
        total = (w * (policy_loss + self.muzero.value_loss_weight * value_loss
                      + reward_loss)).mean()
        parts = {"loss/policy": float((w * policy_loss).mean().detach()),
                 "loss/value": float((w * value_loss).mean().detach()),
                 "loss/reward": float((w * reward_loss).mean().detach())}
        return total, parts, priorities

    def _step(self, batch: dict) -> tuple[dict, np.ndarray]:
        with self._autocast():
            total, parts, priorities = self.losses(batch)
        self._optimize(total, clip_norm=5.0)
        return parts | {"loss/total": float(total.detach())}, priorities


def _action_permutations(game) -> np.ndarray | None:
    """perm int64[S, A]: symmetry k sends action a to perm[k, a], read off apply_symmetry
    on one-hot policies; None when the game has no symmetries, or one of them moves a
    policy other than by permuting its actions."""
    info = game.info
    if info.num_symmetries <= 1:
        return None
    a = info.num_actions
    eye = np.eye(a, dtype=np.float32)
    obs = np.zeros((a,) + tuple(info.observation_shape), np.float32)
    perms = [np.arange(a)]
    for k in range(1, info.num_symmetries):
        _, moved = game.apply_symmetry(k, obs.copy(), eye.copy())
        perm = moved.argmax(axis=1)
        if not (np.array_equal(np.sort(perm), np.arange(a)) and np.array_equal(moved, eye[perm])):
            return None
        perms.append(perm)
    return np.stack(perms).astype(np.int64)


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per row against a target distribution."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1)
