"""The search tree: a batch of B trees as a struct of preallocated arrays.

Node ids are allocation order: node 0 (ROOT) is the root, each simulation adds
at most one node. Values are stored from the point of view of the player to
move at the node. Seen from its parent, a child's value is

    Q(parent, a) = reward[child] + discount[child] * V(child)

where `reward` is what the mover got for the transition and `discount` is the
child's own multiplier: the search's discount, -1 for two-player games (the
opponent's value is ours negated, as in mctx) and gamma for single-player
environments, except +1 where a two-player game's child has the same player to
move as its parent (an extra turn, a move made of several actions): then the
child's value is already the parent mover's.

Only games whose players do not alternate (GameInfo.alternating False) need the
+1, so a tree says which kind it is: with a finite `uniform_discount` every
node's multiplier is that constant and the kernels read it rather than the
`discount` array (one load fewer per child in the innermost loops; measured, it
gives back 0-8% of PUCT's speed: docs/BENCHMARKS.md); with NaN (`new_tree(..., per_node_discount=True)`) they read
`discount[b, node]`, which expansion may set to +1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

ROOT = 0
"""Node id of every tree's root."""
UNVISITED = -1
"""`children` entry of a legal action whose child has not been created."""
ILLEGAL = -2
"""`children` entry of an illegal action."""
NO_PARENT = -1
"""`parent` of the root."""


class Tree(NamedTuple):
    """B search trees of capacity N nodes over A actions."""

    visit_count: np.ndarray
    """int32[B, N]: completed visits (the expansion counts as one)."""
    virtual_count: np.ndarray
    """int32[B, N]: visits selected this step and not yet backed up (virtual loss)."""
    value_sum: np.ndarray
    """float64[B, N]: sum of backed-up values, point of view of the player to move."""
    raw_value: np.ndarray
    """float32[B, N]: the evaluator's value at expansion (0 for terminal nodes)."""
    reward: np.ndarray
    """float32[B, N]: reward of the transition into the node, for the mover."""
    discount: np.ndarray
    """float64[B, N]: multiplier from the node's value to its parent's point of view
    (module doc): the search's discount, or +1 where the node's player to move is its
    parent's. Unused at the root, and read only when `uniform_discount` is NaN."""
    parent: np.ndarray
    """int32[B, N]: parent node id (NO_PARENT for the root)."""
    action: np.ndarray
    """int32[B, N]: action that led from the parent to the node."""
    expanded: np.ndarray
    """bool[B, N]: priors and value are set (False while the node awaits evaluation)."""
    terminal: np.ndarray
    """bool[B, N]: the node is a final position (known rules only)."""
    prior: np.ndarray
    """float32[B, N, A]: prior of each child (0 for illegal actions)."""
    children: np.ndarray
    """int32[B, N, A]: child node id, UNVISITED or ILLEGAL."""
    num_nodes: np.ndarray
    """int32[B]: nodes allocated so far in each tree."""
    min_q: np.ndarray
    """float32[B]: lower bound used to normalise Q to [0, 1] (min-max or fixed)."""
    max_q: np.ndarray
    """float32[B]: upper bound used to normalise Q to [0, 1]."""
    gumbel_logits: np.ndarray
    """float32[B, A]: Gumbel search's g(a) + logits(a) at the root (g = 0 without noise)."""
    uniform_discount: float
    """Every node's multiplier when all of them are the search's discount (the
    `discount` array then holds it too and is not read, nor may expansion set +1);
    NaN when the multipliers are per node, in `discount`."""

    @property
    def batch_size(self) -> int:
        return self.visit_count.shape[0]

    @property
    def capacity(self) -> int:
        return self.visit_count.shape[1]

    @property
    def num_actions(self) -> int:
        return self.prior.shape[2]


NODE_BYTES = 42
"""Bytes of one node's scalar fields (visit, virtual, value_sum, raw_value, reward,
discount, parent, action, expanded, terminal)."""


def tree_bytes(batch_size: int, capacity: int, num_actions: int) -> int:
    """Bytes `new_tree(batch_size, capacity, num_actions)` allocates (prior and children
    take 8 bytes per node and action; the rest is per node or per tree)."""
    return batch_size * (capacity * (NODE_BYTES + 8 * num_actions) + 4 * num_actions + 12)


def new_tree(batch_size: int, capacity: int, num_actions: int,
             value_bounds: tuple[float, float] | None = (-1.0, 1.0),
             discount: float = -1.0, per_node_discount: bool = False) -> Tree:
    """Allocates B empty trees.

    Args:
      batch_size: B, number of trees.
      capacity: N, nodes per tree (number of simulations + 1 suffices).
      num_actions: A.
      value_bounds: fixed (min, max) of Q for normalisation (AlphaZero), or None
        for min-max normalisation learned from the tree (MuZero).
      discount: every node's initial `discount` (the search's: -1 for two-player
        games, gamma for environments).
      per_node_discount: the kernels read each node's multiplier from `discount`,
        where expansion sets +1 where the mover stays (games whose players do not
        alternate). False: every multiplier is `discount` (`uniform_discount`), and
        expand_and_backup refuses same-mover leaves.
    """
    b, n, a = batch_size, capacity, num_actions
    if value_bounds is None:
        lo, hi = np.inf, -np.inf
    else:
        lo, hi = value_bounds
    return Tree(
        visit_count=np.zeros((b, n), np.int32),
        virtual_count=np.zeros((b, n), np.int32),
        value_sum=np.zeros((b, n), np.float64),
        raw_value=np.zeros((b, n), np.float32),
        reward=np.zeros((b, n), np.float32),
        discount=np.full((b, n), discount, np.float64),
        parent=np.full((b, n), NO_PARENT, np.int32),
        action=np.full((b, n), -1, np.int32),
        expanded=np.zeros((b, n), np.bool_),
        terminal=np.zeros((b, n), np.bool_),
        prior=np.zeros((b, n, a), np.float32),
        children=np.full((b, n, a), ILLEGAL, np.int32),
        num_nodes=np.ones(b, np.int32),
        min_q=np.full(b, lo, np.float32),
        max_q=np.full(b, hi, np.float32),
        gumbel_logits=np.zeros((b, a), np.float32),
        # A NumPy float64, as the array's elements are: without JIT (NEP 50) a Python float
        # times a float32 stays float32, where the array path gives float64.
        uniform_discount=np.float64(math.nan if per_node_discount else discount),
    )
