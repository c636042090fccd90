"""KataGo's forced playouts and policy target pruning (PUCT self-play).

Hand computations use pb_c_init 1.25, pb_c_base 19652:
  pb_c(N) = (1.25 + ln((N + 19653) / 19652)) * sqrt(N), N the root's visits
and Q normalised with the fixed bounds [-1, 1]: Qn = (Q + 1) / 2.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import kernels
from engine.search import SearchConfig, prune_forced_playouts, run_search
from engine.tree import ROOT, UNVISITED, new_tree
from games import get_game


def _root_with_children(visits, q, priors):
    """One tree: a root whose visited children have the given visits and Q for the
    root's mover, each expanded with A unvisited moves below it; the others unvisited."""
    a = len(priors)
    tree = new_tree(1, 64, a)
    tree.prior[0, ROOT] = priors
    tree.children[0, ROOT, :] = UNVISITED
    tree.expanded[0, ROOT] = True
    tree.visit_count[0, ROOT] = 1 + sum(visits)
    child = 0
    for action, (n, value) in enumerate(zip(visits, q)):
        if n == 0:
            continue
        child += 1
        tree.children[0, ROOT, action] = child
        tree.parent[0, child] = ROOT
        tree.action[0, child] = action
        tree.visit_count[0, child] = n
        tree.value_sum[0, child] = -value * n  # the child's mover sees -Q
        tree.expanded[0, child] = True
        tree.prior[0, child] = 1.0 / a
        tree.children[0, child, :] = UNVISITED
    tree.num_nodes[0] = child + 1
    return tree


def _root_choice(tree, forced_k):
    """The root action of the next descent (the leaf's parent is that child)."""
    out = [np.zeros(1, np.int32) for _ in range(4)]
    kernels.select_leaves(tree, 1, kernels.MODE_PUCT, 1.25, 19652.0, 0.25, False,
                          50.0, 0.1, np.zeros((2, 2), np.int32), *out,
                          np.zeros(3), forced_k)
    _, parent, _, _ = out
    return int(tree.action[0, parent[0]])


def test_a_child_owed_playouts_is_searched_before_puct():
    # Visits 6, 1, 1 (total 8), Q 0.9, -0.5, -0.5: PUCT wants action 0 (Qn 0.95 against
    # 0.25 for the others, and the exploration terms are below 0.6 x pb_c(9) / 2 = 0.94).
    # With k = 2: n_forced(1) = sqrt(2 x 0.3 x 8) = 2.19 > 1 and n_forced(2) =
    # sqrt(2 x 0.1 x 8) = 1.26 > 1: both owed, action 1 has the higher prior.
    priors = np.array([0.6, 0.3, 0.1], np.float32)
    assert _root_choice(_root_with_children([6, 1, 1], [0.9, -0.5, -0.5], priors), 0.0) == 0
    assert _root_choice(_root_with_children([6, 1, 1], [0.9, -0.5, -0.5], priors), 2.0) == 1
    # k = 0.3: sqrt(0.3 x 0.3 x 8) = 0.85 and sqrt(0.3 x 0.1 x 8) = 0.49, both below 1.
    assert _root_choice(_root_with_children([6, 1, 1], [0.9, -0.5, -0.5], priors), 0.3) == 0


def test_unvisited_children_are_never_forced():
    # Only action 0 was visited (4 visits); 1 and 2 would be owed sqrt(2 x 0.4 x 4) = 1.8
    # visits, but KataGo forces visited children only, and action 0 is not owed any
    # (sqrt(2 x 0.2 x 4) = 1.26 < 4). With k = 100 action 0 is owed sqrt(80) = 8.9.
    tree = _root_with_children([4, 0, 0], [0.9, 0.0, 0.0], np.array([0.2, 0.4, 0.4],
                                                                       np.float32))
    args = (tree.children, tree.visit_count, tree.virtual_count, tree.prior, 0)
    assert kernels.forced_root_action(*args, 2.0) == -1
    assert kernels.forced_root_action(*args, 100.0) == 0


CONFIG = SearchConfig(root_mode="puct", forced_playouts=2.0)
BOUNDS = (np.array([-1.0], np.float32), np.array([1.0], np.float32))


def test_pruning_takes_back_what_puct_would_not_have_spent():
    # Visits 10, 4, 2, 0 (N = 16, root visits 17): pb_c(17) = 1.2509 x sqrt(17) = 5.1577.
    # Qn = 0.75, 0.25, 0.7; PUCT(best) = 0.75 + 5.1577 x 0.4 / 11 = 0.93755.
    # Action 1: n_forced = sqrt(2 x 0.3 x 16) = 3.098, so at most 4 - 3.098 = 0.902
    #   visits would remain, but PUCT(1) < 0.93755 needs n > 5.1577 x 0.3 / 0.68755 - 1
    #   = 1.2505: 1.2505 remain.
    # Action 2: PUCT(2) < 0.93755 needs n > 5.1577 x 0.2 / 0.23755 - 1 = 3.342 > 2:
    #   none can go.
    visits = np.array([[10, 4, 2, 0]], np.int32)
    q = np.array([[0.5, -0.5, 0.4, np.nan]], np.float32)
    prior = np.array([[0.4, 0.3, 0.2, 0.1]], np.float32)
    pruned = prune_forced_playouts(visits, q, prior, np.array([0]), *BOUNDS, CONFIG)
    np.testing.assert_allclose(pruned, [[10, 1.2505, 2, 0]], rtol=1e-3)


def test_a_child_left_with_one_visit_or_less_is_dropped():
    # Visits 10, 2 (N = 12): pb_c(13) = 1.2507 x sqrt(13) = 4.5095; Qn 0.75 and 0.
    # PUCT(best) = 0.75 + 4.5095 x 0.8 / 11 = 1.07796; action 1 needs n > 4.5095 x 0.2
    # / 1.07796 - 1 = -0.163 and may give back sqrt(2 x 0.2 x 12) = 2.19: all of it.
    visits = np.array([[10, 2]], np.int32)
    q = np.array([[0.5, -1.0]], np.float32)
    prior = np.array([[0.8, 0.2]], np.float32)
    pruned = prune_forced_playouts(visits, q, prior, np.array([0]), *BOUNDS, CONFIG)
    np.testing.assert_array_equal(pruned, [[10, 0]])


@pytest.fixture(scope="module")
def connect4():
    return get_game("connect4")


class CentreEvaluator:
    """Logits 6 for the centre column, 0 elsewhere; value 0: a prior that starves the
    other moves, which forced playouts then visit more."""

    def evaluate(self, obs, mask):
        logits = np.zeros(mask.shape, np.float32)
        logits[:, 3] = 6.0
        return logits, np.zeros(len(obs), np.float32)


def _search(game, config, add_noise, seed=0):
    states = [game.new_initial_state() for _ in range(16)]
    batch = game.new_search_batch(states, config.num_simulations + 1)
    info = game.info
    return run_search(batch, CentreEvaluator(), config, info.num_actions,
                      info.observation_shape, np.random.default_rng(seed), add_noise)


def test_self_play_targets_are_sharper_than_the_visits(connect4):
    config = SearchConfig(root_mode="puct", num_simulations=64, forced_playouts=2.0)
    result = _search(connect4, config, add_noise=True)
    share = result.visits / result.visits.sum(axis=1, keepdims=True)
    rows = np.arange(16)
    # The chosen move keeps every visit, others lose some: its share of the target grows.
    assert (result.policy[rows, result.action] >= share[rows, result.action] - 1e-6).all()
    assert (result.policy[rows, result.action] > share[rows, result.action] + 1e-3).any()
    assert (result.policy[result.visits == 0] == 0).all()
    np.testing.assert_allclose(result.policy.sum(axis=1), 1.0, rtol=1e-5)


def test_forced_playouts_only_act_with_root_noise(connect4):
    config = SearchConfig(root_mode="puct", num_simulations=64, forced_playouts=2.0)
    off = dataclasses.replace(config, forced_playouts=0.0)
    with_k, without = _search(connect4, config, False), _search(connect4, off, False)
    np.testing.assert_array_equal(with_k.visits, without.visits)
    np.testing.assert_array_equal(with_k.policy, without.policy)
    # With noise (the same draws) they change the search, taking visits from the
    # favoured centre for the moves the prior starves.
    noisy_k, noisy = _search(connect4, config, True), _search(connect4, off, True)
    assert not np.array_equal(noisy_k.visits, noisy.visits)
    assert noisy_k.visits[:, 3].sum() < noisy.visits[:, 3].sum()


def test_forced_playouts_must_not_be_negative():
    with pytest.raises(ValueError, match="forced_playouts"):
        SearchConfig(forced_playouts=-1.0)
