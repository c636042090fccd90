"""Fast array rules for k-in-a-row games (tic-tac-toe, Connect Four) in Numba.

An (H, W, K) game: two players alternately place stones on an H x W board;
the first with K in a row (horizontally, vertically or diagonally) wins; a
full board is a draw. Without gravity an action is a cell (row * W + col);
with gravity an action is a column and the stone falls to the lowest empty
row (row 0 is the bottom, as in open_spiel's Connect Four tensor).

One position is int8[S], S = H * W + 3:
  [0, H*W)      cells in observation order (row-major): EMPTY, 1 = player 0, 2 = player 1
  H*W + TO_PLAY player to move (after a terminal move: the player who would move next)
  H*W + MOVES   number of stones on the board
  H*W + STATUS  UNSET (node not created), ONGOING or TERMINAL

`MNKBatch` implements the SearchBatch protocol over int8[B, capacity, S]
with one kernel call per `expand` and per `observe_roots`. Observations
match `SpielState.observation()`: float32[3, H, W] planes (mover's stones,
opponent's stones, empty); terminal leaves get zeros, as in `ObjectBatch`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numba import njit

from games.base import GameError, State, check_leaves, check_out

EMPTY = 0
TO_PLAY, MOVES, STATUS = 0, 1, 2  # offsets after the cells
UNSET, ONGOING, TERMINAL = 0, 1, 2  # values of STATUS
ILLEGAL, CONTINUE, WIN, DRAW = -1, 0, 1, 2  # results of _play
OK, BAD_INDEX, BAD_PARENT, BAD_ACTION = 0, 1, 2, 3  # kernel error codes


class Rules(NamedTuple):
    """Board geometry of a k-in-a-row game."""

    height: int
    width: int
    k: int
    gravity: bool

    @property
    def num_actions(self) -> int:
        return self.width if self.gravity else self.height * self.width

    @property
    def position_size(self) -> int:
        return self.height * self.width + 3


@njit(cache=True, nogil=True)
def _run(pos, h, w, r, c, dr, dc, stone):
    """Number of `stone` cells after (r, c) in direction (dr, dc)."""
    n = 0
    r += dr
    c += dc
    while 0 <= r < h and 0 <= c < w and pos[r * w + c] == stone:
        n += 1
        r += dr
        c += dc
    return n


@njit(cache=True, nogil=True)
def _line(pos, h, w, r, c, dr, dc, stone):
    """Length of the line of `stone` through (r, c) along (dr, dc)."""
    return 1 + _run(pos, h, w, r, c, dr, dc, stone) + _run(pos, h, w, r, c, -dr, -dc, stone)


@njit(cache=True, nogil=True)
def _play(pos, h, w, k, gravity, action):
    """Plays `action` on pos (int8[S]) in place if legal.

    Returns ILLEGAL (pos unchanged), CONTINUE, WIN (for the mover) or DRAW.
    Only lines through the new stone are checked.
    """
    n = h * w
    if pos[n + STATUS] != ONGOING:
        return ILLEGAL
    if gravity:
        if action < 0 or action >= w:
            return ILLEGAL
        c = action
        r = 0
        while r < h and pos[r * w + c] != EMPTY:
            r += 1
        if r == h:
            return ILLEGAL
    else:
        if action < 0 or action >= n or pos[action] != EMPTY:
            return ILLEGAL
        r = action // w
        c = action % w
    player = pos[n + TO_PLAY]
    stone = player + 1
    pos[r * w + c] = stone
    pos[n + MOVES] += 1
    pos[n + TO_PLAY] = 1 - player
    if (_line(pos, h, w, r, c, 0, 1, stone) >= k
            or _line(pos, h, w, r, c, 1, 0, stone) >= k
            or _line(pos, h, w, r, c, 1, 1, stone) >= k
            or _line(pos, h, w, r, c, 1, -1, stone) >= k):
        pos[n + STATUS] = TERMINAL
        return WIN
    if pos[n + MOVES] == n:
        pos[n + STATUS] = TERMINAL
        return DRAW
    return CONTINUE


@njit(cache=True, nogil=True)
def _observe(pos, h, w, gravity, obs, mask):
    """Writes obs (float32[3, h, w]) and mask (bool[A]) of pos (int8[S])."""
    n = h * w
    me = pos[n + TO_PLAY] + 1
    for r in range(h):
        for c in range(w):
            v = pos[r * w + c]
            obs[0, r, c] = 1.0 if v == me else 0.0
            obs[1, r, c] = 1.0 if v != EMPTY and v != me else 0.0
            obs[2, r, c] = 1.0 if v == EMPTY else 0.0
    terminal = pos[n + STATUS] != ONGOING
    if gravity:
        for c in range(w):
            mask[c] = not terminal and pos[(h - 1) * w + c] == EMPTY
    else:
        for i in range(n):
            mask[i] = not terminal and pos[i] == EMPTY


@njit(cache=True, nogil=True)
def load_roots(positions, h, w, k, gravity, histories, lengths):
    """Replays each root's history into node 0 of its tree.

    Args:
      positions: int8[B, capacity, S], node 0 written; other nodes are left
        as they are (UNSET when freshly zeroed).
      histories: int32[B, T] actions, padded; lengths: int32[B].
    Returns:
      (index of the first root with an illegal history or -1, its ply).
    """
    for b in range(positions.shape[0]):
        pos = positions[b, 0]
        pos[:] = EMPTY
        pos[h * w + STATUS] = ONGOING
        for t in range(lengths[b]):
            if _play(pos, h, w, k, gravity, histories[b, t]) == ILLEGAL:
                return b, t
    return -1, 0


@njit(cache=True, nogil=True)
def observe_roots(positions, h, w, gravity, obs_out, mask_out):
    """Writes obs_out (float32[B, 3, h, w]) and mask_out (bool[B, A]) of node 0."""
    for b in range(positions.shape[0]):
        _observe(positions[b, 0], h, w, gravity, obs_out[b], mask_out[b])


@njit(cache=True, nogil=True)
def expand(positions, h, w, k, gravity, leaf_tree, leaf_parent, leaf_node,
           leaf_action, obs_out, mask_out, reward_out, terminal_out):
    """Creates node positions from parent + action; see SearchBatch.expand.

    Args:
      positions: int8[B, capacity, S], updated.
      leaf_tree, leaf_parent, leaf_node, leaf_action: int32[L].
      obs_out: float32[L, 3, h, w]; mask_out: bool[L, A];
      reward_out: float32[L]; terminal_out: bool[L]; all written.
    Returns:
      (index of the first bad leaf or -1, error code). Processing stops there.
    """
    num_trees, capacity = positions.shape[0], positions.shape[1]
    n = h * w
    for l in range(leaf_tree.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        tree = leaf_tree[l]
        parent = leaf_parent[l]
        if tree < 0 or tree >= num_trees or parent < 0 or parent >= capacity \
                or node >= capacity or node == parent:
            return l, BAD_INDEX
        if positions[tree, parent, n + STATUS] != ONGOING:
            return l, BAD_PARENT
        pos = positions[tree, node]
        pos[:] = positions[tree, parent]
        result = _play(pos, h, w, k, gravity, leaf_action[l])
        if result == ILLEGAL:
            pos[n + STATUS] = UNSET
            return l, BAD_ACTION
        reward_out[l] = 1.0 if result == WIN else 0.0
        terminal = result != CONTINUE
        terminal_out[l] = terminal
        if terminal:
            obs_out[l] = 0.0
            mask_out[l] = False
        else:
            _observe(pos, h, w, gravity, obs_out[l], mask_out[l])
    return -1, OK


class MNKBatch:
    """Array-based SearchBatch for a k-in-a-row game.

    Attributes:
      num_trees: B.
      positions: int8[B, capacity, S], the node positions (layout in module doc).
    """

    def __init__(self, rules: Rules, roots: Sequence[State], capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rules = rules
        self.num_trees = len(roots)
        self.capacity = capacity
        self.positions = np.zeros((self.num_trees, capacity, rules.position_size), np.int8)
        self._obs_shape = (3, rules.height, rules.width)
        histories = [root.history() for root in roots]
        max_len = max((len(h) for h in histories), default=0)
        padded = np.zeros((self.num_trees, max(max_len, 1)), np.int32)
        lengths = np.zeros(self.num_trees, np.int32)
        for b, history in enumerate(histories):
            padded[b, :len(history)] = history
            lengths[b] = len(history)
        h, w, k, gravity = rules
        bad, ply = load_roots(self.positions, h, w, k, gravity, padded, lengths)
        if bad >= 0:
            raise GameError(
                f"root {bad}: action {padded[bad, ply]} at ply {ply} of its history "
                f"is illegal in this game ({rules})")

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        """Writes obs_out float32[B, 3, H, W] and mask_out bool[B, A] for the roots."""
        b = self.num_trees
        check_out("obs_out", obs_out, np.float32, (b, *self._obs_shape))
        check_out("mask_out", mask_out, np.bool_, (b, self.rules.num_actions))
        h, w, _, gravity = self.rules
        observe_roots(self.positions, h, w, gravity, obs_out, mask_out)

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        """See `SearchBatch.expand`; leaf arrays int32[L], outputs written in place.

        Raises GameError for an illegal action or a parent that is terminal or
        not created, ValueError for out-of-range indices or wrong buffers.
        """
        leaf_tree, leaf_parent, leaf_node, leaf_action = check_leaves(
            leaf_tree, leaf_parent, leaf_node, leaf_action, obs_out, mask_out, reward_out,
            terminal_out, self._obs_shape, self.rules.num_actions)
        h, w, k, gravity = self.rules
        bad, code = expand(self.positions, h, w, k, gravity, leaf_tree, leaf_parent,
                           leaf_node, leaf_action, obs_out, mask_out, reward_out,
                           terminal_out)
        if bad >= 0:
            self._raise(bad, code, leaf_tree, leaf_parent, leaf_node, leaf_action)

    def _raise(self, l, code, leaf_tree, leaf_parent, leaf_node, leaf_action):
        where = (f"leaf {l} (tree {leaf_tree[l]}, parent {leaf_parent[l]}, "
                 f"node {leaf_node[l]}, action {leaf_action[l]})")
        if code == BAD_INDEX:
            raise ValueError(f"{where}: index out of range (B={self.num_trees}, "
                             f"capacity={self.capacity}) or node == parent")
        if code == BAD_PARENT:
            n = self.rules.height * self.rules.width
            status = self.positions[leaf_tree[l], leaf_parent[l], n + STATUS]
            what = "not created yet" if status == UNSET else "terminal"
            raise GameError(f"{where}: the parent node is {what}")
        raise GameError(f"{where}: illegal action in the parent position")
