"""The actor: many games at once, records that replay exactly through the game rules."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.evaluator import UniformEvaluator
from engine.search import SearchConfig
from games import get_game
from selfplay.actor import Actor
from selfplay.config import SelfPlayConfig


def _actor(root_mode, games=4, temperature_moves=2, seed=0, game="tictactoe"):
    g = get_game(game)
    search = SearchConfig(num_simulations=4, root_mode=root_mode, max_num_considered_actions=4)
    return Actor(g, search, SelfPlayConfig(parallel_games=games,
                                           temperature_moves=temperature_moves),
                 np.random.default_rng(seed))


def _check_record(game, record):
    state = game.new_initial_state()
    for t in range(len(record)):
        assert not state.is_terminal()
        legal = state.legal_mask()
        np.testing.assert_array_equal(record.observations[t], state.observation())
        assert record.to_play[t] == state.to_play()
        assert legal[record.actions[t]]
        assert record.policies[t].sum() == pytest.approx(1.0, abs=1e-5)
        assert (record.policies[t][~legal] == 0).all()
        assert -1 <= record.root_values[t] <= 1
        state.apply(int(record.actions[t]))
    assert state.is_terminal()
    np.testing.assert_array_equal(record.returns, state.returns())


@pytest.mark.parametrize("root_mode", ["gumbel", "puct"])
def test_finished_games_replay_exactly_through_the_rules(root_mode):
    actor = _actor(root_mode)
    evaluator = UniformEvaluator(9)
    # No game of tic-tac-toe ends within 3 moves; the games carry over to the next call.
    assert actor.play(evaluator, 3) == []
    records = actor.play(evaluator, 17)
    assert actor.moves_played == 4 * 20
    # A game lasts at most 9 moves: every slot finished at least twice, and its
    # first game began in the first call (the replay below starts from the initial state).
    assert len(records) >= 8
    assert sum(len(r) for r in records) <= actor.moves_played
    for r in records:
        _check_record(actor.game, r)


def test_connect4_records_replay_too():
    actor = _actor("gumbel", games=2, game="connect4")
    records = actor.play(UniformEvaluator(7), 50)
    assert records
    for r in records:
        _check_record(actor.game, r)


def test_same_seed_same_games():
    a = _actor("puct", seed=3).play(UniformEvaluator(9), 10)
    b = _actor("puct", seed=3).play(UniformEvaluator(9), 10)
    c = _actor("puct", seed=4).play(UniformEvaluator(9), 10)
    assert [r.actions.tolist() for r in a] == [r.actions.tolist() for r in b]
    assert [r.actions.tolist() for r in a] != [r.actions.tolist() for r in c]


@pytest.mark.parametrize("root_mode", ["gumbel", "puct"])
def test_opening_plies_are_sampled_then_the_search_move_is_played(root_mode):
    actor = _actor(root_mode, games=64, temperature_moves=2)
    # The search chose action 0 everywhere, but its policy and visits point to 8.
    policy = np.zeros((64, 9), np.float32)
    policy[:, 8] = 1.0
    visits = (policy * 4).astype(np.int32)
    result = SimpleNamespace(action=np.zeros(64, np.int32), policy=policy, visits=visits,
                             prior=policy, q=policy, value=np.zeros(64, np.float32))
    for i, traj in enumerate(actor._trajectories):
        traj.actions.extend([4] * (i % 4))  # plies 0, 1, 2, 3
    chosen = actor._choose(result)
    plies = np.arange(64) % 4
    np.testing.assert_array_equal(chosen[plies < 2], 8)
    np.testing.assert_array_equal(chosen[plies >= 2], 0)


def test_play_stops_between_moves_when_asked():
    actor = _actor("gumbel")
    calls = iter([False, False, False, True])
    actor.play(UniformEvaluator(9), 10, lambda: next(calls))
    assert actor.moves_played == 4 * 3
