"""Tic-tac-toe: open_spiel's rules, Numba rules for search.

Actions 0..8 are cells in reading order (open_spiel's numbering: row * 3 +
col, row 0 at the top). Move text: 'a1'..'c3' (column a-c from the left, row
1-3 from the top); '1'..'9' in reading order is also accepted.
Observation float32[3, 3, 3]: mover's stones, opponent's stones, empty;
row 0 is the top row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyspiel

from games.base import GameError, GameInfo, State
from games.mnk import MNKBatch, Rules
from games.spiel import SpielGame, status_text
from games.symmetry import NUM_DIHEDRAL, dihedral

INFO = GameInfo(
    name="tictactoe",
    num_actions=9,
    observation_shape=(3, 3, 3),
    num_players=2,
    max_game_length=9,
    num_symmetries=NUM_DIHEDRAL,
    has_draws=True,
)
RULES = Rules(height=3, width=3, k=3, gravity=False)
_FORMAT = ("a cell a1..c3 (column a-c from the left, row 1-3 from the top) "
           "or 1..9 in reading order")


class TicTacToe(SpielGame):
    """Tic-tac-toe (open_spiel 'tic_tac_toe')."""

    def __init__(self):
        # open_spiel's tensor planes: 0 empty, 1 'o' (player 1), 2 'x' (player 0).
        super().__init__(INFO, "tic_tac_toe", player_planes=(2, 1, 0))

    def apply_symmetry(self, k: int, obs: np.ndarray, policy: np.ndarray):
        """The 8 dihedral maps of the board; obs float32[N, 3, 3, 3], policy float32[N, 9]."""
        return dihedral(k, obs, policy, 3)

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> MNKBatch:
        """Numba batch over int8[B, capacity, 12] positions."""
        return MNKBatch(RULES, roots, capacity)

    def board_text(self, spiel_state: pyspiel.State) -> str:
        """Board with coordinates, e.g. row '1  x o .', then whose turn or the result."""
        rows = [line for line in str(spiel_state).splitlines() if line.strip()]
        lines = ["   a b c"] + [f"{r + 1}  " + " ".join(row) for r, row in enumerate(rows)]
        return "\n".join(lines + [status_text(spiel_state)])

    def action_text(self, spiel_state: pyspiel.State, action: int) -> str:
        """'a1'..'c3'."""
        row, col = divmod(action, 3)
        return f"{'abc'[col]}{row + 1}"

    def parse_move(self, spiel_state: pyspiel.State, text: str) -> int:
        """'a1'..'c3' or '1'..'9', case-insensitive, surrounding whitespace ignored."""
        t = text.strip().lower()
        if len(t) == 2 and t[0] in "abc" and t[1] in "123":
            return (int(t[1]) - 1) * 3 + "abc".index(t[0])
        if len(t) == 1 and t in "123456789":
            return int(t) - 1
        raise GameError(f"bad tic-tac-toe move {text!r}: expected {_FORMAT}")

