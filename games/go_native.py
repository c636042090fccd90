"""Go rules in Numba for boards open_spiel does not support (20x20 up to 25x25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyspiel

from games.go_kernels import ko_point, legal_moves, play_stone

if TYPE_CHECKING:
    from games.go import GoGame

TERMINAL_PLAYER = int(pyspiel.PlayerId.TERMINAL)


class NativeRules:
    """open_spiel's Go rules in Numba, as the subset of `pyspiel.State` GoState uses.

    For boards open_spiel does not support. Same rules: no suicide, simple
    ko (`ko_point`), two consecutive passes end the game (GoState also
    enforces max_game_length and scores).
    """

    __slots__ = ("game", "board", "ko", "player", "actions", "passes")

    def __init__(self, game: GoGame):
        self.game = game
        self.board = np.zeros(game.num_points, dtype=np.int8)
        """int8[N*N], 0 empty, 1 black, 2 white; replaced, never written, by a move."""
        self.ko = -1
        self.player = 0
        self.actions: list[int] = []
        self.passes = 0

    def clone(self) -> "NativeRules":
        other = object.__new__(NativeRules)
        other.game, other.board, other.ko = self.game, self.board, self.ko
        other.player, other.actions, other.passes = self.player, list(self.actions), self.passes
        return other

    def apply_action(self, action: int) -> None:
        """Plays a legal action (not checked)."""
        if action == self.game.pass_action:
            self.passes += 1
            self.ko = -1
        else:
            before = self.board
            self.board = play_stone(before, self.game.size, action, self.player + 1)
            self.ko = ko_point(before, self.board, action, self.game.size)
            self.passes = 0
        self.actions.append(action)
        self.player = 1 - self.player

    def is_terminal(self) -> bool:
        return self.passes >= 2

    def current_player(self) -> int:
        return TERMINAL_PLAYER if self.passes >= 2 else self.player

    def history(self) -> list[int]:
        return list(self.actions)

    def legal_actions_mask(self) -> np.ndarray:
        game = self.game
        return legal_moves(self.board, game.size, self.player + 1, self.ko, game.zobrist)
