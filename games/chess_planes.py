"""Chess boards as arrays and AlphaZero's observation planes (Numba kernels), also
for the search nodes of `ChessBatch` (games/chess_batch.py).

A position is a row int8[ROW] of a history: entries 0..63 hold piece codes
(index = rank * 8 + file, rank 0 = rank 1, file 0 = file a; 0 empty, 1..6
White P N B R Q K, 7..12 Black p n b r q k), entry 64 how many times the
position occurred before (0, 1 or 2), 65..68 the castling rights (0/1) White
K-side, White Q-side, Black K-side, Black Q-side, 69 the halfmove clock (at
most 127; the game ends at 100). A history int8[8, ROW] holds the
position now, one ply ago, ..., seven plies ago (rows of zeros before the
start); a new one is made by every move and never written afterwards, so
clones share it.

Rows are read from open_spiel's observation tensor float32[20 * 64]: planes
(King, Queen, Rook, Bishop, Knight, Pawn) x (White, Black), then empty,
repetitions (count - 1) / 2, side to move (1 = White), halfmove clock / 101,
castling rights White Q, White K, Black Q, Black K; square index = rank * 8 +
file as above. Filling it through a shared buffer and reading it with
`push_position` takes about 6 us a move, parsing open_spiel's FEN in Python
about 20 us.
"""

from __future__ import annotations

import numpy as np
from numba import njit

HISTORY = 8
"""Positions in the observation: now and the seven before."""
PLANES_PER_POSITION = 14
"""6 mover's pieces, 6 opponent's pieces, 2 repetition planes."""
NUM_PLANES = HISTORY * PLANES_PER_POSITION + 7
ROW = 70
"""64 squares, repetitions, 4 castling rights, halfmove clock."""
REPETITION, CASTLING, HALFMOVE = 64, 65, 69
PIECES = ".PNBRQKpnbrqk"
"""Piece letter of each code."""

SPIEL_PLANE_CODES = np.array([6, 12, 5, 11, 4, 10, 3, 9, 2, 8, 1, 7], dtype=np.int8)
"""Piece code of each of open_spiel's first 12 observation planes."""
SPIEL_REPETITION_PLANE = 13
SPIEL_HALFMOVE_PLANE = 15
SPIEL_CASTLING_PLANES = np.array([17, 16, 19, 18])
"""open_spiel's planes of the rights White K, White Q, Black K, Black Q (it stores Q first)."""


@njit(cache=True, nogil=True)
def push_position(history: np.ndarray, tensor: np.ndarray) -> np.ndarray:
    """A new history: the position of open_spiel's tensor first, then `history[:-1]`.

    Args:
      history: int8[8, ROW].
      tensor: float32[1280], open_spiel's observation of the new position.
    Returns:
      int8[8, ROW], new.
    """
    new = np.empty_like(history)
    new[1:] = history[:-1]
    read_position(tensor, new[0])
    return new


@njit(cache=True, nogil=True)
def read_position(tensor: np.ndarray, row: np.ndarray) -> None:
    """Writes the position of open_spiel's tensor float32[1280] to row int8[ROW]."""
    row[:] = 0
    for plane in range(12):
        code = SPIEL_PLANE_CODES[plane]
        base = plane * 64
        for sq in range(64):
            if tensor[base + sq] > 0.5:
                row[sq] = code
    row[REPETITION] = np.int8(tensor[SPIEL_REPETITION_PLANE * 64] * 2.0 + 0.5)
    for i in range(4):
        row[CASTLING + i] = np.int8(tensor[SPIEL_CASTLING_PLANES[i] * 64] > 0.5)
    halfmove = int(tensor[SPIEL_HALFMOVE_PLANE * 64] * 101.0 + 0.5)
    row[HALFMOVE] = np.int8(min(halfmove, 127))


@njit(cache=True, nogil=True)
def observe(history: np.ndarray, black: bool, fullmove: int) -> np.ndarray:
    """AlphaZero's planes from the point of view of the side to move.

    Rows are ranks counted from the mover's side: row 0 is rank 1 when White
    is to move and rank 8 when Black is (the board flipped vertically); column
    0 is file a. Per position t (0 = now): planes 14t..14t+5 the mover's P N B
    R Q K, 14t+6..14t+11 the opponent's, 14t+12 ones if the position occurred
    before, 14t+13 ones if it occurred twice before. Then 112 ones if Black is
    to move, 113 fullmove / 200, 114..117 castling rights (mover K-side, mover
    Q-side, opponent K-side, opponent Q-side), 118 halfmove clock / 100.

    Args:
      history: int8[8, ROW].
      black: Black to move.
      fullmove: FEN fullmove number.
    Returns:
      float32[119, 8, 8].
    """
    out = np.zeros((NUM_PLANES, 8, 8), dtype=np.float32)
    for t in range(HISTORY):
        write_position_planes(history[t], t, black, out)
    write_side_planes(history[0], black, fullmove, out)
    return out


@njit(cache=True, nogil=True)
def write_position_planes(row: np.ndarray, t: int, black: bool, out: np.ndarray) -> None:
    """Sets the ones of position t's 14 planes (see `observe`) in out float32[119, 8, 8],
    whose planes 14t..14t+13 must be zeros."""
    mover = 1 if black else 0
    base = PLANES_PER_POSITION * t
    for sq in range(64):
        code = row[sq]
        if code == 0:
            continue
        colour = (code - 1) // 6
        plane = base + (code - 1) % 6 + (0 if colour == mover else 6)
        rank = sq >> 3
        out[plane, 7 - rank if black else rank, sq & 7] = 1.0
    repetitions = row[REPETITION]
    if repetitions >= 1:
        out[base + 12] = 1.0
    if repetitions >= 2:
        out[base + 13] = 1.0


@njit(cache=True, nogil=True)
def write_side_planes(row: np.ndarray, black: bool, fullmove: int, out: np.ndarray) -> None:
    """Writes planes 112..118 (see `observe`) of out float32[119, 8, 8]; row: the position now."""
    mover = 1 if black else 0
    c = HISTORY * PLANES_PER_POSITION
    out[c] = float(mover)
    out[c + 1] = fullmove / 200.0
    for i in range(4):
        # Mover's rights first: White's (0, 1) or Black's (2, 3).
        out[c + 2 + i] = float(row[CASTLING + (i + 2 * mover) % 4])
    out[c + 6] = row[HALFMOVE] / 100.0


# Search nodes of ChessBatch (games/chess_batch.py): node n of tree b has rows[b, n]
# int8[ROW] and fields[b, n] int32[NUM_FIELDS]. They live here, beside the kernels they
# call, because Numba's cache does not notice a change in another file's kernels.

PARENT, BLACK, FULLMOVE = range(3)
NUM_FIELDS = 3


@njit(cache=True, nogil=True)
def _node_observation(rows, fields, history, b, node, out):
    """Writes out float32[119, 8, 8] of node (b, node) as `observe` would."""
    out[:] = 0.0
    black = fields[b, node, BLACK] == 1
    t, cur = 0, node
    while True:
        write_position_planes(rows[b, cur], t, black, out)
        t += 1
        if cur == 0 or t == HISTORY:
            break
        cur = fields[b, cur, PARENT]
    back = 1
    while t < HISTORY:  # past the root: the root's own history
        write_position_planes(history[b, back], t, black, out)
        t += 1
        back += 1
    write_side_planes(rows[b, node], black, fields[b, node, FULLMOVE], out)


@njit(cache=True, nogil=True)
def write_leaves(rows, fields, history, leaf_tree, leaf_parent, leaf_node, tensors, terminal,
                 legal, legal_start, obs_out, mask_out):
    """Finishes the leaves `ChessBatch.expand` created (games/chess_batch.py): node
    fields, rows, observations, masks.

    Args:
      rows: int8[B, C, ROW]; fields: int32[B, C, NUM_FIELDS]; both updated.
      history: int8[B, 8, ROW], the roots' histories.
      leaf_tree, leaf_parent, leaf_node: int32[L]; leaf_node < 0: no node was created.
      tensors: float32[L, 1280], open_spiel's observation tensor of each non-terminal leaf.
      terminal: bool[L].
      legal: int64[M], the legal action ids of leaf l in [legal_start[l], legal_start[l + 1]).
      obs_out: float32[L, 119, 8, 8]; mask_out: bool[L, A]; written.
    """
    for l in range(leaf_node.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        b, parent = leaf_tree[l], leaf_parent[l]
        fields[b, node, PARENT] = parent
        fields[b, node, BLACK] = 1 - fields[b, parent, BLACK]
        fields[b, node, FULLMOVE] = fields[b, parent, FULLMOVE] + fields[b, parent, BLACK]
        mask_out[l] = False
        if terminal[l]:
            obs_out[l] = 0.0
            continue
        read_position(tensors[l], rows[b, node])
        _node_observation(rows, fields, history, b, node, obs_out[l])
        for i in range(legal_start[l], legal_start[l + 1]):
            mask_out[l, legal[i]] = True


@njit(cache=True, nogil=True)
def observe_root_nodes(rows, fields, history, legal, legal_start, obs_out, mask_out):
    """Writes obs_out float32[B, 119, 8, 8] and mask_out bool[B, A] of node 0."""
    for b in range(rows.shape[0]):
        _node_observation(rows, fields, history, b, 0, obs_out[b])
        mask_out[b] = False
        for i in range(legal_start[b], legal_start[b + 1]):
            mask_out[b, legal[i]] = True


def insufficient_material(row: np.ndarray) -> bool:
    """Whether neither side can ever mate: K v K, K + minor piece v K, or kings and
    bishops only, all bishops on one square colour (open_spiel's rule).

    Args:
      row: int8[>= 64] piece codes.
    """
    codes = row[:64]
    if np.any(np.isin(codes, (1, 4, 5, 7, 10, 11))):  # pawns, rooks, queens
        return False
    knights = int(np.count_nonzero((codes == 2) | (codes == 8)))
    bishops = np.flatnonzero((codes == 3) | (codes == 9))
    if knights + len(bishops) <= 1:
        return True
    if knights:
        return False
    square_colours = (bishops // 8 + bishops % 8) % 2
    return bool(np.all(square_colours == square_colours[0]))


def board_letters(row: np.ndarray) -> list[str]:
    """The 64 squares as letters ('.' empty), index = rank * 8 + file."""
    return [PIECES[c] for c in row[:64]]


def board_diagram(row: np.ndarray) -> str:
    """Text board, rank 8 at the top, White's pieces uppercase."""
    letters = board_letters(row)
    lines = ["  +-----------------+"]
    for rank in range(7, -1, -1):
        cells = " ".join(letters[rank * 8:rank * 8 + 8])
        lines.append(f"{rank + 1} | {cells} |")
    lines += ["  +-----------------+", "    a b c d e f g h"]
    return "\n".join(lines)
