"""Gumbel search (Danihelka et al., 2022, "Policy improvement by planning with Gumbel").

Root: Gumbel-Top-k sampling of `max_num_considered_actions` actions, then
sequential halving of the simulation budget among them, ranked by
g(a) + logits(a) + sigma(completed Q(a)). Interior nodes: the deterministic
rule argmax(pi'(a) - N(a) / (1 + sum N)) with pi' = softmax(logits + sigma(q)).
sigma(q) = (c_visit + max_b N(b)) * c_scale * q_hat, where q_hat is the
completed Q rescaled to [0, 1] over the node's legal actions and unvisited
actions get the mixed value estimate. Names and defaults follow mctx.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from engine.tree import ILLEGAL, ROOT


@functools.lru_cache(maxsize=64)
def considered_visits_table(max_num_considered_actions: int, num_simulations: int) -> np.ndarray:
    """The sequential-halving visit schedule for every number of considered actions.

    Row m (0 <= m <= max_num_considered_actions), column k: the visit count that
    the action chosen at the root in simulation k must have, when m actions are
    considered. Within one phase each remaining action gets the same number of
    visits; then the better half continues.

    Returns:
      int32[max_num_considered_actions + 1, num_simulations] (read-only).
    """
    table = np.zeros((max_num_considered_actions + 1, max(num_simulations, 1)), np.int32)
    for m in range(max_num_considered_actions + 1):
        table[m, :] = _considered_visits(m, num_simulations)[: table.shape[1]] or [0]
    table.setflags(write=False)
    return table


def _considered_visits(num_considered: int, num_simulations: int) -> list[int]:
    if num_considered <= 1:
        return list(range(num_simulations))
    log2max = math.ceil(math.log2(num_considered))
    sequence: list[int] = []
    visits = [0] * num_considered
    while len(sequence) < num_simulations:
        extra = max(1, int(num_simulations / (log2max * num_considered)))
        for _ in range(extra):
            sequence.extend(visits[:num_considered])
            for i in range(num_considered):
                visits[i] += 1
        num_considered = max(2, num_considered // 2)
    return sequence[:num_simulations]


@njit(cache=True, nogil=True, inline="always")
def _is_visited(tree, b, child):
    return child >= 0 and tree.visit_count[b, child] > 0


@njit(cache=True, nogil=True, inline="always")
def completed_q(tree, b, node, discount, c_visit, c_scale, out):
    """sigma(completed Q) of every legal child of `node` into `out` (float64[A]).

    Visited children keep their Q = reward + discount * V(child); unvisited ones
    get the mixed value (raw value and prior-weighted visited Q, as in mctx).
    The completed values are rescaled to [0, 1] over the legal actions, then
    scaled by (c_visit + max visits) * c_scale. Illegal entries are set to 0.

    Returns:
      sigma of the mixed value, the entry shared by all unvisited children.
    """
    num_actions = tree.prior.shape[2]
    sum_visits = 0
    max_visits = 0
    sum_probs = 0.0
    weighted = 0.0
    lo = np.inf
    hi = -np.inf
    any_unvisited = False
    for a in range(num_actions):
        child = tree.children[b, node, a]
        if child == ILLEGAL:
            continue
        if _is_visited(tree, b, child):
            n = tree.visit_count[b, child]
            q = tree.reward[b, child] + discount * tree.value_sum[b, child] / n
            out[a] = q
            p = max(tree.prior[b, node, a], 1e-30)
            sum_visits += n
            sum_probs += p
            weighted += p * q
            max_visits = max(max_visits, n)
            lo = min(lo, q)
            hi = max(hi, q)
        else:
            any_unvisited = True
    mixed = tree.raw_value[b, node]
    if sum_visits > 0:
        mixed = (mixed + sum_visits * weighted / sum_probs) / (1.0 + sum_visits)
    if any_unvisited:
        lo = min(lo, mixed)
        hi = max(hi, mixed)
    scale = (c_visit + max_visits) * c_scale / max(hi - lo, 1e-8)
    for a in range(num_actions):
        child = tree.children[b, node, a]
        if child == ILLEGAL:
            out[a] = 0.0
        elif _is_visited(tree, b, child):
            out[a] = (out[a] - lo) * scale
        else:
            out[a] = (mixed - lo) * scale
    return (mixed - lo) * scale


@njit(cache=True, nogil=True, inline="always")
def _visits(tree, b, child):
    if child < 0:
        return 0
    return tree.visit_count[b, child] + tree.virtual_count[b, child]


@njit(cache=True, nogil=True, inline="always")
def gumbel_root_action(tree, b, discount, c_visit, c_scale, considered_table, scratch):
    """The root action of the next simulation under sequential halving.

    Among legal actions whose visit count (pending ones included) equals the
    schedule's value for this simulation, the argmax of
    gumbel + logits + sigma(completed Q). If none qualifies (possible when
    descents collide), the least visited action by the same score.
    """
    completed_q(tree, b, ROOT, discount, c_visit, c_scale, scratch)
    num_actions = tree.prior.shape[2]
    num_legal = 0
    simulation = 0
    for a in range(num_actions):
        child = tree.children[b, ROOT, a]
        if child != ILLEGAL:
            num_legal += 1
            simulation += _visits(tree, b, child)
    m = min(considered_table.shape[0] - 1, num_legal)
    simulation = min(simulation, considered_table.shape[1] - 1)
    target = considered_table[m, simulation]
    best = -1
    best_score = -np.inf
    fallback = -1
    fallback_key = np.inf
    for a in range(num_actions):
        child = tree.children[b, ROOT, a]
        if child == ILLEGAL:
            continue
        score = tree.gumbel_logits[b, a] + scratch[a]
        n = _visits(tree, b, child)
        if n == target and score > best_score:
            best_score = score
            best = a
        key = n * 1e6 - score
        if key < fallback_key:
            fallback_key = key
            fallback = a
    if best < 0:
        return fallback
    return best


@njit(cache=True, nogil=True, inline="always")
def gumbel_interior_action(tree, b, node, discount, c_visit, c_scale, scratch):
    """Deterministic Gumbel selection below the root: argmax pi'(a) - N(a) / (1 + sum N).

    pi' = softmax(logits + sigma) is computed as prior * exp(sigma - max sigma),
    normalised; unvisited children share one sigma, hence one exp.
    """
    sigma_mixed = completed_q(tree, b, node, discount, c_visit, c_scale, scratch)
    num_actions = tree.prior.shape[2]
    top = -np.inf
    total_visits = 0
    for a in range(num_actions):
        child = tree.children[b, node, a]
        if child != ILLEGAL:
            top = max(top, scratch[a])
            total_visits += _visits(tree, b, child)
    e_mixed = math.exp(sigma_mixed - top)
    z = 0.0
    for a in range(num_actions):
        child = tree.children[b, node, a]
        if child == ILLEGAL:
            continue
        e = math.exp(scratch[a] - top) if _is_visited(tree, b, child) else e_mixed
        scratch[a] = tree.prior[b, node, a] * e
        z += scratch[a]
    best = -1
    best_score = -np.inf
    inv = 1.0 / (1.0 + total_visits)
    for a in range(num_actions):
        child = tree.children[b, node, a]
        if child == ILLEGAL:
            continue
        score = scratch[a] / z - _visits(tree, b, child) * inv
        if score > best_score:
            best_score = score
            best = a
    return best
