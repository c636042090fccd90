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
                 q_weight: float = 0.0, territory: bool = False):
        self.capacity = capacity
        self.q_weight = q_weight
        """Value target (1 - q_weight) z + q_weight q: see GameRecord.value_targets."""
        self.obs = np.zeros((capacity,) + tuple(obs_shape), np.float16)
        self.policy = np.zeros((capacity, num_actions), np.float32)
        self.value = np.zeros(capacity, np.float32)
        cells = int(np.prod(obs_shape[-2:])) if territory else 0
        self.territory = territory
        """Whether positions keep their game's final ownership and score (GameInfo.territory)."""
        self.ownership = np.zeros((capacity if territory else 0, cells), np.int8)
        """int8[capacity, H*W]: final owner of each point from the mover's side (+1 own)."""
        self.score = np.zeros(capacity if territory else 0, np.float32)
        """float32[capacity]: final score margin from the mover's side."""
        self.has_territory = np.zeros(capacity if territory else 0, bool)
        """bool[capacity]: whether the position's game recorded them."""
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
        if self.territory:
            self.has_territory[idx] = record.ownership is not None
            if record.ownership is not None:
                self.ownership[idx] = record.ownership_targets()[keep]
                self.score[idx] = record.score_targets()[keep]
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
        batch = self.sample_batch(batch_size, rng, recent)
        return batch["obs"], batch["policy"], batch["value"]

    def sample_batch(self, batch_size: int, rng: np.random.Generator,
                     recent: int = 0) -> dict[str, np.ndarray]:
        """As `sample`, as a dict: obs, policy, value and, if the window keeps territory,
        ownership float32[N, H*W], score float32[N] and has_territory bool[N]."""
        if self.size == 0:
            raise ValueError("cannot sample an empty replay window")
        if 0 < recent < self.size:
            idx = (self._next - recent + rng.integers(0, recent, size=batch_size)) \
                % self.capacity
        else:
            idx = rng.integers(0, self.size, size=batch_size)
        batch = {"obs": self.obs[idx].astype(np.float32), "policy": self.policy[idx],
                 "value": self.value[idx]}
        if self.territory:
            batch.update(ownership=self.ownership[idx].astype(np.float32),
                         score=self.score[idx], has_territory=self.has_territory[idx])
        return batch

    def nbytes(self) -> int:
        return (self.obs.nbytes + self.policy.nbytes + self.value.nbytes
                + self.ownership.nbytes + self.score.nbytes + self.has_territory.nbytes)


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
