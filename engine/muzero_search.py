"""MuZero search: the same tree and kernels as AlphaZero, leaves from learned dynamics.

The roots come from the representation network applied to real observations;
every other node's state is the dynamics network's latent, kept in one tensor
indexed [tree, node]. Each simulation step selects one leaf per tree (or
several, with virtual loss), runs ONE recurrent inference for all of them
(parent latent + action -> latent, reward, policy, value) and backs up with
the predicted rewards, the discount and min-max value normalisation.

Inside the tree every action is legal (the model does not know the rules);
only the roots are masked with the real legal actions. Two-player games use
discount -1 and rewards for the mover, as the tree's convention says.
"""

from __future__ import annotations

import copy
import time
from typing import Protocol

import numpy as np
import torch

from engine import kernels
from engine.evaluator import host_to_device, inference_autocast
from engine.gumbel import considered_visits_table
from engine.search import (SearchConfig, SearchResult, Timings, expand_roots, masked_softmax,
                           search_results)
from engine.tree import new_tree


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
      rng, add_noise: root Dirichlet (PUCT) or Gumbel noise.
      timings: accumulates network and tree time if given.
      value_bounds: fixed (min, max) of Q for PUCT's normalisation (board games:
        (-1, 1)), or None for min-max statistics kept per tree (MuZero's Atari rule).
      roots: optional (latent, logits, value) of the roots from an earlier
        `model.initial(obs)` call (saves that call).
    """
    t = timings if timings is not None else Timings()
    num_trees, num_actions = root_mask.shape
    k = config.leaves_per_step
    leaves = num_trees * k
    capacity = config.num_simulations + 1
    tree = new_tree(num_trees, capacity, num_actions, value_bounds)
    update_bounds = value_bounds is None
    gumbel_mode = config.root_mode == "gumbel"
    mode = kernels.MODE_GUMBEL if gumbel_mode else kernels.MODE_PUCT
    table = considered_visits_table(config.max_num_considered_actions, config.num_simulations)

    t0 = time.perf_counter()
    if roots is None:
        root_latent, logits, values = model.initial(obs)
        t.evaluations += num_trees
        t.batches += 1
    else:
        root_latent, logits, values = roots
    t.network_s += time.perf_counter() - t0
    root_mask = np.asarray(root_mask, np.bool_)
    latents = torch.empty((num_trees, capacity) + tuple(root_latent.shape[1:]),
                          dtype=root_latent.dtype, device=root_latent.device)
    latents[:, 0] = root_latent
    expand_roots(tree, config, logits, values, root_mask, rng, add_noise)

    leaf_tree = np.zeros(leaves, np.int32)
    leaf_parent = np.zeros(leaves, np.int32)
    leaf_node = np.zeros(leaves, np.int32)
    leaf_action = np.zeros(leaves, np.int32)
    rewards = np.zeros(leaves, np.float32)
    terminals = np.zeros(leaves, np.bool_)
    all_probs = np.zeros((leaves, num_actions), np.float32)
    all_values = np.zeros(leaves, np.float32)
    interior_mask = np.ones((leaves, num_actions), np.bool_)
    scratch = np.zeros(num_actions, np.float64)
    discount = float(config.discount)
    for _ in range(config.num_simulations + 1):
        t0 = time.perf_counter()
        used = kernels.select_leaves(
            tree, k, mode, config.pb_c_init, config.pb_c_base, config.fpu_reduction,
            discount, update_bounds, config.c_visit, config.c_scale, table,
            leaf_tree, leaf_parent, leaf_node, leaf_action, scratch)
        t1 = time.perf_counter()
        todo = np.flatnonzero(leaf_node >= 0)
        if len(todo):
            bt = torch.from_numpy(leaf_tree[todo].astype(np.int64))
            parent_latent = latents[bt, torch.from_numpy(leaf_parent[todo].astype(np.int64))]
            latent, reward, lg, vl = model.recurrent(parent_latent, leaf_action[todo])
            latents[bt, torch.from_numpy(leaf_node[todo].astype(np.int64))] = latent
            rewards[todo] = reward
            all_values[todo] = vl
            all_probs[todo] = masked_softmax(lg, interior_mask[: len(todo)])
            t.evaluations += len(todo)
            t.batches += 1
        t2 = time.perf_counter()
        kernels.expand_and_backup(tree, leaf_tree, leaf_node, all_probs, all_values,
                                  interior_mask, rewards, terminals, discount, update_bounds)
        t3 = time.perf_counter()
        t.tree_s += (t1 - t0) + (t3 - t2)
        t.network_s += t2 - t1
        if used == 0:
            break
    return search_results(tree, config, root_mask, np.asarray(values, np.float32), discount,
                    gumbel_mode, scratch)
