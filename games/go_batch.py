"""Go's SearchBatch in arrays: one Numba kernel call per expand (games/go.py's rules).

`GoState` with `ObjectBatch` (clone + apply + observation per leaf, through
open_spiel) cost about 20 us a leaf (`python -m games.bench go9`), 12-27% of
go9 self-play time; this batch (under 4 us a leaf) keeps every node's board in
arrays and expands all leaves of a step in one kernel call
(`go_kernels.expand_nodes`), with the kernels `GoState` itself uses for
legality (`legal_moves`, `analyse_moves`), captures (`place_stone`, as
`NativeRules`) and ko (`ko_point`). tests/games/test_go_batch.py checks it
against `ObjectBatch` on random trees and whole games.

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

from games.base import GameError, check_leaves, check_out
from games.go_kernels import (
    BAD_INDEX,
    BAD_PARENT,
    NUM_FIELDS,
    ONGOING,
    STATUS,
    TERMINAL,
    UNSET,
    board_hash,
    expand_nodes,
    observe_root_nodes,
)


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
        check_out("obs_out", obs_out, np.float32, (b, *self._obs_shape))
        check_out("mask_out", mask_out, np.bool_, (b, self.game.info.num_actions))
        observe_root_nodes(self.boards, self.fields, self.legal, self.history, self.game.size,
                           obs_out, mask_out)

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        """See `SearchBatch.expand`; leaf arrays int[L], outputs written in place.

        Raises GameError for an illegal action or a parent that is terminal or
        not created, ValueError for out-of-range indices or wrong buffers.
        """
        leaf_tree, leaf_parent, leaf_node, leaf_action = check_leaves(
            leaf_tree, leaf_parent, leaf_node, leaf_action, obs_out, mask_out, reward_out,
            terminal_out, self._obs_shape, self.game.info.num_actions)
        game = self.game
        bad, code = expand_nodes(self.boards, self.fields, self.hashes, self.legal, self.history,
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
