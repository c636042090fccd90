"""Numba kernels over a batch of trees: selection, expansion, backup, noise.

Every kernel is a module-level `@njit(cache=True, nogil=True)` function of the
`Tree` arrays (engine/tree.py) and scalars. They print nothing, allocate
little and use no random numbers: noise is drawn by the caller and passed in.

Selection modes (`mode` argument):
  MODE_PUCT: AlphaZero's PUCT with first-play urgency everywhere.
  MODE_GUMBEL: Gumbel root search (sequential halving over the considered
    actions) and the deterministic Gumbel interior rule below the root
    (Danihelka et al., 2022; mctx's gumbel_muzero_policy).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.gumbel import completed_q, gumbel_interior_action, gumbel_root_action
from engine.tree import ILLEGAL, NO_PARENT, ROOT, UNVISITED

MODE_PUCT = 0
MODE_GUMBEL = 1


@njit(cache=True, nogil=True, inline="always")
def normalize_q(q, lo, hi):
    """Maps Q to [0, 1] with the tree's bounds (unchanged while the bounds are empty)."""
    if hi > lo:
        return (q - lo) / (hi - lo)
    return q


@njit(cache=True, nogil=True, inline="always")
def _set_priors(tree, b, node, logits, mask):
    """Masked softmax of `logits` (float32[A]) into the node's priors and children."""
    num_actions = logits.shape[0]
    top = -np.inf
    for a in range(num_actions):
        if mask[a] and logits[a] > top:
            top = logits[a]
    total = 0.0
    for a in range(num_actions):
        if mask[a]:
            p = math.exp(logits[a] - top)
            tree.prior[b, node, a] = p
            tree.children[b, node, a] = UNVISITED
            total += p
        else:
            tree.prior[b, node, a] = 0.0
            tree.children[b, node, a] = ILLEGAL
    if total > 0.0:
        for a in range(num_actions):
            tree.prior[b, node, a] /= total


@njit(cache=True, nogil=True)
def expand_roots(tree, logits, values, masks):
    """Expands node 0 of every tree with the evaluator's output.

    Args:
      tree: Tree with B trees.
      logits: float32[B, A] raw policy logits.
      values: float32[B] value for the player to move.
      masks: bool[B, A] legal actions (a root without any is marked terminal).
    """
    for b in range(tree.visit_count.shape[0]):
        _set_priors(tree, b, ROOT, logits[b], masks[b])
        tree.raw_value[b, ROOT] = values[b]
        tree.value_sum[b, ROOT] = values[b]
        tree.visit_count[b, ROOT] = 1
        tree.expanded[b, ROOT] = True
        tree.terminal[b, ROOT] = not masks[b].any()


@njit(cache=True, nogil=True)
def add_dirichlet_noise(tree, noise, fraction):
    """Mixes root priors with noise: p = (1 - fraction) p + fraction noise.

    Args:
      noise: float32[B, A], a Dirichlet sample per tree over its legal actions.
      fraction: the mixing weight (AlphaZero's 0.25).
    """
    for b in range(tree.visit_count.shape[0]):
        for a in range(tree.prior.shape[2]):
            if tree.children[b, ROOT, a] != ILLEGAL:
                tree.prior[b, ROOT, a] = ((1.0 - fraction) * tree.prior[b, ROOT, a]
                                          + fraction * noise[b, a])


@njit(cache=True, nogil=True, inline="always")
def puct_action(tree, b, node, pb_c_init, pb_c_base, fpu_reduction, discount):
    """AlphaZero's PUCT choice at `node`, counting pending (virtual) visits as losses.

    Unvisited children get the parent's normalised value minus `fpu_reduction`.
    Returns the action, or -1 if the node has no legal action.
    """
    lo = tree.min_q[b]
    hi = tree.max_q[b]
    n_parent = tree.visit_count[b, node] + tree.virtual_count[b, node]
    sqrt_n = math.sqrt(n_parent)
    pb_c = pb_c_init + math.log((n_parent + pb_c_base + 1.0) / pb_c_base)
    parent_q = normalize_q(tree.value_sum[b, node] / max(tree.visit_count[b, node], 1), lo, hi)
    fpu = parent_q - fpu_reduction
    best_action = -1
    best_score = -np.inf
    for a in range(tree.prior.shape[2]):
        child = tree.children[b, node, a]
        if child == ILLEGAL:
            continue
        if child == UNVISITED:
            n = 0
            q = fpu
        else:
            real = tree.visit_count[b, child]
            n = real + tree.virtual_count[b, child]
            q = 0.0
            if real > 0:
                value = tree.value_sum[b, child] / real
                q = normalize_q(tree.reward[b, child] + discount * value, lo, hi) * real / n
        score = q + pb_c * tree.prior[b, node, a] * sqrt_n / (1.0 + n)
        if score > best_score:
            best_score = score
            best_action = a
    return best_action


@njit(cache=True, nogil=True, inline="always")
def backup(tree, b, node, value, discount, update_bounds, remove_virtual):
    """Adds `value` (for the player to move at `node`) to the node and its ancestors.

    Each step up applies Q = reward + discount * value. With `remove_virtual`,
    one pending visit is taken off every node of the path.
    """
    while True:
        if remove_virtual:
            tree.virtual_count[b, node] -= 1
        tree.value_sum[b, node] += value
        tree.visit_count[b, node] += 1
        parent = tree.parent[b, node]
        if parent == NO_PARENT:
            break
        if update_bounds:
            q = tree.reward[b, node] + discount * tree.value_sum[b, node] / tree.visit_count[b, node]
            if q < tree.min_q[b]:
                tree.min_q[b] = q
            if q > tree.max_q[b]:
                tree.max_q[b] = q
        value = tree.reward[b, node] + discount * value
        node = parent


@njit(cache=True, nogil=True, inline="always")
def _undo_virtual(tree, b, node):
    while node != NO_PARENT:
        tree.virtual_count[b, node] -= 1
        node = tree.parent[b, node]


@njit(cache=True, nogil=True)
def select_leaves(tree, leaves_per_tree, mode, pb_c_init, pb_c_base, fpu_reduction,
                  discount, update_bounds, c_visit, c_scale, considered_table,
                  leaf_tree, leaf_parent, leaf_node, leaf_action, scratch):
    """Selects up to `leaves_per_tree` new leaves in each tree and allocates their nodes.

    Descends from the root with the mode's rule, adding one pending (virtual)
    visit to each node passed. A descent that ends on a known terminal node is
    backed up at once (value 0) and yields no leaf; one that reaches a node
    still awaiting evaluation (a collision) is abandoned. Trees whose
    capacity is exhausted yield no leaf.

    Args:
      considered_table: int32[M + 1, S] Gumbel visit schedule (engine/gumbel.py).
      leaf_tree, leaf_parent, leaf_node, leaf_action: int32[B * leaves_per_tree],
        written; leaf_node is -1 where no leaf was selected.
      scratch: float64[A] work space.
    Returns:
      The number of simulations used (leaves plus terminal visits).
    """
    num_trees = tree.visit_count.shape[0]
    capacity = tree.visit_count.shape[1]
    used = 0
    for b in range(num_trees):
        for k in range(leaves_per_tree):
            slot = b * leaves_per_tree + k
            leaf_tree[slot] = b
            leaf_node[slot] = -1
            leaf_parent[slot] = -1
            leaf_action[slot] = -1
            if tree.terminal[b, ROOT] or tree.num_nodes[b] >= capacity:
                continue
            node = ROOT
            tree.virtual_count[b, node] += 1
            while True:
                if mode == MODE_GUMBEL:
                    if node == ROOT:
                        a = gumbel_root_action(tree, b, discount, c_visit, c_scale,
                                               considered_table, scratch)
                    else:
                        a = gumbel_interior_action(tree, b, node, discount, c_visit,
                                                   c_scale, scratch)
                else:
                    a = puct_action(tree, b, node, pb_c_init, pb_c_base, fpu_reduction,
                                    discount)
                child = tree.children[b, node, a]
                if child == UNVISITED:
                    child = tree.num_nodes[b]
                    tree.num_nodes[b] += 1
                    tree.children[b, node, a] = child
                    tree.parent[b, child] = node
                    tree.action[b, child] = a
                    tree.virtual_count[b, child] += 1
                    leaf_parent[slot] = node
                    leaf_node[slot] = child
                    leaf_action[slot] = a
                    used += 1
                    break
                tree.virtual_count[b, child] += 1
                if not tree.expanded[b, child]:
                    _undo_virtual(tree, b, child)
                    break
                if tree.terminal[b, child]:
                    backup(tree, b, child, 0.0, discount, update_bounds, True)
                    used += 1
                    break
                node = child
    return used


@njit(cache=True, nogil=True)
def expand_and_backup(tree, leaf_tree, leaf_node, logits, values, masks, rewards,
                      terminals, discount, update_bounds):
    """Expands evaluated leaves and backs their values up to the roots.

    Args:
      leaf_tree, leaf_node: int32[L] from select_leaves (leaf_node < 0 skipped).
      logits: float32[L, A]; values: float32[L] (ignored for terminal leaves).
      masks: bool[L, A]; rewards: float32[L] for the mover; terminals: bool[L].
    """
    for l in range(leaf_tree.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        b = leaf_tree[l]
        tree.reward[b, node] = rewards[l]
        tree.expanded[b, node] = True
        if terminals[l]:
            tree.terminal[b, node] = True
            value = 0.0
        else:
            _set_priors(tree, b, node, logits[l], masks[l])
            value = values[l]
        tree.raw_value[b, node] = value
        backup(tree, b, node, value, discount, update_bounds, True)


@njit(cache=True, nogil=True)
def root_statistics(tree, discount, visits_out, q_out, value_out):
    """Root children's visits and Q, and the root value, for every tree.

    Args:
      visits_out: int32[B, A]; q_out: float32[B, A] (NaN where unvisited);
      value_out: float32[B], written.
    """
    for b in range(tree.visit_count.shape[0]):
        value_out[b] = tree.value_sum[b, ROOT] / max(tree.visit_count[b, ROOT], 1)
        for a in range(tree.prior.shape[2]):
            child = tree.children[b, ROOT, a]
            if child >= 0 and tree.visit_count[b, child] > 0:
                visits_out[b, a] = tree.visit_count[b, child]
                q_out[b, a] = (tree.reward[b, child] + discount
                               * tree.value_sum[b, child] / tree.visit_count[b, child])
            else:
                visits_out[b, a] = 0
                q_out[b, a] = np.nan


@njit(cache=True, nogil=True)
def gumbel_results(tree, discount, c_visit, c_scale, action_out, policy_out, scratch):
    """Gumbel search's chosen root actions and improved-policy targets.

    The action is the sequential-halving winner: among the most visited
    considered actions, argmax of gumbel + logits + sigma(completed Q). The
    target is softmax(logits + sigma(completed Q)) over legal actions.

    Args:
      action_out: int32[B]; policy_out: float32[B, A], written.
      scratch: float64[A] work space.
    """
    num_actions = tree.prior.shape[2]
    for b in range(tree.visit_count.shape[0]):
        completed_q(tree, b, ROOT, discount, c_visit, c_scale, scratch)
        max_visits = 0
        for a in range(num_actions):
            child = tree.children[b, ROOT, a]
            if child >= 0 and tree.visit_count[b, child] > max_visits:
                max_visits = tree.visit_count[b, child]
        best = -1
        best_score = -np.inf
        top = -np.inf
        for a in range(num_actions):
            child = tree.children[b, ROOT, a]
            if child == ILLEGAL:
                continue
            top = max(top, math.log(max(tree.prior[b, ROOT, a], 1e-30)) + scratch[a])
            visits = tree.visit_count[b, child] if child >= 0 else 0
            score = tree.gumbel_logits[b, a] + scratch[a]
            if visits == max_visits and score > best_score:
                best_score = score
                best = a
        action_out[b] = best
        total = 0.0
        for a in range(num_actions):
            if tree.children[b, ROOT, a] == ILLEGAL:
                policy_out[b, a] = 0.0
            else:
                p = math.exp(math.log(max(tree.prior[b, ROOT, a], 1e-30)) + scratch[a] - top)
                policy_out[b, a] = p
                total += p
        if total > 0.0:
            for a in range(num_actions):
                policy_out[b, a] /= total
