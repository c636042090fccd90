"""Interactive batching: leaves per step from the Player's batch, in both root modes."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluator import UniformEvaluator
from engine.interactive import INTERACTIVE_BATCH, MIN_STEPS, interactive_leaves
from engine.player import Player
from engine.search import SearchConfig
from games import get_game


class CountingEvaluator:
    """A UniformEvaluator that records the batch size of every call."""

    def __init__(self, game):
        info = game.info
        self.inner = UniformEvaluator(info.num_actions, info.observation_shape)
        self.calls: list[int] = []

    def evaluate(self, obs, mask):
        self.calls.append(len(obs))
        return self.inner.evaluate(obs, mask)


@pytest.mark.parametrize("batch, trees, sims, mode, leaves", [
    (1, 1, 800, "gumbel", 1),      # batch 1: one leaf at a time, as before
    (1, 1, 800, "puct", 1),
    (16, 1, 800, "gumbel", 16),    # one position: the whole batch from its tree
    (16, 1, 32, "gumbel", 16),     # Gumbel: at least MIN_STEPS['gumbel'] = 2 steps
    (16, 1, 16, "gumbel", 8),
    (16, 1, 3, "gumbel", 1),
    (16, 1, 1, "gumbel", 1),
    (16, 1, 32, "puct", 1),        # PUCT: at least 64 steps
    (16, 1, 256, "puct", 4),
    (16, 1, 800, "puct", 12),
    (16, 1, 1024, "puct", 16),
    (16, 4, 1024, "puct", 4),      # several positions share the batch
    (16, 5, 800, "gumbel", 3),
    (16, 64, 800, "gumbel", 1),    # more positions than the batch: one leaf each
    (32, 1, 800, "gumbel", 32),
])
def test_interactive_leaves(batch, trees, sims, mode, leaves):
    assert interactive_leaves(batch, trees, sims, mode) == leaves


def test_the_default_batch_and_steps():
    assert INTERACTIVE_BATCH == 16
    assert set(MIN_STEPS) == {"puct", "gumbel"}  # SearchConfig's root modes


def _player(mode: str, batch: int | None, sims: int = 64):
    game = get_game("connect4")
    evaluator = CountingEvaluator(game)
    search = SearchConfig(num_simulations=sims, root_mode=mode)
    return Player(game, evaluator, search, batch=batch), evaluator


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
def test_a_lone_position_fills_the_network_batch_within_its_budget(mode):
    player, evaluator = _player(mode, batch=16, sims=1024)
    state = player.game.new_initial_state()
    (analysis,) = player.analyze([state])
    assert analysis.visits.sum() == 1024  # the node budget holds with pending visits
    # No terminal position within reach: every simulation is one evaluation, the root one more.
    assert sum(evaluator.calls) == 1025
    assert evaluator.calls[0] == 1 and max(evaluator.calls) == 16
    assert len(evaluator.calls) < 1025 // 4  # batched, not one position per call
    assert player.search.leaves_per_step == 1  # the player's settings are not changed


@pytest.mark.parametrize("mode", ["puct", "gumbel"])
def test_without_a_batch_the_search_settings_hold(mode):
    player, evaluator = _player(mode, batch=None)
    player.analyze([player.game.new_initial_state()], num_simulations=40)
    assert evaluator.calls == [1] * 41
    assert player.with_search(leaves_per_step=4).search_for(1, 40).leaves_per_step == 4
    assert player.search_for(1, 40) == SearchConfig(num_simulations=40, root_mode=mode)


def test_batch_follows_the_number_of_positions_and_the_budget():
    player, evaluator = _player("gumbel", batch=16)
    assert player.search_for(1).leaves_per_step == 16
    assert player.search_for(1, 16).leaves_per_step == 8
    assert player.search_for(4, 800).leaves_per_step == 4
    assert player.search_for(4, 800).num_simulations == 800
    states = []
    for moves in ([], [3], [3, 3], [0, 6]):
        state = player.game.new_initial_state()
        for a in moves:
            state.apply(a)
        states.append(state)
    analyses = player.analyze(states, num_simulations=100)
    assert [int(a.visits.sum()) for a in analyses] == [100] * 4
    assert max(evaluator.calls) <= 16 and sum(evaluator.calls) == 4 * 101


def test_batch_is_kept_by_with_search_and_checked():
    player, _ = _player("gumbel", batch=8)
    assert player.with_search(num_simulations=10).batch == 8
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch"):
            Player(player.game, player.evaluator, batch=bad)


def test_from_checkpoint_takes_a_batch(tiny_checkpoints):
    player = Player.from_checkpoint(tiny_checkpoints["connect4"], batch=16)
    assert player.batch == 16 and player.search.leaves_per_step == 1  # the file's setting
    assert player.search_for(1, 64).leaves_per_step == 16
    assert Player.from_checkpoint(tiny_checkpoints["connect4"]).batch is None


def test_gumbel_keeps_its_visit_schedule_with_several_leaves():
    # A uniform network makes every considered action equal, so sequential halving
    # keeps the same actions whatever it knew when it halved: the root visit counts
    # are the schedule's alone, and several leaves per step must give the same counts.
    single, _ = _player("gumbel", batch=None, sims=64)
    batched, evaluator = _player("gumbel", batch=16, sims=64)
    state = single.game.new_initial_state()
    (one,) = single.analyze([state])
    (many,) = batched.analyze([state])
    assert max(evaluator.calls) > 1
    np.testing.assert_array_equal(one.visits, many.visits)
    assert one.action == many.action
