"""Go's auxiliary targets: final ownership and score, from the board to the learner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.networks import NetworkConfig, PolicyValueNet
from games import get_game
from games.go import GoGame, area_owner
from selfplay import config as cfg
from selfplay.config import LearnerConfig
from selfplay.learner import Learner
from selfplay.loop import train
from selfplay.records import GameRecord, ReplayError, encode_shard, read_shard
from selfplay.replay import ReplayBuffer, load_window
from tests.selfplay.util import random_record, tiny_overrides


def slow_owner(board: np.ndarray) -> np.ndarray:
    """Tromp-Taylor owner of each point by flood fill in Python: 1 black, 2 white, 0."""
    size = board.shape[0]
    owner = board.copy()
    for r in range(size):
        for c in range(size):
            if board[r, c]:
                continue
            region, touches, todo = set(), set(), [(r, c)]
            while todo:
                p = todo.pop()
                if p in region:
                    continue
                region.add(p)
                for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    q = (p[0] + dr, p[1] + dc)
                    if 0 <= q[0] < size and 0 <= q[1] < size:
                        if board[q]:
                            touches.add(int(board[q]))
                        else:
                            todo.append(q)
            owner[r, c] = touches.pop() if len(touches) == 1 else 0
    return owner


def play(game: GoGame, moves: str):
    state = game.new_initial_state()
    for move in moves.split():
        state.apply(game.vertex_to_action(move))
    return state


def test_walls_split_the_board_between_the_colours():
    # Black holds column C, White column D (Black passes its last turn): A-C are
    # Black's (15 points), D-E White's (10); nothing is neutral.
    game = GoGame(5, 7.5)
    state = play(game, "C1 D1 C2 D2 C3 D3 C4 D4 C5 D5")
    ownership, score = state.final_territory()
    expected = np.tile([1, 1, 1, -1, -1], (5, 1)).ravel()
    np.testing.assert_array_equal(ownership, expected)
    assert ownership.dtype == np.int8
    assert score == 15 - 10 - 7.5 == state.area_score()


def test_a_point_touching_both_colours_is_nobodys():
    game = GoGame(5, 0.5)
    state = play(game, "A1 C1")  # B1 and everything else touch both
    ownership, score = state.final_territory()
    assert ownership[game.vertex_to_action("A1")] == 1
    assert ownership[game.vertex_to_action("C1")] == -1
    assert (ownership == 0).sum() == 23 and score == -0.5


def test_owner_kernel_matches_a_flood_fill_on_random_boards():
    rng = np.random.default_rng(3)
    for size in (5, 9, 19):
        for fill in (0.1, 0.4, 0.7):
            board = np.where(rng.random((size, size)) < fill,
                             rng.integers(1, 3, (size, size)), 0).astype(np.int8)
            owner = area_owner(board.ravel(), size).reshape(size, size)
            np.testing.assert_array_equal(owner, slow_owner(board))


def test_territory_agrees_with_the_score_of_played_games():
    game = get_game("go9")
    rng = np.random.default_rng(0)
    for _ in range(5):
        state = game.new_initial_state()
        while not state.is_terminal():
            legal = np.flatnonzero(state.legal_mask())
            state.apply(int(rng.choice(legal)))
        ownership, score = state.final_territory()
        assert ownership.sum() - game.komi == pytest.approx(score)
        assert np.sign(score) == state.returns()[0]


def _record_with_territory(rng, length=6, size=5) -> GameRecord:
    record = random_record(rng, length, shape=(17, size, size), num_actions=size * size + 1)
    record.ownership = rng.integers(-1, 2, size * size).astype(np.int8)
    record.score = 3.5
    return record


def test_shards_keep_ownership_and_score(tmp_path):
    rng = np.random.default_rng(1)
    with_territory, without = _record_with_territory(rng), random_record(
        rng, 4, shape=(17, 5, 5), num_actions=26)
    path = tmp_path / "shard.msgpack"
    path.write_bytes(encode_shard("go/5", (17, 5, 5), 26, [with_territory, without]))
    first, second = read_shard(path, "go/5", (17, 5, 5), 26)
    np.testing.assert_array_equal(first.ownership, with_territory.ownership)
    assert first.score == 3.5
    assert second.ownership is None and second.score is None


@pytest.mark.parametrize("field,value,message", [
    ("ownership", np.full(25, 2, np.int8).tobytes(), "other than -1, 0 and 1"),
    ("ownership", b"\x01" * 24, "has 24 bytes"),
    ("score", float("nan"), "bad score"),
    ("score", None, "bad score"),
])
def test_damaged_territory_is_refused(tmp_path, field, value, message):
    import msgpack

    rng = np.random.default_rng(2)
    raw = msgpack.unpackb(encode_shard("go/5", (17, 5, 5), 26, [_record_with_territory(rng)]))
    raw["games"][0][field] = value
    path = tmp_path / "shard.msgpack"
    path.write_bytes(msgpack.packb(raw, use_bin_type=True))
    with pytest.raises(ReplayError, match=message):
        read_shard(path, "go/5", (17, 5, 5), 26)


def test_the_window_keeps_targets_from_the_movers_side(tmp_path):
    rng = np.random.default_rng(4)
    record = _record_with_territory(rng, length=4)
    plain = random_record(rng, 3, shape=(17, 5, 5), num_actions=26)
    buffer = ReplayBuffer(16, (17, 5, 5), 26, territory=True)
    buffer.add(record)
    buffer.add(plain)
    # Player 0 moves at even positions, player 1 at odd ones.
    for t in range(4):
        sign = 1 if t % 2 == 0 else -1
        np.testing.assert_array_equal(buffer.ownership[t], sign * record.ownership)
        assert buffer.score[t] == sign * 3.5 and buffer.has_territory[t]
    assert not buffer.has_territory[4:7].any()
    batch = buffer.sample_batch(32, np.random.default_rng(0))
    assert batch["ownership"].shape == (32, 25) and batch["has_territory"].dtype == bool
    # A window without territory samples what it always did, whatever the records hold.
    plain_window = ReplayBuffer(8, (17, 5, 5), 26)
    plain_window.add(record)
    assert set(plain_window.sample_batch(2, rng)) == {"obs", "policy", "value"}


def test_ownership_moves_with_the_board_under_symmetries():
    game = get_game("go/5")
    learner = Learner(game, NetworkConfig(blocks=1, channels=8, value_hidden=8,
                                          aux_heads=True), LearnerConfig(augment=True))
    rng = np.random.default_rng(5)
    obs = (rng.random((64, 17, 5, 5)) < 0.3).astype(np.float32)
    policy = np.zeros((64, 26), np.float32)
    policy[:, 25] = 1.0
    ownership = obs[:, 0].reshape(64, 25) * 2 - 1  # the first plane, as -1 / +1
    new_obs, new_policy, new_ownership = learner._augment(obs.copy(), policy, rng,
                                                          ownership.copy())
    assert new_obs.shape == obs.shape and new_ownership.shape == ownership.shape
    np.testing.assert_array_equal(new_ownership, new_obs[:, 0].reshape(64, 25) * 2 - 1)
    assert (new_ownership != ownership).any(axis=1).sum() > 32  # most positions moved


def test_aux_heads_need_a_game_with_territory():
    with pytest.raises(ValueError, match="territory"):
        Learner(get_game("connect4"), NetworkConfig(blocks=1, channels=8, aux_heads=True),
                LearnerConfig())
    with pytest.raises(ValueError, match="aux_heads"):
        NetworkConfig(aux_heads=1)


def test_play_sees_the_same_network_with_or_without_aux_heads():
    torch.manual_seed(0)
    net = PolicyValueNet((17, 5, 5), 26, NetworkConfig(blocks=1, channels=8, aux_heads=True))
    net.eval()
    obs = torch.rand(3, 17, 5, 5)
    policy, value = net(obs)
    policy_aux, value_aux, ownership, score = net.forward_aux(obs)
    torch.testing.assert_close(policy, policy_aux)
    torch.testing.assert_close(value, value_aux)
    assert ownership.shape == (3, 25) and score.shape == (3,)
    with pytest.raises(ValueError):
        PolicyValueNet((17, 5, 5), 26, NetworkConfig(blocks=1, channels=8)).forward_aux(obs)


def test_the_learner_fits_ownership_and_score():
    # Positions whose ownership is the first plane's stones (+1) and empty points (-1),
    # and whose score is the stone count: a function of the board the heads can learn.
    torch.manual_seed(0)
    game = get_game("go/5")
    learner = Learner(game, NetworkConfig(blocks=1, channels=16, value_hidden=16,
                                          aux_heads=True),
                      LearnerConfig(batch_size=64, learning_rate=3e-3, augment=False))
    rng = np.random.default_rng(6)
    buffer = ReplayBuffer(512, (17, 5, 5), 26, territory=True)
    for _ in range(64):
        record = random_record(rng, 1, shape=(17, 5, 5), num_actions=26)
        record.to_play[:] = 0
        record.ownership = (record.observations[0, 0].ravel() * 2 - 1).astype(np.int8)
        record.score = float(record.ownership.sum())
        buffer.add(record)
    first = learner.train(buffer, 5, np.random.default_rng(0))
    for _ in range(8):
        last = learner.train(buffer, 25, np.random.default_rng(1))
    assert last["loss/ownership"] < 0.5 * first["loss/ownership"]
    assert last["loss/score"] < 0.5 * first["loss/score"]


def test_go_training_records_territory_and_reports_its_losses(tmp_path):
    run = tmp_path / "run"
    config = cfg.merge(cfg.preset("go/5"), tiny_overrides(
        "run.max_iterations=2", "selfplay.parallel_games=4", "selfplay.moves_per_iteration=80",
        "network.aux_heads=true"))
    summary = train(config, run, progress=False)
    assert summary.games >= 4
    records = [r for path in sorted((run / "replay").glob("shard-*.msgpack"))
               for r in read_shard(path, "go/5", (17, 5, 5), 26)]
    for r in records:
        assert r.ownership.shape == (25,)
        # The recorded outcome is the sign of the recorded score.
        assert np.sign(r.score) == r.returns[0]
    assert summary.last["loss/ownership"] > 0 and summary.last["loss/score"] >= 0
    # A resumed run refills its window with the territory from the shards.
    buffer = ReplayBuffer(10_000, (17, 5, 5), 26, territory=True)
    load_window(buffer, run / "replay", "go/5", (17, 5, 5), 26)
    assert buffer.has_territory[:buffer.size].all()
