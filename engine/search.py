"""The search driver: one loop for B trees, one batched leaf expansion per step.

Each step: `select_leaves` picks one leaf per tree (or several, with virtual
loss), a LeafExpander gives the leaves their priors, values, open actions,
rewards and terminal flags in one call, and `expand_and_backup` finishes the
simulation. AlphaZero's expander is the game's SearchBatch plus an Evaluator
(`run_search`); MuZero's is the learned model (engine.muzero_search, which
holds the torch side). The driver validates settings and draws noise; the
kernels do the work. This module imports no torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from engine import kernels
from engine.gumbel import considered_visits_table
from engine.interactive import VIRTUAL_LOSS_STEPS
from engine.tree import new_tree
from games import MoverBatch


@runtime_checkable
class Evaluator(Protocol):
    """Evaluates a batch of positions in one blocking call."""

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluates B positions.

        Args:
          obs: float32[B, *obs_shape], from the point of view of the player to move.
          mask: bool[B, A], legal actions (not applied: the search masks logits).
        Returns:
          logits: float32[B, A], raw policy logits.
          value: float32[B] in [-1, 1] for the player to move.
        """


@dataclass(frozen=True)
class SearchConfig:
    """Search settings. Names follow the AlphaZero and Gumbel papers (and mctx)."""

    num_simulations: int = 64
    """Simulations per move and tree (each adds at most one node)."""
    root_mode: str = "gumbel"
    """'puct' (AlphaZero: PUCT + Dirichlet noise) or 'gumbel' (Gumbel root search)."""
    pb_c_init: float = 1.25
    """PUCT exploration constant c_init."""
    pb_c_base: float = 19652.0
    """PUCT c_base: exploration grows as log((N + c_base + 1) / c_base)."""
    fpu_reduction: float = 0.25
    """First-play urgency: unvisited children get parent Q minus this (Q in [0, 1])."""
    dirichlet_alpha: float = 1.0
    """Root Dirichlet noise concentration (PUCT with noise only)."""
    dirichlet_fraction: float = 0.25
    """Weight of the root noise in the priors (0 disables it)."""
    max_num_considered_actions: int = 16
    """Gumbel: actions sampled at the root for sequential halving."""
    gumbel_scale: float = 1.0
    """Gumbel: scale of the root Gumbel noise (with noise only)."""
    c_visit: float = 50.0
    """Gumbel: sigma(q) = (c_visit + max N) * c_scale * q."""
    c_scale: float = 0.1
    """Gumbel: see c_visit. mctx's default. Measured here against 1.0 (the paper's Go
    value): tic-tac-toe training reached perfect play with 0.1 and never with 1.0, and
    a Connect Four checkpoint scored 0.50 against rollout MCTS with 0.1, 0.35 with 1.0."""
    leaves_per_step: int = 1
    """Leaves selected per tree and network call (more than 1 uses virtual loss; Gumbel
    below the root only in searches of VIRTUAL_LOSS_STEPS steps or more,
    engine/interactive.py)."""
    discount: float = -1.0
    """Value multiplier from child to parent: -1 for two-player games (+1 instead where
    a game that does not alternate leaves the same player to move), gamma for
    environments."""
    forced_playouts: float = 0.0
    """PUCT with root noise (self-play): KataGo's forced playouts and policy target
    pruning, k in n_forced = sqrt(k P(a) N) (KataGo: 2). A visited root child with fewer
    than n_forced visits is searched first, so noise-favoured moves get a real look;
    the policy target then takes those visits off again where they were not deserved
    (prune_forced_playouts). 0: off. Ignored by Gumbel and in play."""

    def __post_init__(self):
        if self.root_mode not in ("puct", "gumbel"):
            raise ValueError(f"root_mode must be 'puct' or 'gumbel', not {self.root_mode!r}")
        if self.num_simulations < 1:
            raise ValueError("num_simulations must be at least 1")
        if self.leaves_per_step < 1:
            raise ValueError("leaves_per_step must be at least 1")
        if self.max_num_considered_actions < 1:
            raise ValueError("max_num_considered_actions must be at least 1")
        if not self.forced_playouts >= 0:
            raise ValueError(f"forced_playouts must be >= 0, got {self.forced_playouts!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


class SearchResult(NamedTuple):
    """What a search found at each of the B roots."""

    visits: np.ndarray
    """int32[B, A]: visit count of each root child."""
    q: np.ndarray
    """float32[B, A]: Q of each root child for the player to move (NaN if unvisited)."""
    prior: np.ndarray
    """float32[B, A]: root priors (after noise, if any)."""
    value: np.ndarray
    """float32[B]: root value for the player to move (search average)."""
    raw_value: np.ndarray
    """float32[B]: the evaluator's value of the root."""
    policy: np.ndarray
    """float32[B, A]: policy target (visit distribution, or Gumbel's improved policy)."""
    action: np.ndarray
    """int32[B]: the search's move (most visited, or the sequential-halving winner)."""


@dataclass
class Timings:
    """Where search time goes, accumulated over calls (seconds and counts)."""

    network_s: float = 0.0
    game_s: float = 0.0
    tree_s: float = 0.0
    evaluations: int = 0
    batches: int = 0
    extra: dict = field(default_factory=dict)

    def mean_batch(self) -> float:
        return self.evaluations / max(self.batches, 1)


NARROW_POLICY = 32
"""Up to this many actions the root's noise and log-policy are dense (numpy over every
action); above, they are computed over the legal actions only (chess: about 30 of
4,674), as is the policy softmax (kernels.masked_softmax_sparse)."""


def masked_softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over legal actions, 0 elsewhere.

    Args:
      logits: float[L, A]; mask: bool[L, A] with at least one legal action per row.
    Returns:
      float32[L, A].
    """
    out = np.empty(logits.shape, np.float32)
    rows = kernels.masked_softmax_rows if logits.shape[1] <= NARROW_POLICY \
        else kernels.masked_softmax_sparse
    rows(np.ascontiguousarray(logits, np.float32), np.ascontiguousarray(mask, np.bool_), out)
    return out


MIN_LOGIT = np.float32(-1e30)
"""Floor of a legal action's root log-policy in Gumbel search (mctx clamps to the dtype's
minimum): finite, so every legal action keeps a finite score however small its prior."""


def masked_log_softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log softmax over legal actions computed from the logits (not log of a softmax that
    may underflow to 0), floored at MIN_LOGIT; -inf for illegal actions.

    Args:
      logits: float[L, A]; mask: bool[L, A] with at least one legal action per row.
    Returns:
      float32[L, A].
    """
    if logits.shape[1] > NARROW_POLICY:
        out = np.empty(logits.shape, np.float32)
        kernels.masked_log_softmax_sparse(np.ascontiguousarray(logits, np.float32),
                                          np.ascontiguousarray(mask, np.bool_),
                                          float(MIN_LOGIT), out)
        return out
    x = np.where(mask, np.asarray(logits, np.float64), -np.inf)
    top = x.max(axis=1, keepdims=True)
    x -= np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
    x = np.where(mask, np.maximum(np.nan_to_num(x, nan=MIN_LOGIT), MIN_LOGIT), -np.inf)
    return x.astype(np.float32)


def _dirichlet(rng: np.random.Generator, alpha: float, mask: np.ndarray) -> np.ndarray:
    if mask.shape[1] > NARROW_POLICY:  # draw for the legal actions only
        g = np.zeros(mask.shape)
        g[mask] = rng.gamma(alpha, size=int(mask.sum()))
    else:
        g = rng.gamma(alpha, size=mask.shape) * mask
    total = g.sum(axis=1, keepdims=True)
    return (g / np.where(total > 0, total, 1.0)).astype(np.float32)


def _gumbel(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Gumbel(0, 1) noise, float64[B, A]: for every action of narrow games, for the legal
    ones only (0 elsewhere: their log-policy is -inf anyway) above NARROW_POLICY."""
    if mask.shape[1] <= NARROW_POLICY:
        return rng.gumbel(size=mask.shape)
    g = np.zeros(mask.shape)
    g[mask] = rng.gumbel(size=int(mask.sum()))
    return g


def expand_roots(tree, config: SearchConfig, logits: np.ndarray, values: np.ndarray,
                 root_mask: np.ndarray, rng: np.random.Generator | None,
                 add_noise: bool) -> None:
    """Expands the B roots from the evaluator's output, with the mode's root noise.

    PUCT mixes Dirichlet noise into the legal priors; Gumbel draws g(a) and
    keeps g(a) + log prior(a) in `tree.gumbel_logits` (g = 0 without noise), the
    log prior from the logits (masked_log_softmax): a prior that underflows to 0
    in float32 (a logit gap over ~104) would make log prior -inf and the action
    unvisitable, where sequential halving must visit every considered action.
    """
    kernels.expand_roots(tree, masked_softmax(logits, root_mask),
                         np.asarray(values, np.float32), root_mask)
    gumbel_mode = config.root_mode == "gumbel"
    if add_noise:
        if rng is None:
            raise ValueError("add_noise needs an rng")
        if gumbel_mode:
            tree.gumbel_logits[:] = _gumbel(rng, root_mask) * config.gumbel_scale
        elif config.dirichlet_fraction > 0:
            noise = _dirichlet(rng, config.dirichlet_alpha, root_mask)
            kernels.add_dirichlet_noise(tree, noise, np.float32(config.dirichlet_fraction))
    if gumbel_mode:
        tree.gumbel_logits[:] += masked_log_softmax(logits, root_mask)


class LeafExpander(Protocol):
    """Where a search's nodes come from: the roots' evaluation, then each step's leaves.

    AlphaZero's is a game's SearchBatch with an Evaluator (SearchBatchExpander);
    MuZero's is a learned model keeping the latents (engine.muzero_search.LatentExpander).
    Calls block. Each adds its own time to `timings` (network_s, game_s) and its
    network calls to `timings.evaluations` (positions) and `timings.batches` (calls).
    """

    def roots(self, timings: Timings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluates the B roots.

        Returns:
          logits: float32[B, A]; value: float32[B] for the player to move;
          mask: bool[B, A], the legal actions (each row with one at least).
        """

    def expand(self, leaf_tree: np.ndarray, leaf_parent: np.ndarray, leaf_node: np.ndarray,
               leaf_action: np.ndarray, probs: np.ndarray, values: np.ndarray,
               masks: np.ndarray, rewards: np.ndarray, terminals: np.ndarray,
               same_mover: np.ndarray, timings: Timings) -> None:
        """Creates and evaluates the leaves `select_leaves` chose, one step's worth.

        Leaf l is node leaf_node[l] of tree leaf_tree[l], reached from node
        leaf_parent[l] by leaf_action[l]; leaf_node[l] < 0: no leaf (the driver
        ignores that row of every output).

        Args:
          leaf_tree, leaf_parent, leaf_node, leaf_action: int32[L].
          probs: float32[L, A], written for non-terminal leaves: the masked softmax.
          values: float32[L], written for non-terminal leaves: value for the mover.
          masks: bool[L, A], written: the actions open below each leaf.
          rewards: float32[L], written: the reward for the player who moved.
          terminals: bool[L], written.
          same_mover: bool[L], written by the expanders of games whose players do not
            alternate: True where a non-terminal leaf has its parent's player to move
            (others leave it all False).
          timings: accumulates this call's time and network calls.
        """


class SearchBatchExpander:
    """AlphaZero's LeafExpander: a game's SearchBatch plays the actions on real
    positions and the evaluator scores the non-terminal ones in one call per step.

    Args:
      batch: the game's SearchBatch over B non-terminal roots.
      evaluator: scores float32[L, *obs_shape] observations.
      num_actions, obs_shape: the game's sizes.
      leaves_per_step: leaves per tree and step (config.leaves_per_step).
      alternating: GameInfo.alternating. False: the batch must be a MoverBatch, asked
        who moves at each leaf and its parent.
    """

    def __init__(self, batch, evaluator: Evaluator, num_actions: int,
                 obs_shape: tuple[int, ...], leaves_per_step: int = 1,
                 alternating: bool = True):
        if not alternating and not isinstance(batch, MoverBatch):
            raise TypeError(f"{type(batch).__name__}: a game whose players do not alternate "
                            "needs a search batch with players_to_move (games.MoverBatch)")
        self.batch, self.evaluator = batch, evaluator
        self.num_trees = batch.num_trees
        rows = max(self.num_trees * leaves_per_step, self.num_trees)
        self.obs = np.zeros((rows,) + tuple(obs_shape), np.float32)
        self.num_actions = num_actions
        self.movers = None if alternating else np.zeros((2, rows), np.int8)

    def roots(self, timings: Timings):
        b = self.num_trees
        mask = np.zeros((b, self.num_actions), np.bool_)
        t0 = time.perf_counter()
        self.batch.observe_roots(self.obs[:b], mask)
        t1 = time.perf_counter()
        logits, values = self.evaluator.evaluate(self.obs[:b], mask)
        t2 = time.perf_counter()
        timings.game_s += t1 - t0
        timings.network_s += t2 - t1
        timings.evaluations += b
        timings.batches += 1
        return logits, values, mask

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action, probs, values, masks,
               rewards, terminals, same_mover, timings):
        obs = self.obs[:len(leaf_node)]
        t0 = time.perf_counter()
        self.batch.expand(leaf_tree, leaf_parent, leaf_node, leaf_action, obs, masks,
                          rewards, terminals)
        if self.movers is not None:
            parent, leaf = self.movers[:, :len(leaf_node)]
            kept = np.where(leaf_node >= 0, leaf_parent, -1)
            self.batch.players_to_move(leaf_tree, kept, parent)
            self.batch.players_to_move(leaf_tree, leaf_node, leaf)
            same_mover[:] = (leaf_node >= 0) & ~terminals & (parent == leaf)
        t1 = time.perf_counter()
        wanted = (leaf_node >= 0) & ~terminals
        if wanted.all():  # the usual case: no copies
            lg, vl = self.evaluator.evaluate(obs, masks)
            probs[:] = masked_softmax(lg, masks)
            values[:] = vl
            timings.evaluations += len(leaf_node)
            timings.batches += 1
        elif wanted.any():
            todo = np.flatnonzero(wanted)
            lg, vl = self.evaluator.evaluate(obs[todo], masks[todo])
            probs[todo] = masked_softmax(lg, masks[todo])
            values[todo] = vl
            timings.evaluations += len(todo)
            timings.batches += 1
        timings.game_s += t1 - t0
        timings.network_s += time.perf_counter() - t1


def run_search(batch, evaluator: Evaluator, config: SearchConfig, num_actions: int,
               obs_shape: tuple[int, ...], rng: np.random.Generator | None = None,
               add_noise: bool = False, timings: Timings | None = None,
               alternating: bool = True) -> SearchResult:
    """Searches B positions at once with the game's rules; blocks until done.

    Args:
      batch: the game's SearchBatch over B non-terminal roots.
      evaluator: scores float32[L, *obs_shape] observations.
      config: SearchConfig.
      num_actions, obs_shape: the game's sizes.
      rng: source of root noise (required when add_noise).
      add_noise: Dirichlet noise (PUCT) or Gumbel noise (Gumbel) at the roots.
      timings: accumulates network, game and tree time if given.
      alternating: the game's GameInfo.alternating (False: `batch` is a MoverBatch and
        a step that leaves the mover to move again backs up with +1, not -1).
    """
    expander = SearchBatchExpander(batch, evaluator, num_actions, obs_shape,
                                   config.leaves_per_step, alternating)
    return run_tree_search(expander, config, rng, add_noise, timings, forced_playouts=True,
                           alternating=alternating)


def run_tree_search(expander: LeafExpander, config: SearchConfig,
                    rng: np.random.Generator | None = None, add_noise: bool = False,
                    timings: Timings | None = None,
                    value_bounds: tuple[float, float] | None = (-1.0, 1.0),
                    forced_playouts: bool = False, alternating: bool = True) -> SearchResult:
    """The search driver: B trees, one `expander.expand` call per simulation step.

    Args:
      expander: the roots' and leaves' evaluations (a LeafExpander).
      config: SearchConfig.
      rng, add_noise: root Dirichlet (PUCT) or Gumbel noise; rng required with noise.
      timings: accumulates tree time here and the expander's own if given.
      value_bounds: fixed (min, max) of Q for PUCT's normalisation, or None for
        min-max statistics kept per tree (MuZero's rule for environments).
      forced_playouts: whether config.forced_playouts applies (PUCT with root noise).
      alternating: the players alternate, so every node's multiplier is config.discount
        (the kernels' fast path). False: a tree with per-node multipliers, where the
        expander's same-mover leaves get +1 (engine/tree.py).
    """
    t = timings if timings is not None else Timings()
    logits, values, root_mask = expander.roots(t)
    num_trees, num_actions = root_mask.shape
    k = config.leaves_per_step
    leaves = num_trees * k
    discount = float(config.discount)
    tree = new_tree(num_trees, config.num_simulations + 1, num_actions, value_bounds, discount,
                    per_node_discount=not alternating)
    update_bounds = value_bounds is None
    gumbel_mode = config.root_mode == "gumbel"
    mode = kernels.MODE_GUMBEL if gumbel_mode else kernels.MODE_PUCT
    table = considered_visits_table(config.max_num_considered_actions, config.num_simulations)
    expand_roots(tree, config, logits, values, root_mask, rng, add_noise)

    leaf_tree = np.zeros(leaves, np.int32)
    leaf_parent = np.zeros(leaves, np.int32)
    leaf_node = np.zeros(leaves, np.int32)
    leaf_action = np.zeros(leaves, np.int32)
    rewards = np.zeros(leaves, np.float32)
    terminals = np.zeros(leaves, np.bool_)
    same_mover = np.zeros(leaves, np.bool_)
    masks = np.zeros((leaves, num_actions), np.bool_)
    all_probs = np.zeros((leaves, num_actions), np.float32)
    all_values = np.zeros(leaves, np.float32)
    scratch = np.zeros(num_actions, np.float64)
    forced = (float(config.forced_playouts) if forced_playouts and add_noise
              and not gumbel_mode else 0.0)
    virtual_loss = gumbel_mode and k > 1 and config.num_simulations >= VIRTUAL_LOSS_STEPS * k
    # The kernel stops each tree at num_simulations (capacity - 1). Every step
    # advances every unfinished tree (its first descent cannot collide), so the
    # loop ends within num_simulations steps; the cap is only a safety net.
    for _ in range(config.num_simulations + 1):
        t0 = time.perf_counter()
        used = kernels.select_leaves(
            tree, k, mode, config.pb_c_init, config.pb_c_base, config.fpu_reduction,
            update_bounds, config.c_visit, config.c_scale, table,
            leaf_tree, leaf_parent, leaf_node, leaf_action, scratch, forced, virtual_loss)
        t1 = time.perf_counter()
        expander.expand(leaf_tree, leaf_parent, leaf_node, leaf_action, all_probs,
                        all_values, masks, rewards, terminals, same_mover, t)
        t2 = time.perf_counter()
        kernels.expand_and_backup(tree, leaf_tree, leaf_node, all_probs, all_values,
                                  masks, rewards, terminals, same_mover, update_bounds)
        t.tree_s += (t1 - t0) + (time.perf_counter() - t2)
        if used == 0:
            break
    return search_results(tree, config, root_mask, values, gumbel_mode, scratch,
                          prune=forced > 0)


def search_results(tree, config, root_mask, raw_values, gumbel_mode, scratch,
                   prune: bool = False):
    """The SearchResult of B finished trees (visits, Q, values, the move and the policy
    target: Gumbel's improved policy, or PUCT's visits, pruned with forced playouts)."""
    num_trees, num_actions = root_mask.shape
    visits = np.zeros((num_trees, num_actions), np.int32)
    q = np.zeros((num_trees, num_actions), np.float32)
    value = np.zeros(num_trees, np.float32)
    kernels.root_statistics(tree, visits, q, value)
    prior = tree.prior[:, 0, :].copy()
    if gumbel_mode:
        action = np.zeros(num_trees, np.int32)
        policy = np.zeros((num_trees, num_actions), np.float32)
        kernels.gumbel_results(tree, config.c_visit, config.c_scale, action, policy, scratch)
    else:
        # Most visited; ties broken by prior, then by the lowest action id.
        key = visits.astype(np.float64) + 0.5 * prior
        key[~root_mask] = -1.0
        action = key.argmax(axis=1).astype(np.int32)
        target = visits.astype(np.float64)
        if prune:
            target = prune_forced_playouts(visits, q, prior, action, tree.min_q, tree.max_q,
                                           config)
        policy = (target / np.maximum(target.sum(axis=1, keepdims=True), 1e-12)
                  ).astype(np.float32)
    return SearchResult(visits, q, prior, value, np.asarray(raw_values, np.float32),
                        policy, action)


def prune_forced_playouts(visits: np.ndarray, q: np.ndarray, prior: np.ndarray,
                          best: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                          config: SearchConfig) -> np.ndarray:
    """KataGo's policy target pruning (Wu, 2019, section 3.1).

    Every root child c but the chosen one (`best`) gives back up to n_forced(c) =
    sqrt(k P(c) N) of its visits, as many as it can while its PUCT score (with the
    fewer visits) stays below the chosen child's; a child left with one visit or
    fewer is dropped. What remains is the visits PUCT would have spent without
    forced playouts.

    Args:
      visits: int32[B, A]; q: float32[B, A] (NaN where unvisited); prior: float32[B, A]
        (the root priors the search used); best: int32[B]; lo, hi: float32[B] the Q
        bounds PUCT normalises by.
    Returns:
      float64[B, A]: the pruned visit counts (the chosen child's unchanged).
    """
    n = visits.astype(np.float64)
    total = n.sum(axis=1, keepdims=True)
    # The exploration factor of the next descent: the root's visit count (its own
    # evaluation and every child's) as PUCT's N.
    parent = total + 1.0
    pb_c = (config.pb_c_init + np.log((parent + config.pb_c_base + 1.0) / config.pb_c_base)
            ) * np.sqrt(parent)
    bounded = (hi > lo)[:, None]  # as puct_action: no bounds, no normalisation
    offset = np.where(bounded, lo[:, None], 0.0)
    spread = np.where(bounded, (hi - lo)[:, None], 1.0)
    qn = (np.nan_to_num(q.astype(np.float64)) - offset) / spread
    rows = np.arange(len(n))
    puct_best = qn[rows, best] + pb_c[:, 0] * prior[rows, best] / (1.0 + n[rows, best])
    gap = puct_best[:, None] - qn
    # The fewest visits keeping PUCT(c) < PUCT(best): pb_c P / gap - 1 (none if gap <= 0).
    needed = np.where(gap > 0, pb_c * prior / np.where(gap > 0, gap, 1.0) - 1.0, n)
    forced = np.sqrt(config.forced_playouts * prior * total)
    pruned = np.clip(np.maximum(n - forced, needed), 0.0, n)
    pruned[pruned <= 1.0] = 0.0
    pruned[rows, best] = n[rows, best]
    return pruned


def sample_actions(result: SearchResult, temperature: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Moves drawn from visits^(1/temperature); temperature 0 returns `result.action`.

    Returns:
      int32[B].
    """
    if temperature <= 0:
        return result.action.copy()
    visits = result.visits.astype(np.float64)
    # Scale rows to a maximum of 1 first so that small temperatures cannot overflow.
    weights = (visits / np.maximum(visits.max(axis=1, keepdims=True), 1.0)) ** (1.0 / temperature)
    return sample_rows(weights, rng)


def sample_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of non-negative `weights` (float[B, A], each row with a positive entry).

    Returns:
      int32[B]; never an index of zero weight.
    """
    cumulative = np.cumsum(weights, axis=1)
    # u < row total, so the first cumulative weight above u has positive weight.
    u = rng.random(len(weights))[:, None] * cumulative[:, -1:]
    return (cumulative <= u).sum(axis=1).astype(np.int32)
