"""Numba kernels over a batch of trees: selection, expansion, backup, noise.

Every kernel is a module-level `@njit(cache=True, nogil=True)` function of the
`Tree` arrays (engine/tree.py) and scalars. They print nothing, allocate
little and use no random numbers: noise is drawn by the caller and passed in.
Between a node and its parent they apply the node's own value multiplier
(engine/tree.py): Q of the parent's action is reward[child] + m(child) * V(child),
where m is `tree.uniform_discount` when that is finite (every node's multiplier
is the search's discount) and `tree.discount[b, child]` when it is NaN (games
whose players do not alternate: +1 where the mover stays). The kernels that take
arrays rather than the tree take both as `discount, uniform` and test `uniform`
once per call, outside their loops; the uniform case then reads no array.

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

from engine.tree import ILLEGAL, NO_PARENT, ROOT, UNVISITED

MODE_PUCT = 0
MODE_GUMBEL = 1


@njit(cache=True, nogil=True)
def _set_priors(prior, children, b, node, probs, mask):
    """Copies the policy `probs` (float32[A], 0 where illegal) into the node."""
    for a in range(probs.shape[0]):
        prior[b, node, a] = probs[a]
        children[b, node, a] = UNVISITED if mask[a] else ILLEGAL


@njit(cache=True, nogil=True)
def masked_softmax_rows(logits, mask, out):
    """Softmax of each row of `logits` over its legal actions (0 elsewhere).

    Cheaper than numpy for narrow rows (few actions), where numpy's per-call
    overhead dominates. Args: logits float32[L, A]; mask bool[L, A] with at
    least one legal action per row; out float32[L, A], written.
    """
    for l in range(logits.shape[0]):
        top = -np.inf
        for a in range(logits.shape[1]):
            if mask[l, a] and logits[l, a] > top:
                top = logits[l, a]
        total = 0.0
        for a in range(logits.shape[1]):
            e = math.exp(logits[l, a] - top) if mask[l, a] else 0.0
            out[l, a] = e
            total += e
        for a in range(logits.shape[1]):
            out[l, a] /= total


@njit(cache=True, nogil=True)
def masked_softmax_sparse(logits, mask, out):
    """As masked_softmax_rows, but after one scan of each row's mask it touches only the
    legal entries: for wide rows with few legal actions (chess: 4,674 actions, about 30
    legal), where a dense pass would exponentiate every entry.

    Args: logits float32[L, A]; mask bool[L, A] with at least one legal action per row;
    out float32[L, A], written (0 for illegal actions).
    """
    num_actions = logits.shape[1]
    legal = np.empty(num_actions, np.int64)
    for l in range(logits.shape[0]):
        n = 0
        top = -np.inf
        for a in range(num_actions):
            out[l, a] = 0.0
            if mask[l, a]:
                legal[n] = a
                n += 1
                if logits[l, a] > top:
                    top = logits[l, a]
        total = 0.0
        for i in range(n):
            e = math.exp(logits[l, legal[i]] - top)
            out[l, legal[i]] = e
            total += e
        for i in range(n):
            out[l, legal[i]] /= total


@njit(cache=True, nogil=True)
def masked_log_softmax_sparse(logits, mask, floor, out):
    """log softmax of each row over its legal actions, in float64 from the logits, floored
    at `floor`; -inf for illegal actions. Touches only the legal entries after one scan
    of the mask (see masked_softmax_sparse).

    Args: logits float32[L, A]; mask bool[L, A]; floor float (finite, negative);
    out float32[L, A], written.
    """
    num_actions = logits.shape[1]
    legal = np.empty(num_actions, np.int64)
    for l in range(logits.shape[0]):
        n = 0
        top = -np.inf
        for a in range(num_actions):
            out[l, a] = -np.inf
            if mask[l, a]:
                legal[n] = a
                n += 1
                if logits[l, a] > top:
                    top = float(logits[l, a])
        if not math.isfinite(top):
            top = 0.0
        total = 0.0
        for i in range(n):
            total += math.exp(float(logits[l, legal[i]]) - top)
        for i in range(n):
            value = floor
            if total > 0.0:
                value = float(logits[l, legal[i]]) - top - math.log(total)
                if not value >= floor:  # NaN too
                    value = floor
            out[l, legal[i]] = value


@njit(cache=True, nogil=True)
def expand_roots(tree, probs, values, masks):
    """Expands node 0 of every tree with the evaluator's output.

    Args:
      tree: Tree with B trees.
      probs: float32[B, A] policy (masked softmax, see masked_softmax).
      values: float32[B] value for the player to move.
      masks: bool[B, A] legal actions (a root without any is marked terminal).
    """
    for b in range(tree.visit_count.shape[0]):
        _set_priors(tree.prior, tree.children, b, ROOT, probs[b], masks[b])
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
def puct_action(children, visit_count, virtual_count, value_sum, reward, discount, uniform,
                prior, lo, hi, b, node, explore, fpu_reduction):
    """AlphaZero's PUCT choice at `node`, counting pending (virtual) visits as losses.

    score(a) = Qn(a) + explore[N] * prior(a) / (1 + n(a)), where explore[N] =
    (pb_c_init + log((N + pb_c_base + 1) / pb_c_base)) * sqrt(N), Q normalised
    to [0, 1] by the bounds (lo, hi). Unvisited children get the parent's
    normalised value minus `fpu_reduction`; a child with r real and v pending
    visits gets Qn * r / (r + v). Takes the tree's arrays rather than the tree
    (this is the innermost loop). A child's multiplier is `uniform`, or
    discount[b, child] when `uniform` is NaN. Returns the action, or -1 if none is legal.
    """
    per_node = math.isnan(uniform)
    n_parent = visit_count[b, node] + virtual_count[b, node]
    # The calling descent has already added its own pending visit to `node`;
    # N counts completed visits and other descents' pending ones only.
    pb_c = explore[n_parent - 1]
    if hi > lo:
        offset, scale = lo, 1.0 / (hi - lo)
    else:
        offset, scale = 0.0, 1.0
    fpu = (value_sum[b, node] / max(visit_count[b, node], 1) - offset) * scale - fpu_reduction
    best_action = -1
    best_score = -np.inf
    for a in range(prior.shape[2]):
        child = children[b, node, a]
        if child == ILLEGAL:
            continue
        if child == UNVISITED:
            score = fpu + pb_c * prior[b, node, a]
        else:
            real = visit_count[b, child]
            n = real + virtual_count[b, child]
            score = pb_c * prior[b, node, a] / (1.0 + n)
            if real > 0:
                m = discount[b, child] if per_node else uniform
                q = reward[b, child] + m * value_sum[b, child] / real
                score += (q - offset) * scale * real / n
        if score > best_score:
            best_score = score
            best_action = a
    return best_action


@njit(cache=True, nogil=True)
def forced_root_action(children, visit_count, virtual_count, prior, b, forced_k):
    """KataGo's forced playouts: a visited root child with fewer than
    sqrt(forced_k * prior * sum of child visits) visits (pending ones included) is
    searched before PUCT is asked; among several, the one of highest prior (then
    lowest action). Returns -1 when no child is owed playouts."""
    total = 0
    for a in range(prior.shape[2]):
        child = children[b, ROOT, a]
        if child >= 0:
            total += visit_count[b, child]
    best = -1
    best_prior = -1.0
    for a in range(prior.shape[2]):
        child = children[b, ROOT, a]
        if child < 0 or visit_count[b, child] == 0:
            continue
        n = visit_count[b, child] + virtual_count[b, child]
        if n < math.sqrt(forced_k * prior[b, ROOT, a] * total) and prior[b, ROOT, a] > best_prior:
            best_prior = prior[b, ROOT, a]
            best = a
    return best


@njit(cache=True, nogil=True, inline="always")
def _gather_children(children, visit_count, virtual_count, value_sum, reward, discount, uniform,
                     prior, raw_value, b, node, c_visit, c_scale, q_out, n_out, visited_out,
                     loss=np.inf):
    """One pass over the children of `node`: what sigma(completed Q) and the selection
    rules need, so that later passes read only the work arrays.

    Writes, for every action a: n_out[a] = the child's visits plus pending visits (0
    without a node, -1 if illegal); visited_out[a] = the child has a completed visit;
    q_out[a] = its Q = reward + m(child) * V(child) (visited children only; m is
    `uniform`, or discount[b, child] when `uniform` is NaN).
    Unvisited children are completed with the mixed value (raw value and the
    prior-weighted visited Q, as in mctx); the completed values are rescaled to
    [0, 1] over the legal actions and scaled by (c_visit + max visits) * c_scale:
    sigma(a) = (completed(a) - lo) * scale.

    With a finite `loss` (a Q value), pending visits count as visits that returned
    `loss` (virtual loss, as puct_action): a child with r completed and v pending
    visits has Q = (r Q + v loss) / (r + v), one with only pending visits Q = loss
    (and counts as visited). The mixed value and max visits use completed visits
    only. Without pending visits (one leaf per step) nothing changes.

    Returns:
      (mixed, lo, hi, scale, total, num_legal): hi is the largest completed value,
      total the sum of n_out over the legal actions.
    """
    per_node = math.isnan(uniform)
    sum_visits = 0
    max_visits = 0
    total = 0
    num_legal = 0
    sum_probs = 0.0
    weighted = 0.0
    lo = np.inf
    hi = -np.inf
    any_unvisited = False
    for a in range(prior.shape[2]):
        child = children[b, node, a]
        if child == ILLEGAL:
            n_out[a] = -1
            continue
        num_legal += 1
        n = 0
        pending = 0
        if child >= 0:
            n = visit_count[b, child]
            pending = virtual_count[b, child]
            n_out[a] = n + pending
            total += n_out[a]
        else:
            n_out[a] = 0
        if n > 0:
            m = discount[b, child] if per_node else uniform
            q = reward[b, child] + m * value_sum[b, child] / n
            p = max(prior[b, node, a], 1e-30)
            sum_visits += n
            sum_probs += p
            weighted += p * q
            max_visits = max(max_visits, n)
            if pending > 0 and loss < np.inf:
                q = (q * n + loss * pending) / (n + pending)
            q_out[a] = q
            visited_out[a] = True
            lo = min(lo, q)
            hi = max(hi, q)
        elif pending > 0 and loss < np.inf:
            q_out[a] = loss
            visited_out[a] = True
            lo = min(lo, loss)
            hi = max(hi, loss)
        else:
            visited_out[a] = False
            any_unvisited = True
    mixed = raw_value[b, node]
    if sum_visits > 0:
        mixed = (mixed + sum_visits * weighted / sum_probs) / (1.0 + sum_visits)
    if any_unvisited:
        lo = min(lo, mixed)
        hi = max(hi, mixed)
    scale = (c_visit + max_visits) * c_scale / max(hi - lo, 1e-8)
    return mixed, lo, hi, scale, total, num_legal


@njit(cache=True, nogil=True)
def completed_q(children, visit_count, virtual_count, value_sum, reward, discount, uniform,
                prior, raw_value, b, node, c_visit, c_scale, out, counts, visited):
    """sigma(completed Q) of every legal child of `node` into `out` (float64[A]).

    See _gather_children for the formula; illegal entries are set to 0.
    counts (int32[A]) and visited (bool[A]) are work space, written as there.

    Returns:
      sigma of the mixed value, the entry shared by all unvisited children.
    """
    mixed, lo, _, scale, _, _ = _gather_children(
        children, visit_count, virtual_count, value_sum, reward, discount, uniform, prior,
        raw_value, b, node, c_visit, c_scale, out, counts, visited)
    sigma_mixed = (mixed - lo) * scale
    for a in range(prior.shape[2]):
        if counts[a] < 0:
            out[a] = 0.0
        elif visited[a]:
            out[a] = (out[a] - lo) * scale
        else:
            out[a] = sigma_mixed
    return sigma_mixed


@njit(cache=True, nogil=True, inline="always")
def gumbel_root_action(children, visit_count, virtual_count, value_sum, reward, discount,
                       uniform, prior, raw_value, gumbel_logits, b, c_visit, c_scale,
                       considered_table, work, counts, visited):
    """The root action of the next simulation under sequential halving.

    Among legal actions whose visit count (pending ones included) equals the
    schedule's value for this simulation, the argmax of
    gumbel + logits + sigma(completed Q). If none qualifies (possible when
    descents collide), the least visited action by the same score.
    work (float64[A]), counts (int32[A]) and visited (bool[A]) are work space.
    """
    mixed, lo, _, scale, simulation, num_legal = _gather_children(
        children, visit_count, virtual_count, value_sum, reward, discount, uniform, prior,
        raw_value, b, ROOT, c_visit, c_scale, work, counts, visited)
    m = min(considered_table.shape[0] - 1, num_legal)
    target = considered_table[m, min(simulation, considered_table.shape[1] - 1)]
    sigma_mixed = (mixed - lo) * scale
    best = -1
    best_score = -np.inf
    for a in range(prior.shape[2]):
        if counts[a] != target:  # illegal actions have counts -1
            continue
        score = gumbel_logits[b, a] + ((work[a] - lo) * scale if visited[a] else sigma_mixed)
        if score > best_score:
            best_score = score
            best = a
    if best >= 0:
        return best
    fallback_key = np.inf
    for a in range(prior.shape[2]):
        n = counts[a]
        if n < 0:
            continue
        key = n * 1e6 - (gumbel_logits[b, a]
                         + ((work[a] - lo) * scale if visited[a] else sigma_mixed))
        if key < fallback_key:
            fallback_key = key
            best = a
    return best


@njit(cache=True, nogil=True, inline="always")
def gumbel_interior_action(children, visit_count, virtual_count, value_sum, reward, discount,
                           uniform, prior, raw_value, b, node, c_visit, c_scale, work, counts,
                           visited, loss=np.inf):
    """Deterministic Gumbel selection below the root: argmax pi'(a) - N(a) / (1 + sum N).

    pi' = softmax(logits + sigma) is computed as prior * exp(sigma - max sigma),
    normalised; unvisited children share one sigma, hence one exp. sigma is
    monotone in the completed value, so its maximum is sigma(hi) (0 = sigma(lo)
    if c_scale were negative) without a pass. work (float64[A]), counts (int32[A])
    and visited (bool[A]) are work space.

    Pending visits count in N(a) and, with a finite `loss` (select_leaves passes the
    tree's lower Q bound), as losses in the completed Q (_gather_children): with a
    sharp policy, N alone leaves pi'(a) - N(a) / (1 + sum N) highest for the child
    whose leaf is still pending, and the next descent of the step would collide there.
    """
    mixed, lo, hi, scale, total, _ = _gather_children(
        children, visit_count, virtual_count, value_sum, reward, discount, uniform, prior,
        raw_value, b, node, c_visit, c_scale, work, counts, visited, loss)
    top = max((hi - lo) * scale, 0.0)
    # Only unvisited children use e_mixed, and then sigma(mixed) <= top; the clamp
    # keeps exp from overflowing (an error without JIT) when every child is visited.
    e_mixed = math.exp(min((mixed - lo) * scale - top, 0.0))
    num_actions = prior.shape[2]
    z = 0.0
    for a in range(num_actions):
        if counts[a] < 0:
            continue
        e = math.exp((work[a] - lo) * scale - top) if visited[a] else e_mixed
        work[a] = prior[b, node, a] * e
        z += work[a]
    best = -1
    best_score = -np.inf
    inv = 1.0 / (1.0 + total)
    for a in range(num_actions):
        n = counts[a]
        if n < 0:
            continue
        score = work[a] / z - n * inv
        if score > best_score:
            best_score = score
            best = a
    return best


@njit(cache=True, nogil=True, inline="always")
def backup(visit_count, virtual_count, value_sum, reward, discount, uniform, parent, min_q,
           max_q, b, node, value, update_bounds, remove_virtual):
    """Adds `value` (for the player to move at `node`) to the node and its ancestors.

    Each step up from a node applies Q = reward[node] + m * value, with the node's own
    multiplier m: `uniform` (-1 or gamma), or discount[b, node] when `uniform` is NaN
    (-1, gamma, or +1 after a same-mover step). With
    `update_bounds`, the Q of every node on the path widens the tree's min-max bounds. With
    `remove_virtual`, one pending visit is taken off every node of the path.
    """
    per_node = math.isnan(uniform)
    while True:
        if remove_virtual:
            virtual_count[b, node] -= 1
        value_sum[b, node] += value
        visit_count[b, node] += 1
        up = parent[b, node]
        if up == NO_PARENT:
            break
        d = discount[b, node] if per_node else uniform
        if update_bounds:
            q = reward[b, node] + d * value_sum[b, node] / visit_count[b, node]
            min_q[b] = min(min_q[b], q)
            max_q[b] = max(max_q[b], q)
        value = reward[b, node] + d * value
        node = up


@njit(cache=True, nogil=True)
def _undo_virtual(virtual_count, parent, b, node):
    while node != NO_PARENT:
        virtual_count[b, node] -= 1
        node = parent[b, node]


@njit(cache=True, nogil=True)
def select_leaves(tree, leaves_per_tree, mode, pb_c_init, pb_c_base, fpu_reduction,
                  update_bounds, c_visit, c_scale, considered_table,
                  leaf_tree, leaf_parent, leaf_node, leaf_action, scratch, forced_k=0.0,
                  gumbel_virtual_loss=False):
    """Selects up to `leaves_per_tree` new leaves in each tree and allocates their nodes.

    Descends from the root with the mode's rule, adding one pending (virtual)
    visit to each node passed. PUCT counts pending visits as losses; Gumbel's root
    schedule and interior rule count them as visits, and the interior rule with
    `gumbel_virtual_loss` also as losses (the tree's lower Q bound), so that the
    descents of one step spread instead of colliding. A descent that ends on a known terminal node is
    backed up at once (value 0) and yields no leaf; one that reaches a node
    still awaiting evaluation (a collision) is abandoned. A tree that has run
    capacity - 1 simulations (pending ones included) or has no free node
    yields no leaf.

    Args:
      considered_table: int32[M + 1, S] Gumbel visit schedule (engine/gumbel.py).
      leaf_tree, leaf_parent, leaf_node, leaf_action: int32[B * leaves_per_tree],
        written; leaf_node is -1 where no leaf was selected.
      scratch: float64[A] work space.
      forced_k: PUCT: KataGo's forced playouts at the root (forced_root_action); 0: none.
      gumbel_virtual_loss: Gumbel: pending visits are losses below the root too
        (gumbel_interior_action); no effect with one leaf per tree and step.
    Returns:
      The number of simulations used (leaves plus terminal visits).
    """
    children, visit_count, virtual_count = tree.children, tree.visit_count, tree.virtual_count
    num_nodes, expanded, terminal = tree.num_nodes, tree.expanded, tree.terminal
    discount, uniform = tree.discount, tree.uniform_discount
    num_trees, capacity = visit_count.shape
    # PUCT's exploration factor for every possible parent count, computed once.
    explore = np.empty(capacity + leaves_per_tree + 2 if mode == MODE_PUCT else 0)
    for n in range(explore.shape[0]):
        explore[n] = (pb_c_init + math.log((n + pb_c_base + 1.0) / pb_c_base)) * math.sqrt(n)
    # Gumbel's work space, allocated once per call rather than per node.
    counts = np.empty(scratch.shape[0], np.int32)
    visited = np.empty(scratch.shape[0], np.bool_)
    used = 0
    for b in range(num_trees):
        for k in range(leaves_per_tree):
            slot = b * leaves_per_tree + k
            leaf_tree[slot] = b
            leaf_node[slot] = -1
            leaf_parent[slot] = -1
            leaf_action[slot] = -1
            # A tree runs at most capacity - 1 simulations (pending ones included).
            if (terminal[b, ROOT] or num_nodes[b] >= capacity
                    or visit_count[b, ROOT] + virtual_count[b, ROOT] >= capacity):
                continue
            node = ROOT
            virtual_count[b, node] += 1
            while True:
                if mode == MODE_PUCT:
                    a = -1
                    if node == ROOT and forced_k > 0.0:
                        a = forced_root_action(children, visit_count, virtual_count,
                                               tree.prior, b, forced_k)
                    if a < 0:
                        a = puct_action(children, visit_count, virtual_count, tree.value_sum,
                                        tree.reward, discount, uniform, tree.prior,
                                        tree.min_q[b], tree.max_q[b], b, node, explore,
                                        fpu_reduction)
                elif node == ROOT:
                    a = gumbel_root_action(children, visit_count, virtual_count,
                                           tree.value_sum, tree.reward, discount, uniform,
                                           tree.prior, tree.raw_value, tree.gumbel_logits, b,
                                           c_visit, c_scale, considered_table, scratch,
                                           counts, visited)
                else:
                    a = gumbel_interior_action(children, visit_count, virtual_count,
                                               tree.value_sum, tree.reward, discount, uniform,
                                               tree.prior, tree.raw_value, b, node, c_visit,
                                               c_scale, scratch, counts, visited,
                                               tree.min_q[b] if gumbel_virtual_loss
                                               else np.inf)
                child = children[b, node, a]
                if child == UNVISITED:
                    child = num_nodes[b]
                    num_nodes[b] += 1
                    children[b, node, a] = child
                    tree.parent[b, child] = node
                    tree.action[b, child] = a
                    virtual_count[b, child] += 1
                    leaf_parent[slot] = node
                    leaf_node[slot] = child
                    leaf_action[slot] = a
                    used += 1
                    break
                virtual_count[b, child] += 1
                if not expanded[b, child]:
                    _undo_virtual(virtual_count, tree.parent, b, child)
                    break
                if terminal[b, child]:
                    backup(visit_count, virtual_count, tree.value_sum, tree.reward, discount,
                           uniform, tree.parent, tree.min_q, tree.max_q, b, child, 0.0,
                           update_bounds, True)
                    used += 1
                    break
                node = child
    return used


@njit(cache=True, nogil=True)
def expand_and_backup(tree, leaf_tree, leaf_node, probs, values, masks, rewards,
                      terminals, same_mover, update_bounds):
    """Expands evaluated leaves and backs their values up to the roots.

    Args:
      leaf_tree, leaf_node: int32[L] from select_leaves (leaf_node < 0 skipped).
      probs: float32[L, A] policies (masked softmax); values: float32[L] (ignored for
        terminal leaves).
      masks: bool[L, A]; rewards: float32[L] for the mover; terminals: bool[L].
      same_mover: bool[L], True where the leaf's player to move is its parent's (a
        two-player game whose players do not alternate): the leaf's `discount` becomes
        +1, its value is the parent mover's own. All False for alternating games.
        A True entry needs a per-node tree (new_tree(..., per_node_discount=True)):
        on a uniform one it raises ValueError, since the kernels would not read the +1.
    """
    prior, children, reward = tree.prior, tree.children, tree.reward
    per_node = math.isnan(tree.uniform_discount)
    for l in range(leaf_tree.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        b = leaf_tree[l]
        reward[b, node] = rewards[l]
        if same_mover[l]:
            if not per_node:
                raise ValueError("same_mover leaf on a tree with a uniform discount: "
                                 "build it with new_tree(..., per_node_discount=True)")
            tree.discount[b, node] = 1.0
        tree.expanded[b, node] = True
        legal = False
        if not terminals[l]:
            for a in range(prior.shape[2]):  # inline: a call per leaf costs more
                prior[b, node, a] = probs[l, a]
                children[b, node, a] = UNVISITED if masks[l, a] else ILLEGAL
                legal |= masks[l, a]
        # A position without a legal move is final whatever the game said.
        if legal:
            value = values[l]
        else:
            tree.terminal[b, node] = True
            value = 0.0
        tree.raw_value[b, node] = value
        backup(tree.visit_count, tree.virtual_count, tree.value_sum, reward, tree.discount,
               tree.uniform_discount, tree.parent, tree.min_q, tree.max_q, b, node, value,
               update_bounds, True)


@njit(cache=True, nogil=True)
def root_statistics(tree, visits_out, q_out, value_out):
    """Root children's visits and Q, and the root value, for every tree.

    Args:
      visits_out: int32[B, A]; q_out: float32[B, A] (NaN where unvisited);
      value_out: float32[B], written.
    """
    per_node = math.isnan(tree.uniform_discount)
    for b in range(tree.visit_count.shape[0]):
        value_out[b] = tree.value_sum[b, ROOT] / max(tree.visit_count[b, ROOT], 1)
        for a in range(tree.prior.shape[2]):
            child = tree.children[b, ROOT, a]
            if child >= 0 and tree.visit_count[b, child] > 0:
                visits_out[b, a] = tree.visit_count[b, child]
                m = tree.discount[b, child] if per_node else tree.uniform_discount
                q_out[b, a] = (tree.reward[b, child]
                               + m * tree.value_sum[b, child] / tree.visit_count[b, child])
            else:
                visits_out[b, a] = 0
                q_out[b, a] = np.nan


@njit(cache=True, nogil=True)
def gumbel_results(tree, c_visit, c_scale, action_out, policy_out, scratch):
    """Gumbel search's chosen root actions and improved-policy targets.

    The action is the sequential-halving winner: among the most visited
    considered actions, argmax of gumbel + logits + sigma(completed Q). The
    target is softmax(logits + sigma(completed Q)) over legal actions.

    Args:
      action_out: int32[B]; policy_out: float32[B, A], written.
      scratch: float64[A] work space.
    """
    num_actions = tree.prior.shape[2]
    counts = np.empty(num_actions, np.int32)
    visited = np.empty(num_actions, np.bool_)
    for b in range(tree.visit_count.shape[0]):
        completed_q(tree.children, tree.visit_count, tree.virtual_count, tree.value_sum,
                    tree.reward, tree.discount, tree.uniform_discount, tree.prior,
                    tree.raw_value, b, ROOT, c_visit, c_scale, scratch, counts, visited)
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
