"""Connect Four: open_spiel's rules, Numba rules for search.

Actions 0..6 are columns from the left (open_spiel's numbering). Move text is
the 1-based column '1'..'7'. Observation float32[3, 6, 7]: mover's stones,
opponent's stones, empty; row 0 is the BOTTOM row (open_spiel's layout).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyspiel

from games.base import GameError, GameInfo, State
from games.mnk import MNKBatch, Rules
from games.spiel import SpielGame, status_text
from games.symmetry import mirror_columns

INFO = GameInfo(
    name="connect4",
    num_actions=7,
    observation_shape=(3, 6, 7),
    num_players=2,
    max_game_length=42,
    num_symmetries=2,
    has_draws=True,
)
RULES = Rules(height=6, width=7, k=4, gravity=True)


class ConnectFour(SpielGame):
    """Connect Four (open_spiel 'connect_four')."""

    def __init__(self):
        # open_spiel's tensor planes: 0 'x' (player 0), 1 'o' (player 1), 2 empty.
        super().__init__(INFO, "connect_four", player_planes=(0, 1, 2))

    def apply_symmetry(self, k: int, obs: np.ndarray, policy: np.ndarray):
        """0 identity, 1 left-right mirror; obs float32[N, 3, 6, 7], policy float32[N, 7]."""
        return mirror_columns(k, obs, policy)

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> MNKBatch:
        """Numba batch over int8[B, capacity, 45] positions."""
        return MNKBatch(RULES, roots, capacity)

    def board_text(self, spiel_state: pyspiel.State) -> str:
        """Board (top row first, x = first player), column numbers 1..7 below, then status."""
        rows = [line for line in str(spiel_state).splitlines() if line.strip()]
        lines = [" ".join(row) for row in rows] + [" ".join("1234567")]
        return "\n".join(lines + [status_text(spiel_state)])

    def action_text(self, spiel_state: pyspiel.State, action: int) -> str:
        """'1'..'7'."""
        return str(action + 1)

    def parse_move(self, spiel_state: pyspiel.State, text: str) -> int:
        """'1'..'7', surrounding whitespace ignored."""
        t = text.strip()
        if len(t) == 1 and t in "1234567":
            return int(t) - 1
        raise GameError(f"bad Connect Four move {text!r}: expected a column number 1..7")

