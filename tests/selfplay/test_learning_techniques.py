"""Settings that learn more per network evaluation: the q/z value target, playout cap
randomization, the growing window and the cosine learning rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluator import UniformEvaluator
from engine.search import SearchConfig
from games import get_game
from selfplay.actor import Actor
from selfplay.config import LearnerConfig, SelfPlayConfig
from selfplay.learner import scheduled_lr
from selfplay.records import GameRecord, read_shard, write_shard
from selfplay.replay import ReplayBuffer, growing_window
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, random_record


def _record(full=None) -> GameRecord:
    """Four positions, players 0 1 0 1, player 0 won; root values 0.2 0.4 -0.6 0.8."""
    return GameRecord(observations=np.zeros((4,) + TTT_SHAPE, np.float32),
                      actions=np.arange(4, dtype=np.int32),
                      policies=np.full((4, TTT_ACTIONS), 1 / 9, np.float32),
                      root_values=np.array([0.2, 0.4, -0.6, 0.8], np.float32),
                      to_play=np.array([0, 1, 0, 1], np.int8),
                      returns=np.array([1.0, -1.0], np.float32), full=full)


def test_value_target_mixes_the_result_and_the_search_value():
    record = _record()
    np.testing.assert_allclose(record.value_targets(), [1, -1, 1, -1])
    # (1 - w) z + w q with w = 0.25: by hand.
    np.testing.assert_allclose(record.value_targets(0.25),
                               [0.75 + 0.05, -0.75 + 0.1, 0.75 - 0.15, -0.75 + 0.2], atol=1e-6)
    np.testing.assert_allclose(record.value_targets(1.0), record.root_values)
    buffer = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS, q_weight=0.5)
    buffer.add(record)
    np.testing.assert_allclose(buffer.value[:4], [0.6, -0.3, 0.2, -0.1], atol=1e-6)


def test_only_full_searches_enter_the_window_and_the_mask_survives_a_shard(tmp_path):
    record = _record(full=np.array([True, False, False, True]))
    buffer = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS, q_weight=0.5)
    buffer.add(record)
    assert buffer.size == 2 and buffer.positions_added == 2
    np.testing.assert_allclose(buffer.value[:2], [0.6, -0.1], atol=1e-6)
    buffer.add(_record(full=np.zeros(4, bool)))  # no full search: nothing, no game
    assert buffer.size == 2 and buffer.games == 1
    path = tmp_path / "shard-00000000.msgpack"
    plain = random_record(np.random.default_rng(0), 5)
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, [record, plain])
    back = read_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS)
    np.testing.assert_array_equal(back[0].full, record.full)
    assert back[1].full is None  # all full: stored as before, read as before
    np.testing.assert_array_equal(back[0].actions, record.actions)


def test_sampling_the_recent_positions_draws_only_from_the_newest():
    buffer = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS)
    rng = np.random.default_rng(0)
    for start in (0, 6, 12):  # 18 positions through a ring of 10: it wrapped
        buffer.add(random_record(rng, 6, marker=float(start)))
    _, policy, _ = buffer.sample(2000, rng, recent=4)
    assert set(policy[:, 0].tolist()) == {14.0, 15.0, 16.0, 17.0}
    _, policy, _ = buffer.sample(2000, rng)
    assert set(policy[:, 0].tolist()) == set(float(m) for m in range(8, 18))


def test_growing_window_follows_katagos_formula():
    assert growing_window(123_456, 0, 300_000) == 300_000  # off
    assert growing_window(500, 1000, 300_000) == 1000
    # N = 16 c: c (1 + 0.4 (16 ** 0.75 - 1) / 0.75) = c (1 + 0.4 * 7 / 0.75).
    assert growing_window(16_000, 1000, 300_000) == int(1000 * (1 + 0.4 * 7 / 0.75))
    assert growing_window(10**9, 1000, 300_000) == 300_000
    sizes = [growing_window(n, 1000, 10**9) for n in range(1000, 10**6, 9973)]
    assert sizes == sorted(sizes)


def test_cosine_learning_rate_falls_from_the_rate_to_its_final_share():
    config = LearnerConfig(learning_rate=0.01, lr_schedule="cosine", lr_final=0.1)
    assert scheduled_lr(config, 0.0) == pytest.approx(0.01)
    assert scheduled_lr(config, 0.5) == pytest.approx(0.0055)
    assert scheduled_lr(config, 1.0) == pytest.approx(0.001)
    assert scheduled_lr(config, 7.0) == pytest.approx(0.001)
    assert scheduled_lr(LearnerConfig(learning_rate=0.01), 0.9) == 0.01
    with pytest.raises(ValueError, match="lr_schedule"):
        LearnerConfig(lr_schedule="linear")


def test_playout_cap_randomization_searches_a_share_in_full():
    game = get_game("connect4")
    search = SearchConfig(num_simulations=8, root_mode="gumbel", max_num_considered_actions=4)
    selfplay = SelfPlayConfig(parallel_games=4, temperature_moves=0, full_search_fraction=0.5,
                              fast_simulations=2)
    actor = Actor(game, search, selfplay, np.random.default_rng(3))
    records = actor.play(UniformEvaluator(game.info.num_actions), 60)
    flags = [f for r in records for f in (r.full if r.full is not None else [True] * len(r))]
    flags += [f for t in actor._trajectories for f in t.full]
    moves = len(flags)
    assert moves == 4 * 60
    full = sum(flags)
    assert 0.25 < full / moves < 0.75  # 60 draws of p = 0.5, a batch of 4 each
    # Each move costs its search's simulations: 8 in full, 2 fast.
    assert actor.simulations == 8 * full + 2 * (moves - full)
    assert math.isclose(full % 4, 0)  # drawn for the whole batch at once
    with pytest.raises(ValueError, match="full_search_fraction"):
        SelfPlayConfig(full_search_fraction=0.0)


# The weights' moving average ------------------------------------------------------------

def _learner(decay: float):
    import torch

    from engine.networks import NetworkConfig
    from selfplay.learner import Learner

    torch.manual_seed(0)
    return Learner(get_game("tictactoe"), NetworkConfig(blocks=1, channels=8, value_hidden=8),
                   LearnerConfig(batch_size=8, ema_decay=decay))


def _window():
    buffer = ReplayBuffer(100, TTT_SHAPE, TTT_ACTIONS)
    rng = np.random.default_rng(1)
    for _ in range(10):
        buffer.add(random_record(rng, 6))
    return buffer


def test_the_average_moves_a_share_of_the_way_to_each_step():
    learner = _learner(0.75)
    before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    learner.train(_window(), 1, np.random.default_rng(0))
    raw = learner.net.state_dict()
    avg = learner.state_dict_cpu()  # what checkpoints and self-play get
    changed = [k for k in before if k.endswith("weight") and not (raw[k] == before[k]).all()]
    assert changed
    for k in changed:  # 0.75 old + 0.25 new, by hand
        np.testing.assert_allclose(avg[k].numpy(), (0.75 * before[k] + 0.25 * raw[k]).numpy(),
                                   rtol=1e-5, atol=1e-7)
    plain = _learner(0.0)
    assert plain.ema_net is None and plain.playing_net is plain.net


def test_the_raw_weights_round_trip_through_the_train_state():
    learner = _learner(0.9)
    learner.train(_window(), 3, np.random.default_rng(0))
    state = learner.save_state({"note": 1})
    checkpoint = learner.state_dict_cpu()
    other = _learner(0.9)
    assert other.load_state(state) == {"note": 1}
    other.load_playing_weights(checkpoint)
    for mine, theirs in ((learner.net, other.net), (learner.ema_net, other.ema_net)):
        for k, v in mine.state_dict().items():
            assert (theirs.state_dict()[k] == v).all(), k
    with pytest.raises(ValueError, match="keeps no average"):
        _learner(0.0).load_state(state)
    with pytest.raises(ValueError, match="raw weights"):
        other.load_state(_learner(0.0).save_state({}))
    with pytest.raises(ValueError, match="ema_decay"):
        LearnerConfig(ema_decay=1.0)


def test_random_moves_replace_a_share_of_the_searched_ones():
    game = get_game("connect4")
    search = SearchConfig(num_simulations=4, root_mode="gumbel", max_num_considered_actions=4)

    def first_moves(fraction):
        actor = Actor(game, search, SelfPlayConfig(parallel_games=400, temperature_moves=0,
                                                   random_move_fraction=fraction),
                      np.random.default_rng(5))
        # A prior with all its mass on column 0: the search plays it.
        actor.play(_FirstColumn(game.info.num_actions), 1)
        return ([t.actions[0] for t in actor._trajectories],
                [int(np.argmax(t.policies[0])) for t in actor._trajectories])

    played, targets = first_moves(0.0)
    assert set(played) == {0} and set(targets) == {0}
    played, targets = first_moves(0.5)
    share = sum(a != 0 for a in played) / len(played)
    assert 0.3 < share < 0.56  # half the moves random, 6 in 7 of those not column 0
    assert set(targets) == {0}  # the policy targets stay the search's
    with pytest.raises(ValueError, match="random_move_fraction"):
        SelfPlayConfig(random_move_fraction=1.0)


class _FirstColumn:
    """Logits that favour the lowest action strongly; value 0."""

    def __init__(self, num_actions):
        self.logits = np.array([[20.0] + [0.0] * (num_actions - 1)], np.float32)

    def evaluate(self, obs, mask):
        return np.repeat(self.logits, len(obs), axis=0), np.zeros(len(obs), np.float32)


def test_a_wdl_head_learns_a_mixed_target_as_its_nearest_distribution():
    import torch
    import torch.nn.functional as F

    from engine.networks import NetworkConfig
    from selfplay.learner import Learner

    torch.manual_seed(0)
    learner = Learner(get_game("tictactoe"),
                      NetworkConfig(blocks=1, channels=8, value_hidden=8, value_head="wdl"),
                      LearnerConfig(value_target_q=0.5, augment=False))
    obs = torch.zeros((4,) + TTT_SHAPE)
    obs[:, 0, 0, 0] = torch.arange(4.0)
    policy = torch.full((4, TTT_ACTIONS), 1 / 9)
    target = torch.tensor([1.0, 0.0, -1.0, 0.5])
    learner.net.train()
    with torch.no_grad():
        _, wdl = learner.net(obs)
    log_p = F.log_softmax(wdl, dim=1)
    # (win, draw, loss) targets by hand: one class for +1, 0, -1; half win, half draw at 0.5.
    want = -(log_p[0, 0] + log_p[1, 1] + log_p[2, 2] + 0.5 * log_p[3, 0]
             + 0.5 * log_p[3, 1]) / 4
    got = learner._step(obs, policy, target)["loss/value"]
    assert got == pytest.approx(float(want), rel=1e-5)
