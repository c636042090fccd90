"""Hexapawn (Martin Gardner, 1962): a complete Tabula game in one file.

Rules: a 3x3 board. White (player 0) has three pawns on rank 1, Black (player
1) three on rank 3; White moves first. A pawn moves one square straight
forward to an empty square, or one square diagonally forward onto an enemy
pawn, capturing it. A player wins by reaching the far rank, by capturing every
enemy pawn, or when the opponent has no move. There are no draws; with
perfect play Black wins.

    tabula train --game hexapawn:Hexapawn --run runs/hexapawn --minutes 2
    tabula play --checkpoint runs/hexapawn/checkpoints/step-00000100.safetensors

docs/NEW_GAME.md explains every part.
"""

from __future__ import annotations

import numpy as np

from games import GameError, GameInfo, ObjectBatch

SIZE = 3
FILES = "abcdefgh"[:SIZE]
EMPTY = 0  # board cells hold EMPTY or player + 1
STEPS = (-1, 0, 1)  # column change of the three moves: capture left, straight, capture right

INFO = GameInfo(
    name="hexapawn",  # Tabula replaces it with the name the game is loaded under
    num_actions=SIZE * SIZE * len(STEPS),  # (from-square seen by the mover, step)
    observation_shape=(2, SIZE, SIZE),  # the mover's pawns, the opponent's pawns
    num_players=2,
    # Every move takes a pawn one rank forward, and a pawn's move to the far rank
    # ends the game: each pawn makes at most SIZE - 2 other moves.
    max_game_length=2 * SIZE * (SIZE - 2) + 1,
    num_symmetries=2,  # the identity and the left-right mirror
    has_draws=False,
)


def mover_row(row: int, player: int) -> int:
    """A board row (0 = rank 1) as the player sees it: their own first rank is row 0."""
    return row if player == 0 else SIZE - 1 - row


def encode(row: int, col: int, step: int, player: int) -> int:
    """The action moving `player`'s pawn on (row, col) with column change `step`."""
    return (mover_row(row, player) * SIZE + col) * len(STEPS) + STEPS.index(step)


def decode(action: int, player: int) -> tuple[int, int, int, int]:
    """(row, col, to_row, to_col) of `action` played by `player`."""
    square, k = divmod(action, len(STEPS))
    row, col = divmod(square, SIZE)
    row = mover_row(row, player)
    return row, col, row + (1 if player == 0 else -1), col + STEPS[k]


def square_name(row: int, col: int) -> str:
    return f"{FILES[col]}{row + 1}"


# The mirror maps the pawn on column c to column SIZE-1-c and swaps the two captures.
MIRROR = np.array([encode(row, SIZE - 1 - col, -step, 0)
                   for row in range(SIZE) for col in range(SIZE) for step in STEPS])


class HexapawnState:
    """A position: the board, the player to move, the moves so far, the winner."""

    def __init__(self):
        self.board = np.zeros((SIZE, SIZE), np.int8)  # row 0 is rank 1, White's side
        self.board[0], self.board[-1] = 1, 2
        self.player = 0
        self.moves: list[int] = []
        self.winner: int | None = None

    def legal_actions(self) -> list[int]:
        if self.winner is not None:
            return []
        me, them = self.player + 1, 2 - self.player
        forward = 1 if self.player == 0 else -1
        actions = []
        for row in range(SIZE):
            for col in range(SIZE):
                if self.board[row, col] != me:
                    continue
                for step in STEPS:  # straight onto an empty square, diagonally onto `them`
                    to_col = col + step
                    if (0 <= to_col < SIZE
                            and self.board[row + forward, to_col] == (them if step else EMPTY)):
                        actions.append(encode(row, col, step, self.player))
        return actions

    # The State protocol (games/base.py) -----------------------------------------

    def legal_mask(self) -> np.ndarray:
        mask = np.zeros(INFO.num_actions, bool)
        mask[self.legal_actions()] = True
        return mask

    def apply(self, action: int) -> float:
        action = int(action)
        if action not in self.legal_actions():
            raise GameError(f"hexapawn: illegal action {action}")
        row, col, to_row, to_col = decode(action, self.player)
        mover = self.player
        self.board[to_row, to_col], self.board[row, col] = self.board[row, col], EMPTY
        self.moves.append(action)
        self.player = 1 - mover
        # The far rank wins, and so does leaving the opponent without a move (or a pawn).
        if to_row in (0, SIZE - 1) or not self.legal_actions():
            self.winner = mover
            return 1.0  # the mover's reward: the game is won
        return 0.0

    def clone(self) -> "HexapawnState":
        other = HexapawnState()
        other.board, other.player = self.board.copy(), self.player
        other.moves, other.winner = list(self.moves), self.winner
        return other

    def is_terminal(self) -> bool:
        return self.winner is not None

    def returns(self) -> np.ndarray:
        if self.winner is None:
            return np.zeros(2, np.float32)
        return np.array([1, -1] if self.winner == 0 else [-1, 1], np.float32)

    def to_play(self) -> int:
        return self.player

    def observation(self) -> np.ndarray:
        view = self.board if self.player == 0 else self.board[::-1]  # the mover looks up
        return np.stack([view == self.player + 1, view == 2 - self.player]).astype(np.float32)

    def history(self) -> list[int]:
        return list(self.moves)

    def action_to_text(self, action: int) -> str:
        row, col, to_row, to_col = decode(int(action), self.player)
        return square_name(row, col) + ("-" if col == to_col else "x") + square_name(to_row, to_col)

    def text_to_action(self, text: str) -> int:
        t = text.strip().lower().replace("-", "").replace("x", "")
        for action in self.legal_actions():
            row, col, to_row, to_col = decode(action, self.player)
            if t == square_name(row, col) + square_name(to_row, to_col):
                return action
        legal = " ".join(self.action_to_text(a) for a in self.legal_actions())
        raise GameError(f"not a legal move: {text!r} (legal: {legal or 'none'})")

    def __str__(self) -> str:
        rows = [f"{r + 1}  " + " ".join(".wb"[c] for c in self.board[r])
                for r in reversed(range(SIZE))]
        names = ("white", "black")
        status = (f"{names[self.player]} to play" if self.winner is None
                  else f"{names[self.winner]} wins")
        return "\n".join(rows + ["   " + " ".join(FILES), status])


class Hexapawn:
    """The Game protocol (games/base.py): facts, initial state, symmetries, search batch."""

    info = INFO

    def new_initial_state(self) -> HexapawnState:
        return HexapawnState()

    def apply_symmetry(self, k: int, obs: np.ndarray, policy: np.ndarray):
        """k = 0: identity; k = 1: the left-right mirror. obs float32[N, 2, S, S],
        policy float32[N, num_actions]."""
        if k == 0:
            return obs.copy(), policy.copy()
        if k == 1:
            return obs[..., ::-1].copy(), policy[:, MIRROR]
        raise GameError(f"hexapawn has 2 symmetries, got index {k}")

    def new_search_batch(self, roots, capacity: int) -> ObjectBatch:
        return ObjectBatch(roots, capacity)
