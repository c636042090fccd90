"""Replay shards (msgpack): AlphaZero games and MuZero segments, valid and crafted."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import Case


def build_shard(build: Path) -> bytes:
    """Two tic-tac-toe games: one with 0/1 observations (bits), one with floats (f16)."""
    from selfplay.records import GameRecord, encode_shard

    rng = np.random.default_rng(1)
    records = []
    for binary in (True, False):
        t = 5
        obs = rng.integers(0, 2, (t, 3, 3, 3)) if binary else rng.random((t, 3, 3, 3))
        records.append(GameRecord(
            observations=obs.astype(np.float32), actions=np.array([4, 0, 8, 2, 6], np.int32),
            policies=np.full((t, 9), 1 / 9, np.float32),
            root_values=np.linspace(-1, 1, t).astype(np.float32),
            to_play=np.array([0, 1, 0, 1, 0], np.int8), returns=np.array([1, -1], np.float32)))
    return encode_shard("tictactoe", (3, 3, 3), 9, records)


def build_segments(frames: bool) -> bytes:
    """MuZero segments: tic-tac-toe planes, or 8x8 frames stacked 4 (zlib)."""
    from selfplay.muzero_replay import Segment, encode_segments

    rng = np.random.default_rng(2)
    t, a = 6, (4 if frames else 9)
    if frames:
        obs = rng.integers(0, 255, (3 + t, 8, 8)).astype(np.uint8)
    else:
        obs = rng.integers(0, 2, (t, 3, 3, 3)).astype(np.float32)
    seg = Segment(obs=obs, actions=np.arange(t, dtype=np.int32) % a,
                  rewards=rng.random(t).astype(np.float32),
                  policies=np.full((t, a), 1 / a, np.float32),
                  root_values=rng.random(t).astype(np.float32),
                  masks=np.ones((t, a), bool), to_play=np.zeros(t, np.int8), length=4,
                  done=not frames, episode_return=3.0 if frames else float("nan"),
                  returns=None if frames else np.array([1.0, -1.0], np.float32))
    game, shape = ("atari/Fake", (4, 8, 8)) if frames else ("tictactoe", (3, 3, 3))
    return encode_segments(game, shape, a, frames, [seg])


def _records_fingerprint(records: list) -> str:
    h = hashlib.sha256()
    for r in records:
        for value in vars(r).values():
            h.update(np.asarray(value).tobytes() if value is not None else b"-")
    return h.hexdigest()


def _packed(obj: Any) -> bytes:
    import msgpack

    return msgpack.packb(obj, use_bin_type=True)


def _msgpack_bombs() -> list[tuple[str, bytes]]:
    """Raw msgpack announcing huge sizes, nesting deep or using odd types."""
    return [
        ("depth-bomb-arrays", b"\x91" * 200_000 + b"\xc0"),
        ("depth-bomb-maps", b"\x81\xa1a" * 100_000 + b"\xc0"),
        ("array-of-4G", b"\xdd\xff\xff\xff\xff"),
        ("map-of-4G", b"\xdf\xff\xff\xff\xff"),
        ("bin-of-4G", b"\xc6\xff\xff\xff\xff"),
        ("str-of-4G", b"\xdb\xff\xff\xff\xff"),
        ("ext-of-4G", b"\xc9\xff\xff\xff\xff\x01"),
        ("ext-type", b"\xd4\x01\x00"),
        ("timestamp-bad-length", b"\xc7\x03\xff\x00\x00\x00"),
        ("map-int-key", b"\x81\x01\x02"),
        ("map-array-key", b"\x81\x91\x01\x02"),
        ("invalid-utf8-str", b"\x81\xa2\xff\xfe\x01"),
        ("reserved-byte", b"\xc1"),
        ("one-million-empty-maps", b"\xdd\x00\x0f\x42\x40" + b"\x80" * 1_000_000),
    ]


def shard_cases(valid: bytes, entries: str) -> list[Case]:
    """Crafted shards: the valid map with a field changed, and raw msgpack bombs.

    `entries` is the key of the entry list ('games' or 'segments').
    """
    import msgpack

    raw = msgpack.unpackb(valid, raw=False)
    entry = raw[entries][0]

    def top(**change) -> bytes:
        return _packed({**raw, **change})

    def item(**change) -> bytes:
        return _packed({**raw, entries: [{**entry, **change}] + raw[entries][1:]})

    cases = [
        ("top-list", _packed([1, 2])), ("top-string", _packed("tabula")), ("top-nil", b"\xc0"),
        ("format-other", top(format="other")), ("version-2", top(version=2)),
        ("version-string", top(version="1")), ("game-other", top(game="connect4")),
        ("obs-shape-other", top(obs_shape=[3, 3])), ("num-actions-other", top(num_actions=10)),
        ("entries-string", top(**{entries: "x"})), ("entries-missing", _packed(
            {k: v for k, v in raw.items() if k != entries})),
        ("entry-not-map", top(**{entries: [5]})),
        ("trailing-byte", valid + b"\x00"),
        ("length-string", item(length="5")), ("length-negative", item(length=-1)),
        ("length-zero", item(length=0)), ("length-2**40", item(length=2**40)),
        ("length-bool", item(length=True)), ("length-float", item(length=2.5)),
        ("returns-nan", item(returns=[float("nan"), 1.0])),
        ("returns-strings", item(returns=["a", "b"])),
        ("actions-out-of-range", item(actions=np.full(len(entry["actions"]) // 4, 10**6,
                                                      "<i4").tobytes())),
        ("actions-negative", item(actions=np.full(len(entry["actions"]) // 4, -1,
                                                  "<i4").tobytes())),
        ("actions-string", item(actions="4 0 8")),
        ("policy-nan", item(policy=np.full(len(entry["policy"]) // 2, np.nan, "<f2").tobytes())),
        ("policy-negative", item(policy=np.full(len(entry["policy"]) // 2, -1, "<f2").tobytes())),
        ("policy-short", item(policy=entry["policy"][:-2])),
        ("root-value-infinity", item(root_value=np.full(len(entry["root_value"]) // 4, np.inf,
                                                        "<f4").tobytes())),
    ]
    if entries == "games":
        cases += _game_cases(entry, item)
    else:
        cases += _segment_cases(entry, item, raw)
    cases += _msgpack_bombs()
    return [Case(name, data, "crafted") for name, data in cases]


def _game_cases(entry: dict, item: Callable) -> list[tuple[str, bytes]]:
    return [
        ("obs-encoding-unknown", item(obs_encoding="png")),
        ("obs-short", item(obs=entry["obs"][:-1])), ("obs-long", item(obs=entry["obs"] + b"\0")),
        ("obs-string", item(obs="x")), ("returns-200", item(returns=[0.0] * 200)),
        ("returns-empty", item(returns=[])), ("returns-1e300", item(returns=[1e300, 0.0])),
        ("returns-bool", item(returns=[True, False])),
        ("to-play-out-of-range", item(to_play=bytes([5]) * len(entry["to_play"]))),
        ("to-play-negative", item(to_play=bytes([255]) * len(entry["to_play"]))),
    ]


def _segment_cases(entry: dict, item: Callable, raw: dict) -> list[tuple[str, bytes]]:
    obs = entry["obs"]
    cases = [
        ("done-string", item(done="yes")), ("length-past-end", item(length=10**6)),
        ("episode-return-string", item(episode_return="3")),
        ("returns-not-list", item(returns=5)),
        ("masks-short", item(masks=b"")), ("to-play-short", item(to_play=b"")),
        ("actions-empty", item(actions=b"")), ("actions-odd-size", item(actions=b"\0\0\0")),
        ("obs-not-map", item(obs=[1])), ("obs-data-missing", item(obs={**obs, "data": None})),
        ("obs-shape-lie", item(obs={**obs, "shape": [10**9, 8, 8]})),
        ("obs-encoding-unknown", item(obs={**obs, "encoding": "png"})),
    ]
    if raw["frames"]:
        count = int(np.prod(obs["shape"]))
        bomb = zlib.compress(bytes(16 * 1024 * 1024), 9)
        cases += [("zlib-bomb", item(obs={**obs, "data": bomb})),
                  ("zlib-corrupt", item(obs={**obs, "data": b"not zlib data"})),
                  ("zlib-truncated", item(obs={**obs, "data": obs["data"][:20]})),
                  ("zlib-short", item(obs={**obs, "data": zlib.compress(bytes(count - 1))})),
                  ("zlib-trailing", item(obs={**obs, "data": obs["data"] + b"junk"}))]
    return cases
