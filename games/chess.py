"""Chess: open_spiel's rules and move encoding, AlphaZero's observation.

Who does what:
  * open_spiel ('chess', C++) owns the rules: move generation (castling, en
    passant, all promotions), check, mate, stalemate, and the draws it ends
    games with at once, without a claim (FIDE lets a player claim the first
    two; engines and AlphaZero training end the game): threefold repetition
    (positions equal with side to move, castling rights, and an en passant
    square only when a capture there is possible), the fifty-move rule
    (halfmove clock 100, checked after mate), insufficient material (K v K,
    K + minor v K, bishops all on one square colour). It also gives SAN, UCI
    text (`Move.to_lan`) and FENs. It is a C++ library already used for the
    other games, and its move generator (about 20 us for a middlegame
    position, half of clone + apply + observation) is not worth replacing
    until a benchmark says so (see DESIGN.md, Games).
  * This adapter adds what open_spiel lacks: a move limit (`max_game_length`
    plies from the initial position, then a draw, as in AlphaZero's 512),
    FEN checking with clear messages (games/chess_text.py; open_spiel's own
    parser only fails a CHECK, and accepts positions where the side not to
    move is in check, then offers moves that capture the king), Player 0 =
    White (open_spiel's player 0 is Black), the observation history, text
    parsing, perft and PGN.

Actions are open_spiel's: 4674 ids. For a non-castling move, from-square x
73 + destination index (9 under-promotions, 56 queen-like moves, 8 knight
moves), with ranks counted from the mover's side, so the same id means the
same move relative to the side to move (e.g. 'd7d8q' for White and 'd2d1q'
for Black). Castling has its own ids, 4672 (queen side) and 4673 (king side),
which open_spiel 2.0 added for Chess960: hence 4674, not AlphaZero's 4672.

Observation float32[119, 8, 8] from the side to move's point of view, see
`games.chess_planes.observe`. The boards of the history are read from
open_spiel's observation tensor through a shared buffer (about 6 us a move),
four times faster than parsing its FEN in Python.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import pyspiel
import pyspiel.chess as spiel_chess

from games.base import GameError, GameInfo, SearchBatch, State, parse_count
from games.chess_batch import ChessBatch, ChessRoot
from games.chess_planes import (
    HISTORY,
    NUM_PLANES,
    ROW,
    board_diagram,
    board_letters,
    insufficient_material,
    observe,
    push_position,
)
from games.chess_moves import (  # noqa: F401 - castling ids re-exported
    CASTLE_KINGSIDE,
    CASTLE_QUEENSIDE,
    NUM_ACTIONS,
    decode_action,
    decode_table,
    perft,
    perft_node,
)
from games.chess_text import (
    FILES,
    SAN_MOVE,
    START_FEN,
    UCI_MOVE,
    format_pgn,
    normalize_fen,
    pgn_tags,
    san_key,
)

DEFAULT_MAX_GAME_LENGTH = 512
"""Plies, AlphaZero's limit (open_spiel's own, 17695, is the longest possible game)."""


class ChessGame:
    """Chess (open_spiel 'chess').

    Attributes:
      info: the game's facts.
      max_game_length: plies from the initial position after which the game
        is a draw ('move limit').
      spiel_game: the pyspiel game.
    """

    def __init__(self, max_game_length: int = DEFAULT_MAX_GAME_LENGTH):
        self.max_game_length = int(max_game_length)
        if self.max_game_length < 1:
            raise GameError(f"max_game_length must be positive, got {max_game_length}")
        self.spiel_game = pyspiel.load_game("chess")
        if self.spiel_game.num_distinct_actions() != NUM_ACTIONS:
            raise GameError(f"open_spiel's chess has {self.spiel_game.num_distinct_actions()} "
                            f"actions; this adapter needs {NUM_ACTIONS} (separate castling "
                            "actions, as in open_spiel 2.0)")
        self.info = GameInfo(
            name="chess",
            num_actions=NUM_ACTIONS,
            observation_shape=(NUM_PLANES, 8, 8),
            num_players=2,
            max_game_length=self.max_game_length,
            num_symmetries=1,
            has_draws=True,
            record_format="pgn",
        )
        self._local = threading.local()
        self._empty_history = np.zeros((HISTORY, ROW), dtype=np.int8)
        self._empty_history.flags.writeable = False
        self._moves = decode_table()

    def __reduce__(self):
        return (ChessGame, (self.max_game_length,))

    def __repr__(self) -> str:
        return f"ChessGame(max_game_length={self.max_game_length})"

    def new_initial_state(self, fen: str | None = None) -> "ChessState":
        """The standard start, or the position of `fen` (GameError if malformed or impossible)."""
        fen = START_FEN if fen is None else normalize_fen(fen)
        spiel_state = self.spiel_game.new_initial_state(fen)
        fields = fen.split()
        return ChessState(self, spiel_state, black=fields[1] == "b", fullmove=int(fields[5]))

    def state_from_moves(self, moves: Sequence[str], fen: str | None = None) -> "ChessState":
        """The position after `moves` (UCI or SAN) from the start or from `fen`."""
        state = self.new_initial_state(fen)
        for move in moves:
            state.apply(state.text_to_action(move))
        return state

    def format_record(self, moves: list[str], result: str, headers: dict) -> str:
        """PGN of a game, SAN movetext, from the start or from headers['FEN'].

        Args:
          moves: UCI moves ('e2e4') from the initial position. Conversion
            stops at the first one that is not legal there; a comment names it.
          result: '1-0' (White wins), '0-1', '1/2-1/2' or '*'.
          headers: 'First' -> White, 'Second' -> Black, 'FEN' -> SetUp/FEN
            tags; the others are kept as tags.
        """
        tags, fen = pgn_tags(headers, result)
        state = self.new_initial_state(fen)
        fullmove, black_first = state.fullmove_number(), state.to_play() == 1
        sans, comment = [], ""
        for move in moves:
            try:
                action = state.text_to_action(move)
            except GameError:
                comment = f"illegal move {move}"
                break
            sans.append(state.san(action))
            state.apply(action)
        return format_pgn(tags, sans, result, fullmove, black_first, comment)

    def apply_symmetry(self, k: int, obs: np.ndarray, policy: np.ndarray):
        """Identity only (castling and pawn direction break the board's symmetries)."""
        if k != 0:
            raise GameError(f"chess has only the identity symmetry (k=0), got {k}")
        return obs.copy(), policy.copy()

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> SearchBatch:
        """A `ChessBatch` over ChessState roots (games/chess_batch.py: open_spiel states
        per node, histories, observations and masks in arrays)."""
        return ChessBatch([root.search_root() for root in roots], capacity, NUM_ACTIONS,
                          self.max_game_length, self.spiel_tensor)

    def spiel_tensor(self, spiel_state: pyspiel.State) -> np.ndarray:
        """float32[1280]: open_spiel's observation of `spiel_state`, in a per-thread buffer
        (overwritten by the next call in the thread)."""
        local = self._local
        tensor = getattr(local, "tensor", None)
        if tensor is None:
            local.observation = pyspiel._Observation(
                self.spiel_game, self.spiel_game.make_observer({}))
            local.tensor = tensor = np.frombuffer(local.observation, np.float32)
        local.observation.set_from(spiel_state, 0)
        return tensor


def _restore(game: ChessGame, fen: str, actions: list[int]) -> "ChessState":
    state = game.new_initial_state(fen)
    for action in actions:
        state.apply(action)
    return state


class ChessState:
    """A chess position (implements the `State` protocol of games/base.py).

    Attributes:
      game: the owning `ChessGame`.
      spiel_state: the wrapped pyspiel state (read it, do not mutate it).
    """

    __slots__ = ("game", "spiel_state", "_history", "_plies", "_black", "_fullmove",
                 "_mask", "_texts")

    def __init__(self, game: ChessGame, spiel_state: pyspiel.State, black: bool,
                 fullmove: int):
        """A state at the initial position `spiel_state` (no move played on it)."""
        self.game = game
        self.spiel_state = spiel_state
        self._plies = 0
        self._black = black
        self._fullmove = fullmove
        self._history = game._empty_history
        """int8[8, ROW] (games/chess_planes.py), never written once made: clones share it."""
        self._mask: np.ndarray | None = None
        """Cached legal mask, never written once cached (clones share it)."""
        self._texts: tuple[dict[str, int], dict[str, list[int]]] | None = None
        """Cached (UCI -> action, SAN key -> actions) of the legal moves, shared likewise."""
        self._push()

    def _push(self) -> None:
        self._history = push_position(self._history, self.game.spiel_tensor(self.spiel_state))

    # The State protocol.

    def legal_mask(self) -> np.ndarray:
        """bool[4674]: legal actions (all False when terminal)."""
        return self._legal().copy()

    def _legal(self) -> np.ndarray:
        mask = self._mask
        if mask is None:
            mask = np.zeros(NUM_ACTIONS, dtype=bool)
            if not self.is_terminal():
                mask[self.spiel_state.legal_actions()] = True
            self._mask = mask
        return mask

    def apply(self, action: int) -> float:
        """Plays `action` in place; returns the mover's reward (+1/0/-1 on the last move, else 0).

        Raises GameError for an out-of-range or illegal action, or a finished game.
        """
        action = int(action)
        if not 0 <= action < NUM_ACTIONS or not self._legal()[action]:
            raise GameError(self._illegal_message(str(action)))
        mover = int(self._black)
        self.spiel_state.apply_action(action)
        self._mask = self._texts = None
        self._plies += 1
        self._fullmove += mover
        self._black = not self._black
        self._push()
        if self.is_terminal():
            return float(self.returns()[mover])
        return 0.0

    def clone(self) -> "ChessState":
        """An independent copy (history and cached mask are shared, immutable)."""
        other = object.__new__(ChessState)
        other.game = self.game
        other.spiel_state = self.spiel_state.clone()
        other._history = self._history
        other._plies = self._plies
        other._black = self._black
        other._fullmove = self._fullmove
        other._mask = self._mask
        other._texts = self._texts
        return other

    def is_terminal(self) -> bool:
        """Mate, a draw rule, or `max_game_length` plies played."""
        return self.spiel_state.is_terminal() or self._plies >= self.game.max_game_length

    def returns(self) -> np.ndarray:
        """float32[2] (White, Black): +1 win, -1 loss, 0 draw or not over."""
        if not self.spiel_state.is_terminal():
            return np.zeros(2, dtype=np.float32)
        black, white = self.spiel_state.returns()
        return np.array([white, black], dtype=np.float32)

    def to_play(self) -> int:
        """0 White, 1 Black (also when terminal: the side that would move)."""
        return int(self._black)

    def observation(self) -> np.ndarray:
        """float32[119, 8, 8] from the point of view of `to_play()` (games/chess_planes.py)."""
        return observe(self._history, self._black, self._fullmove)

    def search_root(self) -> ChessRoot:
        """What a `ChessBatch` tree starts from (the open_spiel state and history shared,
        not copied)."""
        legal = [] if self.is_terminal() else self.spiel_state.legal_actions()
        return ChessRoot(self.spiel_state, self._history, self._black, self._fullmove,
                         self._plies, legal)

    def history(self) -> list[int]:
        """Actions played from the initial position (the start or the FEN)."""
        return list(self.spiel_state.history())

    def action_to_text(self, action: int) -> str:
        """UCI text: 'e2e4', 'e7e8q', castling 'e1g1' (GameError if off the board)."""
        action = int(action)
        if 0 <= action < NUM_ACTIONS and self._legal()[action]:
            board = self.spiel_state.board()
            return spiel_chess.action_to_move(action, board).to_lan()
        return decode_action(action, self._black, self._history[0], self.game._moves)

    def text_to_action(self, text: str) -> int:
        """The action of a legal move in UCI ('e2e4', 'e7e8q', 'e1g1') or SAN ('Nf3', 'O-O').

        Raises GameError, naming the move, if it is malformed or not legal here.
        """
        t = str(text).strip()
        if t.isdigit():
            action = parse_count(t, NUM_ACTIONS)
            if action is not None and self._legal()[action]:
                return action
            raise GameError(self._illegal_message(t))
        if UCI_MOVE.fullmatch(t):
            action = self._move_texts()[0].get(t.lower())
        elif SAN_MOVE.fullmatch(t):
            matches = self._move_texts()[1].get(san_key(t), [])
            action = matches[0] if len(matches) == 1 else None  # else ambiguous or illegal
        else:
            raise GameError(f"malformed move {t!r}: expected UCI like 'e2e4' or 'e7e8q', "
                            "or SAN like 'Nf3' or 'O-O'")
        if action is None:
            raise GameError(self._illegal_message(t))
        return action

    def __str__(self) -> str:
        lines = [board_diagram(self._history[0])]
        if self.is_terminal():
            white, black = self.returns()
            if white != black:
                lines.append(f"game over: {'White' if white > black else 'Black'} wins "
                             "(checkmate)")
            else:
                lines.append(f"game over: draw ({self.draw_reason()})")
        else:
            lines.append(f"{('White', 'Black')[self.to_play()]} to move")
        lines.append(f"FEN: {self.fen()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<chess state {self.fen()!r}>"

    def __reduce__(self):
        return (_restore, (self.game, self.spiel_state.start_fen(), self.history()))

    # Chess specifics.

    def fen(self) -> str:
        """FEN of the position, with an en passant square only when a capture there is
        legal (as python-chess writes it; open_spiel also writes it when the capture
        would leave the king in check)."""
        fen = str(self.spiel_state)
        fields = fen.split(" ")
        if fields[3] == "-" or self._en_passant_legal(fields[3]):
            return fen
        fields[3] = "-"
        return " ".join(fields)

    def _en_passant_legal(self, square: str) -> bool:
        row = self._history[0]
        for action in self.spiel_state.legal_actions():
            move = decode_action(action, self._black, row, self.game._moves)
            if move[2:4] == square and row[FILES.index(move[0]) + 8 * int(move[1]) - 8] in (1, 7):
                return True
        return False

    def fullmove_number(self) -> int:
        """FEN fullmove number: 1 at the start, +1 after each Black move."""
        return self._fullmove

    def halfmove_clock(self) -> int:
        """Plies since the last capture or pawn move."""
        return int(self.fen().split()[4])

    def board(self) -> list[str]:
        """64 piece letters ('.' empty, White uppercase), index = rank * 8 + file."""
        return board_letters(self._history[0])

    def san(self, action: int) -> str:
        """Standard algebraic notation of a legal action, with '+' / '#'."""
        action = int(action)
        if not 0 <= action < NUM_ACTIONS or not self._legal()[action]:
            raise GameError(self._illegal_message(str(action)))
        return self.spiel_state.action_to_string(self.spiel_state.current_player(), action)

    def legal_moves_uci(self) -> list[str]:
        """UCI text of every legal move, in action order."""
        return list(self._move_texts()[0])

    def _move_texts(self) -> tuple[dict[str, int], dict[str, list[int]]]:
        texts = self._texts
        if texts is None:
            board = self.spiel_state.board()
            player = self.spiel_state.current_player()
            uci, san = {}, {}
            for a in np.flatnonzero(self._legal()).tolist():
                uci[spiel_chess.action_to_move(a, board).to_lan()] = a
                san.setdefault(san_key(self.spiel_state.action_to_string(player, a)),
                               []).append(a)
            self._texts = texts = (uci, san)
        return texts

    def draw_reason(self) -> str | None:
        """Why a finished game is drawn, in open_spiel's order of checks; None otherwise.

        One of 'insufficient material', 'threefold repetition', 'stalemate',
        'fifty-move rule', 'move limit'.
        """
        spiel_state = self.spiel_state
        if not spiel_state.is_terminal():
            return "move limit" if self.is_terminal() else None
        if any(spiel_state.returns()):
            return None
        if insufficient_material(self._history[0]):
            return "insufficient material"
        if spiel_state.is_repetition_draw():
            return "threefold repetition"
        if not spiel_state.board().has_legal_moves():
            return "stalemate"
        return "fifty-move rule" if self.halfmove_clock() >= 100 else "insufficient material"

    def perft(self, depth: int) -> int:
        """Leaf nodes of the legal move tree `depth` plies deep (1 for depth 0).

        Draw rules do not stop the count (as in published perft tables): a node
        drawn by repetition or the fifty-move rule is counted from a copy with
        those reset. Positions drawn by insufficient material have no moves in
        open_spiel, so counts through them would be low.
        """
        return perft(self.spiel_state, int(depth), self.game.spiel_game)

    def divide(self, depth: int) -> dict[str, int]:
        """UCI move -> perft(depth - 1) of the position after it, for depth >= 1."""
        if depth < 1:
            raise GameError(f"divide needs depth >= 1, got {depth}")
        spiel_state, actions = perft_node(self.spiel_state, self.game.spiel_game)
        board = spiel_state.board()
        out = {}
        for action in actions:
            child = spiel_state.clone()
            child.apply_action(action)
            out[spiel_chess.action_to_move(action, board).to_lan()] = perft(
                child, depth - 1, self.game.spiel_game)
        return out

    def _illegal_message(self, text: str) -> str:
        if self.is_terminal():
            return f"illegal move {text!r}: the game is over ({self.fen()})"
        legal = " ".join(sorted(self._move_texts()[0]))
        return f"illegal move {text!r} in {self.fen()}; legal moves: {legal}"
