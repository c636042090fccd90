"""The replay window: a ring of the most recent positions, filled from shards on disk."""

from __future__ import annotations

import numpy as np
import pytest

from selfplay.records import write_shard
from selfplay.replay import ReplayBuffer, load_window, shard_paths
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, random_record


def _markers(buffer: ReplayBuffer) -> np.ndarray:
    """The ring's position markers (policy[:, 0]) from oldest to newest."""
    held = buffer.policy[:buffer.size, 0]
    oldest = int(np.argmin(held))
    return np.roll(held, -oldest)


def _add_games(buffer, lengths, rng, start=0):
    """Adds games whose positions carry consecutive markers from `start`; returns the next."""
    marker = start
    for n in lengths:
        buffer.add(random_record(rng, n, marker=float(marker)))
        marker += n
    return marker


@pytest.mark.parametrize("capacity", [1, 7, 10, 23])
def test_ring_keeps_exactly_the_most_recent_positions_in_order(capacity):
    rng = np.random.default_rng(capacity)
    buffer = ReplayBuffer(capacity, TTT_SHAPE, TTT_ACTIONS)
    added = 0
    all_lengths = ([3], [5, 1], [9, 9, 2], [4] * 7, [capacity + 3], [2])
    for lengths in all_lengths:
        added = _add_games(buffer, lengths, rng, start=added)
        expected = np.arange(max(0, added - capacity), added, dtype=np.float32)
        assert buffer.size == min(added, capacity)
        np.testing.assert_array_equal(_markers(buffer), expected)
    assert buffer.games_added == sum(len(lengths) for lengths in all_lengths)
    # A game longer than the window keeps (and counts) only its last `capacity` positions.
    assert buffer.positions_added == sum(min(n, capacity) for ls in all_lengths for n in ls)


def test_ring_stores_observations_and_value_targets_with_their_policies():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS)
    records = [random_record(rng, n, marker=float(100 * i)) for i, n in enumerate([4, 5, 6])]
    for r in records:
        buffer.add(r)
    kept = {}
    for r in records:
        for t in range(len(r)):
            kept[float(r.policies[t, 0])] = (r.observations[t], r.value_targets()[t])
    for i in range(buffer.size):
        obs, value = kept[float(buffer.policy[i, 0])]
        np.testing.assert_array_equal(buffer.obs[i], obs)
        assert buffer.value[i] == value


def test_sample_shapes_dtypes_and_contents():
    rng = np.random.default_rng(1)
    buffer = ReplayBuffer(50, TTT_SHAPE, TTT_ACTIONS)
    _add_games(buffer, [5, 6, 7], rng)
    obs, policy, value = buffer.sample(64, np.random.default_rng(2))
    assert obs.shape == (64,) + TTT_SHAPE and obs.dtype == np.float32
    assert policy.shape == (64, TTT_ACTIONS) and policy.dtype == np.float32
    assert value.shape == (64,) and value.dtype == np.float32
    # Only filled slots (markers 0..17) are drawn, and draws are copies.
    assert set(policy[:, 0]) <= set(np.arange(18.0)) and len(set(policy[:, 0])) > 5
    policy[:] = -1
    obs[:] = 7
    assert (buffer.policy[:18, 0] >= 0).all() and (buffer.obs[:18] <= 1).all()
    again = buffer.sample(64, np.random.default_rng(2))
    np.testing.assert_array_equal(again[2], value)


def test_sampling_an_empty_window_is_refused_clearly():
    buffer = ReplayBuffer(5, TTT_SHAPE, TTT_ACTIONS)
    with pytest.raises(ValueError, match="empty replay window"):
        buffer.sample(4, np.random.default_rng(0))


def _write_shards(replay_dir, games_per_shard, rng):
    """Shard i holds games with consecutive markers; returns the total positions."""
    marker = 0
    for i, lengths in enumerate(games_per_shard):
        records = []
        for n in lengths:
            records.append(random_record(rng, n, marker=float(marker)))
            marker += n
        write_shard(replay_dir / f"shard-{i:08d}.msgpack", "tictactoe", TTT_SHAPE,
                    TTT_ACTIONS, records)
    return marker


def test_load_window_reads_the_newest_shards_up_to_capacity(tmp_path):
    rng = np.random.default_rng(3)
    shards = [[5, 5], [9], [3, 4, 2], [6, 7], [8]]
    total = _write_shards(tmp_path, shards, rng)  # 49 positions
    # The three oldest shards are not needed for 20 positions: damage them to
    # prove they are never read.
    for path in shard_paths(tmp_path)[:3]:
        path.write_bytes(b"not a shard")
    buffer = ReplayBuffer(20, TTT_SHAPE, TTT_ACTIONS)
    games = load_window(buffer, tmp_path, "tictactoe", TTT_SHAPE, TTT_ACTIONS)
    assert games == 2 + 1  # shards 4 and 3: 8 + 13 >= 20 positions
    assert buffer.size == 20
    np.testing.assert_array_equal(_markers(buffer), np.arange(total - 20, total))
    # Positions added afterwards continue the order.
    buffer.add(random_record(rng, 3, marker=float(total)))
    np.testing.assert_array_equal(_markers(buffer), np.arange(total - 17, total + 3))


def test_load_window_takes_everything_when_it_fits(tmp_path):
    rng = np.random.default_rng(4)
    total = _write_shards(tmp_path, [[5], [9, 1], [3]], rng)
    buffer = ReplayBuffer(100, TTT_SHAPE, TTT_ACTIONS)
    assert load_window(buffer, tmp_path, "tictactoe", TTT_SHAPE, TTT_ACTIONS) == 4
    np.testing.assert_array_equal(buffer.policy[:buffer.size, 0], np.arange(total))
    empty = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS)
    assert load_window(empty, tmp_path / "none", "tictactoe", TTT_SHAPE, TTT_ACTIONS) == 0
    assert empty.size == 0


def test_shard_paths_are_in_index_order_and_skip_temporary_files(tmp_path):
    for name in ["shard-00000010.msgpack", "shard-00000002.msgpack", "notes.txt",
                 ".shard-00000011.msgpack.x.tmp", "shard-00000000.msgpack"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in shard_paths(tmp_path)] == [
        "shard-00000000.msgpack", "shard-00000002.msgpack", "shard-00000010.msgpack"]


def test_games_counts_those_with_a_position_left_in_the_window():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(10, TTT_SHAPE, TTT_ACTIONS)
    counts = []
    for n in (4, 4, 4, 10, 1):
        buffer.add(random_record(rng, n))
        counts.append(buffer.games)
    # 4+4+4 = 12 > 10 keeps 2 positions of the first game; a game of 10 fills the
    # window alone; one more position leaves 9 of it.
    assert counts == [1, 2, 3, 1, 2]
    assert buffer.nbytes() == (buffer.obs.nbytes + buffer.policy.nbytes + buffer.value.nbytes)
