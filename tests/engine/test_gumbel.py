"""Tests of Gumbel search: the sequential-halving schedule (engine/gumbel.py) and the
Gumbel selection and result kernels (engine/kernels.py, MODE_GUMBEL).

Hand computations use mctx's defaults c_visit = 50, c_scale = 0.1:
  sigma(q) = (c_visit + max_a N(a)) * c_scale * q_hat,
  q_hat = completed Q rescaled to [0, 1] over the legal actions,
  unvisited actions completed with the mixed value
  (raw_value + sum N * sum_visited p q / sum_visited p) / (1 + sum N).
Every Q below is reward + discount * V(child) with discount -1; children that
end the game have V = 0, so their Q is their reward.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine import kernels
from engine.gumbel import considered_visits_table
from engine.tree import ILLEGAL, ROOT, UNVISITED, new_tree
from tests.engine.test_kernels import action_sequence, child_visits, drive, set_root_gumbel
from tests.reference_mcts import RefConfig, TableGame, considered_visits

# ---------------------------------------------------------------------------
# The considered-visits table.


def test_considered_visits_table_small_cases_by_hand():
    # The paper's schedule: ceil(log2 m) phases, each phase gets n / ceil(log2 m)
    # simulations split evenly among the remaining actions, then half remain.
    # m=4, n=8: 2 phases of 4 simulations: 4 actions x 1 visit, then 2 x 2.
    table = considered_visits_table(4, 8)
    assert table.shape == (5, 8)
    assert list(table[4]) == [0, 0, 0, 0, 1, 1, 2, 2]
    # m=2, n=4: 1 phase of 4 simulations, 2 actions x 2 visits, one round each.
    assert list(considered_visits_table(2, 4)[2]) == [0, 0, 1, 1]
    # m=3, n=8: 2 phases (ceil log2 3): first floor(8 / (2*3)) = 1 round of 3,
    # then 2 actions with floor(8 / (2*2)) = 2 rounds, then 2 more (budget left).
    assert list(considered_visits_table(3, 8)[3]) == [0, 0, 0, 1, 1, 2, 2, 3]
    # m=1 (and 0): the one action takes every simulation.
    assert list(table[1]) == list(range(8))
    assert list(table[0]) == list(range(8))
    # m=4, n=2: fewer simulations than actions: the first two considered actions.
    assert list(considered_visits_table(4, 2)[4]) == [0, 0]
    # m=16, n=64 (mctx's defaults with 64 simulations): 4 phases of 16:
    # 16 x 1, 8 x 2, 4 x 4, 2 x 8.
    row = list(considered_visits_table(16, 64)[16])
    expected = ([0] * 16 + [1] * 8 + [2] * 8 + [3] * 4 + [4] * 4 + [5] * 4 + [6] * 4
                + [v for v in range(7, 15) for _ in range(2)])
    assert row == expected


def test_considered_visits_table_is_read_only():
    table = considered_visits_table(4, 8)
    with pytest.raises(ValueError):
        table[0, 0] = 3


def test_considered_visits_table_matches_reference_schedule():
    for m_max in (1, 2, 3, 4, 5, 8, 16):
        for n in (1, 2, 3, 7, 8, 16, 31, 50, 64, 100):
            table = considered_visits_table(m_max, n)
            for m in range(m_max + 1):
                assert list(table[m]) == considered_visits(m, n), (m_max, n, m)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(m=st.integers(1, 16), n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_schedule_always_leaves_an_action_with_the_scheduled_count(m, n, seed):
    # Sequential halving with m actions, the winner of every round chosen
    # arbitrarily: some action always has exactly the scheduled visit count,
    # the visits add up to n and min(m, n) distinct actions are visited.
    row = considered_visits_table(m, n)[m]
    rng = np.random.default_rng(seed)
    visits = np.zeros(m, np.int64)
    for target in row:
        candidates = np.flatnonzero(visits == target)
        assert len(candidates), (list(row), list(visits), target)
        visits[rng.choice(candidates)] += 1
    assert visits.sum() == n
    assert (visits > 0).sum() == min(m, n)


# ---------------------------------------------------------------------------
# Gumbel search on hand-computed trees.


def gumbel_cfg(num_simulations: int, considered: int = 16) -> RefConfig:
    return RefConfig(mode="gumbel", num_simulations=None, num_steps=num_simulations,
                     max_num_considered_actions=considered, schedule_length=num_simulations)


def gumbel_bandit() -> TableGame:
    """Four actions, uniform priors, each ending the game with reward 0, 1, -1, 0.5."""
    return TableGame(4, values={(): 0.0},
                     terminal={(0,): 0.0, (1,): 1.0, (2,): -1.0, (3,): 0.5})


def test_gumbel_bandit_sequential_halving_hand_computed():
    # m = 4, n = 8, no Gumbel noise, so scores are log(0.25) + sigma(q): sigma decides.
    # Schedule [0, 0, 0, 0, 1, 1, 2, 2].
    # sim 1 (target 0): nothing visited, completed Q all = raw value 0, range 0
    #   -> sigma all 0; tie -> a0. Q(a0) = 0.
    # sim 2 (target 0): mixed = (0 + 1*0)/2 = 0 = Q(a0): sigma all 0 -> a1. Q(a1) = 1.
    # sim 3 (target 0): mixed = (0 + 2*(0.25*0 + 0.25*1)/0.5)/3 = 1/3;
    #   completed [0, 1, 1/3, 1/3]: a2 and a3 tie -> a2. Q(a2) = -1.
    # sim 4 (target 0): only a3 unvisited -> a3. Q(a3) = 0.5.
    # sim 5 (target 1): all have 1 visit; completed = Q = [0, 1, -1, 0.5],
    #   q_hat = [0.5, 1, 0, 0.75], sigma = (50 + 1)*0.1*q_hat -> a1.
    # sim 6 (target 1): a0, a2, a3 have 1 visit; best q_hat: a3.
    # sim 7 (target 2): a1 and a3 have 2 -> a1.  sim 8 (target 2): only a3 -> a3.
    # Final visits [1, 3, 1, 3]. Action: most visited a1, a3 -> a1 (higher sigma).
    # Policy: softmax(log 0.25 + 5.3*q_hat) = softmax([2.65, 5.3, 0, 3.975]).
    # Root value: (0 + 0 + 3*1 + 1*(-1) + 3*0.5) / 9 = 3.5/9.
    game = gumbel_bandit()
    cfg = gumbel_cfg(8, considered=4)
    assert action_sequence(game, cfg, 8) == [0, 1, 2, 3, 1, 3, 1, 3]
    run = drive([game], cfg)
    assert list(run.visits[0]) == [1, 3, 1, 3]
    assert run.value[0] == pytest.approx(3.5 / 9, abs=1e-6)
    action, policy = gumbel_results(run.tree)
    assert action[0] == 1
    logits = np.array([2.65, 5.3, 0.0, 3.975])
    np.testing.assert_allclose(policy[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    ref = game.reference(cfg)
    assert ref.visits == [1, 3, 1, 3] and ref.action == 1


def test_gumbel_considers_only_m_actions_hand_computed():
    # m = 2 of 4 legal actions, n = 8, every Q = 0 and raw value 0: sigma stays 0
    # (range 0), so the score is log prior. Schedule [0, 0, 1, 1, 2, 2, 3, 3]:
    # a3 (prior 0.4), a2 (0.3), then a3, a2 alternately; a0 and a1 never.
    # Final action: a2 and a3 tie on visits, a3 has the larger logit.
    # Policy: softmax(log prior + 0) = prior.
    game = TableGame(4, priors={(): [0.1, 0.2, 0.3, 0.4]},
                     terminal={(a,): 0.0 for a in range(4)})
    cfg = gumbel_cfg(8, considered=2)
    assert action_sequence(game, cfg, 8) == [3, 2, 3, 2, 3, 2, 3, 2]
    run = drive([game], cfg)
    assert list(run.visits[0]) == [0, 0, 4, 4]
    action, policy = gumbel_results(run.tree)
    assert action[0] == 3
    np.testing.assert_allclose(policy[0], [0.1, 0.2, 0.3, 0.4], rtol=1e-5)


def test_gumbel_noise_picks_the_considered_actions_hand_computed():
    # Uniform priors, all Q = 0: the score is g(a) + log 0.25. With
    # g = [0, 0.5, 2, 1] and m = 2, n = 4 (schedule [0, 0, 1, 1]):
    # a2, a3, a2, a3; final action a2 (larger g at equal visits).
    game = TableGame(4, terminal={(a,): 0.0 for a in range(4)})
    cfg = gumbel_cfg(4, considered=2)
    g = np.array([[0.0, 0.5, 2.0, 1.0]], np.float32)
    assert action_sequence(game, cfg, 4, gumbel=g) == [2, 3, 2, 3]
    run = drive([game], cfg, gumbel=g)
    assert list(run.visits[0]) == [0, 0, 2, 2]
    assert gumbel_results(run.tree)[0][0] == 2


def test_gumbel_interior_rule_hand_computed():
    # The root has one legal action (schedule row m = 1: every simulation).
    # Node X = (0,) has priors [0.5, 0.3, 0.2], raw value 0; its actions end
    # the game with rewards 0, 1, -1 for X's mover.
    # sim 1 creates X. At X, score(b) = pi'(b) - N(b) / (1 + sum N):
    # sim 2: nothing visited, sigma 0, pi' = prior -> b0 (0.5). Q(b0) = 0.
    # sim 3: mixed = (0 + 1*0)/2 = 0, sigma 0; b0: 0.5 - 1/2 = 0, b1: 0.3, b2: 0.2 -> b1.
    # sim 4: mixed = (0 + 2*(0.5*0 + 0.3*1)/0.8)/3 = 0.25; completed [0, 1, 0.25];
    #   sigma = 5.1*[0, 1, 0.25]; pi' ~ [0.5, 0.3 e^5.1, 0.2 e^1.275]
    #   = [0.0099, 0.9759, 0.0142]; scores [-0.323, 0.643, 0.014] -> b1.
    # sim 5: mixed = (3*0.375)/4 = 0.28125, sigma = 5.2*[0, 1, 0.28125],
    #   pi' = [0.0090, 0.9755, 0.0155]; scores [-0.241, 0.476, 0.015] -> b1.
    # Values: X gets 0 (sim 1), 0 (b0), 1, 1, 1 -> sum 3 over 5 visits;
    # root: 0 (raw) - 0 - 0 - 1 - 1 - 1 = -3 over 6 visits.
    game = TableGame(3, legal={(): [0]}, priors={(0,): [0.5, 0.3, 0.2]},
                     terminal={(0, 0): 0.0, (0, 1): 1.0, (0, 2): -1.0})
    cfg = gumbel_cfg(5)
    assert action_sequence(game, cfg, 5, at=(0,)) == [None, 0, 1, 1, 1]
    run = drive([game], cfg)
    assert list(child_visits(run, (0,))) == [1, 3, 0]
    assert run.tree.value_sum[0, 1] == pytest.approx(3.0)
    assert run.value[0] == pytest.approx(-3 / 6)


def test_interior_rule_counts_a_pending_leaf_as_a_loss_hand_computed():
    # A node with priors [0.9, 0.1], raw value 0; a0's leaf awaits the network
    # (0 visits, 1 pending), a1 has no node. sum N = 1.
    # N alone (no loss): every completed Q is the mixed value 0, sigma 0, pi' = prior;
    #   scores a0: 0.9 - 1/2 = 0.4, a1: 0.1 -> a0, the pending leaf (a collision).
    # Pending as a loss of -1: completed [-1, 0], scale (50 + 0) * 0.1 / 1 = 5,
    #   sigma [0, 5]; pi' ~ [0.9 e^-5, 0.1] = [0.0572, 0.9428];
    #   scores [0.0572 - 0.5, 0.9428] -> a1.
    tree = hand_built_root([0.9, 0.1], 0.0, {0: (0, 0.0, 0.0, 1)})
    assert interior_action(tree) == 0
    assert interior_action(tree, -1.0) == 1


def test_interior_rule_counts_pending_visits_of_a_visited_child_as_losses_hand_computed():
    # Priors [0.9, 0.1], raw value 0; a0 has 2 visits with Q 0.5 (child value_sum -1)
    # and 1 pending, a1 no node. sum N = 3. mixed = (0 + 2 * 0.5) / 3 = 1/3 either way
    # (completed visits only).
    # No loss: completed [0.5, 1/3], scale 5.2 / (1/6), sigma [5.2, 0];
    #   pi' = [0.9994, 0.0006]; scores [0.9994 - 3/4, 0.0006] -> a0.
    # Loss -1: Q(a0) = (2 * 0.5 - 1) / 3 = 0; completed [0, 1/3], sigma [0, 5.2];
    #   pi' ~ [0.9 e^-5.2, 0.1] = [0.0473, 0.9527]; scores [0.0473 - 3/4, 0.9527] -> a1.
    tree = hand_built_root([0.9, 0.1], 0.0, {0: (2, -1.0, 0.0, 1)})
    assert interior_action(tree) == 0
    assert interior_action(tree, -1.0) == 1
    # A loss at the top of the value range changes nothing here: Q(a0) = 2/3.
    assert interior_action(tree, 1.0) == 0


def interior_action(tree, loss=np.inf, c_visit=50.0, c_scale=0.1):
    num_actions = tree.prior.shape[2]
    args = (tree.children, tree.visit_count, tree.virtual_count, tree.value_sum, tree.reward,
            tree.discount, tree.uniform_discount, tree.prior, tree.raw_value)
    return kernels.gumbel_interior_action(*args, 0, ROOT, c_visit, c_scale,
                                          np.zeros(num_actions), np.zeros(num_actions, np.int32),
                                          np.zeros(num_actions, np.bool_), loss)


def test_second_descent_of_a_step_goes_around_the_pending_leaf():
    # The root has one legal action (schedule m = 1); X = (0,) has priors [0.9, 0.1]
    # and value 0. Step 1 (one leaf) creates X. Step 2, two leaves: the first descent
    # creates X's a0; the second passes the root and reaches X, where a0's leaf is
    # pending: counted as a loss (the tree's lower bound, -1) it gives way to a1 (the
    # first test above), where N alone would send the descent into a0 and drop it.
    # (gumbel_virtual_loss: the driver's choice for searches of many steps, search.py.)
    game = TableGame(2, legal={(): [0]}, priors={(0,): [0.9, 0.1]}, values={(0,): 0.0})
    run = drive([game], replace(gumbel_cfg(3), num_steps=2, gumbel_virtual_loss=True),
                ks=[1, 2])
    assert [(parent, action) for _, _, parent, action in run.steps[1]] == [(1, 0), (1, 1)]
    assert list(child_visits(run, (0,))) == [1, 1]


# ---------------------------------------------------------------------------
# Completed Q and the final action, on trees built by hand.


def gumbel_results(tree, c_visit=50.0, c_scale=0.1):
    num_trees, num_actions = tree.gumbel_logits.shape
    action = np.zeros(num_trees, np.int32)
    policy = np.zeros((num_trees, num_actions), np.float32)
    kernels.gumbel_results(tree, c_visit, c_scale, action, policy, np.zeros(num_actions))
    return action, policy


def hand_built_root(prior, raw_value, children, gumbel=None, capacity=8,
                    per_node_discount=False):
    """One tree whose root has `prior` (0 = illegal) and children
    {action: (visits, value_sum, reward, pending)}; unlisted legal actions unvisited.
    Multipliers -1, per node (writable in `discount`) if asked."""
    prior = np.asarray(prior, np.float32)
    tree = new_tree(1, capacity, len(prior), per_node_discount=per_node_discount)
    tree.prior[0, ROOT] = prior
    tree.children[0, ROOT] = np.where(prior > 0, UNVISITED, ILLEGAL)
    tree.raw_value[0, ROOT] = raw_value
    tree.expanded[0, ROOT] = True
    node = 1
    total_visits = 1
    total_value = raw_value
    for a, (visits, value_sum, reward, pending) in children.items():
        tree.children[0, ROOT, a] = node
        tree.parent[0, node], tree.action[0, node] = ROOT, a
        tree.visit_count[0, node], tree.value_sum[0, node] = visits, value_sum
        tree.reward[0, node], tree.virtual_count[0, node] = reward, pending
        tree.expanded[0, node] = visits > 0
        total_visits += visits
        total_value += reward * visits - value_sum
        node += 1
    tree.num_nodes[0] = node
    tree.visit_count[0, ROOT], tree.value_sum[0, ROOT] = total_visits, total_value
    set_root_gumbel(tree, np.zeros((1, len(prior)), np.float32) if gumbel is None
                    else np.asarray([gumbel], np.float32))
    return tree


def test_completed_q_mixed_value_hand_computed():
    # Priors [0.4, 0.3, 0.2, 0.1, illegal], raw value 0.3.
    # a0: 2 visits, child value_sum -0.8 -> Q = -(-0.8/2) = 0.4
    # a1: 1 visit, child value_sum 0.5 -> Q = -0.5
    # a2: node created, only a pending visit -> unvisited; a3: no node.
    # mixed = (0.3 + 3*(0.4*0.4 + 0.3*(-0.5))/(0.4 + 0.3)) / (1 + 3)
    #       = (0.3 + 3*0.0142857) / 4 = 0.0857143
    # completed [0.4, -0.5, 0.0857143, 0.0857143]; lo -0.5, hi 0.4:
    # q_hat = [1, 0, 0.6507937, 0.6507937]; sigma = (50 + 2)*0.1*q_hat.
    # Policy ~ prior * exp(sigma); the action: the only most visited, a0.
    tree = hand_built_root([0.4, 0.3, 0.2, 0.1, 0.0], 0.3,
                           {0: (2, -0.8, 0.0, 0), 1: (1, 0.5, 0.0, 0), 2: (0, 0.0, 0.0, 1)})
    action, policy = gumbel_results(tree)
    assert action[0] == 0
    sigma = 5.2 * np.array([1.0, 0.0, 0.5857143 / 0.9, 0.5857143 / 0.9])
    expected = np.array([0.4, 0.3, 0.2, 0.1]) * np.exp(sigma)
    np.testing.assert_allclose(policy[0], list(expected / expected.sum()) + [0.0], rtol=1e-5)


def test_completed_q_without_visits_leaves_the_prior():
    # No visited child: every completed Q is the raw value, range 0 -> sigma 0.
    tree = hand_built_root([0.5, 0.0, 0.25, 0.25], -0.4, {})
    action, policy = gumbel_results(tree)
    np.testing.assert_allclose(policy[0], [0.5, 0.0, 0.25, 0.25], rtol=1e-6)
    assert action[0] == 0


def test_completed_q_of_a_same_mover_child_is_its_value_hand_computed():
    # Priors [0.5, 0.5], raw value 0, each child visited once with value_sum 0.6 for its
    # player to move; after a0 the root's mover moves again (multiplier +1): Q = +0.6,
    # after a1 the opponent: Q = -0.6. q_hat = [1, 0], sigma = (50 + 1) * 0.1 * q_hat.
    # The policy is softmax(log 0.5 + sigma) = [e^5.1, 1] / (e^5.1 + 1).
    tree = hand_built_root([0.5, 0.5], 0.0, {0: (1, 0.6, 0.0, 0), 1: (1, 0.6, 0.0, 0)},
                           per_node_discount=True)
    tree.discount[0, 1] = 1.0
    action, policy = gumbel_results(tree, c_visit=50.0)
    e = math.exp(5.1)
    np.testing.assert_allclose(policy[0], [e / (e + 1), 1 / (e + 1)], rtol=1e-5)
    assert action[0] == 0
    # Alternating (both -1): equal Q, the prior's policy.
    tree.discount[0, 1] = -1.0
    np.testing.assert_allclose(gumbel_results(tree)[1][0], [0.5, 0.5], rtol=1e-6)


def test_gumbel_search_picks_the_extra_turn_hand_computed():
    # Action 0 keeps the turn into a position worth 0.9 to the same player; action 1
    # passes it into one worth -0.5 to the opponent (+0.5 for us). Seen right,
    # a0 (Q 0.9) beats a1 (Q 0.5); with the fixed -1, a0 would be -0.9.
    game = TableGame(2, values={(0,): 0.9, (1,): -0.5}, extra_turns={(0,)},
                     terminal={(0, 0): 1.0, (0, 1): 1.0, (1, 0): -1.0, (1, 1): -1.0})
    cfg = RefConfig(mode="gumbel", num_simulations=None, num_steps=2,
                    max_num_considered_actions=2, schedule_length=2)
    run = drive([game], cfg)
    np.testing.assert_allclose(run.q[0], [0.9, 0.5], atol=1e-6)
    action, _ = gumbel_results(run.tree)
    assert action[0] == 0


@pytest.mark.parametrize("g1,expected", [(0.9, 1), (0.8, 0)])
def test_final_action_is_gumbel_plus_logits_plus_sigma_among_most_visited(g1, expected):
    # a0, a1 both visited twice, Q 0.5 and 0.4 (child value_sums -1.0, -0.8);
    # a2 once with Q 1 (not among the most visited, whatever its score).
    # completed [0.5, 0.4, 1]: q_hat = [1/6, 0, 1], sigma = 5.2*q_hat.
    # Scores (equal logits dropped): a0 5.2/6 = 0.867 + g0 (0); a1 0 + g1;
    # a2 would win with g2 = 50 but has fewer visits.
    tree = hand_built_root([1 / 3, 1 / 3, 1 / 3], 0.0,
                           {0: (2, -1.0, 0.0, 0), 1: (2, -0.8, 0.0, 0), 2: (1, -1.0, 0.0, 0)},
                           gumbel=[0.0, g1, 50.0])
    action, _ = gumbel_results(tree)
    assert action[0] == expected


# ---------------------------------------------------------------------------
# A prior that underflows to 0 in float32.


class FixedLogits:
    """An Evaluator: the same logits for every position (illegal entries masked later)."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, np.float32)

    def evaluate(self, obs, mask):
        return np.tile(self.logits, (len(obs), 1)), np.zeros(len(obs), np.float32)


@pytest.mark.parametrize("noise", [False, True])
def test_a_legal_action_whose_prior_underflows_is_still_considered(noise):
    """Root logits [0, 0, -200]: softmax gives the third action the prior 0 in float32, and
    log 0 = -inf made its score -inf: visits [3, 3, 0]. Sequential halving with m = 3
    considered actions and n = 6 simulations visits each considered action once in the
    first phase (schedule [0, 0, 0, 1, 1, 2], test above), so the third gets exactly one
    visit and the other two share the remaining five (as mctx does, working on logits)."""
    from engine.search import SearchConfig, run_search
    from games import get_game

    game = get_game("tictactoe")
    state = game.new_initial_state()
    for action in (0, 1, 2, 4, 3, 5):  # x o x / x o o / . . . : x to move, 3 cells empty
        state.apply(action)
    assert list(np.flatnonzero(state.legal_mask())) == [6, 7, 8]
    logits = np.zeros(9, np.float32)
    logits[8] = -200.0
    config = SearchConfig(num_simulations=6, root_mode="gumbel", max_num_considered_actions=3)
    result = run_search(game.new_search_batch([state], 7), FixedLogits(logits), config,
                        9, game.info.observation_shape, np.random.default_rng(0), noise)
    visits = result.visits[0]
    assert visits[8] == 1 and visits[6] + visits[7] == 5, visits
    assert np.isfinite(result.policy[0]).all() and result.policy[0][8] < 1e-6


# ---------------------------------------------------------------------------
# The fused selection kernels against the formula they replaced, on random nodes.
# Before the kernels gathered every child's statistics in one pass, they computed
# sigma(completed Q) over the children, then the maximum, the normaliser and the
# argmax in passes of their own. That version, transcribed below in plain Python
# (float64 throughout, operations in the same order), must choose the same actions
# and give the same sigma to the last bit.


def previous_completed_q(t, b, node, c_visit, c_scale, loss=np.inf):
    """(sigma: list[float] with 0 for illegal actions, sigma of the mixed value).
    Each child's Q uses its own multiplier t.discount, and with a finite `loss` pending
    visits count as visits that returned it (the changes since)."""
    num_actions = t.prior.shape[2]
    sum_visits, max_visits, sum_probs, weighted = 0, 0, 0.0, 0.0
    lo, hi, any_unvisited = np.inf, -np.inf, False
    out = [0.0] * num_actions
    for a in range(num_actions):
        child = int(t.children[b, node, a])
        if child == ILLEGAL:
            continue
        pending = int(t.virtual_count[b, child]) if child >= 0 and loss < np.inf else 0
        if child >= 0 and t.visit_count[b, child] > 0:
            n = int(t.visit_count[b, child])
            q = (float(t.reward[b, child])
                 + float(t.discount[b, child]) * float(t.value_sum[b, child]) / n)
            p = max(float(t.prior[b, node, a]), 1e-30)
            sum_visits += n
            sum_probs += p
            weighted += p * q
            max_visits = max(max_visits, n)
            if pending:
                q = (q * n + loss * pending) / (n + pending)
            out[a] = q
            lo, hi = min(lo, q), max(hi, q)
        elif pending:
            out[a] = loss
            lo, hi = min(lo, loss), max(hi, loss)
        else:
            any_unvisited = True
    mixed = float(t.raw_value[b, node])
    if sum_visits > 0:
        mixed = (mixed + sum_visits * weighted / sum_probs) / (1.0 + sum_visits)
    if any_unvisited:
        lo, hi = min(lo, mixed), max(hi, mixed)
    scale = (c_visit + max_visits) * c_scale / max(hi - lo, 1e-8)
    for a in range(num_actions):
        child = int(t.children[b, node, a])
        if child == ILLEGAL:
            out[a] = 0.0
        elif child >= 0 and (t.visit_count[b, child] > 0
                             or (loss < np.inf and t.virtual_count[b, child] > 0)):
            out[a] = (out[a] - lo) * scale
        else:
            out[a] = (mixed - lo) * scale
    return out, (mixed - lo) * scale


def _pending(t, b, child):
    return int(t.visit_count[b, child]) + int(t.virtual_count[b, child]) if child >= 0 else 0


def previous_root_action(t, b, c_visit, c_scale, table):
    sigma, _ = previous_completed_q(t, b, ROOT, c_visit, c_scale)
    children = [int(c) for c in t.children[b, ROOT]]
    legal = [a for a, c in enumerate(children) if c != ILLEGAL]
    simulation = sum(_pending(t, b, c) for c in children)
    m = min(table.shape[0] - 1, len(legal))
    target = table[m, min(simulation, table.shape[1] - 1)]
    best, best_score, fallback, fallback_key = -1, -np.inf, -1, np.inf
    for a in legal:
        score = float(t.gumbel_logits[b, a]) + sigma[a]
        n = _pending(t, b, children[a])
        if n == target and score > best_score:
            best, best_score = a, score
        if n * 1e6 - score < fallback_key:
            fallback, fallback_key = a, n * 1e6 - score
    return best if best >= 0 else fallback


def previous_interior_action(t, b, node, c_visit, c_scale, loss=np.inf):
    sigma, sigma_mixed = previous_completed_q(t, b, node, c_visit, c_scale, loss)
    children = [int(c) for c in t.children[b, node]]
    legal = [a for a, c in enumerate(children) if c != ILLEGAL]
    top = max(sigma[a] for a in legal)
    total = sum(_pending(t, b, c) for c in children)
    weights, z = {}, 0.0
    for a in legal:
        child = children[a]
        visited = child >= 0 and (t.visit_count[b, child] > 0
                                  or (loss < np.inf and t.virtual_count[b, child] > 0))
        weights[a] = float(t.prior[b, node, a]) * math.exp((sigma[a] if visited
                                                              else sigma_mixed) - top)
        z += weights[a]
    best, best_score, inv = -1, -np.inf, 1.0 / (1.0 + total)
    for a in legal:
        score = weights[a] / z - _pending(t, b, children[a]) * inv
        if score > best_score:
            best, best_score = a, score
    return best


def random_node_tree(rng, num_actions, discount=-1.0, per_node_discount=False):
    """One tree whose root has random legal actions, priors, children (none, pending
    only, visited with or without pending visits), values and Gumbel logits. Values,
    priors and logits are drawn from small sets half the time, so that ties occur.
    Multipliers `discount` (new_tree's arguments)."""
    tied = rng.random() < 0.5
    legal = rng.random(num_actions) < rng.uniform(0.3, 1.0)
    legal[rng.integers(num_actions)] = True
    prior = (rng.choice([0.1, 0.2, 1e-32], num_actions) if tied
             else rng.dirichlet(np.ones(num_actions))) * legal
    tree = new_tree(1, num_actions + 1, num_actions, discount=discount,
                    per_node_discount=per_node_discount)
    tree.prior[0, ROOT] = prior
    tree.children[0, ROOT] = np.where(legal, UNVISITED, ILLEGAL)
    tree.raw_value[0, ROOT] = rng.choice([0.0, 0.5]) if tied else rng.uniform(-1, 1)
    tree.visit_count[0, ROOT] = 1
    node = 1
    for a in np.flatnonzero(legal):
        kind = rng.integers(3)  # 0: no node, 1: pending visits only, 2: visited
        if kind == 0:
            continue
        tree.children[0, ROOT, a] = node
        visits = int(rng.integers(1, 30)) if kind == 2 else 0
        tree.visit_count[0, node] = visits
        tree.virtual_count[0, node] = rng.integers(1, 3) if kind == 1 else rng.integers(0, 2)
        value = rng.choice([-1.0, 0.0, 0.5]) if tied else rng.uniform(-1, 1)
        tree.value_sum[0, node] = visits * value
        tree.reward[0, node] = rng.choice([0.0, 1.0]) if rng.random() < 0.3 else 0.0
        tree.visit_count[0, ROOT] += visits
        node += 1
    tree.num_nodes[0] = node
    tree.gumbel_logits[0] = rng.choice([0.0, 1.0], num_actions) if tied else rng.gumbel(
        size=num_actions)
    return tree


COMPILED = os.environ.get("NUMBA_DISABLE_JIT") != "1"
"""Without JIT, numpy's float32 scalars keep some sums in float32 where the compiled
kernels work in float64 (the transcription's arithmetic): sigma then agrees to rounding."""


@pytest.mark.parametrize("num_actions", [1, 3, 7, 82])
def test_selection_kernels_match_their_previous_formula_on_random_nodes(num_actions):
    rng = np.random.default_rng(num_actions)
    work = np.zeros(num_actions)
    counts = np.zeros(num_actions, np.int32)
    visited = np.zeros(num_actions, np.bool_)
    for _ in range(150):
        # The search's discount everywhere (a uniform tree), or per node with +1 for
        # some children (the mover moves again).
        per_node = bool(rng.random() < 0.5)
        t = random_node_tree(rng, num_actions, float(rng.choice([-1.0, 0.95])), per_node)
        if per_node:
            t.discount[0, rng.random(t.discount.shape[1]) < 0.3] = 1.0
        c_visit, c_scale = 50.0, float(rng.choice([0.1, 1.0, 0.0]))
        args = (t.children, t.visit_count, t.virtual_count, t.value_sum, t.reward, t.discount,
                t.uniform_discount, t.prior, t.raw_value)
        sigma, sigma_mixed = previous_completed_q(t, 0, ROOT, c_visit, c_scale)
        got = kernels.completed_q(*args, 0, ROOT, c_visit, c_scale, work, counts, visited)
        if COMPILED:
            assert got == sigma_mixed and list(work) == sigma
        else:
                # float32 rounding on terms up to about 10 (c_visit, the scaled Q): a few ulps.
                np.testing.assert_allclose([got] + list(work), [sigma_mixed] + sigma, rtol=1e-5,
                                           atol=1e-5)
        table = considered_visits_table(int(rng.integers(1, 17)), int(rng.integers(1, 100)))
        assert kernels.gumbel_root_action(
            *args, t.gumbel_logits, 0, c_visit, c_scale, table, work, counts,
            visited) == previous_root_action(t, 0, c_visit, c_scale, table)
        assert kernels.gumbel_interior_action(
            *args, 0, ROOT, c_visit, c_scale, work, counts,
            visited) == previous_interior_action(t, 0, ROOT, c_visit, c_scale)
        # Pending visits as losses: the lower bound, or any value (MuZero's bounds).
        loss = float(rng.choice([-1.0, rng.uniform(-1, 1)]))
        assert kernels.gumbel_interior_action(
            *args, 0, ROOT, c_visit, c_scale, work, counts, visited,
            loss) == previous_interior_action(t, 0, ROOT, c_visit, c_scale, loss)
        # Without pending visits (one leaf per step) the loss changes nothing.
        t.virtual_count[:] = 0
        assert kernels.gumbel_interior_action(
            *args, 0, ROOT, c_visit, c_scale, work, counts, visited,
            loss) == previous_interior_action(t, 0, ROOT, c_visit, c_scale)
