"""MuZero search: the one search driver (engine.search) over learned dynamics.

The learned model is the driver's LeafExpander (LatentExpander): the roots
come from the representation network applied to real observations; every
other node's state is the dynamics network's latent, kept here in one tensor
indexed [tree, node]. Each simulation step the driver selects one leaf per
tree (or several, with virtual loss), the expander runs ONE recurrent
inference for all of them (parent latent + action -> latent, reward, policy,
value), and the driver backs up with the predicted rewards, the discount and
min-max value normalisation. This module holds the torch side (the latents,
MuZeroInference); the driver imports no torch.

Inside the tree every action is legal (the model does not know the rules);
only the roots are masked with the real legal actions. Two-player games use
discount -1 and rewards for the mover, as the tree's convention says; the model
does not predict who moves next, so games whose players do not alternate
(GameInfo.alternating False) are AlphaZero's only (selfplay.algorithms.MuZero.refuse).
"""

from __future__ import annotations

import copy
import time
from typing import Protocol

import numpy as np
import torch

from engine.evaluator import host_to_device, inference_autocast
from engine.search import SearchConfig, SearchResult, Timings, masked_softmax, run_tree_search


class LatentModel(Protocol):
    """A learned model evaluated in batches: MuZero's initial and recurrent inference."""

    num_actions: int

    def initial(self, obs: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """obs float32[B, *obs_shape] -> (latent[B, ...], logits float32[B, A], value float32[B])."""

    def recurrent(self, latent: torch.Tensor, actions: np.ndarray
                  ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """(latent[L, ...], actions int[L]) -> (latent[L, ...], reward float32[L],
        logits float32[L, A], value float32[L])."""


class MuZeroInference:
    """A MuZeroNet (engine/muzero_net.py) behind the LatentModel protocol, in torch.

    Scalars come out of the categorical supports through the inverse of h(x).
    Observations, actions and the returned logits and scalars are NumPy arrays
    on the host (float32); latents stay tensors on `device`. On CUDA the
    network runs under autocast (engine.evaluator.CUDA_INFERENCE_DTYPE) and
    latents keep that dtype: the next network call would cast them to it
    anyway. Calls block until their outputs are on the host.

    Args:
      net: the MuZeroNet; used as is (put in eval mode) when it is already on
        `device`, else a copy is moved there, leaving `net` where it was.
      device: 'cpu', 'cuda' or 'cuda:N'.
      threads: torch CPU threads to set, if given.
    """

    def __init__(self, net, device: str = "cpu", threads: int | None = None):
        from engine.muzero_net import support_to_scalar

        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            # 'cuda' means the current device; parameters there say 'cuda:N'.
            self.device = torch.device("cuda", torch.cuda.current_device())
        if next(net.parameters()).device != self.device:
            net = copy.deepcopy(net).to(self.device)
        self.net = net.eval()
        self.num_actions = net.num_actions
        self._to_scalar = support_to_scalar
        self._value_support = net.config.value_support
        self._reward_support = net.config.reward_support
        if threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def initial(self, obs):
        x = host_to_device(np.asarray(obs, np.float32), self.device)
        with inference_autocast(self.device):
            latent, logits, value_logits = self.net.initial_inference(x)
            value = self._to_scalar(value_logits, self._value_support)
        return latent, _np(logits), _np(value)

    @torch.inference_mode()
    def recurrent(self, latent, actions):
        a = host_to_device(np.asarray(actions, np.int64), self.device)
        with inference_autocast(self.device):
            latent, reward_logits, logits, value_logits = self.net.recurrent_inference(
                latent, a)
            reward = self._to_scalar(reward_logits, self._reward_support)
            value = self._to_scalar(value_logits, self._value_support)
        return latent, _np(reward), _np(logits), _np(value)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


class LatentExpander:
    """MuZero's LeafExpander (engine.search): the learned model in place of the rules.

    The roots come from `model.initial` on the real observations; a leaf's latent
    is `model.recurrent` of its parent's latent and action, one call per step for
    all the leaves. Latents stay in one tensor indexed [tree, node] on the model's
    device. Inside the tree every action is open and nothing is terminal.

    Args:
      model: initial and recurrent inference (a MuZeroInference).
      obs: float32[B, *obs_shape], the real observations of the roots.
      root_mask: bool[B, A], legal actions at the roots.
      capacity: nodes per tree (num_simulations + 1).
      roots: optional (latent, logits, value) of an earlier `model.initial(obs)`.
    """

    def __init__(self, model: LatentModel, obs: np.ndarray, root_mask: np.ndarray,
                 capacity: int, roots=None):
        self.model, self.obs = model, obs
        self.root_mask = np.asarray(root_mask, np.bool_)
        self.capacity, self.given_roots = capacity, roots
        self.latents = None

    def roots(self, timings):
        t0 = time.perf_counter()
        if self.given_roots is None:
            root_latent, logits, values = self.model.initial(self.obs)
            timings.evaluations += len(self.root_mask)
            timings.batches += 1
        else:
            root_latent, logits, values = self.given_roots
        timings.network_s += time.perf_counter() - t0
        self.latents = torch.empty(
            (len(self.root_mask), self.capacity) + tuple(root_latent.shape[1:]),
            dtype=root_latent.dtype, device=root_latent.device)
        self.latents[:, 0] = root_latent
        return logits, np.asarray(values, np.float32), self.root_mask

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action, probs, values, masks,
               rewards, terminals, same_mover, timings):
        t0 = time.perf_counter()
        # The model does not know the rules: below the roots all is open, nothing ends.
        masks[:] = True
        terminals[:] = False
        todo = np.flatnonzero(leaf_node >= 0)
        if len(todo):
            bt = torch.from_numpy(leaf_tree[todo].astype(np.int64))
            parent = self.latents[bt, torch.from_numpy(leaf_parent[todo].astype(np.int64))]
            latent, reward, lg, vl = self.model.recurrent(parent, leaf_action[todo])
            self.latents[bt, torch.from_numpy(leaf_node[todo].astype(np.int64))] = latent
            rewards[todo] = reward
            values[todo] = vl
            probs[todo] = masked_softmax(lg, masks[: len(todo)])
            timings.evaluations += len(todo)
            timings.batches += 1
        timings.network_s += time.perf_counter() - t0


def run_muzero_search(model: LatentModel, obs: np.ndarray, root_mask: np.ndarray,
                      config: SearchConfig, rng: np.random.Generator | None = None,
                      add_noise: bool = False, timings: Timings | None = None,
                      value_bounds: tuple[float, float] | None = None,
                      roots=None) -> SearchResult:
    """Searches B positions with the learned model; blocks until done.

    Args:
      model: initial and recurrent inference (a MuZeroInference).
      obs: float32[B, *obs_shape], the real observations of the roots.
      root_mask: bool[B, A], legal actions at the roots (each row with one at least).
      config: SearchConfig; `discount` is gamma for environments, -1 for two-player games.
        `forced_playouts` does not apply (AlphaZero's only).
      rng, add_noise: root Dirichlet (PUCT) or Gumbel noise.
      timings: accumulates network and tree time if given.
      value_bounds: fixed (min, max) of Q for PUCT's normalisation (board games:
        (-1, 1)), or None for min-max statistics kept per tree (MuZero's Atari rule).
      roots: optional (latent, logits, value) of the roots from an earlier
        `model.initial(obs)` call (saves that call).
    """
    expander = LatentExpander(model, obs, root_mask, config.num_simulations + 1, roots)
    return run_tree_search(expander, config, rng, add_noise, timings, value_bounds)
