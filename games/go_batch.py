"""Go's SearchBatch in arrays: one Numba kernel call per expand (games/go.py's rules).

`GoState` with `ObjectBatch` (clone + apply + observation per leaf, through
open_spiel) cost about 20 us a leaf (`python -m games.bench go9`), 12-27% of
go9 self-play time; this batch (under 3 us a leaf) keeps every node's board in
arrays and expands all leaves of a step in one kernel call, with the kernels
`GoState` itself uses for legality
(`legal_moves`, `analyse_moves`), captures (`place_stone`, as `NativeRules`)
and ko (`ko_point`). tests/games/test_go_batch.py checks it against
`ObjectBatch` on random trees and whole games.

Per tree b and node n:
  boards[b, n]   int8[N*N], 0 empty, 1 black, 2 white
  fields[b, n]   int32[NUM_FIELDS]: PARENT, STATUS, PLAYER (to move), KO point
                 or -1, PASSES (consecutive, at the end), MOVES (played after
                 the handicap setup)
  hashes[b, n]   uint64 Zobrist hash of the board (GoGame.zobrist)
  legal[b, n]    bool[N*N+1], the legal mask (all False when terminal)
A node's observation walks up its ancestors for the earlier boards and
continues into the root's own history (`history[b]`, int8[8, N*N]).

Repeated positions, as `GoState` has them: with superko a move may not
recreate a position of the game (the root's `GoRoot.seen` or a board on
the path from the root); with open_spiel's rules a move that recreates a
position open_spiel has seen (`GoRoot.repeats`, handicap setup included, or a
path board) ends the game, which `GoState` then scores by area.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numba import njit

from games.base import GameError
from games.go_kernels import (
    analyse_moves,
    area_counts,
    board_hash,
    ko_point,
    legal_moves,
    place_stone,
)

PARENT, STATUS, PLAYER, KO, PASSES, MOVES = range(6)
NUM_FIELDS = 6
UNSET, ONGOING, TERMINAL = 0, 1, 2
"""Values of STATUS."""
OK, BAD_INDEX, BAD_PARENT, BAD_ACTION = 0, 1, 2, 3
"""Kernel error codes."""


class GoRoot(NamedTuple):
    """What a search tree needs of a `GoState` (`GoState.search_root()`)."""

    history: np.ndarray
    """int8[8, N, N]: the board now, one move ago, ... (zeros before the start)."""
    to_play: int
    """0 Black, 1 White (when terminal, the colour that would move next)."""
    ko: int
    """The ko point, illegal for the player to move, or -1."""
    passes: int
    """Consecutive passes at the end of the game so far."""
    num_moves: int
    """Moves played after the handicap setup."""
    terminal: bool
    legal: np.ndarray
    """bool[N*N+1]: the legal mask (all False when terminal)."""
    seen: np.ndarray
    """uint64[P], sorted: hashes of the positions a move may not recreate (superko;
    empty without)."""
    repeats: np.ndarray
    """uint64[Q], sorted: hashes of the positions whose recurrence ends the game
    (open_spiel's rule; empty with native rules)."""


@njit(cache=True, nogil=True)
def _planes(board, t, steps, mine, theirs, size, obs):
    """Writes planes t (mover's stones) and steps + t (opponent's) of obs from board."""
    for i in range(size):
        for j in range(size):
            v = board[i * size + j]
            obs[t, i, j] = v == mine
            obs[steps + t, i, j] = v == theirs


@njit(cache=True, nogil=True)
def _observe(boards, fields, history, b, node, size, obs):
    """Writes obs float32[17, N, N] of node (b, node) as `go_kernels.observe` would."""
    steps = history.shape[1]
    player = fields[b, node, PLAYER]
    mine, theirs = player + 1, 2 - player
    t, cur = 0, node
    while True:
        _planes(boards[b, cur], t, steps, mine, theirs, size, obs)
        t += 1
        if cur == 0 or t == steps:
            break
        cur = fields[b, cur, PARENT]
    back = 1
    while t < steps:  # past the root: the root's own history
        _planes(history[b, back], t, steps, mine, theirs, size, obs)
        t += 1
        back += 1
    obs[2 * steps] = np.float32(player == 0)


@njit(cache=True, nogil=True)
def _on_path(hashes, fields, b, node, h):
    """Whether a board from `node` up to (not including) the root has hash h."""
    cur = node
    while cur > 0:
        if hashes[b, cur] == h:
            return True
        cur = fields[b, cur, PARENT]
    return False


@njit(cache=True, nogil=True)
def _in_sorted(values, start, stop, h):
    at = start + np.searchsorted(values[start:stop], h)
    return at < stop and values[at] == h


@njit(cache=True, nogil=True)
def _legal(boards, fields, hashes, legal, seen, seen_start, zobrist, size, superko, b, node):
    """Fills legal[b, node] for the non-terminal node (b, node)."""
    board = boards[b, node]
    colour = fields[b, node, PLAYER] + 1
    mask = legal_moves(board, size, colour, fields[b, node, KO], zobrist)
    if superko:
        _, next_hash, _, _ = analyse_moves(board, size, colour, zobrist)
        for p in range(size * size):
            if mask[p] and (_in_sorted(seen, seen_start[b], seen_start[b + 1], next_hash[p])
                            or _on_path(hashes, fields, b, node, next_hash[p])):
                mask[p] = False
    legal[b, node] = mask


@njit(cache=True, nogil=True)
def _play(boards, fields, hashes, repeats, repeats_start, zobrist, size, komi, max_moves,
          b, parent, node, action):
    """Makes node (b, node) the position after `action` at (b, parent); sets its fields
    and hash. Returns (terminal, reward for the mover)."""
    nn = size * size
    mover = fields[b, parent, PLAYER]
    board = boards[b, node]
    board[:] = boards[b, parent]
    f = fields[b, node]
    f[PARENT] = parent
    f[PLAYER] = 1 - mover
    f[MOVES] = fields[b, parent, MOVES] + 1
    repeated = False
    if action == nn:
        f[PASSES] = fields[b, parent, PASSES] + 1
        f[KO] = -1
        hashes[b, node] = hashes[b, parent]
    else:
        f[PASSES] = 0
        place_stone(board, size, action, mover + 1)
        f[KO] = ko_point(boards[b, parent], board, action, size)
        h = board_hash(board, zobrist)
        hashes[b, node] = h
        repeated = (repeats_start[b + 1] > repeats_start[b]
                    and (_in_sorted(repeats, repeats_start[b], repeats_start[b + 1], h)
                         or _on_path(hashes, fields, b, parent, h)))
    terminal = f[PASSES] >= 2 or f[MOVES] >= max_moves or repeated
    f[STATUS] = TERMINAL if terminal else ONGOING
    if not terminal:
        return False, 0.0
    black, white = area_counts(board, size)
    score = float(black - white) - komi
    sign = 1.0 if score > 0 else -1.0 if score < 0 else 0.0
    return True, sign if mover == 0 else -sign


@njit(cache=True, nogil=True)
def expand(boards, fields, hashes, legal, history, seen, seen_start, repeats, repeats_start,
           zobrist, size, komi, max_moves, superko, leaf_tree, leaf_parent, leaf_node,
           leaf_action, obs_out, mask_out, reward_out, terminal_out):
    """Creates node positions from parent + action; see SearchBatch.expand.

    Args:
      boards, fields, hashes, legal: the node arrays (module doc), updated.
      history: int8[B, 8, N*N], the roots' histories.
      seen, repeats: uint64, per tree b the sorted hashes in [seen_start[b],
        seen_start[b + 1]) (resp. repeats_start), see `GoRoot`.
      zobrist: uint64[3, N*N]; size, komi, max_moves (max_game_length), superko.
      leaf_tree, leaf_parent, leaf_node, leaf_action: int32[L].
      obs_out: float32[L, 17, N, N]; mask_out: bool[L, N*N+1];
      reward_out: float32[L]; terminal_out: bool[L]; all written.
    Returns:
      (index of the first bad leaf or -1, error code). Processing stops there.
    """
    num_trees, capacity = boards.shape[0], boards.shape[1]
    num_actions = legal.shape[2]
    for l in range(leaf_tree.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        b, parent, action = leaf_tree[l], leaf_parent[l], leaf_action[l]
        if b < 0 or b >= num_trees or parent < 0 or parent >= capacity \
                or node >= capacity or node == parent:
            return l, BAD_INDEX
        if fields[b, parent, STATUS] != ONGOING:
            return l, BAD_PARENT
        if action < 0 or action >= num_actions or not legal[b, parent, action]:
            return l, BAD_ACTION
        terminal, reward = _play(boards, fields, hashes, repeats, repeats_start, zobrist,
                                 size, komi, max_moves, b, parent, node, action)
        reward_out[l] = reward
        terminal_out[l] = terminal
        if terminal:
            legal[b, node] = False
            obs_out[l] = 0.0
        else:
            _legal(boards, fields, hashes, legal, seen, seen_start, zobrist, size, superko,
                   b, node)
            _observe(boards, fields, history, b, node, size, obs_out[l])
        mask_out[l] = legal[b, node]
    return -1, OK


@njit(cache=True, nogil=True)
def observe_roots(boards, fields, legal, history, size, obs_out, mask_out):
    """Writes obs_out float32[B, 17, N, N] and mask_out bool[B, N*N+1] of node 0."""
    for b in range(boards.shape[0]):
        _observe(boards, fields, history, b, 0, size, obs_out[b])
        mask_out[b] = legal[b, 0]


def _check_out(name: str, array: np.ndarray, dtype, shape: tuple[int, ...]) -> None:
    # Numba does not bounds-check, so a wrong buffer would corrupt memory.
    if (not isinstance(array, np.ndarray) or array.dtype != dtype
            or array.shape[0] < shape[0] or array.shape[1:] != shape[1:]):
        raise ValueError(
            f"{name} must be a {np.dtype(dtype).name} array of shape {shape}, got "
            f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}")


def _concatenate(sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(uint64[sum of lengths], int64[len(sets) + 1] start offsets)."""
    starts = np.zeros(len(sets) + 1, np.int64)
    starts[1:] = np.cumsum([len(s) for s in sets])
    values = np.concatenate(sets).astype(np.uint64) if sets else np.zeros(0, np.uint64)
    return values, starts


class GoBatch:
    """Array-based SearchBatch for Go (see the module doc).

    Args:
      game: the `GoGame` (size, komi, superko, max_game_length, zobrist).
      roots: `GoState.search_root()` of each root.
      capacity: nodes per tree.
    """

    def __init__(self, game, roots: Sequence[GoRoot], capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.game = game
        self.num_trees = b = len(roots)
        self.capacity = capacity
        size, num_actions = game.size, game.info.num_actions
        self._obs_shape = tuple(game.info.observation_shape)
        self.boards = np.zeros((b, capacity, size * size), np.int8)
        self.fields = np.zeros((b, capacity, NUM_FIELDS), np.int32)
        self.hashes = np.zeros((b, capacity), np.uint64)
        self.legal = np.zeros((b, capacity, num_actions), np.bool_)
        steps = roots[0].history.shape[0] if roots else 1
        self.history = np.zeros((b, steps, size * size), np.int8)
        for i, root in enumerate(roots):
            self.history[i] = root.history.reshape(steps, size * size)
            self.fields[i, 0] = (-1, TERMINAL if root.terminal else ONGOING, root.to_play,
                                 root.ko, root.passes, root.num_moves)
            self.legal[i, 0] = root.legal
        self.boards[:, 0] = self.history[:, 0]
        for i in range(b):
            self.hashes[i, 0] = board_hash(self.boards[i, 0], game.zobrist)
        self.seen, self.seen_start = _concatenate([r.seen for r in roots])
        self.repeats, self.repeats_start = _concatenate([r.repeats for r in roots])

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        """Writes obs_out float32[B, 17, N, N] and mask_out bool[B, N*N+1] for the roots."""
        b = self.num_trees
        _check_out("obs_out", obs_out, np.float32, (b, *self._obs_shape))
        _check_out("mask_out", mask_out, np.bool_, (b, self.game.info.num_actions))
        observe_roots(self.boards, self.fields, self.legal, self.history, self.game.size,
                      obs_out, mask_out)

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        """See `SearchBatch.expand`; leaf arrays int[L], outputs written in place.

        Raises GameError for an illegal action or a parent that is terminal or
        not created, ValueError for out-of-range indices or wrong buffers.
        """
        leaf_tree = np.asarray(leaf_tree, np.int32)
        leaf_parent = np.asarray(leaf_parent, np.int32)
        leaf_node = np.asarray(leaf_node, np.int32)
        leaf_action = np.asarray(leaf_action, np.int32)
        num_leaves = leaf_tree.shape[0]
        if not leaf_parent.shape == leaf_node.shape == leaf_action.shape == (num_leaves,):
            raise ValueError("leaf_tree, leaf_parent, leaf_node, leaf_action must be "
                             f"int32[L] of one length, got shapes {leaf_tree.shape}, "
                             f"{leaf_parent.shape}, {leaf_node.shape}, {leaf_action.shape}")
        _check_out("obs_out", obs_out, np.float32, (num_leaves, *self._obs_shape))
        _check_out("mask_out", mask_out, np.bool_, (num_leaves, self.game.info.num_actions))
        _check_out("reward_out", reward_out, np.float32, (num_leaves,))
        _check_out("terminal_out", terminal_out, np.bool_, (num_leaves,))
        game = self.game
        bad, code = expand(self.boards, self.fields, self.hashes, self.legal, self.history,
                           self.seen, self.seen_start, self.repeats, self.repeats_start,
                           game.zobrist, game.size, game.komi, game.max_game_length,
                           game.superko, leaf_tree, leaf_parent, leaf_node, leaf_action,
                           obs_out, mask_out, reward_out, terminal_out)
        if bad >= 0:
            self._raise(bad, code, leaf_tree, leaf_parent, leaf_node, leaf_action)

    def _raise(self, l, code, leaf_tree, leaf_parent, leaf_node, leaf_action):
        where = (f"leaf {l} (tree {leaf_tree[l]}, parent {leaf_parent[l]}, "
                 f"node {leaf_node[l]}, action {leaf_action[l]})")
        if code == BAD_INDEX:
            raise ValueError(f"{where}: index out of range (B={self.num_trees}, "
                             f"capacity={self.capacity}) or node == parent")
        if code == BAD_PARENT:
            status = self.fields[leaf_tree[l], leaf_parent[l], STATUS]
            what = "not created yet" if status == UNSET else "terminal"
            raise GameError(f"{where}: the parent node is {what}")
        raise GameError(f"{where}: illegal action in the parent position")
