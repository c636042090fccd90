"""Gumbel search (Danihelka et al., 2022, "Policy improvement by planning with Gumbel").

The selection kernels live in engine/kernels.py (one file, so numba's cache
never keeps a caller compiled against an old version of a callee); this
module holds the sequential-halving schedule they follow.

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
