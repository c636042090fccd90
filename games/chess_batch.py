"""Chess's SearchBatch: open_spiel states per node, the rest in arrays and one kernel.

`ChessState` with `ObjectBatch` cost about 28 us a leaf (clone, apply,
history push, observation and legal mask through Python objects; 128 trees,
16 steps) of which open_spiel's own work (clone, apply, move generation) is
4-7 us. Here a leaf costs open_spiel's work plus a copy of its observation
tensor, about 12 us in all; one kernel call per expand (chess_planes.write_leaves)
turns the tensors into history rows, writes the observations and the masks.
tests/games/test_chess_batch.py checks it against `ObjectBatch`.

Per tree b and node n: `nodes[b][n]` = (pyspiel state, legal action ids or
None when terminal, plies, Black to move); `rows[b, n]` int8[ROW] the position;
`fields[b, n]` int32[NUM_FIELDS]: PARENT, BLACK (to move), FULLMOVE. A node's
observation walks up its ancestors for the earlier positions and continues
into the root's own history (`history[b]`, int8[8, ROW]).
"""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pyspiel

from games.base import GameError, check_leaves, check_out
from games.chess_planes import (
    HISTORY,
    NUM_FIELDS,
    ROW,
    observe_root_nodes,
    write_leaves,
)

TENSOR_SIZE = 20 * 64
"""open_spiel's chess observation tensor."""


class ChessRoot(NamedTuple):
    """What a search tree needs of a `ChessState` (`ChessState.search_root()`)."""

    spiel_state: pyspiel.State
    """The position (read, cloned, never written)."""
    history: np.ndarray
    """int8[8, ROW]: the position now, one ply ago, ... (zeros before the start)."""
    black: bool
    """Black to move."""
    fullmove: int
    plies: int
    """Plies played from the initial position (the game ends at max_game_length)."""
    legal: list
    """Legal action ids ([] when terminal)."""


def _flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(int64[total] the ids, int64[len(lists) + 1] start offsets)."""
    starts = np.zeros(len(lists) + 1, np.int64)
    starts[1:] = np.cumsum([len(x) for x in lists])
    return np.fromiter(itertools.chain.from_iterable(lists), np.int64, starts[-1]), starts


class ChessBatch:
    """SearchBatch for chess (see the module doc).

    Args:
      roots: `ChessState.search_root()` of each root.
      capacity: nodes per tree.
      num_actions, max_game_length: the game's.
      spiel_tensor: fills and returns open_spiel's observation tensor float32[1280] of a
        pyspiel state (`ChessGame.spiel_tensor`).
    """

    def __init__(self, roots: Sequence[ChessRoot], capacity: int, num_actions: int,
                 max_game_length: int, spiel_tensor: Callable[[pyspiel.State], np.ndarray]):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.num_trees = b = len(roots)
        self.capacity = capacity
        self.num_actions = num_actions
        self.max_game_length = max_game_length
        self._spiel_tensor = spiel_tensor
        self.nodes = [[(r.spiel_state, r.legal or None, r.plies, r.black)]
                      + [None] * (capacity - 1) for r in roots]
        self.rows = np.zeros((b, capacity, ROW), np.int8)
        self.fields = np.zeros((b, capacity, NUM_FIELDS), np.int32)
        self.history = np.zeros((b, HISTORY, ROW), np.int8)
        for i, r in enumerate(roots):
            self.history[i] = r.history
            self.fields[i, 0] = (-1, int(r.black), r.fullmove)
        self.rows[:, 0] = self.history[:, 0]
        self._root_legal = _flatten([r.legal for r in roots])
        self._tensors = np.zeros((0, TENSOR_SIZE), np.float32)

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        """Writes obs_out float32[B, 119, 8, 8] and mask_out bool[B, A] for the roots."""
        b = self.num_trees
        check_out("obs_out", obs_out, np.float32, (b, 119, 8, 8))
        check_out("mask_out", mask_out, np.bool_, (b, self.num_actions))
        observe_root_nodes(self.rows, self.fields, self.history, *self._root_legal, obs_out,
                           mask_out)

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        """See `SearchBatch.expand`; leaf arrays int[L], outputs written in place.

        Raises GameError for an illegal action or a parent that is terminal or
        not created, ValueError for out-of-range indices or wrong buffers.
        """
        leaf_tree, leaf_parent, leaf_node, leaf_action = check_leaves(
            leaf_tree, leaf_parent, leaf_node, leaf_action, obs_out, mask_out, reward_out,
            terminal_out, (119, 8, 8), self.num_actions)
        num_leaves = leaf_tree.shape[0]
        if self._tensors.shape[0] < num_leaves:
            self._tensors = np.zeros((num_leaves, TENSOR_SIZE), np.float32)
        terminal = np.zeros(num_leaves, np.bool_)
        legal_lists = [()] * num_leaves
        done = np.full(num_leaves, -1, np.int32)  # the nodes created; the kernel ends them
        try:
            self._play_leaves(leaf_tree.tolist(), leaf_parent.tolist(), leaf_node.tolist(),
                              leaf_action.tolist(), done, terminal, legal_lists, reward_out)
        finally:
            legal, starts = _flatten(legal_lists)
            write_leaves(self.rows, self.fields, self.history, leaf_tree, leaf_parent, done,
                         self._tensors, terminal, legal, starts, obs_out, mask_out)
            terminal_out[done >= 0] = terminal[done >= 0]

    def _play_leaves(self, trees, parents, nodes, actions, done, terminal, legal_lists,
                     reward_out) -> None:
        """Plays each leaf's action on a clone of its parent's open_spiel state."""
        num_trees, capacity, tensors = self.num_trees, self.capacity, self._tensors
        all_nodes, spiel_tensor, max_plies = self.nodes, self._spiel_tensor, self.max_game_length
        for l, node in enumerate(nodes):
            if node < 0:
                continue
            b, parent, action = trees[l], parents[l], actions[l]
            if not (0 <= b < num_trees and 0 <= parent < capacity
                    and node < capacity and node != parent):
                raise ValueError(f"{self._where(l, b, parent, node, action)}: index out of "
                                 f"range (B={num_trees}, capacity={capacity}) "
                                 "or node == parent")
            tree_nodes = all_nodes[b]
            entry = tree_nodes[parent]
            if entry is None or entry[1] is None:
                what = "not created yet" if entry is None else "terminal"
                raise GameError(f"{self._where(l, b, parent, node, action)}: the parent "
                                f"node is {what}")
            spiel_state, legal, plies, black = entry
            if action not in legal:
                raise GameError(f"{self._where(l, b, parent, node, action)}: illegal "
                                "action in the parent position")
            child = spiel_state.clone()
            child.apply_action(action)
            plies += 1
            # open_spiel returns no legal actions exactly when the game is over.
            moves = None if plies >= max_plies else child.legal_actions() or None
            tree_nodes[node] = (child, moves, plies, not black)
            done[l] = node
            if moves is not None:
                tensors[l] = spiel_tensor(child)
                legal_lists[l] = moves
                reward_out[l] = 0.0
                continue
            terminal[l] = True
            # Else a draw by the move limit; open_spiel's player 0 is Black.
            reward_out[l] = child.returns()[1 - black] if child.is_terminal() else 0.0

    @staticmethod
    def _where(l, b, parent, node, action) -> str:
        return f"leaf {l} (tree {b}, parent {parent}, node {node}, action {action})"
