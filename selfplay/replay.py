"""The replay window: the most recent positions, sampled uniformly.

On disk the window is the run directory's replay/shard-*.msgpack files; in
memory it is a ring of preallocated arrays, so memory is fixed by
`window_positions` once the window is full.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from selfplay.records import GameRecord, read_shard


def window_capacity(window_positions: int, window_mb: float, obs_shape,
                    num_actions: int) -> int:
    """Positions a ReplayBuffer keeps: window_positions, fewer if window_mb (MiB) says so."""
    if not window_mb or window_mb == float("inf"):
        return window_positions
    per_position = (int(np.prod(obs_shape)) * np.dtype(np.float16).itemsize
                    + num_actions * np.dtype(np.float32).itemsize
                    + np.dtype(np.float32).itemsize)
    return max(1, min(window_positions, int(window_mb * 2**20) // per_position))


def growing_window(positions: int, start: int, capacity: int) -> int:
    """The positions to sample from after `positions` self-play positions: KataGo's
    growing window c (1 + beta ((N / c) ** alpha - 1) / alpha) with c = `start`,
    alpha = 0.75, beta = 0.4, at most `capacity`. `start` 0: `capacity` throughout."""
    if start <= 0:
        return capacity
    if positions <= start:
        return min(start, capacity)
    alpha, beta = 0.75, 0.4
    return min(capacity, int(start * (1 + beta * ((positions / start) ** alpha - 1) / alpha)))


class ReplayBuffer:
    """A ring of the `capacity` most recent positions."""

    max_bytes = 0
    """The window's byte bound (as SegmentReplay's): none, capacity alone bounds it."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], num_actions: int,
                 q_weight: float = 0.0):
        self.capacity = capacity
        self.q_weight = q_weight
        """Value target (1 - q_weight) z + q_weight q: see GameRecord.value_targets."""
        self.obs = np.zeros((capacity,) + tuple(obs_shape), np.float16)
        self.policy = np.zeros((capacity, num_actions), np.float32)
        self.value = np.zeros(capacity, np.float32)
        self.size = 0
        self._next = 0
        self.games_added = 0
        self.positions_added = 0
        self._lengths: deque[int] = deque()  # games with positions in the window
        self._held = 0

    def add(self, record: GameRecord) -> None:
        """Appends a finished game's trained positions, overwriting the oldest."""
        keep = record.trained()[-self.capacity:]
        n = len(keep)
        if n == 0:
            return
        idx = (self._next + np.arange(n)) % self.capacity
        self.obs[idx] = record.observations[keep]
        self.policy[idx] = record.policies[keep]
        self.value[idx] = record.value_targets(self.q_weight)[keep]
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.games_added += 1
        self.positions_added += n
        self._lengths.append(n)
        self._held += n
        while self._held - self._lengths[0] >= self.capacity:
            self._held -= self._lengths.popleft()

    @property
    def games(self) -> int:
        """Games with at least one position in the window."""
        return len(self._lengths)

    def sample(self, batch_size: int, rng: np.random.Generator, recent: int = 0):
        """Uniform positions from the window, or from its `recent` newest positions.

        Returns:
          (obs float32[N, *obs_shape], policy float32[N, A], value float32[N]).
        """
        if self.size == 0:
            raise ValueError("cannot sample an empty replay window")
        if 0 < recent < self.size:
            idx = (self._next - recent + rng.integers(0, recent, size=batch_size)) \
                % self.capacity
        else:
            idx = rng.integers(0, self.size, size=batch_size)
        return self.obs[idx].astype(np.float32), self.policy[idx], self.value[idx]

    def nbytes(self) -> int:
        return self.obs.nbytes + self.policy.nbytes + self.value.nbytes


def shard_paths(replay_dir: Path) -> list[Path]:
    return sorted(Path(replay_dir).glob("shard-*.msgpack"))


def window_full(positions: int, nbytes: int, capacity: int, max_bytes: int = 0) -> bool:
    """Whether the newest shards read so far (`positions`, `nbytes`) fill a window: the
    rule both window loaders stop reading by, and the replay pruning keeps by."""
    return positions >= capacity or bool(max_bytes and nbytes >= max_bytes)


def load_window(buffer: ReplayBuffer, replay_dir: Path, game: str,
                obs_shape: tuple[int, ...], num_actions: int,
                sizes: dict[str, tuple[int, int]] | None = None) -> int:
    """Fills `buffer` from the newest shards on disk; returns the games loaded.

    Reads shards newest first until the window is full, then adds them oldest
    first so the ring ends in the same order as when they were written. With
    `sizes`, each shard read is recorded there as name -> (positions, 0).
    """
    chosen: list[list[GameRecord]] = []
    positions = 0
    for path in reversed(shard_paths(replay_dir)):
        records = read_shard(path, game, obs_shape, num_actions)
        chosen.append(records)
        positions += sum(len(r) for r in records)
        if sizes is not None:
            sizes[path.name] = (sum(len(r) for r in records), 0)
        if window_full(positions, 0, buffer.capacity):
            break
    games = 0
    for records in reversed(chosen):
        for r in records:
            buffer.add(r)
            games += 1
    return games
