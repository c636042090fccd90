"""Replay shards: exact round trips, value targets, and hostile files refused cleanly."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from selfplay.records import (
    FORMAT,
    VERSION,
    GameRecord,
    ReplayError,
    encode_shard,
    read_shard,
    write_shard,
)
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, random_record


def _read(path):
    return read_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS)


def _assert_same_game(got: GameRecord, want: GameRecord, exact_obs: bool = True):
    if exact_obs:
        np.testing.assert_array_equal(got.observations, want.observations)
    else:
        np.testing.assert_array_equal(got.observations,
                                      want.observations.astype(np.float16).astype(np.float32))
    # Policies are stored as float16: exactly their float16 rounding comes back.
    np.testing.assert_array_equal(got.policies,
                                  want.policies.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(got.policies, want.policies, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(got.actions, want.actions)
    np.testing.assert_array_equal(got.root_values, want.root_values)
    np.testing.assert_array_equal(got.to_play, want.to_play)
    np.testing.assert_array_equal(got.returns, want.returns)
    assert got.observations.dtype == np.float32 and got.policies.dtype == np.float32
    assert got.actions.dtype == np.int32 and got.to_play.dtype == np.int8


def test_round_trip_of_binary_planes_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    records = [random_record(rng, n) for n in (1, 5, 9, 7)]
    path = tmp_path / "shard-00000000.msgpack"
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, records)
    back = _read(path)
    assert len(back) == len(records)
    for got, want in zip(back, records):
        _assert_same_game(got, want)
    # 0/1 planes are stored as packed bits, 1 bit per entry.
    raw = msgpack.unpackb(path.read_bytes(), raw=False)
    assert [g["obs_encoding"] for g in raw["games"]] == ["bits"] * 4
    assert [len(g["obs"]) for g in raw["games"]] == [-(-len(r) * 27 // 8) for r in records]


def test_round_trip_of_other_planes_is_float16(tmp_path):
    rng = np.random.default_rng(2)
    records = [random_record(rng, 4, binary=False), random_record(rng, 3)]
    path = tmp_path / "s.msgpack"
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, records)
    back = _read(path)
    _assert_same_game(back[0], records[0], exact_obs=False)
    _assert_same_game(back[1], records[1])


def test_round_trip_of_an_empty_shard(tmp_path):
    path = tmp_path / "s.msgpack"
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, [])
    assert _read(path) == []


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "s.msgpack"
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, [random_record(rng, 3)])
    write_shard(path, "tictactoe", TTT_SHAPE, TTT_ACTIONS, [random_record(rng, 2)] * 2)
    assert [p.name for p in tmp_path.iterdir()] == ["s.msgpack"]
    assert len(_read(path)) == 2


def test_value_targets_are_the_outcome_for_the_player_to_move():
    record = random_record(np.random.default_rng(0), 5)
    record.returns = np.array([1.0, -1.0], np.float32)
    record.to_play = np.array([0, 1, 0, 1, 0], np.int8)
    np.testing.assert_array_equal(record.value_targets(), [1, -1, 1, -1, 1])
    record.to_play = np.array([1, 0, 1, 0, 1], np.int8)
    np.testing.assert_array_equal(record.value_targets(), [-1, 1, -1, 1, -1])
    record.returns = np.array([0.0, 0.0], np.float32)
    np.testing.assert_array_equal(record.value_targets(), np.zeros(5))
    assert record.value_targets().dtype == np.float32


# Hostile shards ---------------------------------------------------------------

def _valid_shard() -> dict:
    rng = np.random.default_rng(4)
    data = encode_shard("tictactoe", TTT_SHAPE, TTT_ACTIONS,
                        [random_record(rng, 3), random_record(rng, 4)])
    return msgpack.unpackb(data, raw=False)


def _with(change) -> bytes:
    shard = _valid_shard()
    change(shard)
    return msgpack.packb(shard, use_bin_type=True)


def _game(key, value):
    def change(shard):
        shard["games"][1][key] = value
    return change


def _top(key, value):
    def change(shard):
        shard[key] = value
    return change


def _drop(key):
    def change(shard):
        del shard["games"][0][key]
    return change


def _i4(*values):
    return np.array(values, "<i4").tobytes()


HOSTILE = {
    "empty file": b"",
    "one byte": b"\x92",
    "random bytes": bytes(np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8)),
    "text": b"hello, I am not a shard\n",
    "msgpack list": msgpack.packb([1, 2, 3]),
    "msgpack int": msgpack.packb(7),
    "map of another format": msgpack.packb({"format": "something-else", "games": []}),
    "map without format": msgpack.packb({"games": []}),
    "non-string map key": b"\x81\x90\x01",
    "two objects": msgpack.packb({"format": FORMAT}) + msgpack.packb(1),
    "newer version": _with(_top("version", VERSION + 1)),
    "other game": _with(_top("game", "connect4")),
    "other obs shape": _with(_top("obs_shape", [3, 6, 7])),
    "other action count": _with(_top("num_actions", 7)),
    "games not a list": _with(_top("games", {"a": 1})),
    "game not a map": _with(lambda s: s["games"].append([1, 2])),
    "length missing": _with(_drop("length")),
    "length zero": _with(_game("length", 0)),
    "length a string": _with(_game("length", "4")),
    "length true": _with(_game("length", True)),
    "length huge": _with(_game("length", 2**62)),
    "length larger than the data": _with(_game("length", 5)),
    "unknown obs encoding": _with(_game("obs_encoding", "png")),
    "obs missing": _with(_drop("obs")),
    "obs short": _with(lambda s: s["games"][1].update(obs=s["games"][1]["obs"][:-1])),
    "obs long": _with(lambda s: s["games"][1].update(obs=s["games"][1]["obs"] + b"\0")),
    "obs as f16 with the bits' length": _with(_game("obs_encoding", "f16")),
    "actions a list": _with(_game("actions", [0, 1, 2, 3])),
    "actions short": _with(_game("actions", _i4(0, 1, 2))),
    "actions 1 byte long": _with(_game("actions", _i4(0, 1, 2, 3) + b"\0")),
    "action too large": _with(_game("actions", _i4(0, 1, 9, 3))),
    "action negative": _with(_game("actions", _i4(0, -1, 2, 3))),
    "policy short": _with(lambda s: s["games"][0].update(policy=s["games"][0]["policy"][:-2])),
    "policy NaN": _with(_game("policy", np.full((4, 9), np.nan, "<f2").tobytes())),
    "policy negative": _with(_game("policy", np.full((4, 9), -0.1, "<f2").tobytes())),
    "root value inf": _with(_game("root_value", np.full(4, np.inf, "<f4").tobytes())),
    "root value short": _with(_game("root_value", np.zeros(3, "<f4").tobytes())),
    "to_play out of range": _with(_game("to_play", np.array([0, 1, 2, 1], "i1").tobytes())),
    "to_play negative": _with(_game("to_play", np.array([0, -1, 0, 1], "i1").tobytes())),
    "to_play long": _with(_game("to_play", np.zeros(5, "i1").tobytes())),
    "returns missing": _with(_drop("returns")),
    "returns empty": _with(_game("returns", [])),
    "returns strings": _with(_game("returns", ["win", "loss"])),
    "returns NaN": _with(_game("returns", [float("nan"), 0.0])),
    "returns too large for float32": _with(_game("returns", [1e300, -1e300])),
    "returns one player": _with(_game("returns", [1.0])),  # to_play 1 is then out of range
    # Lengths declared far beyond the data: refused before anything is allocated.
    "bin32 of 2 GiB": b"\xc6\x7f\xff\xff\xff" + b"\0" * 16,
    "array32 of 4G entries": b"\xdd\xff\xff\xff\xff",
    "map32 of 4G entries": b"\xdf\xff\xff\xff\xff",
    "str32 of 4G bytes": b"\xdb\xff\xff\xff\xff",
    "huge array in the games": _with(lambda s: None).replace(b"\x92", b"\xdd\x7f\xff\xff\xff", 1),
    "deep nesting": b"\x91" * 100_000,
    "bad timestamp": b"\xc7\x0c\xff" + b"\xff" * 12,
    "bad utf-8": b"\x81\xa6format\xa2\xff\xfe",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_shard_is_a_replay_error_naming_the_file(tmp_path, name):
    path = tmp_path / "shard-00000042.msgpack"
    path.write_bytes(HOSTILE[name])
    with pytest.raises(ReplayError) as info:
        _read(path)
    assert str(path) in str(info.value)
    assert len(str(info.value)) < 500


def test_the_hostile_variants_start_from_a_valid_shard(tmp_path):
    path = tmp_path / "ok.msgpack"
    path.write_bytes(_with(lambda s: None))
    assert [len(r) for r in _read(path)] == [3, 4]


def test_every_truncation_of_a_valid_shard_is_refused(tmp_path):
    data = _with(lambda s: None)
    path = tmp_path / "cut.msgpack"
    for size in range(len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(ReplayError, match="cut.msgpack"):
            _read(path)


def test_missing_file_and_directory_are_replay_errors(tmp_path):
    with pytest.raises(ReplayError, match="missing.msgpack"):
        _read(tmp_path / "missing.msgpack")
    (tmp_path / "dir.msgpack").mkdir()
    with pytest.raises(ReplayError, match="dir.msgpack"):
        _read(tmp_path / "dir.msgpack")


def _check_sane(records):
    for r in records:
        n = len(r)
        assert r.observations.shape == (n,) + TTT_SHAPE and r.policies.shape == (n, TTT_ACTIONS)
        assert ((r.actions >= 0) & (r.actions < TTT_ACTIONS)).all()
        assert ((r.to_play >= 0) & (r.to_play < len(r.returns))).all()
        assert np.isfinite(r.policies).all() and np.isfinite(r.returns).all()


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                      min_size=1, max_size=4))
def test_damaged_bytes_give_a_replay_error_or_a_sane_shard(tmp_path, flips):
    data = bytearray(_with(lambda s: None))
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "flipped.msgpack"
    path.write_bytes(bytes(data))
    try:
        records = _read(path)
    except ReplayError as e:
        assert str(path) in str(e)
    else:
        _check_sane(records)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_a_replay_error(tmp_path, data):
    path = tmp_path / "junk.msgpack"
    path.write_bytes(data)
    with pytest.raises(ReplayError):
        _read(path)
