"""A SearchBatch over pyspiel states, for any open_spiel game (games/spiel_family.py).

`ObjectBatch` over `SpielState`s would do, but goes through Python wrappers and
asks open_spiel for the legal actions twice a leaf (the legality check of
`apply`, then the mask). Here each node keeps its pyspiel state and its legal
action ids: a leaf costs open_spiel's clone, apply, legal actions and
observation tensor, plus numpy copies. tests/games/test_spiel_family.py checks
it against `ObjectBatch`.

Per tree b and node n: `nodes[b][n]` = (pyspiel state, legal action ids, or
None when the game is over). It is a MoverBatch too: who moves at a node is
its state's `current_player()`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from games.base import GameError, State, check_leaves, check_out
from games.spiel import not_alternating


class SpielBatch:
    """SearchBatch for a `SpielGame` (see the module doc).

    Args:
      game: the `SpielGame` (its `observe` writes the observations).
      roots: `SpielState`s of that game (read, never written).
      capacity: nodes per tree.
    """

    def __init__(self, game, roots: Sequence[State], capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.game = game
        self.num_trees = len(roots)
        self.capacity = capacity
        self.nodes = [[(r.spiel_state, r.spiel_state.legal_actions() or None)]
                      + [None] * (capacity - 1) for r in roots]

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        """Writes obs_out float32[B, *observation_shape] and mask_out bool[B, A]."""
        info = self.game.info
        check_out("obs_out", obs_out, np.float32, (self.num_trees, *info.observation_shape))
        check_out("mask_out", mask_out, np.bool_, (self.num_trees, info.num_actions))
        for b, tree_nodes in enumerate(self.nodes):
            spiel_state, legal = tree_nodes[0]
            mask_out[b] = False
            if legal is not None:
                mask_out[b, legal] = True
            obs_out[b] = self.game.observe(spiel_state, _to_play(spiel_state))

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        """See `SearchBatch.expand`; leaf arrays int[L], outputs written in place.

        Raises GameError for an illegal action, a parent that is terminal or not
        created, or a player moving twice in a row in a game declared alternating;
        ValueError for out-of-range indices or wrong buffers.
        """
        info = self.game.info
        leaf_tree, leaf_parent, leaf_node, leaf_action = check_leaves(
            leaf_tree, leaf_parent, leaf_node, leaf_action, obs_out, mask_out, reward_out,
            terminal_out, info.observation_shape, info.num_actions)
        observe = self.game.observe
        alternating = info.alternating
        for l, (b, parent, node, action) in enumerate(zip(
                leaf_tree.tolist(), leaf_parent.tolist(), leaf_node.tolist(),
                leaf_action.tolist())):
            if node < 0:
                continue
            if not (0 <= b < self.num_trees and 0 <= parent < self.capacity
                    and node < self.capacity and node != parent):
                raise ValueError(f"{_where(l, b, parent, node, action)}: index out of range "
                                 f"(B={self.num_trees}, capacity={self.capacity}) "
                                 "or node == parent")
            tree_nodes = self.nodes[b]
            entry = tree_nodes[parent]
            if entry is None or entry[1] is None:
                what = "not created yet" if entry is None else "terminal"
                raise GameError(f"{_where(l, b, parent, node, action)}: the parent node "
                                f"is {what}")
            spiel_state, legal = entry
            if action not in legal:
                raise GameError(f"{_where(l, b, parent, node, action)}: illegal action "
                                "in the parent position")
            mover = spiel_state.current_player()
            child = spiel_state.clone()
            child.apply_action(action)
            terminal = child.is_terminal()
            moves = None if terminal else child.legal_actions()
            tree_nodes[node] = (child, moves)
            terminal_out[l] = terminal
            mask_out[l] = False
            if terminal:
                reward_out[l] = child.returns()[mover]
                obs_out[l] = 0.0
                continue
            player = child.current_player()
            if alternating and player == mover:
                raise GameError(not_alternating(info.name, mover))
            reward_out[l] = 0.0
            mask_out[l, moves] = True
            obs_out[l] = observe(child, player)

    def players_to_move(self, trees, nodes, out) -> None:
        """See `games.base.MoverBatch`: each created node's player to move (terminal: -4,
        open_spiel's terminal id)."""
        for l, (b, node) in enumerate(zip(np.asarray(trees).tolist(),
                                          np.asarray(nodes).tolist())):
            if node >= 0:
                out[l] = self.nodes[b][node][0].current_player()


def _to_play(spiel_state) -> int:
    """The player to move; for a finished game, the next in alternation (SpielState.to_play)."""
    player = spiel_state.current_player()
    return len(spiel_state.history()) % 2 if player < 0 else player


def _where(l, b, parent, node, action) -> str:
    return f"leaf {l} (tree {b}, parent {parent}, node {node}, action {action})"
