"""Tests of the tree kernels (engine/kernels.py) driven directly, without run_search.

Three kinds, as in STYLE.md: tiny trees whose visit counts are computed by
hand (the arithmetic is in the comments), several trees in one batch to show
the batch elements are independent, and random games compared with the slow
pure-Python reference (tests/reference_mcts.py).

PUCT constants in the hand computations (pb_c_init 1.25, pb_c_base 19652):
  pb_c(N) = 1.25 + ln((N + 19653) / 19652)
  pb_c(1) = 1.2501018  pb_c(2) = 1.2501526  pb_c(3) = 1.2502035
  pb_c(4) = 1.2502544  pb_c(5) = 1.2503053
Q is normalised with the fixed bounds [-1, 1]: Qn = (Q + 1) / 2.

Without JIT (pure Python, as a CI pass), see the end of this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st

from engine import kernels
from engine.gumbel import considered_visits_table
from engine.search import masked_softmax
from engine.tree import ILLEGAL, NO_PARENT, ROOT, UNVISITED, new_tree
from tests.reference_mcts import (OBS_LEN, PathBatch, PathEvaluator, RandomPathGame,
                                  RefConfig, TableGame)

# ---------------------------------------------------------------------------
# Driving the kernels by hand: the loop of run_search without its budget.


@dataclass
class KernelRun:
    """A kernel search's tree, root statistics and per-step record."""

    tree: object
    visits: np.ndarray      # int32[B, A] root children's visits
    q: np.ndarray           # float32[B, A] root children's Q (NaN if unvisited)
    value: np.ndarray       # float32[B] root values
    steps: list             # per step: the new leaves, as (tree, node, parent, action)
    used: list              # per step: simulations reported by select_leaves
    batch: PathBatch
    evaluator: PathEvaluator

    def root_actions(self, b: int = 0) -> list[int]:
        """The root action leading to every new leaf of tree b, in creation order."""
        return [self.batch.paths[b][node][0]
                for step in self.steps for tb, node, _, _ in step if tb == b]


def set_root_gumbel(tree, gumbel: np.ndarray) -> None:
    """Root Gumbel noise as run_search stores it: g(a) + log prior(a)."""
    with np.errstate(divide="ignore"):
        tree.gumbel_logits[:] = gumbel + np.log(tree.prior[:, ROOT, :])


def drive(games, cfg: RefConfig, ks: list[int] | None = None, gumbel=None,
          dirichlet=None, dirichlet_fraction: float = 0.0,
          capacity: int | None = None, per_node_discount: bool | None = None) -> KernelRun:
    """Searches games[b] in tree b with expand_roots / select_leaves / expand_and_backup.

    The evaluator's logits become priors with engine.search.masked_softmax, as in
    run_search.
    Runs cfg.num_steps steps of cfg.leaves_per_step leaves (or ks[i] leaves at
    step i); the capacity is large enough that it never binds unless given. The tree
    has per-node multipliers when asked, or by default when a game can leave the
    mover to move again (as run_search for games that do not alternate).
    """
    ks = ks if ks is not None else [cfg.leaves_per_step] * cfg.num_steps
    num_trees, num_actions = len(games), games[0].num_actions
    k_max = max(ks)
    capacity = capacity or sum(ks) + 1
    if per_node_discount is None:
        per_node_discount = any(g.extra_turns for g in games if hasattr(g, "extra_turns"))
    tree = new_tree(num_trees, capacity, num_actions, discount=cfg.discount,
                    per_node_discount=per_node_discount)
    batch, evaluator = PathBatch(games), PathEvaluator(games)
    rows = num_trees * k_max
    obs = np.zeros((max(rows, num_trees), OBS_LEN), np.float32)
    mask = np.zeros((max(rows, num_trees), num_actions), np.bool_)
    batch.observe_roots(obs[:num_trees], mask[:num_trees])
    logits, values = evaluator.evaluate(obs[:num_trees], mask[:num_trees])
    kernels.expand_roots(tree, masked_softmax(logits, mask[:num_trees]), values,
                         mask[:num_trees].copy())
    if dirichlet is not None:
        kernels.add_dirichlet_noise(tree, np.asarray(dirichlet, np.float32),
                                    np.float32(dirichlet_fraction))
    set_root_gumbel(tree, np.zeros((num_trees, num_actions), np.float32)
                    if gumbel is None else np.asarray(gumbel, np.float32))
    table = considered_visits_table(cfg.max_num_considered_actions,
                                    cfg.schedule_length or sum(ks))
    mode = kernels.MODE_PUCT if cfg.mode == "puct" else kernels.MODE_GUMBEL
    scratch = np.zeros(num_actions, np.float64)
    steps, used = [], []
    for k in ks:
        n = num_trees * k
        leaf_tree, leaf_parent, leaf_node, leaf_action = (np.zeros(n, np.int32)
                                                          for _ in range(4))
        rewards, terminals = np.zeros(n, np.float32), np.zeros(n, np.bool_)
        same_mover = np.zeros(n, np.bool_)
        all_probs, all_values = np.zeros((n, num_actions), np.float32), np.zeros(n, np.float32)
        used.append(kernels.select_leaves(
            tree, k, mode, cfg.pb_c_init, cfg.pb_c_base, cfg.fpu_reduction,
            False, cfg.c_visit, cfg.c_scale, table, leaf_tree, leaf_parent, leaf_node,
            leaf_action, scratch, 0.0, cfg.gumbel_virtual_loss))
        batch.expand(leaf_tree, leaf_parent, leaf_node, leaf_action, obs[:n], mask[:n],
                     rewards, terminals)
        same_mover[:] = same_mover_of(batch, leaf_tree, leaf_parent, leaf_node, terminals)
        todo = np.flatnonzero((leaf_node >= 0) & ~terminals)
        if len(todo):
            logits, all_values[todo] = evaluator.evaluate(obs[todo], mask[todo])
            all_probs[todo] = masked_softmax(logits, mask[todo])
        kernels.expand_and_backup(tree, leaf_tree, leaf_node, all_probs, all_values,
                                  mask[:n], rewards, terminals, same_mover, False)
        steps.append([(int(leaf_tree[i]), int(leaf_node[i]), int(leaf_parent[i]),
                       int(leaf_action[i])) for i in range(n) if leaf_node[i] >= 0])
    visits = np.zeros((num_trees, num_actions), np.int32)
    q = np.zeros((num_trees, num_actions), np.float32)
    value = np.zeros(num_trees, np.float32)
    kernels.root_statistics(tree, visits, q, value)
    return KernelRun(tree, visits, q, value, steps, used, batch, evaluator)


def same_mover_of(batch, leaf_tree, leaf_parent, leaf_node, terminals) -> np.ndarray:
    """bool[L]: non-terminal leaves whose player to move is their parent's (as
    engine.search.SearchBatchExpander computes it)."""
    movers = np.zeros((2, len(leaf_node)), np.int8)
    batch.players_to_move(leaf_tree, np.where(leaf_node >= 0, leaf_parent, -1), movers[0])
    batch.players_to_move(leaf_tree, leaf_node, movers[1])
    return (leaf_node >= 0) & ~terminals & (movers[0] == movers[1])


def child_visits(run: KernelRun, path: tuple, b: int = 0) -> np.ndarray:
    """int[A]: visit counts of the children of the node at `path` (zeros if absent)."""
    t = run.tree
    counts = np.zeros(t.children.shape[2], np.int64)
    nodes = [n for n, p in run.batch.paths[b].items() if p == path]
    if nodes:
        for a, child in enumerate(t.children[b, nodes[0]]):
            if child >= 0:
                counts[a] = t.visit_count[b, child]
    return counts


def action_sequence(game, cfg: RefConfig, num_simulations: int, at: tuple = (),
                    **kwargs) -> list:
    """The action taken at the node `at` by each simulation (None if it did not pass there).

    One leaf per step: runs the search for 1, 2, ... steps and compares visits.
    """
    sequence, before = [], np.zeros(game.num_actions, np.int64)
    for n in range(1, num_simulations + 1):
        counts = child_visits(drive([game], replace(cfg, num_steps=n), **kwargs), at)
        changed = np.flatnonzero(counts - before)
        sequence.append(int(changed[0]) if len(changed) else None)
        before = counts
    return sequence


def assert_same_tree(run: KernelRun, b: int, ref, tol: float = 1e-5) -> None:
    """Tree b of a kernel run has the reference's nodes, in the same order, with its statistics."""
    t = run.tree
    assert t.num_nodes[b] == len(ref.nodes)
    for node in ref.nodes:
        i = node.id
        where = f"tree {b} node {i} path {node.state}"
        assert t.parent[b, i] == (NO_PARENT if node.parent is None else node.parent.id), where
        if node.parent is not None:
            assert t.action[b, i] == node.action, where
            assert t.discount[b, i] == node.multiplier, where
        assert t.visit_count[b, i] == node.visit_count, where
        assert t.virtual_count[b, i] == 0, where
        assert t.value_sum[b, i] == pytest.approx(node.value_sum, abs=tol), where
        assert bool(t.terminal[b, i]) == node.terminal, where
        assert t.reward[b, i] == pytest.approx(node.reward), where
        for a in range(t.children.shape[2]):
            if node.terminal:
                continue
            child = node.children.get(a)
            expected = (child.id if child is not None
                        else UNVISITED if a in node.prior else ILLEGAL)
            assert t.children[b, i, a] == expected, f"{where} action {a}"
            assert t.prior[b, i, a] == pytest.approx(node.prior.get(a, 0.0), rel=1e-6,
                                                     abs=1e-7), f"{where} action {a}"


def assert_same_root(run: KernelRun, b: int, ref, tol: float = 1e-5) -> None:
    assert list(run.visits[b]) == ref.visits, f"tree {b}"
    assert run.value[b] == pytest.approx(ref.value, abs=tol), f"tree {b}"
    np.testing.assert_allclose(run.q[b], np.array(ref.q, np.float32), atol=tol,
                               err_msg=f"tree {b}")


# ---------------------------------------------------------------------------
# Hand-computed trees.

PUCT_STEPS = RefConfig(mode="puct", num_simulations=None, num_steps=5)


def two_ply_game() -> TableGame:
    """X to move: action 1 wins at once; action 0 lets O win with its action 0."""
    return TableGame(
        num_actions=2,
        priors={(): [0.6, 0.4], (0,): [0.8, 0.2]},
        values={(): 0.0, (0,): 0.0},
        terminal={(1,): 1.0,       # X plays 1 and wins: +1 for X, the mover
                  (0, 0): 1.0,     # O answers 0 and wins: +1 for O, the mover
                  (0, 1): 0.0})


def test_puct_two_ply_terminal_win_hand_computed():
    # Root value 0, discount -1. N = root visits before the simulation.
    # sim 1 (N=1): nothing visited, fpu = Qn(0) - 0.25 = 0.25 for both;
    #   a0: 0.25 + 1.2501*0.6 = 1.000 > a1: 0.25 + 1.2501*0.4 = 0.750 -> a0, creates
    #   node 1 = (0,), value 0 for O. Root: sum 0 + (-1)*0 = 0, visits 2.
    # sim 2 (N=2): fpu = 0.25; a0: Qn(0) = 0.5 + 1.2502*0.6*1.4142/2 = 1.030;
    #   a1: 0.25 + 1.2502*0.4*1.4142 = 0.957 -> a0. At node 1 (O, V=0): fpu 0.25,
    #   b0 (0.8) beats b1 (0.2) -> creates node 2 = (0, 0), terminal, +1 for O.
    #   Backup: node 2 gets 0; node 1 gets 1 + (-1)*0 = 1 (sum 1, visits 2);
    #   root gets 0 + (-1)*1 = -1 (sum -1, visits 3).
    # sim 3 (N=3): V(root) = -1/3, fpu = (1 - 1/3)/2 - 0.25 = 0.0833.
    #   Q(a0) = -V(node 1) = -0.5, Qn 0.25: 0.25 + 1.2502*0.6*1.7321/3 = 0.683;
    #   a1: 0.0833 + 1.2502*0.4*1.7321 = 0.950 -> a1, creates node 3 = (1,),
    #   terminal, +1 for X. Root gets 1 + (-1)*0 = 1 (sum 0, visits 4).
    # sim 4 (N=4): a0: 0.25 + 1.2503*0.6*2/3 = 0.750; a1: Qn(1) = 1 + 1.2503*0.4*2/2
    #   = 1.500 -> a1, an existing terminal node: backs up 0 from it, no new node.
    #   Root: sum 1, visits 5.
    # sim 5 (N=5): a0: 0.25 + 1.2503*0.6*2.2361/3 = 0.809; a1: 1 + 1.2503*0.4*2.2361/3
    #   = 1.373 -> a1 again. Root: sum 2, visits 6.
    # Final: visits [2, 3], Q = [-0.5, 1], root value 2/6; 4 nodes.
    game = two_ply_game()
    run = drive([game], PUCT_STEPS)
    assert run.root_actions() == [0, 0, 1]        # the new leaves' root actions
    assert action_sequence(game, PUCT_STEPS, 5) == [0, 0, 1, 1, 1]
    assert action_sequence(game, PUCT_STEPS, 5, at=(0,)) == [None, 0, None, None, None]
    assert run.used == [1, 1, 1, 1, 1]            # terminal revisits count
    assert [len(s) for s in run.steps] == [1, 1, 1, 0, 0]
    assert list(run.visits[0]) == [2, 3]
    np.testing.assert_allclose(run.q[0], [-0.5, 1.0], atol=1e-6)
    assert run.value[0] == pytest.approx(1 / 3, abs=1e-6)
    t = run.tree
    assert t.num_nodes[0] == 4
    assert list(t.visit_count[0, :4]) == [6, 2, 1, 3]
    np.testing.assert_allclose(t.value_sum[0, :4], [2.0, 1.0, 0.0, 0.0], atol=1e-6)
    assert list(t.terminal[0, :4]) == [False, False, True, True]
    assert list(t.reward[0, :4]) == [0.0, 0.0, 1.0, 1.0]
    assert not t.virtual_count.any()
    ref = game.reference(PUCT_STEPS)
    assert_same_tree(run, 0, ref)


def bandit_game() -> TableGame:
    """Three actions, each ending the game at once with a fixed reward for the mover."""
    return TableGame(num_actions=3, priors={(): [0.5, 0.3, 0.2]}, values={(): 0.0},
                     terminal={(0,): -0.6, (1,): 0.2, (2,): 1.0})


def test_puct_bandit_uses_parent_visit_count_hand_computed():
    # Q(a) = reward(a) since the children are terminal (value 0). N is the
    # root's visit count (1 from its expansion + finished simulations) plus
    # pending visits of OTHER descents (none with one leaf per step), as in
    # AlphaZero and mctx: sqrt(N) with N = 1 in the first simulation.
    # sim 1 (N=1): fpu = Qn(0) - 0.25 = 0.25 for all; a0 (prior 0.5) is best:
    #   0.25 + 1.2501*0.5 = 0.875. Root: sum -0.6, visits 2.
    # sim 2 (N=2): V = -0.3, fpu = 0.35 - 0.25 = 0.10.
    #   a0: Qn(-0.6) = 0.2 + 1.2502*0.5*1.4142/2 = 0.2 + 0.4420 = 0.6420
    #   a1: 0.10 + 1.2502*0.3*1.4142 = 0.10 + 0.5304 = 0.6304
    #   a2: 0.10 + 1.2502*0.2*1.4142 = 0.10 + 0.3536 = 0.4536   -> a0.
    #   (With N = 3 instead, a0: 0.2 + 0.5413 = 0.7413 < a1: 0.1 + 0.6496 = 0.7496.)
    #   Root: sum -1.2, visits 3.
    # sim 3 (N=3): V = -0.4, fpu = 0.30 - 0.25 = 0.05.
    #   a0: 0.2 + 1.2502*0.5*1.7321/3 = 0.5609; a1: 0.05 + 1.2502*0.3*1.7321 = 0.6996;
    #   a2: 0.05 + 1.2502*0.2*1.7321 = 0.4831 -> a1. Root: sum -1.0, visits 4.
    # sim 4 (N=4): V = -0.25, fpu = 0.125. a0: 0.2 + 1.2503*0.5*2/3 = 0.6168;
    #   a1: Qn(0.2) = 0.6 + 1.2503*0.3*2/2 = 0.9751; a2: 0.125 + 1.2503*0.2*2 = 0.6251
    #   -> a1. Root: sum -0.8, visits 5.
    # sim 5 (N=5): V = -0.16, fpu = 0.17. a0: 0.2 + 1.2503*0.5*2.2361/3 = 0.6660;
    #   a1: 0.6 + 1.2503*0.3*2.2361/3 = 0.8796; a2: 0.17 + 1.2503*0.2*2.2361 = 0.7292
    #   -> a1. Root: sum -0.6, visits 6.
    # Final: visits [2, 3, 0], root value -0.1, Q = [-0.6, 0.2, NaN].
    game = bandit_game()
    run = drive([game], PUCT_STEPS)
    per_sim = action_sequence(game, PUCT_STEPS, 5)
    assert per_sim == [0, 0, 1, 1, 1]
    assert list(run.visits[0]) == [2, 3, 0]
    assert run.value[0] == pytest.approx(-0.1, abs=1e-6)
    np.testing.assert_allclose(run.q[0], [-0.6, 0.2, np.nan], atol=1e-6)
    assert list(game.reference(PUCT_STEPS).visits) == [2, 3, 0]


def test_puct_first_simulation_takes_highest_prior_and_ties_go_low():
    # All children unvisited: the scores differ only by the prior term.
    game = TableGame(num_actions=4, priors={(): [0.2, 0.3, 0.3, 0.2]},
                     terminal={(a,): 0.0 for a in range(4)})
    run = drive([game], replace(PUCT_STEPS, num_steps=1))
    assert run.root_actions() == [1]


def test_collision_abandons_second_descent_hand_computed():
    # Two leaves in one step. Descent 1 takes a0 (prior 0.99) and creates node 1.
    # Descent 2: N = 1 + 1 pending = 2; a0 has only a pending visit: Qn = 0,
    #   0 + 1.2502*0.99*1.4142/(1 + 1) = 0.875; a1: fpu 0.25 + 1.2502*0.01*1.4142
    #   = 0.268 -> a0 again, whose node awaits evaluation: abandoned, no leaf,
    #   no simulation, its pending visits removed.
    game = TableGame(num_actions=2, priors={(): [0.99, 0.01]}, values={(0,): 0.5})
    run = drive([game], RefConfig(mode="puct", num_simulations=None, num_steps=1,
                                  leaves_per_step=2))
    assert run.steps == [[(0, 1, 0, 0)]]
    assert run.used == [1]
    t = run.tree
    assert t.num_nodes[0] == 2
    assert list(t.visit_count[0, :2]) == [2, 1]
    # Root: 0 + (-1) * 0.5.
    assert t.value_sum[0, 0] == pytest.approx(-0.5)
    assert not t.virtual_count.any()


def test_virtual_loss_sends_second_descent_elsewhere_hand_computed():
    # Root priors [0.5, 0.5], value 0. Node (0,) has value -0.6 for O, so
    # Q(a0) = 0.6, Qn 0.8; node (1,) has value 0.2, Q(a1) = -0.2, Qn 0.4.
    # Step 1 (one leaf): tie at sim 1 -> a0 (lowest). Root: sum 0.6, visits 2.
    # Step 2 (one leaf, N=2): V = 0.3, fpu = 0.65 - 0.25 = 0.40.
    #   a0: 0.8 + 1.2502*0.5*1.4142/2 = 1.242; a1: 0.40 + 1.2502*0.5*1.4142 = 1.284
    #   -> a1. Root: sum 0.4, visits 3.
    # Step 3 (two leaves).
    #   Descent 1 (N=3): a0: 0.8 + 1.2502*0.5*1.7321/2 = 1.341;
    #     a1: 0.4 + 0.541 = 0.941 -> a0, into node 1, creates (0, 0) = node 3.
    #   Descent 2 (N = 3 + 1 pending = 4): a0 has 1 real and 1 pending visit:
    #     Qn = 0.8 * 1/2 = 0.4, 0.4 + 1.2503*0.5*2/(1 + 2) = 0.817;
    #     a1: 0.4 + 1.2503*0.5*2/2 = 1.025 -> a1, into node 2, creates (1, 0) = node 4.
    #   Were the pending visit not counted as a loss (Qn 0.8 kept), a0 would score
    #   0.8 + 0.417 = 1.217 and win.
    game = TableGame(num_actions=2, priors={(): [0.5, 0.5]},
                     values={(): 0.0, (0,): -0.6, (1,): 0.2, (0, 0): 0.1, (1, 0): 0.3})
    cfg = RefConfig(mode="puct", num_simulations=None, num_steps=3)
    run = drive([game], cfg, ks=[1, 1, 2])
    assert run.steps == [[(0, 1, 0, 0)], [(0, 2, 0, 1)], [(0, 3, 1, 0), (0, 4, 2, 0)]]
    t = run.tree
    assert list(t.visit_count[0, :5]) == [5, 2, 2, 1, 1]
    # Backups, discount -1: step 1 node 1 -0.6, root +0.6; step 2 node 2 0.2,
    # root -0.2; step 3 node 3 0.1, node 1 -0.1, root +0.1; node 4 0.3, node 2
    # -0.3, root +0.3. Root: 0 + 0.6 - 0.2 + 0.1 + 0.3 = 0.8.
    np.testing.assert_allclose(t.value_sum[0, :5], [0.8, -0.7, -0.1, 0.1, 0.3], atol=1e-6)
    assert not t.virtual_count.any()


def test_expand_roots_masked_softmax_and_terminal_root():
    logits = np.array([[1.0, 2.0, 3.0, 50.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    masks = np.array([[True, True, True, False], [False, False, False, False]])
    values = np.array([0.25, -0.5], np.float32)
    tree = new_tree(2, 4, 4)
    # masked_softmax needs a legal action per row: tree 1 gets zeros.
    probs = np.concatenate([masked_softmax(logits[:1], masks[:1]), np.zeros((1, 4), np.float32)])
    assert probs.dtype == np.float32
    kernels.expand_roots(tree, probs, values, masks)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tree.prior[0, ROOT], list(e / e.sum()) + [0.0], rtol=1e-6)
    assert list(tree.children[0, ROOT]) == [UNVISITED] * 3 + [ILLEGAL]
    assert list(tree.visit_count[:, ROOT]) == [1, 1]
    np.testing.assert_allclose(tree.value_sum[:, ROOT], [0.25, -0.5])
    assert list(tree.terminal[:, ROOT]) == [False, True]
    assert (tree.children[1, ROOT] == ILLEGAL).all()
    # The terminal root yields no leaf; the other tree gets its one.
    leaf = [np.zeros(2, np.int32) for _ in range(4)]
    used = kernels.select_leaves(tree, 1, kernels.MODE_PUCT, 1.25, 19652.0, 0.25, False,
                                 50.0, 0.1, considered_visits_table(16, 3), *leaf,
                                 np.zeros(4))
    assert used == 1
    assert list(leaf[2]) == [1, -1]     # leaf_node
    assert leaf[3][0] == 2              # the highest prior among legal actions


def test_dirichlet_noise_mixes_only_legal_actions():
    tree = new_tree(2, 2, 4)
    masks = np.array([[True, False, True, True], [False, True, True, False]])
    kernels.expand_roots(tree, masked_softmax(np.zeros((2, 4), np.float32), masks),
                         np.zeros(2, np.float32), masks)
    # Noise deliberately non-zero on illegal actions: they must stay at prior 0.
    noise = np.array([[0.5, 0.9, 0.25, 0.25], [0.3, 0.6, 0.4, 0.7]], np.float32)
    kernels.add_dirichlet_noise(tree, noise, np.float32(0.25))
    np.testing.assert_allclose(tree.prior[0, ROOT], [0.75 / 3 + 0.125, 0.0, 0.75 / 3 + 0.0625,
                                                     0.75 / 3 + 0.0625], rtol=1e-6)
    np.testing.assert_allclose(tree.prior[1, ROOT], [0.0, 0.375 + 0.15, 0.375 + 0.1, 0.0],
                               rtol=1e-6)


def test_full_tree_yields_no_more_leaves():
    # Capacity 3 nodes: the root and two leaves; later steps select nothing.
    game = RandomPathGame(3, terminal_prob=0.0, max_depth=30)
    run = drive([game], PUCT_STEPS, capacity=3)
    assert run.used == [1, 1, 0, 0, 0]
    assert run.tree.num_nodes[0] == 3
    assert run.tree.visit_count[0, ROOT] == 3
    assert not run.tree.virtual_count.any()


def test_root_statistics_reports_nan_for_unvisited_children():
    game = bandit_game()
    run = drive([game], replace(PUCT_STEPS, num_steps=1))
    assert list(run.visits[0]) == [1, 0, 0]
    assert run.q[0, 0] == pytest.approx(-0.6)
    assert np.isnan(run.q[0, 1:]).all()
    assert run.value[0] == pytest.approx(-0.3)


# ---------------------------------------------------------------------------
# A player moving twice in a row: the child's multiplier is +1.


def test_puct_same_mover_child_counts_for_the_parent_hand_computed():
    # Two actions, uniform priors, root value 0; both children valued 0.6 by the network
    # for their player to move. After action 0 the root's mover moves again (Q = +0.6),
    # after action 1 the opponent does (Q = -0.6).
    # Step 1: a tie of unvisited children -> action 0; root sum 0 + 0.6.
    # Step 2: N = 2, pb_c = (1.25 + log(19655/19652)) sqrt(2) = 1.7680. Child 0:
    #   Qn (0.6 + 1)/2 = 0.8 + 1.768 * 0.5/2 = 1.242; child 1 unvisited: fpu
    #   (0.3 + 1)/2 - 0.25 = 0.4 + 1.768 * 0.5 = 1.284 -> action 1; root sum 0.6 - 0.6.
    # Step 3: pb_c(3) = 2.1655. Child 0: 0.8 + 0.5414 = 1.3414, child 1: 0.2 + 0.5414:
    #   action 0, then its child (0, 0) (a tie, action 0).
    game = TableGame(2, values={(0,): 0.6, (1,): 0.6}, extra_turns={(0,)})
    run = drive([game], replace(PUCT_STEPS, num_steps=3))
    assert [s[0][1:] for s in run.steps] == [(1, 0, 0), (2, 0, 1), (3, 1, 0)]
    # Node 3, (0, 0), passes the turn: -1. Its value 0 leaves child 0 at (0.6 + 0) / 2.
    assert list(run.tree.discount[0, 1:4]) == [1.0, -1.0, -1.0]
    np.testing.assert_allclose(run.q[0], [0.3, -0.6], atol=1e-6)
    assert run.value[0] == pytest.approx(0.0, abs=1e-7)
    # Alternating players: Q = -0.6 for both, as the fixed -1 had it.
    plain = drive([TableGame(2, values={(0,): 0.6, (1,): 0.6})], replace(PUCT_STEPS, num_steps=2))
    np.testing.assert_allclose(plain.q[0], [-0.6, -0.6], atol=1e-6)


def test_backup_through_a_same_mover_step_hand_computed():
    # Chain root -> 1 -> 2. Node 1: the root's mover moved again (multiplier +1, reward
    # 0.5 for that mover); node 2: the turn passed (multiplier -1, reward 0.25 for the
    # mover at node 1). Backing up v = 0.8 from node 2:
    #   node 2: +0.8; node 1: 0.25 - 0.8 = -0.55; root: 0.5 + (+1)(-0.55) = -0.05.
    # Bounds (min-max): Q(node 2) = -0.55, Q(node 1) = -0.05.
    tree = new_tree(1, 3, 2, value_bounds=None, per_node_discount=True)
    tree.parent[0, 1:] = [0, 1]
    tree.reward[0, 1:] = [0.5, 0.25]
    tree.discount[0, 1] = 1.0
    tree.virtual_count[0] = 1
    kernels.backup(tree.visit_count, tree.virtual_count, tree.value_sum, tree.reward,
                   tree.discount, tree.uniform_discount, tree.parent, tree.min_q, tree.max_q,
                   0, 2, 0.8, True, True)
    np.testing.assert_allclose(tree.value_sum[0], [-0.05, -0.55, 0.8], atol=1e-12)
    assert list(tree.visit_count[0]) == [1, 1, 1]
    assert not tree.virtual_count.any()
    assert (tree.min_q[0], tree.max_q[0]) == pytest.approx((-0.55, -0.05))


def two_leaves_below_the_root(per_node_discount: bool):
    """A tree whose root is expanded (two actions) with two leaves allocated below it,
    as select_leaves leaves them: nodes 1 and 2, one pending visit on each path."""
    tree = new_tree(1, 3, 2, discount=-1.0, per_node_discount=per_node_discount)
    kernels.expand_roots(tree, np.full((1, 2), 0.5, np.float32), np.zeros(1, np.float32),
                         np.ones((1, 2), np.bool_))
    for a in range(2):
        tree.children[0, ROOT, a] = a + 1
        tree.parent[0, a + 1], tree.action[0, a + 1] = ROOT, a
        tree.virtual_count[0, [ROOT, a + 1]] += 1
    return tree


def expand_two_leaves(tree, same_mover) -> None:
    kernels.expand_and_backup(
        tree, np.zeros(2, np.int32), np.array([1, 2], np.int32),
        np.full((2, 2), 0.5, np.float32), np.array([0.4, 0.4], np.float32),
        np.ones((2, 2), np.bool_), np.zeros(2, np.float32), np.zeros(2, np.bool_),
        np.array(same_mover), False)


def test_expand_and_backup_sets_plus_one_only_where_the_mover_stays():
    tree = two_leaves_below_the_root(per_node_discount=True)
    assert np.isnan(tree.uniform_discount)
    expand_two_leaves(tree, [True, False])
    assert list(tree.discount[0]) == [-1.0, 1.0, -1.0]
    # Root: 0 + 0.4 (the same mover's value) - 0.4 (the opponent's).
    assert tree.value_sum[0, ROOT] == pytest.approx(0.0)


def test_a_uniform_tree_refuses_a_same_mover_leaf():
    # The kernels read a uniform tree's constant, not the array: a +1 written there
    # would be ignored, so expansion refuses it rather than search with -1.
    tree = two_leaves_below_the_root(per_node_discount=False)
    assert tree.uniform_discount == -1.0
    with pytest.raises(ValueError, match="per_node_discount"):
        expand_two_leaves(tree, [True, False])
    # Without same-mover leaves it expands as a per-node tree does.
    tree = two_leaves_below_the_root(per_node_discount=False)
    expand_two_leaves(tree, [False, False])
    assert list(tree.discount[0]) == [-1.0, -1.0, -1.0]
    assert tree.value_sum[0, ROOT] == pytest.approx(-0.8)


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("discount,step_rewards", [(-1.0, False), (0.95, True)])
def test_uniform_and_per_node_trees_search_alike(mode, k, discount, step_rewards):
    # Games whose players alternate: a per-node tree holds the search's discount in
    # every entry, so it must search exactly as the uniform tree (the kernels' fast
    # path) does, to the last bit.
    games = [RandomPathGame(40 + b, terminal_prob=0.2, step_rewards=step_rewards)
             for b in range(4)]
    num_actions = games[0].num_actions
    gumbel = np.random.default_rng(4).gumbel(size=(4, num_actions)).astype(np.float32)
    cfg = RefConfig(mode=mode, num_simulations=None, num_steps=10, leaves_per_step=k,
                    discount=discount, max_num_considered_actions=4, schedule_length=10 * k,
                    gumbel_virtual_loss=k > 1)
    runs = [drive(games, cfg, gumbel=gumbel, per_node_discount=p) for p in (False, True)]
    assert runs[0].tree.uniform_discount == discount
    assert np.isnan(runs[1].tree.uniform_discount)
    for name in ("visit_count", "value_sum", "children", "num_nodes", "min_q", "max_q"):
        np.testing.assert_array_equal(getattr(runs[0].tree, name), getattr(runs[1].tree, name),
                                      err_msg=name)
    np.testing.assert_array_equal(runs[0].visits, runs[1].visits)
    np.testing.assert_array_equal(runs[0].q, runs[1].q)
    np.testing.assert_array_equal(runs[0].value, runs[1].value)
    assert runs[0].steps == runs[1].steps
    if mode == "gumbel":
        results = []
        for run in runs:
            action = np.zeros(4, np.int32)
            policy = np.zeros((4, num_actions), np.float32)
            kernels.gumbel_results(run.tree, cfg.c_visit, cfg.c_scale, action, policy,
                                   np.zeros(num_actions))
            results.append((action, policy))
        np.testing.assert_array_equal(results[0][0], results[1][0])
        np.testing.assert_array_equal(results[0][1], results[1][1])


# ---------------------------------------------------------------------------
# Several trees in one batch.


def batch_games() -> list:
    """Four trees with different legal masks, priors and values."""
    return [
        RandomPathGame(101, num_actions=6, terminal_prob=0.3),
        TableGame(6, priors={(): [0.1, 0.0, 0.3, 0.2, 0.0, 0.4]}, values={(): 0.3},
                  legal={(): [0, 2, 3, 5]}, terminal={(2,): 1.0, (5, 0): -1.0}),
        RandomPathGame(202, num_actions=6, terminal_prob=0.0, max_depth=30),
        TableGame(6, legal={(): [4]}, values={(): -0.7}, terminal={(4, 1): 1.0}),
    ]


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [1, 3])
def test_batch_trees_are_independent(mode, k):
    games = batch_games()
    cfg = RefConfig(mode=mode, num_simulations=None, num_steps=6, leaves_per_step=k,
                    max_num_considered_actions=4)
    gumbel = np.random.default_rng(5).gumbel(size=(4, 6)).astype(np.float32)
    together = drive(games, cfg, gumbel=gumbel)
    for b, game in enumerate(games):
        alone = drive([game], cfg, gumbel=gumbel[b:b + 1])
        n = alone.tree.num_nodes[0]
        assert together.tree.num_nodes[b] == n
        for name in ("visit_count", "value_sum", "parent", "action", "children", "prior",
                     "reward", "terminal"):
            np.testing.assert_array_equal(getattr(together.tree, name)[b, :n],
                                          getattr(alone.tree, name)[0, :n], err_msg=name)
        legal = game.legal_mask(())
        assert not together.visits[b][~legal].any(), "an illegal root action was visited"
        assert (together.tree.children[b, ROOT][~legal] == ILLEGAL).all()
    # Tree 3 has a single legal root action: every simulation goes through it.
    assert together.visits[3].sum() == together.visits[3][4] > 0


# ---------------------------------------------------------------------------
# Random games: kernels against the reference.

RANDOM_CASES = [
    # mode, leaves per step, discount, step rewards, dirichlet, considered actions,
    # probability that the mover keeps the turn, Gumbel virtual loss
    ("puct", 1, -1.0, False, False, 16, 0.0, False),
    ("puct", 3, -1.0, False, False, 16, 0.0, False),
    ("puct", 1, -1.0, False, True, 16, 0.0, False),
    ("puct", 2, 0.95, True, False, 16, 0.0, False),
    ("gumbel", 1, -1.0, False, False, 16, 0.0, False),
    ("gumbel", 3, -1.0, False, False, 16, 0.0, False),
    ("gumbel", 1, -1.0, False, False, 3, 0.0, False),
    ("gumbel", 3, 0.95, True, False, 4, 0.0, False),
    ("puct", 1, -1.0, False, False, 16, 0.4, False),
    ("puct", 3, -1.0, True, True, 16, 0.4, False),
    ("gumbel", 1, -1.0, False, False, 16, 0.4, False),
    ("gumbel", 3, -1.0, True, False, 4, 0.4, False),
    ("gumbel", 1, -1.0, False, False, 16, 0.4, True),
    ("gumbel", 3, -1.0, False, False, 16, 0.0, True),
    ("gumbel", 4, 0.95, True, False, 4, 0.4, True),
]


@pytest.mark.parametrize(
    "mode,k,discount,step_rewards,dirichlet,considered,extra_turns,virtual_loss", RANDOM_CASES)
# No shrinking: a failing example is reported as found (shrinking reruns searches).
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate])
@given(seed=st.integers(0, 10**6), terminal_prob=st.sampled_from([0.0, 0.2, 0.5]),
       num_steps=st.integers(1, 12))
def test_kernels_match_reference_on_random_games(mode, k, discount, step_rewards, dirichlet,
                                                 considered, extra_turns, virtual_loss, seed,
                                                 terminal_prob, num_steps):
    games = [RandomPathGame(seed * 4 + b, terminal_prob=terminal_prob,
                            step_rewards=step_rewards, extra_turns=extra_turns)
             for b in range(4)]
    num_actions = games[0].num_actions
    rng = np.random.default_rng(seed)
    gumbel = rng.gumbel(size=(4, num_actions)).astype(np.float32) if mode == "gumbel" else None
    noise = None
    if dirichlet:
        noise = np.array([rng.dirichlet(np.ones(num_actions)) * g.legal_mask(())
                          for g in games], np.float32)
    cfg = RefConfig(mode=mode, num_simulations=None, num_steps=num_steps, leaves_per_step=k,
                    discount=discount, max_num_considered_actions=considered,
                    schedule_length=num_steps * k, gumbel_virtual_loss=virtual_loss)
    run = drive(games, cfg, gumbel=gumbel, dirichlet=noise, dirichlet_fraction=0.25)
    if mode == "gumbel":
        action = np.zeros(4, np.int32)
        policy = np.zeros((4, num_actions), np.float32)
        kernels.gumbel_results(run.tree, cfg.c_visit, cfg.c_scale, action, policy,
                               np.zeros(num_actions))
    simulations = 0
    for b, game in enumerate(games):
        ref = game.reference(cfg, gumbel=None if gumbel is None else gumbel[b],
                             dirichlet=None if noise is None else noise[b],
                             dirichlet_fraction=0.25)
        assert_same_root(run, b, ref)
        assert_same_tree(run, b, ref)
        simulations += ref.simulations
        if mode == "gumbel":
            assert action[b] == ref.action
            np.testing.assert_allclose(policy[b], ref.policy, atol=1e-5)
    assert sum(run.used) == simulations


# ---------------------------------------------------------------------------
# Compiled and pure-Python kernels agree.
# The whole suite without JIT (as a CI pass):
#   NUMBA_DISABLE_JIT=1 python -m pytest tests/engine/test_kernels.py \
#       tests/engine/test_gumbel.py tests/engine/test_search.py


def fingerprint() -> list:
    """Visit counts and value sums of a few random searches, both modes, k = 1 and 3."""
    out = []
    for seed, (mode, k) in enumerate([("puct", 1), ("puct", 3), ("gumbel", 1), ("gumbel", 3)]):
        games = [RandomPathGame(1000 + 4 * seed + b, terminal_prob=0.3) for b in range(3)]
        gumbel = np.random.default_rng(seed).gumbel(size=(3, 9)).astype(np.float32)
        cfg = RefConfig(mode=mode, num_simulations=None, num_steps=8, leaves_per_step=k,
                        max_num_considered_actions=4)
        run = drive(games, cfg, gumbel=gumbel)
        out.append([run.tree.visit_count.tolist(), run.tree.value_sum.tolist(),
                    run.tree.children.tolist(), run.used])
    return out


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already without JIT")
def test_kernels_give_the_same_trees_without_jit():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    code = ("import json; from tests.engine.test_kernels import fingerprint; "
            "print(json.dumps(fingerprint()))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    without_jit = json.loads(proc.stdout.strip().splitlines()[-1])
    with_jit = fingerprint()
    for (visits, values, children, used), (visits2, values2, children2, used2) in zip(
            with_jit, without_jit):
        assert visits == visits2 and children == children2 and used == used2
        np.testing.assert_allclose(values, values2, atol=1e-9)


# Wide rows: the policy softmax, the root log-policy and the root noise over legal
# actions only (engine.search above NARROW_POLICY), against the plain float64 formulas.

def _wide_case(seed, rows=6, actions=300):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(rows, actions)).astype(np.float32)
    mask = rng.random((rows, actions)) < 0.1
    mask[:, 7] = True  # a legal action in every row
    mask[0] = False
    mask[0, 123] = True  # a row with one legal action
    logits[1, mask[1]] = 0.0  # ties
    logits[2, 7] = 500.0  # a gap that underflows every other legal prior to 0
    return logits, mask


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_softmax_is_the_softmax_over_legal_actions(seed):
    from engine.search import NARROW_POLICY, masked_softmax

    logits, mask = _wide_case(seed)
    assert logits.shape[1] > NARROW_POLICY
    x = np.where(mask, logits.astype(np.float64), -np.inf)
    expected = np.exp(x - x.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = masked_softmax(logits, mask)
    assert got.dtype == np.float32 and np.all(got[~mask] == 0)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
    assert got[0, 123] == 1.0 and got[2, 7] == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_log_softmax_is_floored_and_minus_inf_off_the_mask(seed):
    from engine.search import MIN_LOGIT, masked_log_softmax

    logits, mask = _wide_case(seed)
    x = logits.astype(np.float64)
    top = np.where(mask, x, -np.inf).max(axis=1, keepdims=True)
    lse = top + np.log(np.where(mask, np.exp(x - top), 0).sum(axis=1, keepdims=True))
    expected = np.where(mask, np.maximum(x - lse, MIN_LOGIT), -np.inf)
    got = masked_log_softmax(logits, mask)
    assert np.all(got[~mask] == -np.inf) and np.all(np.isfinite(got[mask]))
    np.testing.assert_allclose(got[mask], expected[mask], rtol=1e-6)
    assert got[0, 123] == 0.0
    # Row 2: every other legal action is 500 below: log prior about -500, not -inf.
    others = mask[2].copy()
    others[7] = False
    assert abs(got[2, 7]) < 1e-6 and np.all(got[2, others] < -400)


def test_wide_log_softmax_of_minus_inf_logits_is_the_floor():
    from engine.search import MIN_LOGIT, masked_log_softmax

    logits = np.full((1, 40), -np.inf, np.float32)
    mask = np.zeros((1, 40), bool)
    mask[0, [3, 9]] = True
    got = masked_log_softmax(logits, mask)
    assert got[0, 3] == got[0, 9] == MIN_LOGIT and np.all(got[0, ~mask[0]] == -np.inf)


def test_wide_root_noise_is_drawn_for_legal_actions_only():
    from engine.search import SearchConfig, expand_roots

    rng = np.random.default_rng(3)
    b, a = 64, 400
    mask = rng.random((b, a)) < 0.05
    mask[:, 0] = True
    logits = np.zeros((b, a), np.float32)
    for mode in ("gumbel", "puct"):
        tree = new_tree(b, 4, a)
        config = SearchConfig(num_simulations=3, root_mode=mode, dirichlet_fraction=0.5)
        expand_roots(tree, config, logits, np.zeros(b, np.float32), mask, rng, True)
        if mode == "gumbel":
            g = tree.gumbel_logits
            assert np.all(g[~mask] == -np.inf)
            # g + log(1/n) over n legal actions: the Gumbel(0, 1) mean is Euler's 0.5772.
            noise = (g + np.log(mask.sum(axis=1, keepdims=True)))[mask]
            assert abs(noise.mean() - 0.5772) < 0.1 and 1.0 < noise.std() < 1.6
        else:
            prior = tree.prior[:, ROOT, :]
            assert np.all(prior[~mask] == 0)
            np.testing.assert_allclose(prior.sum(axis=1), 1.0, rtol=1e-5)
            assert prior[mask].std() > 0  # the noise reached the legal priors
