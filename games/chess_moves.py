"""Chess move ids (open_spiel's encoding) decoded without a legal-move list, and perft.

open_spiel numbers a non-castling move from-square * 73 + destination index,
squares as file * 8 + rank with ranks counted from the mover's side (rank 0 =
the mover's first rank); destination indices 0..8 are under-promotions, 9..64
queen-like moves, 65..72 knight moves. 4672 and 4673 castle queen and king side.
"""

from __future__ import annotations

import pyspiel
import pyspiel.chess as spiel_chess

from games.base import GameError
from games.chess_text import square_name

NUM_ACTIONS = 4674
CASTLE_QUEENSIDE, CASTLE_KINGSIDE = 4672, 4673

Decoded = tuple[int, int, str]
"""(from square, to square, under-promotion letter or ''), squares rank * 8 + file."""


def decode_table() -> list[Decoded | None]:
    """Per non-castling action id, its move for White to move (None: it leaves the board).

    Read from open_spiel's own decoder, which only looks at the side to move and
    the piece on the from-square (to tell a queen promotion from a plain move).
    """
    board = pyspiel.load_game("chess").new_initial_state("k7/8/8/8/8/8/8/K7 w - - 0 1").board()
    letters = {spiel_chess.PieceType.ROOK: "r", spiel_chess.PieceType.BISHOP: "b",
               spiel_chess.PieceType.KNIGHT: "n"}
    table: list[Decoded | None] = []
    for action in range(CASTLE_QUEENSIDE):
        move = spiel_chess.action_to_move(action, board)
        a, b = move.from_square, move.to_square
        if not (0 <= b.x < 8 and 0 <= b.y < 8):
            table.append(None)
            continue
        table.append((a.y * 8 + a.x, b.y * 8 + b.x, letters.get(move.promotion_type, "")))
    return table


def decode_action(action: int, black: bool, row, table: list[Decoded | None]) -> str:
    """UCI text of any on-board action id, legal or not ('q' added for a pawn reaching
    the last rank, castling as the king's move).

    Args:
      action: the id.
      black: Black to move.
      row: int8[>= 64] piece codes of the position (games/chess_planes.py).
      table: `decode_table()`.
    Raises:
      GameError: the id is out of range or leaves the board.
    """
    rank = "8" if black else "1"
    if action in (CASTLE_QUEENSIDE, CASTLE_KINGSIDE):
        return f"e{rank}{'c' if action == CASTLE_QUEENSIDE else 'g'}{rank}"
    decoded = table[action] if 0 <= action < CASTLE_QUEENSIDE else None
    if decoded is None:
        raise GameError(f"chess: action {action} is not a move on the board "
                        f"(ids are 0..{NUM_ACTIONS - 1})")
    origin, target, promotion = decoded
    if black:  # ranks count from the mover's side
        origin, target = origin ^ 56, target ^ 56
    if not promotion and row[origin] in (1, 7) and target // 8 in (0, 7):
        promotion = "q"
    return square_name(origin) + square_name(target) + promotion


def perft_node(spiel_state: pyspiel.State, spiel_game: pyspiel.Game):
    """(state, legal actions); when open_spiel ended the game by a repetition or the
    fifty-move rule, a copy from the FEN with the halfmove clock at 0 and its moves."""
    actions = spiel_state.legal_actions()
    if not actions and spiel_state.is_terminal() and spiel_state.board().has_legal_moves():
        fields = str(spiel_state).split()
        fields[4] = "0"
        spiel_state = spiel_game.new_initial_state(" ".join(fields))
        actions = spiel_state.legal_actions()
    return spiel_state, actions


def perft(spiel_state: pyspiel.State, depth: int, spiel_game: pyspiel.Game) -> int:
    """Leaf count of the legal move tree `depth` plies deep (leaves counted in bulk)."""
    if depth == 0:
        return 1
    spiel_state, actions = perft_node(spiel_state, spiel_game)
    if depth == 1:
        return len(actions)
    total = 0
    for action in actions:
        child = spiel_state.clone()
        child.apply_action(action)
        total += perft(child, depth - 1, spiel_game)
    return total
