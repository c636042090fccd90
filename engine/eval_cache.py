"""A bounded cache of network evaluations, keyed by a hash of the observation.

The network is a pure function of its input, so a position whose observation
was evaluated before needs no second evaluation: its logits and value are
the same. In self-play that happens often: hundreds of parallel games start
from the same position and share openings, and the tree searched for one
move re-creates many positions of the tree searched for the move before.

`CachedEvaluator` wraps any Evaluator. Each observation is hashed (64-bit
FNV-1a over its float32 words, in a Numba kernel); hits are answered from
the cache, and only the misses go to the wrapped evaluator, in one call.
The cache holds at most `capacity` positions and forgets the oldest first.
It is exact up to hash collisions: with 64-bit keys and a million entries
the chance that any lookup collides is about 5e-8 per million lookups.

A cache belongs to one network: build a new CachedEvaluator around every
new evaluator (new weights), as the training loop does.
"""

from __future__ import annotations

import numba
import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(cache=True, nogil=True)
def hash_rows(words, out):  # pragma: no cover - compiled
    """out[i] = 64-bit FNV-1a over the uint32 words of row i, with a final avalanche."""
    n, m = words.shape
    for i in range(n):
        h = _FNV_OFFSET
        for j in range(m):
            h = (h ^ np.uint64(words[i, j])) * _FNV_PRIME
        # splitmix64 finaliser: spreads FNV's weak low bits over the whole key.
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = h ^ (h >> np.uint64(31))


def observation_keys(obs: np.ndarray) -> np.ndarray:
    """uint64[B]: a hash of each float32 observation row (identical rows, identical keys)."""
    obs = np.ascontiguousarray(obs, dtype=np.float32)
    words = obs.reshape(len(obs), -1).view(np.uint32)
    out = np.empty(len(obs), np.uint64)
    hash_rows(words, out)
    return out


class CachedEvaluator:
    """An Evaluator that answers repeated observations from a bounded cache.

    Args:
      evaluator: the wrapped Evaluator (one network's weights).
      capacity: positions kept; the oldest are forgotten first.
      num_actions: the game's action count.
    Attributes:
      requested, hits: positions asked for and answered from the cache.
    """

    def __init__(self, evaluator, capacity: int, num_actions: int):
        if capacity < 1:
            raise ValueError(f"cache capacity must be positive, got {capacity}")
        self.inner = evaluator
        self.capacity = int(capacity)
        self.backend = getattr(evaluator, "backend", "")
        choice = getattr(evaluator, "choice", None)
        if choice is not None:
            self.choice = choice
        self._logits = np.zeros((self.capacity, num_actions), np.float32)
        self._values = np.zeros(self.capacity, np.float32)
        self._keys = np.zeros(self.capacity, np.uint64)
        self._slot: dict[int, int] = {}
        self._next = 0  # the ring's next slot: the oldest entry once full
        self._size = 0
        self.requested = 0
        self.hits = 0

    def __len__(self) -> int:
        return self._size

    def hit_rate(self) -> float:
        return self.hits / self.requested if self.requested else 0.0

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See Evaluator.evaluate: the same outputs the wrapped evaluator would give."""
        n = len(obs)
        if n == 0:
            return self.inner.evaluate(obs, mask)
        keys = observation_keys(obs).tolist()
        slots = [self._slot.get(k, -1) for k in keys]
        logits = np.empty((n, self._logits.shape[1]), np.float32)
        values = np.empty(n, np.float32)
        hit = np.array(slots, np.int64)
        found = hit >= 0
        if found.any():
            logits[found] = self._logits[hit[found]]
            values[found] = self._values[hit[found]]
        missing = np.flatnonzero(~found)
        if len(missing):
            # One network call for the misses; a position repeated within the
            # batch is evaluated once and copied.
            first: dict[int, int] = {}
            unique = [i for i in missing if first.setdefault(keys[i], i) == i]
            lg, vl = self.inner.evaluate(obs[unique], mask[unique])
            logits[unique] = lg
            values[unique] = vl
            for j, i in enumerate(unique):
                self._store(keys[i], lg[j], vl[j])
            for i in missing:
                if first[keys[i]] != i:
                    logits[i] = logits[first[keys[i]]]
                    values[i] = values[first[keys[i]]]
            self.hits += n - len(unique)
        else:
            self.hits += n
        self.requested += n
        return logits, values

    def _store(self, key: int, logits: np.ndarray, value: float) -> None:
        slot = self._next
        if self._size == self.capacity:
            old = int(self._keys[slot])
            if self._slot.get(old) == slot:
                del self._slot[old]
        else:
            self._size += 1
        self._keys[slot] = key
        self._logits[slot] = logits
        self._values[slot] = value
        self._slot[key] = slot
        self._next = (slot + 1) % self.capacity


def with_cache(evaluator, capacity: int, num_actions: int):
    """`evaluator` behind a cache of `capacity` positions, or unchanged when capacity is 0."""
    return CachedEvaluator(evaluator, capacity, num_actions) if capacity else evaluator


__all__ = ["CachedEvaluator", "hash_rows", "observation_keys", "with_cache"]
