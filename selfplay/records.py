"""Game records and their on-disk form: msgpack shards, no pickle.

A shard is one msgpack map holding the games an iteration finished:
actions, search policies, root values, players to move, final returns and
the observations the network saw. Observations made only of 0s and 1s (all
board games here) are stored as packed bits, 1 bit per entry; others as
float16. Shards are written atomically and validated field by field on load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np

from checkpoints.files import atomic_write_bytes

FORMAT = "tabula-replay"
VERSION = 1
_F32_MAX = float(np.finfo(np.float32).max)


class ReplayError(ValueError):
    """A replay shard that cannot be read; the message names the file."""


@dataclass
class GameRecord:
    """One finished game as played by the actor (T moves)."""

    observations: np.ndarray
    """float32[T, *obs_shape]: the root observations."""
    actions: np.ndarray
    """int32[T]: moves played."""
    policies: np.ndarray
    """float32[T, A]: search policy targets."""
    root_values: np.ndarray
    """float32[T]: search values for the player to move."""
    to_play: np.ndarray
    """int8[T]: player to move at each position."""
    returns: np.ndarray
    """float32[num_players]: final outcome per player."""
    full: np.ndarray | None = None
    """bool[T]: positions searched in full, the only ones trained on (playout cap
    randomization: the others were cheap searches that only picked a move). None: all."""
    ownership: np.ndarray | None = None
    """int8[H*W]: who owns each point when the game ended, from player 0's side (+1 player
    0, -1 player 1, 0 nobody), for games declaring GameInfo.territory. None: not recorded."""
    score: float | None = None
    """Player 0's final score margin (Go: area score, komi included), with `ownership`."""

    def __len__(self) -> int:
        return len(self.actions)

    def value_targets(self, q_weight: float = 0.0) -> np.ndarray:
        """float32[T]: the final outcome z from each position's mover's point of view,
        mixed with the root search value q as (1 - q_weight) z + q_weight q."""
        z = self.returns[self.to_play.astype(np.int64)].astype(np.float32)
        if not q_weight:
            return z
        return ((1.0 - q_weight) * z + q_weight * self.root_values).astype(np.float32)

    def _mover_sign(self) -> np.ndarray:
        """float32[T]: +1 where player 0 moves, -1 where player 1 does."""
        return np.where(self.to_play == 0, 1.0, -1.0).astype(np.float32)

    def ownership_targets(self) -> np.ndarray:
        """float32[T, H*W]: the final ownership from each position's mover's side
        (+1 the mover's, -1 the opponent's). Needs `ownership`."""
        return self._mover_sign()[:, None] * self.ownership.astype(np.float32)[None, :]

    def score_targets(self) -> np.ndarray:
        """float32[T]: the final score margin from each position's mover's side."""
        return self._mover_sign() * np.float32(self.score)

    def trained(self) -> np.ndarray:
        """int64[K]: the indices of the positions to train on (all unless `full` says)."""
        if self.full is None:
            return np.arange(len(self))
        return np.flatnonzero(self.full)


def _encode_obs(obs: np.ndarray) -> tuple[str, bytes]:
    if obs.size and np.all((obs == 0) | (obs == 1)):
        return "bits", np.packbits(obs.astype(np.uint8).ravel()).tobytes()
    return "f16", obs.astype(np.float16).tobytes()


def encode_shard(game: str, obs_shape: tuple[int, ...], num_actions: int,
                 records: list[GameRecord]) -> bytes:
    games = []
    for r in records:
        encoding, obs = _encode_obs(r.observations)
        games.append({
            "length": len(r),
            "obs_encoding": encoding,
            "obs": obs,
            "actions": r.actions.astype("<i4").tobytes(),
            "policy": r.policies.astype("<f2").tobytes(),
            "root_value": r.root_values.astype("<f4").tobytes(),
            "to_play": r.to_play.astype("i1").tobytes(),
            "returns": [float(x) for x in r.returns],
            **({} if r.full is None or r.full.all() else
               {"full": np.packbits(r.full.astype(np.uint8)).tobytes()}),
            **({} if r.ownership is None else
               {"ownership": r.ownership.astype("i1").tobytes(), "score": float(r.score)}),
        })
    return msgpack.packb({"format": FORMAT, "version": VERSION, "game": game,
                          "obs_shape": list(obs_shape), "num_actions": num_actions,
                          "games": games}, use_bin_type=True)


def write_shard(path: Path, game: str, obs_shape: tuple[int, ...], num_actions: int,
                records: list[GameRecord]) -> None:
    """Writes the records atomically to `path`."""
    atomic_write_bytes(path, encode_shard(game, obs_shape, num_actions, records))


def _array(path, raw, field, dtype, shape):
    data = raw.get(field)
    if not isinstance(data, bytes):
        raise ReplayError(f"{path}: field {field!r} is missing or not binary")
    count = int(np.prod(shape))
    if len(data) != count * np.dtype(dtype).itemsize:
        raise ReplayError(f"{path}: field {field!r} has {len(data)} bytes, expected "
                          f"{count * np.dtype(dtype).itemsize}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _decode_game(path, raw, obs_shape, num_actions) -> GameRecord:
    if not isinstance(raw, dict):
        raise ReplayError(f"{path}: a game entry is not a map")
    length = raw.get("length")
    if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= 100_000:
        raise ReplayError(f"{path}: bad game length {length!r}")
    encoding = raw.get("obs_encoding")
    obs_count = length * int(np.prod(obs_shape))
    if encoding == "bits":
        packed = _array(path, raw, "obs", np.uint8, ((obs_count + 7) // 8,))
        obs = np.unpackbits(packed)[:obs_count].astype(np.float32)
    elif encoding == "f16":
        obs = _array(path, raw, "obs", "<f2", (obs_count,)).astype(np.float32)
        _finite(path, "obs", obs)
    else:
        raise ReplayError(f"{path}: unknown observation encoding {encoding!r}")
    returns = raw.get("returns")
    if (not isinstance(returns, list) or not 0 < len(returns) <= 127
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                       and abs(x) <= _F32_MAX for x in returns)):  # NaN fails too
        raise ReplayError(f"{path}: bad returns (expected a list of 1 to 127 finite numbers)")
    to_play = _array(path, raw, "to_play", "i1", (length,))
    if to_play.min() < 0 or to_play.max() >= len(returns):
        raise ReplayError(f"{path}: player index out of range")
    actions = _array(path, raw, "actions", "<i4", (length,))
    if actions.min() < 0 or actions.max() >= num_actions:
        raise ReplayError(f"{path}: action out of range")
    # NaN or negative targets would silently ruin every network trained on them.
    policies = _array(path, raw, "policy", "<f2", (length, num_actions)).astype(np.float32)
    _finite(path, "policy", policies)
    if policies.min() < 0:
        raise ReplayError(f"{path}: field 'policy' has negative entries")
    root_values = _array(path, raw, "root_value", "<f4", (length,)).astype(np.float32)
    _finite(path, "root_value", root_values)
    full = None
    if "full" in raw:  # absent: every position was a full search
        full = np.unpackbits(_array(path, raw, "full", np.uint8, ((length + 7) // 8,)))
        full = full[:length].astype(bool)
    ownership, score = _territory(path, raw, obs_shape)
    return GameRecord(
        observations=obs.reshape((length,) + obs_shape),
        actions=actions.astype(np.int32),
        policies=policies,
        root_values=root_values,
        to_play=to_play.astype(np.int8),
        returns=np.asarray(returns, np.float32),
        full=full,
        ownership=ownership,
        score=score,
    )


def _territory(path, raw, obs_shape) -> tuple[np.ndarray | None, float | None]:
    """The optional final ownership (int8[H*W] of -1, 0, 1) and score margin of a game."""
    if "ownership" not in raw and "score" not in raw:
        return None, None
    cells = int(np.prod(obs_shape[-2:]))
    ownership = _array(path, raw, "ownership", "i1", (cells,))
    if np.abs(ownership.astype(np.int16)).max(initial=0) > 1:
        raise ReplayError(f"{path}: field 'ownership' has entries other than -1, 0 and 1")
    score = raw.get("score")
    if not isinstance(score, (int, float)) or isinstance(score, bool) \
            or not abs(score) <= 1e6:  # NaN fails too
        raise ReplayError(f"{path}: bad score {score!r:.40} (expected a finite number)")
    return ownership.astype(np.int8), float(score)


def _finite(path, field, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise ReplayError(f"{path}: field {field!r} has NaN or infinite entries")


def read_shard_map(path: Path, fmt: str, version: int, kind: str, game: str) -> dict:
    """The msgpack map of a shard, checked for its format, version and game.

    Raises:
      ReplayError: unreadable, not msgpack, or another format, version or game.
    """
    try:
        data = Path(path).read_bytes()
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True,
                              max_bin_len=len(data), max_array_len=1_000_000)
    except OSError as e:
        raise ReplayError(f"{path}: cannot read replay shard ({e.strerror})") from None
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise ReplayError(f"{path}: not a valid replay shard "
                          f"({str(e) or type(e).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise ReplayError(f"{path}: not a {kind}")
    if raw.get("version") != version:
        raise ReplayError(f"{path}: replay format version {raw.get('version')!r} "
                          f"is not supported (expected {version})")
    if raw.get("game") != game:
        raise ReplayError(f"{path}: shard is for game {raw.get('game')!r}, not {game!r}")
    return raw


def read_shard(path: Path, game: str, obs_shape: tuple[int, ...],
               num_actions: int) -> list[GameRecord]:
    """Reads and validates a shard written by `write_shard` for `game`.

    Raises:
      ReplayError: unreadable, malformed, or from another game or shape.
    """
    raw = read_shard_map(path, FORMAT, VERSION, "Tabula replay shard", game)
    if raw.get("obs_shape") != list(obs_shape) or raw.get("num_actions") != num_actions:
        raise ReplayError(f"{path}: shard shapes do not match the game")
    games = raw.get("games")
    if not isinstance(games, list):
        raise ReplayError(f"{path}: no game list")
    return [_decode_game(path, g, tuple(obs_shape), num_actions) for g in games]


def game_texts(game, records: list[GameRecord], first_index: int = 0) -> str | None:
    """The games as the game's own record format (an SGF collection for Go), or None.

    Only games that define `format_record(moves, result, headers)` have one;
    the moves are replayed from the initial position to get their text.
    """
    if game.info.record_format == "moves":
        return None
    texts = []
    for i, record in enumerate(records):
        state = game.new_initial_state()
        moves = []
        for action in record.actions:
            moves.append(state.action_to_text(int(action)))
            state.apply(int(action))
        score = record.returns[0]
        result = "1-0" if score > 0 else "0-1" if score < 0 else "1/2-1/2"
        headers = {"First": "tabula", "Second": "tabula", "Event": "self-play",
                   "Round": str(first_index + i)}
        texts.append(game.format_record(moves, result, headers).strip())
    return "\n\n".join(texts) + "\n"
