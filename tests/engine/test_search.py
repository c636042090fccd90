"""Tests of the search driver (engine/search.py): run_search over a SearchBatch,
its results, root noise and move sampling.

The games are path games from tests/reference_mcts.py: a position is the tuple
of actions from the root, the observation encodes it, and the evaluator
computes priors and values from it, so every tree of a batch can have its own
legal moves, rewards and network outputs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.search import (SearchBatchExpander, SearchConfig, SearchResult, Timings,
                           run_search, run_tree_search, sample_actions)
from tests.reference_mcts import (OBS_LEN, PathBatch, PathEvaluator, RandomPathGame,
                                  RefConfig, TableGame)


def search(games, rng=None, add_noise=False, timings=None, alternating=True, **config):
    """run_search of games[b] in tree b; returns (result, evaluator, batch)."""
    cfg = SearchConfig(**config)
    batch, evaluator = PathBatch(games), PathEvaluator(games)
    result = run_search(batch, evaluator, cfg, games[0].num_actions, (OBS_LEN,), rng=rng,
                        add_noise=add_noise, timings=timings, alternating=alternating)
    return result, evaluator, batch


def ref_config(**config) -> RefConfig:
    """The reference's settings for SearchConfig(**config)."""
    cfg = SearchConfig(**config)
    return RefConfig(mode=cfg.root_mode, num_simulations=cfg.num_simulations,
                     leaves_per_step=cfg.leaves_per_step, pb_c_init=cfg.pb_c_init,
                     pb_c_base=cfg.pb_c_base, fpu_reduction=cfg.fpu_reduction,
                     discount=cfg.discount, c_visit=cfg.c_visit, c_scale=cfg.c_scale,
                     max_num_considered_actions=cfg.max_num_considered_actions,
                     schedule_length=cfg.num_simulations)


def random_games(seed: int, count: int = 4, **kwargs) -> list:
    return [RandomPathGame(seed * 100 + b, **kwargs) for b in range(count)]


def assert_matches_reference(result: SearchResult, b: int, ref, tol: float = 1e-5):
    assert list(result.visits[b]) == ref.visits, f"tree {b}"
    assert result.value[b] == pytest.approx(ref.value, abs=tol), f"tree {b}"
    np.testing.assert_allclose(result.q[b], np.array(ref.q, np.float32), atol=tol,
                               err_msg=f"tree {b}")
    np.testing.assert_allclose(result.policy[b], ref.policy, atol=tol, err_msg=f"tree {b}")
    np.testing.assert_allclose(result.prior[b], ref.prior, rtol=1e-5, atol=1e-7)
    assert result.action[b] == ref.action, f"tree {b}"


class FixedNoise:
    """Stands in for np.random.Generator where run_search draws root Gumbel noise."""

    def __init__(self, gumbel: np.ndarray):
        self.sample = np.asarray(gumbel, np.float64)

    def gumbel(self, *args, size=None, **kwargs):
        assert size is None or tuple(np.atleast_1d(size)) == self.sample.shape
        return self.sample.copy()


# ---------------------------------------------------------------------------
# Hand-computed searches (the arithmetic is in test_kernels.py / test_gumbel.py).


def test_puct_two_ply_result_hand_computed():
    from tests.engine.test_kernels import two_ply_game
    result, evaluator, _ = search([two_ply_game()], root_mode="puct", num_simulations=5)
    assert list(result.visits[0]) == [2, 3]
    np.testing.assert_allclose(result.q[0], [-0.5, 1.0], atol=1e-6)
    assert result.value[0] == pytest.approx(1 / 3, abs=1e-6)
    assert result.raw_value[0] == 0.0
    np.testing.assert_allclose(result.prior[0], [0.6, 0.4], rtol=1e-6)
    np.testing.assert_allclose(result.policy[0], [0.4, 0.6], rtol=1e-6)
    assert result.action[0] == 1
    # One root evaluation and one per non-terminal new leaf: only (0,).
    assert evaluator.seen == [(0, ()), (0, (0,))]


def test_gumbel_bandit_result_hand_computed():
    from tests.engine.test_gumbel import gumbel_bandit
    # The hand computation (tests/engine/test_gumbel.py) uses mctx's c_scale = 0.1.
    result, _, _ = search([gumbel_bandit()], root_mode="gumbel", num_simulations=8,
                          max_num_considered_actions=4, c_scale=0.1)
    assert list(result.visits[0]) == [1, 3, 1, 3]
    assert result.action[0] == 1
    logits = np.array([2.65, 5.3, 0.0, 3.975])
    np.testing.assert_allclose(result.policy[0], np.exp(logits) / np.exp(logits).sum(),
                               rtol=1e-5)
    assert result.value[0] == pytest.approx(3.5 / 9, abs=1e-6)


def test_puct_action_ties_go_to_the_higher_prior():
    # Priors [0.4, 0.6]; a0 ends the game with reward 0, a1 with -1.
    # sim 1: a1 (higher prior). Root: sum -1, visits 2, V = -0.5, fpu = 0.25 - 0.25 = 0.
    # sim 2 (N=2): a0: 0 + 1.2502*0.4*1.4142 = 0.707; a1: Qn(-1) = 0 + 1.2502*0.6*1.4142/2
    #   = 0.530 -> a0. Visits [1, 1]: the move is a1, the higher prior.
    game = TableGame(2, priors={(): [0.4, 0.6]}, terminal={(0,): 0.0, (1,): -1.0})
    result, _, _ = search([game], root_mode="puct", num_simulations=2)
    assert list(result.visits[0]) == [1, 1]
    assert result.action[0] == 1


# ---------------------------------------------------------------------------
# Budgets and batching.


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("num_simulations", [1, 7, 16])
def test_every_tree_gets_num_simulations_with_one_leaf_per_step(mode, num_simulations):
    games = random_games(num_simulations, terminal_prob=0.4, max_depth=4)
    timings = Timings()
    result, evaluator, batch = search(games, root_mode=mode, num_simulations=num_simulations,
                                      timings=timings)
    assert list(result.visits.sum(axis=1)) == [num_simulations] * 4
    assert timings.evaluations == len(evaluator.seen)
    assert timings.batches == len(evaluator.calls)
    for b, game in enumerate(games):
        assert not result.visits[b][~game.legal_mask(())].any()
        assert result.policy[b][~game.legal_mask(())].sum() == 0
    assert np.allclose(result.policy.sum(axis=1), 1.0)
    # One network call per step, the roots first; never a terminal position.
    assert evaluator.calls[0] == 4 and len(evaluator.calls) <= num_simulations + 1
    assert all(0 < n <= 4 for n in evaluator.calls)
    created = {(b, path) for b, _, path in batch.expanded_leaves}
    assert len(created) == len(batch.expanded_leaves)
    evaluated = evaluator.seen[4:]
    assert len(set(evaluated)) == len(evaluated)
    for b, path in evaluated:
        assert (b, path) in created and games[b].legal_mask(path).any()


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("seed", range(4))
def test_run_search_matches_reference(mode, k, seed):
    games = random_games(seed, terminal_prob=(0.1, 0.3, 0.5, 0.3)[seed])
    config = dict(root_mode=mode, num_simulations=12, leaves_per_step=k,
                  max_num_considered_actions=(16, 4, 2, 16)[seed])
    result, _, _ = search(games, **config)
    for b, game in enumerate(games):
        assert_matches_reference(result, b, game.reference(ref_config(**config)))


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("seed", range(3))
def test_run_search_with_extra_turns_matches_reference(mode, k, seed):
    # A player keeps the turn after 40% of the moves: the driver asks the batch who
    # moves (alternating=False) and those steps back up with +1.
    games = random_games(seed + 20, terminal_prob=0.3, extra_turns=0.4)
    config = dict(root_mode=mode, num_simulations=16, leaves_per_step=k,
                  max_num_considered_actions=4)
    result, _, _ = search(games, alternating=False, **config)
    for b, game in enumerate(games):
        assert_matches_reference(result, b, game.reference(ref_config(**config)))
    # Searched as if the players alternated, the same games give other values.
    wrong, _, _ = search(games, **config)
    assert not np.allclose(wrong.value, result.value)


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("discount,value_bounds", [(-1.0, (-1.0, 1.0)), (0.95, None)])
def test_per_node_multipliers_search_as_the_uniform_discount_when_players_alternate(
        mode, discount, value_bounds):
    # alternating=False builds a tree with per-node multipliers (the kernels read the
    # array); on games whose players do alternate, every entry is the discount and the
    # search must be the uniform tree's to the last bit, noise and min-max bounds included.
    games = random_games(30, terminal_prob=0.3, step_rewards=True)
    config = SearchConfig(root_mode=mode, num_simulations=16, leaves_per_step=2,
                          max_num_considered_actions=4, discount=discount)
    results = []
    for alternating in (True, False):
        expander = SearchBatchExpander(PathBatch(games), PathEvaluator(games),
                                       games[0].num_actions, (OBS_LEN,), 2, alternating)
        results.append(run_tree_search(expander, config, np.random.default_rng(3), True,
                                       value_bounds=value_bounds, alternating=alternating))
    for name, uniform, per_node in zip(SearchResult._fields, *results):
        np.testing.assert_array_equal(uniform, per_node, err_msg=name)


def test_a_game_that_does_not_alternate_needs_a_mover_batch():
    class Plain:
        num_trees = 1

    with pytest.raises(TypeError, match="players_to_move"):
        run_search(Plain(), None, SearchConfig(), 3, (1,), alternating=False)


@pytest.mark.parametrize("seed", range(3))
def test_gumbel_noise_matches_reference(seed):
    games = random_games(seed + 10, terminal_prob=0.3)
    g = np.random.default_rng(seed).gumbel(size=(4, games[0].num_actions)).astype(np.float32)
    config = dict(root_mode="gumbel", num_simulations=10, max_num_considered_actions=4)
    result, _, _ = search(games, rng=FixedNoise(g), add_noise=True, **config)
    for b, game in enumerate(games):
        assert_matches_reference(result, b, game.reference(ref_config(**config), gumbel=g[b]))


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
@pytest.mark.parametrize("k", [1, 3])
def test_trees_in_a_batch_are_searched_independently(mode, k):
    # Different legal masks, priors, values and terminal rates per tree.
    games = [RandomPathGame(7, terminal_prob=0.0, max_depth=30),
             RandomPathGame(8, terminal_prob=0.6, max_depth=3),
             TableGame(9, legal={(): [2, 5]}, values={(): 0.5}, terminal={(2,): 1.0}),
             RandomPathGame(9, num_actions=9, terminal_prob=0.3)]
    config = dict(root_mode=mode, num_simulations=10, leaves_per_step=k)
    together, _, _ = search(games, **config)
    for b, game in enumerate(games):
        alone, _, _ = search([game], **config)
        assert list(together.visits[b]) == list(alone.visits[0]), f"tree {b}"
        assert together.value[b] == alone.value[0]
        np.testing.assert_array_equal(together.policy[b], alone.policy[0])
        assert together.action[b] == alone.action[0]


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
def test_terminal_revisits_do_not_exceed_the_budget(mode):
    # Both root actions end the game: after the first step every descent is a
    # terminal revisit, which never collides. Each tree must get exactly
    # num_simulations visits whatever leaves_per_step is.
    game = TableGame(2, terminal={(0,): 0.0, (1,): 0.0})
    for k in (1, 2, 3):
        result, _, _ = search([game], root_mode=mode, num_simulations=3, leaves_per_step=k)
        assert result.visits.sum() == 3, f"leaves_per_step={k}: {result.visits}"


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
def test_no_tree_exceeds_its_budget_with_several_leaves_per_step(mode):
    for seed in range(3):
        games = random_games(seed + 20, terminal_prob=0.4, max_depth=5)
        result, _, _ = search(games, root_mode=mode, num_simulations=10, leaves_per_step=3)
        assert (result.visits.sum(axis=1) <= 10).all(), result.visits.sum(axis=1)


# ---------------------------------------------------------------------------
# Root noise.


def test_dirichlet_noise_is_mixed_into_legal_actions_only():
    games = random_games(3)
    clean, _, _ = search(games, root_mode="puct", num_simulations=4)
    noisy, _, _ = search(games, rng=np.random.default_rng(0), add_noise=True,
                         root_mode="puct", num_simulations=4, dirichlet_fraction=0.25)
    for b, game in enumerate(games):
        legal = game.legal_mask(())
        assert not noisy.prior[b][~legal].any()
        assert noisy.prior[b].sum() == pytest.approx(1.0, abs=1e-5)
        # prior = 0.75 clean + 0.25 noise: the noise is a distribution over legal actions.
        noise = (noisy.prior[b] - 0.75 * clean.prior[b]) / 0.25
        assert (noise[legal] >= -1e-5).all()
        assert noise[legal].sum() == pytest.approx(1.0, abs=1e-4)
        assert not np.allclose(noisy.prior[b], clean.prior[b])
        assert not noisy.visits[b][~legal].any()


def test_noise_is_reproducible_and_needs_an_rng():
    games = random_games(4)
    for mode in ("puct", "gumbel"):
        a, _, _ = search(games, rng=np.random.default_rng(1), add_noise=True, root_mode=mode,
                         num_simulations=8)
        b, _, _ = search(games, rng=np.random.default_rng(1), add_noise=True, root_mode=mode,
                         num_simulations=8)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        with pytest.raises(ValueError):
            search(games, add_noise=True, root_mode=mode, num_simulations=8)


def test_no_dirichlet_noise_when_fraction_is_zero():
    games = random_games(5)
    clean, _, _ = search(games, root_mode="puct", num_simulations=4)
    noisy, _, _ = search(games, rng=np.random.default_rng(0), add_noise=True,
                         root_mode="puct", num_simulations=4, dirichlet_fraction=0.0)
    np.testing.assert_array_equal(clean.prior, noisy.prior)
    np.testing.assert_array_equal(clean.visits, noisy.visits)


# ---------------------------------------------------------------------------
# Move sampling.


def result_with_visits(visits, action=None) -> SearchResult:
    visits = np.asarray(visits, np.int32)
    num_trees, num_actions = visits.shape
    action = visits.argmax(axis=1).astype(np.int32) if action is None else np.asarray(action)
    zeros = np.zeros((num_trees, num_actions), np.float32)
    return SearchResult(visits, zeros, zeros, np.zeros(num_trees, np.float32),
                        np.zeros(num_trees, np.float32), zeros, action.astype(np.int32))


def test_sample_actions_temperature_zero_returns_the_search_move():
    result = result_with_visits([[1, 5, 2], [4, 0, 4]], action=[2, 0])
    moves = sample_actions(result, 0.0, np.random.default_rng(0))
    assert list(moves) == [2, 0]
    moves[0] = 1
    assert result.action[0] == 2, "sample_actions must return a copy"


def test_sample_actions_follows_visit_counts_and_never_picks_unvisited():
    result = result_with_visits([[0, 30, 0, 10, 60, 0], [5, 0, 0, 0, 0, 5]])
    rng = np.random.default_rng(0)
    draws = np.array([sample_actions(result, 1.0, rng) for _ in range(4000)])
    for b in range(2):
        freq = np.bincount(draws[:, b], minlength=6) / len(draws)
        assert not freq[result.visits[b] == 0].any()
        expected = result.visits[b] / result.visits[b].sum()
        np.testing.assert_allclose(freq, expected, atol=0.03)
    # Temperature 0.5 squares the visits: 30^2 : 10^2 : 60^2 = 9 : 1 : 36.
    draws = np.array([sample_actions(result, 0.5, rng)[0] for _ in range(4000)])
    freq = np.bincount(draws, minlength=6) / len(draws)
    np.testing.assert_allclose(freq, np.array([0, 9, 0, 1, 36, 0]) / 46, atol=0.03)


@pytest.mark.parametrize("temperature", [0.05, 1e-3])
def test_sample_actions_low_temperature_is_the_most_visited_move(temperature):
    # visits^(1/T) overflows float64 for small T; the draw must still be a legal
    # index, and at these temperatures the most visited move.
    result = result_with_visits([[0, 3, 1], [2, 0, 900]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert list(sample_actions(result, temperature, rng)) == [1, 2]


# ---------------------------------------------------------------------------
# Settings.


@pytest.mark.parametrize("bad", [dict(root_mode="ucb"), dict(num_simulations=0),
                                 dict(leaves_per_step=0),
                                 dict(max_num_considered_actions=0)])
def test_search_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        SearchConfig(**bad)


# ---------------------------------------------------------------------------
# The driver's dependencies.


def test_the_search_driver_imports_no_torch():
    # A search over the rules runs without torch in the process (STYLE.md rule 3):
    # the driver, its kernels and AlphaZero's leaf expander; MuZero's latents live
    # in engine.muzero_search.
    code = ("import sys; import engine, engine.search; "
            "from engine.search import SearchConfig, run_search; "
            "from tests.reference_mcts import OBS_LEN, PathBatch, PathEvaluator, "
            "RandomPathGame; "
            "games = [RandomPathGame(b) for b in range(2)]; "
            "r = run_search(PathBatch(games), PathEvaluator(games), "
            "SearchConfig(num_simulations=8), games[0].num_actions, (OBS_LEN,)); "
            "assert r.visits.sum() > 0; "
            "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "ok"
