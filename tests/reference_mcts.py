"""A slow, readable MCTS in plain Python: the reference the Numba kernels are tested against.

Written from the engine's specification, not from engine/kernels.py: nodes
are objects with a dict of children, every rule is spelled out once, nothing
is vectorised. One call searches ONE tree; batch independence is what the
tests check by comparing each tree of a batch with its own reference search.

Conventions (the same as the engine's):
  * A node's value V = value_sum / visit_count is for the player to move at it.
    Seen from the parent, Q(parent, a) = reward[child] + m(child) * V(child), where
    the child's multiplier m is cfg.discount, or +1 where the game (the optional
    `player` callback) says the child's player to move is its parent's.
  * The root is expanded first: priors = softmax of the logits over the legal
    actions, visit_count 1, value_sum = the network value.
  * A simulation descends until it picks an action without a child node,
    creates it (ids in allocation order 1, 2, ...), evaluates it (terminal:
    value 0, reward from the game) and backs up g from it to the root:
    visit_count += 1, value_sum += g, then g <- reward[node] + m(node) * g.
    A descent that reaches an existing terminal node backs up 0 from it.
  * k leaves per step: descents one after another, each adding one pending
    visit to every node of its path once it has chosen its leaf; then all
    leaves are evaluated, expanded and backed up in order and their pending
    visits removed. A descent that reaches a node created earlier in the same
    step (not yet evaluated) is abandoned and counts for nothing.
  * Pending visits: PUCT counts them as visits that lost (virtual loss); the
    Gumbel rules count them in N(a) (root schedule and interior rule), and with
    cfg.gumbel_virtual_loss the interior rule also as visits that returned the lower Q bound (cfg.q_bounds, or
    the search's bounds once it has some, in float32 as the tree keeps them) in
    the completed Q; the root's completed Q and the mixed value use finished
    visits only.

The tree stores priors in float32 (as the engine's arrays do), so the reference
rounds its priors to float32 after computing them in float64.

Callbacks (the "environment" of a search), with `state` any Python value:
  legal(state) -> sequence of legal action ids (non-terminal states only)
  step(state, action) -> (next_state, reward for the mover, terminal)
  evaluate(state) -> (logits: sequence of A floats, value: float)
  player(state) -> player to move (optional; without it every multiplier is cfg.discount)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class RefConfig:
    """Search settings, with the engine's names and defaults."""

    mode: str = "puct"
    """'puct' or 'gumbel'."""
    num_simulations: int | None = 16
    """Simulations per tree (a terminal revisit counts, an abandoned descent does not).
    None: no budget; then `num_steps` must be given."""
    num_steps: int | None = None
    """Stop after this many steps even if simulations remain (None: no limit)."""
    leaves_per_step: int = 1
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    fpu_reduction: float = 0.25
    discount: float = -1.0
    q_bounds: tuple[float, float] | None = (-1.0, 1.0)
    """Fixed bounds used to normalise Q to [0, 1] in PUCT, or None for MuZero's
    min-max statistics: the lowest and highest Q = reward + discount * V(child) of
    any node seen in a backup so far; while they are equal, Q is used as it is."""
    c_visit: float = 50.0
    c_scale: float = 0.1
    max_num_considered_actions: int = 16
    schedule_length: int | None = None
    """Columns of the Gumbel schedule (default: num_simulations); beyond it the
    last column is used."""
    gumbel_virtual_loss: bool = False
    """Gumbel's interior rule counts pending visits as losses too (module doc)."""


class Node:
    """One search node. Values are for the player to move at the node."""

    def __init__(self, node_id: int, parent: "Node | None", action: int, state: Any,
                 reward: float, terminal: bool, multiplier: float = -1.0):
        self.id = node_id
        self.multiplier = multiplier
        """From this node's value to its parent's point of view."""
        self.parent = parent
        self.action = action
        self.state = state
        self.reward = float(np.float32(reward))
        self.terminal = terminal
        self.expanded = False
        self.children: dict[int, Node] = {}
        self.prior: dict[int, float] = {}
        """Legal actions only; float32-rounded like the engine's storage."""
        self.visit_count = 0
        self.pending = 0
        self.value_sum = 0.0
        self.raw_value = 0.0

    def value(self) -> float:
        return self.value_sum / self.visit_count

    def legal_actions(self) -> list[int]:
        return sorted(self.prior)


@dataclass
class RefResult:
    """What the reference search found at its root."""

    visits: list[int]
    q: list[float]
    """Q of each root child for the root player (NaN where never visited)."""
    value: float
    """V(root) = value_sum / visit_count, the network value included."""
    action: int
    policy: list[float]
    """PUCT: visit distribution; Gumbel: softmax(logits + sigma(completed Q))."""
    prior: list[float]
    root: Node
    nodes: list[Node]
    simulations: int
    steps: int
    selected: list[list[int]] = field(default_factory=list)
    """Per step, the ids of the nodes created (the leaves), in order."""


# ---------------------------------------------------------------------------
# The Gumbel visit schedule (Danihelka et al. 2022, sequential halving; the
# exact sequence of mctx's get_sequence_of_considered_visits).


def considered_visits(num_considered: int, num_simulations: int) -> list[int]:
    """For each simulation index, the visit count its root action must have.

    Sequential halving over `num_considered` actions in ceil(log2 m) phases:
    each phase gives every remaining action max(1, floor(n / (log2max * m_phase)))
    more visits, in rounds (one visit per action per round), then keeps half
    (never fewer than 2). The sequence is cut at n.
    """
    if num_considered <= 1:
        return list(range(num_simulations))
    phases = math.ceil(math.log2(num_considered))
    out: list[int] = []
    remaining = num_considered
    visits_so_far = 0  # every remaining action has this many visits at a phase start
    while len(out) < num_simulations:
        rounds = max(1, num_simulations // (phases * remaining))
        for r in range(rounds):
            out += [visits_so_far + r] * remaining
        visits_so_far += rounds
        remaining = max(2, remaining // 2)
    return out[:num_simulations]


# ---------------------------------------------------------------------------
# Selection rules.


def _masked_softmax(values: dict[int, float]) -> dict[int, float]:
    top = max(values.values())
    exps = {a: math.exp(v - top) for a, v in values.items()}
    total = sum(exps.values())
    return {a: e / total for a, e in exps.items()}


def _q(node: Node, child: Node, cfg: RefConfig) -> float:
    return child.reward + child.multiplier * child.value()


def _normalise(q: float, cfg: RefConfig, bounds: list[float] | None = None) -> float:
    lo, hi = cfg.q_bounds if cfg.q_bounds is not None else bounds
    if cfg.q_bounds is None and not hi > lo:
        return q
    return (q - lo) / (hi - lo)


def puct_choice(node: Node, cfg: RefConfig, bounds: list[float] | None = None) -> int:
    """argmax Qn(a) + pb_c * prior(a) * sqrt(N) / (1 + n(a)), first on ties.

    `bounds` is the search's [min, max] of Q when cfg.q_bounds is None."""
    big_n = node.visit_count + node.pending
    pb_c = cfg.pb_c_init + math.log((big_n + cfg.pb_c_base + 1) / cfg.pb_c_base)
    fpu = _normalise(node.value(), cfg, bounds) - cfg.fpu_reduction
    best, best_score = -1, -math.inf
    for a in node.legal_actions():
        child = node.children.get(a)
        if child is None:
            n, qn = 0, fpu
        else:
            real, pending = child.visit_count, child.pending
            n = real + pending
            # Pending visits count as losses (Qn = 0): virtual loss.
            qn = 0.0 if real == 0 else _normalise(_q(node, child, cfg), cfg, bounds) * real / n
        score = qn + pb_c * node.prior[a] * math.sqrt(big_n) / (1 + n)
        if score > best_score:
            best, best_score = a, score
    return best


def _n(node: Node, a: int) -> int:
    """Visits of action a for the Gumbel schedule: finished plus pending."""
    child = node.children.get(a)
    return 0 if child is None else child.visit_count + child.pending


def sigma_completed_q(node: Node, cfg: RefConfig, loss: float | None = None
                      ) -> dict[int, float]:
    """mctx's qtransform_completed_by_mix_value over the legal actions of `node`.

    With `loss`, a child's pending visits count as visits that returned `loss`."""
    visited = {a: c for a, c in node.children.items() if c.visit_count > 0}
    sum_n = sum(c.visit_count for c in visited.values())
    max_n = max((c.visit_count for c in visited.values()), default=0)
    q = {a: _q(node, c, cfg) for a, c in visited.items()}
    if visited:
        p = {a: max(node.prior[a], 1e-30) for a in visited}
        weighted = sum(p[a] * q[a] for a in visited) / sum(p.values())
        mixed = (node.raw_value + sum_n * weighted) / (1 + sum_n)
    else:
        mixed = node.raw_value
    if loss is not None:
        for a, c in node.children.items():
            if c.pending > 0:
                r = c.visit_count
                q[a] = (q.get(a, 0.0) * r + loss * c.pending) / (r + c.pending)
    completed = {a: q.get(a, mixed) for a in node.legal_actions()}
    lo, hi = min(completed.values()), max(completed.values())
    scale = (cfg.c_visit + max_n) * cfg.c_scale
    return {a: scale * (v - lo) / max(hi - lo, 1e-8) for a, v in completed.items()}


def _logit(node: Node, a: int) -> float:
    return math.log(max(node.prior[a], 1e-30))


def gumbel_root_choice(root: Node, cfg: RefConfig, gumbel: Sequence[float],
                       schedule: list[list[int]]) -> int:
    """Sequential halving: among actions with the scheduled visit count, the best
    gumbel + logit + sigma(q). If none has it (only after abandoned descents),
    the least visited action, best score first."""
    sigma = sigma_completed_q(root, cfg)
    legal = root.legal_actions()
    m = min(cfg.max_num_considered_actions, len(legal))
    index = sum(_n(root, a) for a in legal)
    row = schedule[m]
    target = row[min(index, len(row) - 1)]
    score = {a: gumbel[a] + _logit(root, a) + sigma[a] for a in legal}
    candidates = [a for a in legal if _n(root, a) == target]
    if not candidates:
        fewest = min(_n(root, a) for a in legal)
        candidates = [a for a in legal if _n(root, a) == fewest]
    return max(candidates, key=lambda a: (score[a], -a))


def gumbel_interior_choice(node: Node, cfg: RefConfig, bounds: list[float] | None = None
                           ) -> int:
    """argmax softmax(logits + sigma(q))(a) - N(a) / (1 + sum N), first on ties; pending
    visits count in N and, with cfg.gumbel_virtual_loss, as losses in q (the lower Q
    bound: cfg.q_bounds, else `bounds` once finite)."""
    lower = cfg.q_bounds[0] if cfg.q_bounds is not None else bounds[0]
    loss = (float(np.float32(lower)) if cfg.gumbel_virtual_loss and math.isfinite(lower)
            else None)
    sigma = sigma_completed_q(node, cfg, loss)
    legal = node.legal_actions()
    pi = _masked_softmax({a: _logit(node, a) + sigma[a] for a in legal})
    total = sum(_n(node, a) for a in legal)
    score = {a: pi[a] - _n(node, a) / (1 + total) for a in legal}
    return max(legal, key=lambda a: (score[a], -a))


# ---------------------------------------------------------------------------
# The search.


class _Search:
    def __init__(self, legal: Callable, step: Callable, evaluate: Callable,
                 num_actions: int, cfg: RefConfig, gumbel: Sequence[float] | None,
                 player: Callable | None = None):
        self.legal, self.step, self.evaluate = legal, step, evaluate
        self.player = player
        self.num_actions = num_actions
        self.cfg = cfg
        self.gumbel = list(gumbel) if gumbel is not None else [0.0] * num_actions
        length = cfg.schedule_length or cfg.num_simulations or 1
        self.schedule = [considered_visits(m, length)
                         for m in range(cfg.max_num_considered_actions + 1)]
        self.nodes: list[Node] = []
        self.bounds = [math.inf, -math.inf]
        """[min, max] of Q seen in backups (used when cfg.q_bounds is None)."""

    def expand(self, node: Node, logits: Sequence[float], value: float) -> None:
        legal = list(self.legal(node.state))
        if legal:
            # logits pass through float32, as the evaluator's outputs do.
            probs = _masked_softmax({a: float(np.float32(logits[a])) for a in legal})
            node.prior = {a: float(np.float32(p)) for a, p in probs.items()}
        node.raw_value = float(np.float32(value))
        node.expanded = True

    def choose(self, node: Node) -> int:
        if self.cfg.mode == "puct":
            return puct_choice(node, self.cfg, self.bounds)
        if node.parent is None:
            return gumbel_root_choice(node, self.cfg, self.gumbel, self.schedule)
        return gumbel_interior_choice(node, self.cfg, self.bounds)

    def backup(self, node: Node, value: float) -> None:
        g = value
        while node is not None:
            node.visit_count += 1
            node.value_sum += g
            if node.parent is not None:
                q = node.reward + node.multiplier * node.value()
                self.bounds = [min(self.bounds[0], q), max(self.bounds[1], q)]
            g = node.reward + node.multiplier * g
            node = node.parent

    def descend(self, root: Node):
        """One descent: ('leaf', path) | ('terminal', None) | ('abandoned', None)."""
        path = [root]
        node = root
        while True:
            a = self.choose(node)
            child = node.children.get(a)
            if child is None:
                state, reward, terminal = self.step(node.state, a)
                same = (self.player is not None and not terminal
                        and self.player(state) == self.player(node.state))
                child = Node(len(self.nodes), node, a, state, reward, terminal,
                             1.0 if same else self.cfg.discount)
                self.nodes.append(child)
                node.children[a] = child
                path.append(child)
                for n in path:
                    n.pending += 1
                return "leaf", path
            if not child.expanded:
                return "abandoned", None
            if child.terminal:
                self.backup(child, 0.0)
                return "terminal", None
            node = child
            path.append(node)


def search(root_state: Any, legal: Callable, step: Callable, evaluate: Callable,
           num_actions: int, cfg: RefConfig, gumbel: Sequence[float] | None = None,
           dirichlet: Sequence[float] | None = None, dirichlet_fraction: float = 0.0,
           player: Callable | None = None) -> RefResult:
    """Searches one non-terminal root position.

    Args:
      root_state, legal, step, evaluate: the environment (module docstring).
      num_actions: A.
      cfg: RefConfig.
      gumbel: A root Gumbel noise values (Gumbel mode; default zeros).
      dirichlet: A noise values mixed into the legal root priors with weight
        `dirichlet_fraction`.
      player: state -> player to move (module docstring), or None.
    """
    if cfg.num_simulations is None and cfg.num_steps is None:
        raise ValueError("give num_simulations or num_steps")
    s = _Search(legal, step, evaluate, num_actions, cfg, gumbel, player)
    root = Node(0, None, -1, root_state, 0.0, False)
    s.nodes.append(root)
    logits, value = evaluate(root_state)
    s.expand(root, logits, value)
    root.visit_count, root.value_sum = 1, root.raw_value
    if dirichlet is not None:
        f = dirichlet_fraction
        root.prior = {a: float(np.float32((1 - f) * p + f * dirichlet[a]))
                      for a, p in root.prior.items()}
    budget = math.inf if cfg.num_simulations is None else cfg.num_simulations
    max_steps = math.inf if cfg.num_steps is None else cfg.num_steps
    simulations = steps = 0
    selected: list[list[int]] = []
    while simulations < budget and steps < max_steps:
        steps += 1
        leaves = []
        for _ in range(cfg.leaves_per_step):
            if simulations >= budget:
                break
            outcome, path = s.descend(root)
            if outcome == "leaf":
                leaves.append(path)
                simulations += 1
            elif outcome == "terminal":
                simulations += 1
        # Evaluate all new leaves, then expand and back up in selection order.
        evaluated = [None if p[-1].terminal else evaluate(p[-1].state) for p in leaves]
        for path, out in zip(leaves, evaluated):
            leaf = path[-1]
            for n in path:
                n.pending -= 1
            if leaf.terminal:
                leaf.expanded = True
                s.backup(leaf, 0.0)
            else:
                s.expand(leaf, *out)
                s.backup(leaf, leaf.raw_value)
        selected.append([p[-1].id for p in leaves])
    return _result(s, root, simulations, steps, selected)


def _result(s: _Search, root: Node, simulations: int, steps: int,
            selected: list[list[int]]) -> RefResult:
    cfg = s.cfg
    a_count = s.num_actions
    visits = [0] * a_count
    q = [math.nan] * a_count
    for a, child in root.children.items():
        if child.visit_count > 0:
            visits[a] = child.visit_count
            q[a] = _q(root, child, cfg)
    legal = root.legal_actions()
    prior = [root.prior.get(a, 0.0) for a in range(a_count)]
    if cfg.mode == "gumbel":
        sigma = sigma_completed_q(root, cfg)
        most = max(visits[a] for a in legal)
        candidates = [a for a in legal if visits[a] == most]
        action = max(candidates,
                     key=lambda a: (s.gumbel[a] + _logit(root, a) + sigma[a], -a))
        pi = _masked_softmax({a: _logit(root, a) + sigma[a] for a in legal})
        policy = [pi.get(a, 0.0) for a in range(a_count)]
    else:
        # Most visited; ties to the higher prior, then the lower action.
        action = max(legal, key=lambda a: (visits[a], prior[a], -a))
        total = sum(visits)
        policy = [v / max(total, 1) for v in visits]
    return RefResult(visits, q, root.value(), action, policy, prior, root, s.nodes,
                     simulations, steps, selected)


# ---------------------------------------------------------------------------
# Test environments whose positions are action paths (tuples of ints), and a
# SearchBatch / evaluator pair over them with the protocols of games/base.py
# and engine/search.py. They import nothing from the engine.

OBS_LEN = 64
"""Observation size: [tree index, path length, a1 + 1, a2 + 1, ...]."""


class PathGame:
    """Base of the path games: subclasses define legal_mask, step, evaluate."""

    num_actions: int

    def legal(self, path: tuple) -> list[int]:
        return [int(a) for a in np.flatnonzero(self.legal_mask(path))]

    def keeps_turn(self, path: tuple) -> bool:
        """Whether the player who made the last action of `path` moves again (default: never)."""
        return False

    def player(self, path: tuple) -> int:
        """The player to move at `path`: the players alternate except after keeps_turn."""
        mover = 0
        for i in range(1, len(path) + 1):
            if not self.keeps_turn(path[:i]):
                mover = 1 - mover
        return mover

    def reference(self, cfg: RefConfig, gumbel=None, dirichlet=None,
                  dirichlet_fraction: float = 0.0, root: tuple = ()) -> RefResult:
        """The reference search of this game from `root`."""
        return search(root, self.legal, self.step, self.evaluate, self.num_actions, cfg,
                      gumbel=gumbel, dirichlet=dirichlet,
                      dirichlet_fraction=dirichlet_fraction, player=self.player)


class TableGame(PathGame):
    """A hand-written game tree.

    Args:
      num_actions: A.
      priors: path -> A priors (illegal entries ignored); default uniform.
      values: path -> network value for the player to move; default 0.
      terminal: path -> reward for the mover of the last action, for terminal paths.
      rewards: path -> reward of reaching a non-terminal path (default 0).
      legal: path -> legal actions; default all.
      extra_turns: paths after which the player who made the last action moves again.
    """

    def __init__(self, num_actions: int, priors=None, values=None, terminal=None,
                 rewards=None, legal=None, extra_turns=()):
        self.num_actions = num_actions
        self.extra_turns = set(extra_turns)
        self.priors = priors or {}
        self.values = values or {}
        self.terminal = terminal or {}
        self.rewards = rewards or {}
        self.legal_table = legal or {}

    def legal_mask(self, path):
        mask = np.zeros(self.num_actions, np.bool_)
        if path not in self.terminal:
            mask[list(self.legal_table.get(path, range(self.num_actions)))] = True
        return mask

    def keeps_turn(self, path):
        return path in self.extra_turns

    def step(self, path, action):
        child = path + (int(action),)
        if child in self.terminal:
            return child, self.terminal[child], True
        return child, self.rewards.get(child, 0.0), False

    def evaluate(self, path):
        prior = np.asarray(self.priors.get(path, np.ones(self.num_actions)), np.float64)
        logits = np.log(np.maximum(prior, 1e-12)).astype(np.float32)
        return logits, np.float32(self.values.get(path, 0.0))


def _hash(*parts) -> int:
    import hashlib
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(),
                          "little")


class RandomPathGame(PathGame):
    """A random game tree fixed by a seed: every fact is a hash of the path.

    Branching is 2..num_actions legal actions out of num_actions; a move ends
    the game with probability `terminal_prob` (always at `max_depth`), with a
    reward in {-1, 0, 1} for the mover; `step_rewards` adds rewards in
    {-1, 0, 1} to non-terminal moves too (single-player environments); after a
    move the mover keeps the turn with probability `extra_turns`.
    The network's logits are N(0, 1.5^2) and its value U(-1, 1).
    """

    def __init__(self, seed: int, num_actions: int = 9, terminal_prob: float = 0.25,
                 max_depth: int = 6, step_rewards: bool = False, extra_turns: float = 0.0):
        self.extra_turns = extra_turns
        self.seed = seed
        self.num_actions = num_actions
        self.terminal_prob = terminal_prob
        self.max_depth = max_depth
        self.step_rewards = step_rewards

    def _rng(self, path, salt):
        return np.random.default_rng(_hash(self.seed, salt, path))

    def keeps_turn(self, path):
        return self.extra_turns > 0 and self._rng(path, "turn").random() < self.extra_turns

    def legal_mask(self, path):
        rng = self._rng(path, "legal")
        count = int(rng.integers(2, self.num_actions + 1))
        mask = np.zeros(self.num_actions, np.bool_)
        mask[rng.choice(self.num_actions, count, replace=False)] = True
        return mask

    def step(self, path, action):
        child = path + (int(action),)
        rng = self._rng(child, "step")
        terminal = len(child) >= self.max_depth or rng.random() < self.terminal_prob
        reward = float(rng.integers(-1, 2))
        if not terminal and not self.step_rewards:
            reward = 0.0
        return child, reward, terminal

    def evaluate(self, path):
        rng = self._rng(path, "net")
        logits = (rng.normal(size=self.num_actions) * 1.5).astype(np.float32)
        return logits, np.float32(rng.uniform(-1.0, 1.0))


def encode(tree_index: int, path: tuple) -> np.ndarray:
    if len(path) > OBS_LEN - 2:
        raise ValueError(f"path too long for OBS_LEN: {path}")
    obs = np.zeros(OBS_LEN, np.float32)
    obs[0], obs[1] = tree_index, len(path)
    obs[2:2 + len(path)] = np.asarray(path, np.float32) + 1
    return obs


def decode(obs: np.ndarray) -> tuple[int, tuple]:
    length = int(obs[1])
    return int(obs[0]), tuple(int(x) - 1 for x in obs[2:2 + length])


class PathBatch:
    """SearchBatch and MoverBatch (games/base.py) over path games: tree b plays games[b]
    from roots[b]."""

    def __init__(self, games: Sequence[PathGame], roots: Sequence[tuple] | None = None):
        self.games = list(games)
        self.num_trees = len(self.games)
        roots = roots or [()] * self.num_trees
        self.paths: list[dict[int, tuple]] = [{0: tuple(r)} for r in roots]
        self.expanded_leaves: list[tuple[int, int, tuple]] = []
        """(tree, node, path) of every leaf created, in order."""

    def observe_roots(self, obs_out, mask_out):
        for b, game in enumerate(self.games):
            obs_out[b] = encode(b, self.paths[b][0])
            mask_out[b] = game.legal_mask(self.paths[b][0])

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out):
        for l in range(len(leaf_tree)):
            node = int(leaf_node[l])
            if node < 0:
                continue
            b = int(leaf_tree[l])
            assert node not in self.paths[b], f"node {node} of tree {b} created twice"
            parent = self.paths[b][int(leaf_parent[l])]
            assert self.games[b].legal_mask(parent)[leaf_action[l]], (
                f"illegal action {leaf_action[l]} selected in tree {b} at {parent}")
            path, reward, terminal = self.games[b].step(parent, int(leaf_action[l]))
            assert path[-1] == leaf_action[l]
            self.paths[b][node] = path
            self.expanded_leaves.append((b, node, path))
            reward_out[l] = reward
            terminal_out[l] = terminal
            obs_out[l] = encode(b, path)
            mask_out[l] = False if terminal else self.games[b].legal_mask(path)

    def players_to_move(self, trees, nodes, out):
        for l in range(len(trees)):
            if nodes[l] >= 0:
                b = int(trees[l])
                out[l] = self.games[b].player(self.paths[b][int(nodes[l])])


class PathEvaluator:
    """Evaluator over PathBatch observations; records every call's batch size."""

    def __init__(self, games: Sequence[PathGame]):
        self.games = list(games)
        self.calls: list[int] = []
        self.seen: list[tuple[int, tuple]] = []

    def evaluate(self, obs, mask):
        logits = np.zeros(mask.shape, np.float32)
        values = np.zeros(len(obs), np.float32)
        for i, row in enumerate(obs):
            b, path = decode(row)
            game = self.games[b]
            assert (mask[i] == game.legal_mask(path)).all(), (b, path)
            logits[i], values[i] = game.evaluate(path)
            self.seen.append((b, path))
        self.calls.append(len(obs))
        return logits, values
