"""MuZero's replay: trajectory segments, K-step unrolled targets, prioritized sampling.

A segment is a piece of one game or episode: observations, actions, rewards,
search policies and root values of T positions, of which the first `length`
are sampled (the rest is overlap that the targets of the sampled positions
need) and `done` says whether the episode ended after the last one. Atari
segments keep the stacked frames once each (uint8, the stack rebuilt by
slicing); board games keep their observation planes.

Value targets are n-step returns with discount d (gamma for environments, -1
for two-player games, where rewards are for the mover):

    z_t = sum_{j<n} d^j r_{t+j} + d^n v_{t+n}

with v the search's root value; past the end of a finished episode the value
is 0 (absorbing state); a segment of a running episode bootstraps from its
last root value, and so does the last segment of an episode cut by a time
limit (`truncated`): the position after the cut is not terminal, only unseen. Shards on disk are msgpack (no pickle), frames zlib-compressed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np

from checkpoints.files import atomic_write_bytes
from selfplay.records import ReplayError, read_shard_map
from selfplay.replay import window_full

FORMAT = "tabula-muzero-replay"
VERSION = 1


@dataclass
class Segment:
    """T positions of one game or episode."""

    obs: np.ndarray
    """frames: uint8[stack - 1 + T, H, W] (frame i + stack - 1 is position i's newest);
    planes: float32[T, *obs_shape]."""
    actions: np.ndarray
    """int32[T]: actions played."""
    rewards: np.ndarray
    """float32[T]: reward of actions[t] for the player who played it (training scale)."""
    policies: np.ndarray
    """float32[T, A]: search policy targets."""
    root_values: np.ndarray
    """float32[T]: search values for the player to move."""
    masks: np.ndarray
    """bool[T, A]: legal actions at each position."""
    to_play: np.ndarray
    """int8[T]: player to move."""
    length: int
    """The leading positions that are sampled for training."""
    done: bool
    """The game or episode ended after the last position."""
    truncated: bool = False
    """With `done`: the episode was cut by a time limit, not ended by the game, so the
    targets bootstrap from the last search value instead of an absorbing state."""
    episode_return: float = float("nan")
    """Environments, final segment: the raw game score of the episode."""
    returns: np.ndarray | None = None
    """Board games, final segment: outcome per player."""

    def __len__(self) -> int:
        return self.length

    @property
    def terminal(self) -> bool:
        """The episode really ended after the last position (absorbing from there)."""
        return self.done and not self.truncated

    @property
    def num_positions(self) -> int:
        return len(self.actions)


def value_targets(seg: Segment, td_steps: int, discount: float) -> np.ndarray:
    """float32[T]: the n-step value target of every position (module docstring)."""
    r = seg.rewards.astype(np.float64)
    v = seg.root_values.astype(np.float64)
    total = len(r)
    z = np.zeros(total)
    for i in range(total):
        end = min(i + td_steps, total)
        if i + td_steps >= total and not seg.terminal:
            # A running or truncated episode: bootstrap from the last search value.
            end = total - 1
        powers = discount ** np.arange(end - i)
        z[i] = float(powers @ r[i:end])
        if end < total:
            z[i] += discount ** (end - i) * v[end]
    return z.astype(np.float32)


class _Targets:
    """A segment's targets padded by K + 1 entries for slicing [t : t + K + 1]."""

    def __init__(self, seg: Segment, unroll: int, td_steps: int, discount: float):
        total, pad = seg.num_positions, unroll + 1
        a = seg.policies.shape[1]
        self.value = np.zeros(total + pad, np.float32)
        self.value[:total] = value_targets(seg, td_steps, discount)
        self.value_mask = np.zeros(total + pad, np.float32)
        self.value_mask[:total] = 1.0
        if seg.terminal:
            self.value_mask[total:] = 1.0  # absorbing: value 0
        # reward[i] is the reward INTO position i (of the action at i - 1).
        self.reward = np.zeros(total + pad, np.float32)
        self.reward[1:total + 1] = seg.rewards
        self.reward_mask = np.zeros(total + pad, np.float32)
        self.reward_mask[1:total + 1] = 1.0
        if seg.terminal:
            self.reward_mask[total + 1:] = 1.0  # absorbing: reward 0
        self.policy = np.zeros((total + pad, a), np.float32)
        self.policy[:total] = seg.policies
        self.policy_mask = np.zeros(total + pad, np.float32)
        self.policy_mask[:total] = 1.0
        self.actions = np.full(total + pad, -1, np.int64)
        self.actions[:total] = seg.actions


def _priority(seg: Segment, targets: _Targets) -> np.ndarray:
    """float64[length]: a sampled position's priority, |value target - search value|."""
    t = seg.length
    return (np.abs(targets.value[:t] - seg.root_values[:t]) + 1e-3).astype(np.float64)


def _segment_bytes(seg: Segment, targets: _Targets, priority: np.ndarray) -> int:
    arrays = [seg.obs, seg.actions, seg.rewards, seg.policies, seg.root_values, seg.masks,
              seg.to_play, priority, *vars(targets).values()]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


class SegmentReplay:
    """The most recent `capacity` sampled positions, as segments.

    Args:
      capacity: positions kept (counting each segment's `length`).
      max_bytes: memory kept (segments and their targets; 0: no bound but capacity).
      obs_shape, num_actions: the game's sizes.
      frames: True for stacked-frame observations stored once per frame.
      unroll_steps, td_steps, discount: target settings (MuZeroConfig, search discount).
      prioritized, alpha, beta: prioritized replay settings.
    """

    def __init__(self, capacity: int, obs_shape, num_actions: int, frames: bool,
                 unroll_steps: int, td_steps: int, discount: float,
                 prioritized: bool = False, alpha: float = 0.6, beta: float = 0.4,
                 max_bytes: int = 0):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._bytes: list[int] = []  # per segment: arrays and targets
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        self.frames = frames
        self.unroll = unroll_steps
        self.td_steps = td_steps
        self.discount = discount
        self.prioritized = prioritized
        self.alpha, self.beta = alpha, beta
        self.segments: list[Segment] = []
        self._targets: list[_Targets] = []
        self._priority: list[np.ndarray] = []
        self._starts = np.zeros(1, np.int64)
        self._flat_priority = np.zeros(0, np.float64)
        self.size = 0
        self.games_added = 0
        self.positions_added = 0
        self.max_priority = 1.0

    # -- adding -------------------------------------------------------------

    def add(self, seg: Segment) -> None:
        """Appends a segment, dropping the oldest ones beyond the capacity."""
        self.segments.append(seg)
        targets = _Targets(seg, self.unroll, self.td_steps, self.discount)
        self._targets.append(targets)
        self._priority.append(_priority(seg, targets))
        self._bytes.append(_segment_bytes(seg, targets, self._priority[-1]))
        self.size += seg.length
        self.games_added += int(seg.done)
        self.positions_added += seg.length
        while len(self.segments) > 1 and (
                self.size - self.segments[0].length >= self.capacity
                or (self.max_bytes and sum(self._bytes) > self.max_bytes)):
            self.size -= self.segments[0].length
            del self.segments[0], self._targets[0], self._priority[0], self._bytes[0]
        self._reindex()

    def _reindex(self) -> None:
        lengths = np.array([s.length for s in self.segments], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)])
        self._flat_priority = (np.concatenate(self._priority) if self._priority
                               else np.zeros(0, np.float64))

    def _locate(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seg = np.searchsorted(self._starts, flat, side="right") - 1
        return seg, flat - self._starts[seg]

    # -- observations ------------------------------------------------------

    def observation(self, seg: Segment, t: int) -> np.ndarray:
        if self.frames:
            stack = self.obs_shape[0]
            return seg.obs[t:t + stack].astype(np.float32) * np.float32(1 / 255)
        return seg.obs[t].astype(np.float32)

    # -- sampling ------------------------------------------------------------

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict:
        """A training batch of K-step unrolls.

        Returns a dict of arrays: obs float32[N, *obs_shape]; actions int64[N, K];
        value, reward float32[N, K + 1] (reward[:, 0] unused) with their masks;
        policy float32[N, K + 1, A] with policy_mask float32[N, K + 1]; weight
        float32[N] (importance sampling, 1 without priorities); index int64[N].
        """
        if self.size == 0:
            raise ValueError("cannot sample an empty replay window")
        if self.prioritized:
            p = self._flat_priority ** self.alpha
            p /= p.sum()
            flat = rng.choice(self.size, size=batch_size, p=p)
            weight = (self.size * p[flat]) ** (-self.beta)
            weight = (weight / weight.max()).astype(np.float32)
        else:
            flat = rng.integers(0, self.size, size=batch_size)
            weight = np.ones(batch_size, np.float32)
        segs, ts = self._locate(flat)
        k1 = self.unroll + 1
        n, a = batch_size, self.num_actions
        out = {
            "obs": np.zeros((n,) + self.obs_shape, np.float32),
            "actions": np.zeros((n, self.unroll), np.int64),
            "value": np.zeros((n, k1), np.float32), "value_mask": np.zeros((n, k1), np.float32),
            "reward": np.zeros((n, k1), np.float32), "reward_mask": np.zeros((n, k1), np.float32),
            "policy": np.zeros((n, k1, a), np.float32),
            "policy_mask": np.zeros((n, k1), np.float32),
            "weight": weight, "index": flat.astype(np.int64),
        }
        for row, (s, t) in enumerate(zip(segs, ts)):
            seg, tg = self.segments[s], self._targets[s]
            window = slice(t, t + k1)
            out["obs"][row] = self.observation(seg, t)
            out["value"][row] = tg.value[window]
            out["value_mask"][row] = tg.value_mask[window]
            out["reward"][row] = tg.reward[window]
            out["reward_mask"][row] = tg.reward_mask[window]
            out["policy"][row] = tg.policy[window]
            out["policy_mask"][row] = tg.policy_mask[window]
            out["actions"][row] = tg.actions[t:t + self.unroll]
        # Beyond the end of a game the actions are random (the model must still unroll).
        missing = out["actions"] < 0
        out["actions"][missing] = rng.integers(0, a, size=int(missing.sum()))
        return out

    def update_priorities(self, flat: np.ndarray, priorities: np.ndarray) -> None:
        """New priorities for sampled positions (flat indices from `sample`)."""
        priorities = np.asarray(priorities, np.float64) + 1e-3
        segs, ts = self._locate(flat)
        for s, t, p in zip(segs, ts, priorities):
            self._priority[s][t] = p
        self._flat_priority[flat] = priorities
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0)))

    # -- reanalyze -------------------------------------------------------------

    def positions(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observations float32[N, *obs_shape] and legal masks bool[N, A] of positions."""
        segs, ts = self._locate(flat)
        obs = np.stack([self.observation(self.segments[s], t) for s, t in zip(segs, ts)])
        masks = np.stack([self.segments[s].masks[t] for s, t in zip(segs, ts)])
        return obs, masks

    def refresh(self, flat: np.ndarray, policies: np.ndarray, root_values: np.ndarray) -> None:
        """Replaces the search targets of sampled positions and recomputes their segments'
        targets and priorities."""
        segs, ts = self._locate(flat)
        touched = set()
        for s, t, pi, v in zip(segs, ts, policies, root_values):
            self.segments[s].policies[t] = pi
            self.segments[s].root_values[t] = v
            touched.add(int(s))
        self._retarget(touched)

    def pick_segments(self, count: int, rng: np.random.Generator) -> list[int]:
        """Indices of distinct segments in random order, enough to hold `count` positions
        (every position of a segment, its overlap included), or all of them."""
        chosen, held = [], 0
        for s in rng.permutation(len(self.segments)):
            if held >= count:
                break
            chosen.append(int(s))
            held += self.segments[s].num_positions
        return chosen

    def segment_positions(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Observations float32[T, *obs_shape] and legal masks bool[T, A] of every
        position of segment `s`."""
        seg = self.segments[s]
        obs = np.stack([self.observation(seg, t) for t in range(seg.num_positions)])
        return obs, seg.masks.copy()

    def refresh_segments(self, chosen: list[int], policies: list[np.ndarray],
                         root_values: list[np.ndarray]) -> None:
        """Replaces the search policy and value of every position of the chosen segments
        (reanalyze) and recomputes their n-step targets and priorities from them."""
        for s, pi, v in zip(chosen, policies, root_values):
            seg = self.segments[s]
            seg.policies[:] = pi
            seg.root_values[:] = v
        self._retarget(chosen)

    def _retarget(self, segments) -> None:
        for s in segments:
            targets = _Targets(self.segments[s], self.unroll, self.td_steps, self.discount)
            self._targets[s] = targets
            self._priority[s] = _priority(self.segments[s], targets)
        self._reindex()

    @property
    def games(self) -> int:
        """Finished games whose last segment is in the window."""
        return sum(1 for s in self.segments if s.done)

    def nbytes(self) -> int:
        """Memory held by the window: segments, their targets and priorities."""
        return sum(self._bytes)


# ---------------------------------------------------------------------------
# Shards


def encode_segments(game: str, obs_shape, num_actions: int, frames: bool,
                    segments: list[Segment]) -> bytes:
    items = []
    for s in segments:
        if frames:
            obs = {"encoding": "zlib-u8", "shape": list(s.obs.shape),
                   "data": zlib.compress(np.ascontiguousarray(s.obs, np.uint8).tobytes(), 6)}
        elif np.all((s.obs == 0) | (s.obs == 1)):
            obs = {"encoding": "bits", "shape": list(s.obs.shape),
                   "data": np.packbits(s.obs.astype(np.uint8).ravel()).tobytes()}
        else:
            obs = {"encoding": "f16", "shape": list(s.obs.shape),
                   "data": s.obs.astype("<f2").tobytes()}
        items.append({
            "obs": obs, "length": int(s.length), "done": bool(s.done),
            "truncated": bool(s.truncated),
            "actions": s.actions.astype("<i4").tobytes(),
            "rewards": s.rewards.astype("<f4").tobytes(),
            "policy": s.policies.astype("<f2").tobytes(),
            "root_value": s.root_values.astype("<f4").tobytes(),
            "masks": np.packbits(s.masks.astype(np.uint8).ravel()).tobytes(),
            "to_play": s.to_play.astype("i1").tobytes(),
            "episode_return": float(s.episode_return),
            "returns": None if s.returns is None else [float(x) for x in s.returns],
        })
    return msgpack.packb({"format": FORMAT, "version": VERSION, "game": game,
                          "obs_shape": list(obs_shape), "num_actions": num_actions,
                          "frames": frames, "segments": items}, use_bin_type=True)


def write_segments(path: Path, game: str, obs_shape, num_actions: int, frames: bool,
                   segments: list[Segment]) -> None:
    atomic_write_bytes(path, encode_segments(game, obs_shape, num_actions, frames, segments))


def _bytes(path, raw, key, dtype, count):
    data = raw.get(key)
    if not isinstance(data, bytes) or len(data) != count * np.dtype(dtype).itemsize:
        raise ReplayError(f"{path}: field {key!r} is missing or has the wrong size")
    return np.frombuffer(data, dtype=dtype, count=count)


def _decode(path, raw, obs_shape, num_actions, frames) -> Segment:
    if not isinstance(raw, dict):
        raise ReplayError(f"{path}: a segment entry is not a map")
    actions_raw = raw.get("actions")
    if not isinstance(actions_raw, bytes) or not 0 < len(actions_raw) <= 4 * 1_000_000 \
            or len(actions_raw) % 4:
        raise ReplayError(f"{path}: bad segment actions")
    total = len(actions_raw) // 4
    length, done = raw.get("length"), raw.get("done")
    if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= total \
            or not isinstance(done, bool):
        raise ReplayError(f"{path}: bad segment length or done flag")
    truncated = raw.get("truncated", False)  # absent in shards written before it existed
    if not isinstance(truncated, bool) or (truncated and not done):
        raise ReplayError(f"{path}: bad truncated flag")
    actions = np.frombuffer(actions_raw, "<i4").astype(np.int32)
    if actions.min() < 0 or actions.max() >= num_actions:
        raise ReplayError(f"{path}: action out of range")
    obs_raw = raw.get("obs")
    if not isinstance(obs_raw, dict) or not isinstance(obs_raw.get("data"), bytes):
        raise ReplayError(f"{path}: bad observations")
    shape = ((obs_shape[0] - 1 + total,) + tuple(obs_shape[1:]) if frames
             else (total,) + tuple(obs_shape))
    if obs_raw.get("shape") != list(shape):
        raise ReplayError(f"{path}: observations have shape {obs_raw.get('shape')}, "
                          f"expected {list(shape)}")
    count = int(np.prod(shape))
    encoding = obs_raw.get("encoding")
    try:
        if encoding == "zlib-u8" and frames:
            d = zlib.decompressobj()
            data = d.decompress(obs_raw["data"], count + 1)  # bounded: no zip bombs
            if len(data) != count or d.unconsumed_tail or d.unused_data or not d.eof:
                raise ReplayError(f"{path}: compressed frames have the wrong size")
            obs = np.frombuffer(data, np.uint8).reshape(shape)
        elif encoding == "bits" and not frames:
            packed = _bytes(path, obs_raw, "data", np.uint8, (count + 7) // 8)
            obs = np.unpackbits(packed)[:count].astype(np.float32).reshape(shape)
        elif encoding == "f16" and not frames:
            obs = _bytes(path, obs_raw, "data", "<f2", count).astype(np.float32).reshape(shape)
        else:
            raise ReplayError(f"{path}: unknown observation encoding {encoding!r}")
    except zlib.error as e:
        raise ReplayError(f"{path}: compressed frames are corrupt ({e})") from None
    rewards = _bytes(path, raw, "rewards", "<f4", total).astype(np.float32)
    policies = _bytes(path, raw, "policy", "<f2", total * num_actions).astype(np.float32)
    root_values = _bytes(path, raw, "root_value", "<f4", total).astype(np.float32)
    for name, values in (("obs", obs), ("rewards", rewards), ("policy", policies),
                         ("root_value", root_values)):
        if not np.isfinite(values).all():
            raise ReplayError(f"{path}: field {name!r} has NaN or infinite entries")
    if policies.min() < 0:
        raise ReplayError(f"{path}: field 'policy' has negative entries")
    masks = np.unpackbits(_bytes(path, raw, "masks", np.uint8, (total * num_actions + 7) // 8))
    to_play = _bytes(path, raw, "to_play", "i1", total).astype(np.int8)
    returns = raw.get("returns")
    if returns is not None and (not isinstance(returns, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
            for x in returns)):
        raise ReplayError(f"{path}: bad returns")
    episode_return = raw.get("episode_return")
    if not isinstance(episode_return, float):
        raise ReplayError(f"{path}: bad episode_return")
    return Segment(obs=np.array(obs), actions=actions, rewards=rewards,
                   policies=policies.reshape(total, num_actions), root_values=root_values,
                   masks=masks[:total * num_actions].astype(bool).reshape(total, num_actions),
                   to_play=to_play, length=length, done=done, truncated=truncated,
                   episode_return=episode_return,
                   returns=None if returns is None else np.asarray(returns, np.float32))


def read_segments(path: Path, game: str, obs_shape, num_actions: int,
                  frames: bool) -> list[Segment]:
    """Reads and validates a MuZero shard.

    Raises:
      ReplayError: unreadable, malformed, or from another game or shape (names the file).
    """
    raw = read_shard_map(path, FORMAT, VERSION, "Tabula MuZero replay shard", game)
    if (raw.get("obs_shape") != list(obs_shape) or raw.get("num_actions") != num_actions
            or raw.get("frames") is not frames):
        raise ReplayError(f"{path}: shard shapes do not match the game")
    segments = raw.get("segments")
    if not isinstance(segments, list):
        raise ReplayError(f"{path}: no segment list")
    return [_decode(path, s, tuple(obs_shape), num_actions, frames) for s in segments]


def segments_size(segs: list[Segment]) -> tuple[int, int]:
    """(positions, bytes in the window) of some segments."""
    return (sum(s.length for s in segs),
            sum(s.obs.nbytes + s.policies.nbytes + s.masks.nbytes for s in segs))


def load_segments_window(replay: SegmentReplay, paths: list[Path], game: str,
                         sizes: dict[str, tuple[int, int]] | None = None) -> int:
    """Fills `replay` from the newest shards (paths sorted oldest first); returns games.
    With `sizes`, each shard read is recorded there as name -> (positions, bytes)."""
    chosen, positions, nbytes = [], 0, 0
    for path in reversed(paths):
        segs = read_segments(path, game, replay.obs_shape, replay.num_actions, replay.frames)
        chosen.append(segs)
        size = segments_size(segs)
        positions, nbytes = positions + size[0], nbytes + size[1]
        if sizes is not None:
            sizes[path.name] = size
        if window_full(positions, nbytes, replay.capacity, replay.max_bytes):
            break
    games = 0
    for segs in reversed(chosen):
        for s in segs:
            replay.add(s)
            games += int(s.done)
    return games
