"""Go on N x N boards: open_spiel's rules, AlphaGo Zero's observation.

Rules (open_spiel 'go', checked in tests/games/test_go.py): Tromp-Taylor area
scoring with komi, suicide illegal, simple ko; the game ends after two
consecutive passes or `max_game_length` moves. With `superko=True` a move
that recreates any earlier board position is also illegal (positional
superko). open_spiel supports boards up to 19x19; larger boards (up to
25x25, the GTP limit) use `NativeRules`, the same rules in Numba, which the
tests check against open_spiel on the smaller boards.

Actions: row * N + col, row 0 = rank 1 (the bottom row), col 0 = column 'A';
pass = N * N. Move text is a GTP vertex: 'D4' (column letters skip I) or
'pass'. Player 0 is Black, also in handicap games, where White moves first.

Handicap stones are played on the open_spiel state as Black moves with White
passes in between (two non-consecutive passes do not end the game); these
setup actions are hidden from `history()` and `moves()`.

Observation float32[17, N, N], rows as the actions (row 0 = rank 1): planes
0-7 the mover's stones now, one move ago, ..., seven moves ago; planes 8-15
the opponent's stones at the same times (zeros before the game start);
plane 16 all ones when Black is to move.
"""

from __future__ import annotations

import re
import threading
from typing import Sequence

import numpy as np
import pyspiel

from games.base import GameError, GameInfo, SearchBatch, State, parse_count
from games.go_batch import GoBatch, GoRoot
from games.go_kernels import (  # noqa: F401 - play_stone re-exported, as before the split
    analyse_moves,
    area_counts,
    area_owner,
    board_hash,
    drop_repeats,
    insert_sorted,
    ko_point,
    legal_moves,
    observe,
    play_stone,
    push_board,
)
from games.go_native import TERMINAL_PLAYER, NativeRules  # noqa: F401 - re-exported
from games.sgf import GTP_COLUMNS, format_komi, write_sgf
from games.symmetry import dihedral

MIN_SIZE, MAX_SIZE = 2, 25
SPIEL_MAX_SIZE = 19
HISTORY = 8
"""Board positions per colour in the observation."""
NUM_PLANES = 2 * HISTORY + 1
ZOBRIST_SEED = 20240611

_VERTEX = re.compile(r"([A-Za-z])(\d{1,2})")


class GoGame:
    """Go on a size x size board (open_spiel 'go').

    Attributes:
      info: the game's facts.
      size, komi, superko, max_game_length: the rules.
      spiel_game: the pyspiel game (its own length limit is higher, see
        `GoState.spiel_state`); None with native rules.
    """

    def __init__(self, size: int = 9, komi: float = 7.5, superko: bool = False,
                 max_game_length: int | None = None, *, name: str | None = None,
                 rules: str | None = None):
        """Loads open_spiel's Go.

        Args:
          size: board size, 2..25.
          komi: points added to White's area; a half-integer rules out draws.
          superko: forbid moves that recreate an earlier position.
          max_game_length: moves (passes included, handicap stones not) after
            which the game is scored; default 3 * size * size.
          name: registry name; default f'go{size}'.
          rules: 'open_spiel' (default up to 19x19) or 'native' (`NativeRules`,
            the default above 19x19).
        """
        size = int(size)
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise GameError(f"Go board size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")
        rules = rules or ("open_spiel" if size <= SPIEL_MAX_SIZE else "native")
        if rules not in ("open_spiel", "native") or (
                rules == "open_spiel" and size > SPIEL_MAX_SIZE):
            raise GameError(f"Go rules must be 'open_spiel' (sizes up to {SPIEL_MAX_SIZE}) "
                            f"or 'native', got {rules!r} for size {size}")
        self.rules = rules
        self.size = size
        self.komi = float(komi)
        self.superko = bool(superko)
        self.max_game_length = int(max_game_length or 3 * size * size)
        if self.max_game_length < 1:
            raise GameError(f"max_game_length must be positive, got {max_game_length}")
        self.num_points = size * size
        self.pass_action = size * size
        self.info = GameInfo(
            name=name or f"go{size}",
            num_actions=size * size + 1,
            observation_shape=(NUM_PLANES, size, size),
            num_players=2,
            max_game_length=self.max_game_length,
            num_symmetries=8,
            has_draws=self.komi == int(self.komi),
            territory=True,
            record_format="sgf",
            gtp_setup=(f"boardsize {size}", f"komi {format_komi(self.komi)}"),
        )
        # Room for the handicap setup (two actions per stone) on top of our own limit,
        # which GoState enforces.
        self.spiel_game = None if rules == "native" else pyspiel.load_game("go", {
            "board_size": size, "komi": self.komi,
            "max_game_length": self.max_game_length + 2 * size * size})
        rng = np.random.default_rng(ZOBRIST_SEED + size)
        self.zobrist = np.zeros((3, size * size), dtype=np.uint64)
        self.zobrist[1:] = rng.integers(1, 2**63, size=(2, size * size), dtype=np.uint64)
        self._local = threading.local()
        self._empty_history = np.zeros((HISTORY, size, size), dtype=np.int8)
        self._empty_history.flags.writeable = False

    def __reduce__(self):
        return (_make_go, (self.size, self.komi, self.superko, self.max_game_length,
                           self.info.name, self.rules))

    def __repr__(self) -> str:
        return (f"GoGame(size={self.size}, komi={self.komi:g}, superko={self.superko}, "
                f"max_game_length={self.max_game_length})")

    # States.

    def new_initial_state(self, handicap: Sequence[str] = ()) -> "GoState":
        """The empty board, or Black's handicap stones (GTP vertices) with White to move."""
        if isinstance(handicap, str):
            handicap = handicap.split()
        spiel_state = (NativeRules(self) if self.spiel_game is None
                       else self.spiel_game.new_initial_state())
        setup = [self.vertex_to_action(v) for v in handicap]
        if self.pass_action in setup:
            raise GameError("a handicap stone cannot be 'pass'")
        if len(set(setup)) != len(setup):
            raise GameError(f"handicap stones must be distinct: {list(handicap)}")
        for i, action in enumerate(setup):
            if i:
                spiel_state.apply_action(self.pass_action)  # White's setup pass
            if not spiel_state.legal_actions_mask()[action]:
                raise GameError(f"cannot place handicap stone {self.action_to_vertex(action)}")
            spiel_state.apply_action(action)
        return GoState(self, spiel_state, setup)

    def with_komi(self, komi: float) -> "GoGame":
        """The same game with another komi."""
        return GoGame(self.size, komi, self.superko, self.max_game_length,
                      name=self.info.name, rules=self.rules)

    # Vertices.

    def vertex_to_action(self, text: str) -> int:
        """A GTP vertex ('D4', 'j9', 'pass', any case) as an action id.

        Raises:
          GameError: "bad vertex 'Z99'" for anything else.
        """
        t = str(text).strip()
        if t.lower() == "pass":
            return self.pass_action
        m = _VERTEX.fullmatch(t)
        column = GTP_COLUMNS.find(m.group(1).upper()) if m else -1
        rank = int(m.group(2)) if m else 0
        if not 0 <= column < self.size or not 1 <= rank <= self.size:
            last = GTP_COLUMNS[self.size - 1]
            raise GameError(f"bad vertex {text!r}: expected a column A..{last} (no I) "
                            f"and a row 1..{self.size}, e.g. 'C3', or 'pass'")
        return (rank - 1) * self.size + column

    def action_to_vertex(self, action: int) -> str:
        """'D4' (uppercase) or 'pass'; GameError out of range."""
        action = int(action)
        if action == self.pass_action:
            return "pass"
        if not 0 <= action < self.pass_action:
            raise GameError(f"{self.info.name}: action {action} out of range "
                            f"[0, {self.info.num_actions})")
        row, col = divmod(action, self.size)
        return f"{GTP_COLUMNS[col]}{row + 1}"

    def fixed_handicap(self, n: int) -> list[str]:
        """GTP v2 (sec. 4.1.1) fixed handicap placement of n stones.

        2..9 stones on odd boards from 9x9 up, 2..4 on even boards from 8x8 up
        and on 7x7; none below 7x7. Stones on the 4th line from 13x13 up, on
        the 3rd line below.
        """
        n = int(n)
        limit = 0 if self.size < 7 else 4 if self.size % 2 == 0 or self.size == 7 else 9
        if not 2 <= n <= limit:
            allowed = f"2..{limit}" if limit else "none"
            raise GameError(f"fixed handicap of {n} stones is not defined on "
                            f"{self.size}x{self.size} (allowed: {allowed})")
        low = 3 if self.size >= 13 else 2
        high, mid = self.size - 1 - low, self.size // 2
        corners = [(low, low), (high, high), (low, high), (high, low)]
        sides = [(low, mid), (high, mid), (mid, low), (mid, high)]
        points = corners[:min(n, 4)]
        if n >= 6:
            points += sides[:2] if n < 8 else sides
        if n % 2 == 1 and n >= 5:
            points.append((mid, mid))
        return [f"{GTP_COLUMNS[col]}{row + 1}" for col, row in points]

    def format_record(self, moves: list[str], result: str, headers: dict) -> str:
        """SGF of a game played from the empty board, moves as GTP vertices.

        Args:
          moves: 'D4'/'pass' from the start, Black first.
          result: '1-0' (Black, the first player, wins), '0-1', '1/2-1/2' or '*'.
          headers: 'First' -> PB, 'Second' -> PW; the others go to a GC comment.
        """
        colours = ["B", "W"]
        sgf_moves = [(colours[i % 2], m) for i, m in enumerate(moves)]
        props = {}
        if "First" in headers:
            props["PB"] = str(headers["First"])
        if "Second" in headers:
            props["PW"] = str(headers["Second"])
        comment = "; ".join(f"{k}: {v}" for k, v in headers.items()
                            if k not in ("First", "Second"))
        if comment:
            props["GC"] = comment
        return write_sgf(self.size, self.komi, sgf_moves,
                         self._sgf_result(moves, result, headers), (), props)

    def _sgf_result(self, moves: list[str], result: str, headers: dict) -> str:
        """RE: 'B+3.5' when the moves end the game, 'B+F' on a forfeit, else 'B+'."""
        winner = {"1-0": "B", "0-1": "W"}.get(result)
        if winner is None:
            return "0" if result == "1/2-1/2" else "?"
        if headers.get("Termination"):
            return f"{winner}+F"
        try:
            state = self.new_initial_state()
            for move in moves:
                state.apply(state.text_to_action(move))
        except GameError:
            return f"{winner}+"
        score = state.area_score()
        if state.is_terminal() and (score > 0) == (winner == "B") and score != 0:
            return f"{winner}+{abs(score):g}"
        return f"{winner}+"

    # Training and search.

    def apply_symmetry(self, k: int, obs: np.ndarray, policy: np.ndarray):
        """Dihedral symmetry k in [0, 8); obs float32[B, 17, N, N], policy float32[B, N*N+1].

        The pass entry of the policy is left in place.
        """
        return dihedral(k, obs, policy, self.size)

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> SearchBatch:
        """A `GoBatch` over GoState roots (games/go_batch.py: the nodes in arrays, one
        kernel call per expand)."""
        return GoBatch(self, [root.search_root() for root in roots], capacity)

    # Internals shared by the states.

    def _push(self, history: np.ndarray, spiel_state: pyspiel.State | None) -> np.ndarray:
        """A new int8[8, N, N] history: `spiel_state`'s board (None: the newest again) first."""
        if spiel_state is None or self.spiel_game is None:
            new = np.empty_like(history)
            new[0] = history[0] if spiel_state is None else spiel_state.board.reshape(
                self.size, self.size)
            new[1:] = history[:-1]
            return new
        local = self._local
        tensor = getattr(local, "tensor", None)
        if tensor is None:
            # open_spiel writes its observation (planes black, white, empty,
            # to-play) into this buffer: no Python list in between.
            local.observation = pyspiel._Observation(
                self.spiel_game, self.spiel_game.make_observer({}))
            local.tensor = tensor = np.frombuffer(local.observation, np.float32).reshape(
                4, self.size, self.size)
        local.observation.set_from(spiel_state, 0)
        return push_board(history, tensor)


def _make_go(size, komi, superko, max_game_length, name, rules):
    return GoGame(size, komi, superko, max_game_length, name=name, rules=rules)


def go9() -> GoGame:
    return GoGame(9, 7.5)


def go13() -> GoGame:
    return GoGame(13, 7.5)


def go19() -> GoGame:
    return GoGame(19, 7.5)


def go_family(rest: str) -> GoGame:
    """'go/<size>' with komi 7.5, e.g. get_game('go/7')."""
    size = parse_count(rest, 1000)
    if size is None:
        raise GameError(f"bad Go game name 'go/{rest}': expected 'go/<size>', e.g. 'go/7'")
    return GoGame(size, 7.5, name=f"go/{rest}")


class GoState:
    """A Go position (implements the `State` protocol of games/base.py).

    Attributes:
      game: the owning `GoGame`.
      spiel_state: the wrapped pyspiel state, handicap setup included (read it,
        do not mutate it).
    """

    __slots__ = ("game", "spiel_state", "_setup", "_history", "_num_moves", "_passes",
                 "_ko", "_mask", "_seen")

    def __init__(self, game: GoGame, spiel_state: pyspiel.State, setup: Sequence[int] = ()):
        """A state right after the handicap `setup` (action ids) was played on `spiel_state`."""
        self.game = game
        self.spiel_state = spiel_state
        self._setup = tuple(setup)
        history = game._empty_history
        self._history = game._push(history, spiel_state) if setup else history
        """int8[8, N, N] boards (0 empty, 1 black, 2 white) now, one move ago, ...;
        empty before the start. Never written once made, so clones share it."""
        self._num_moves = 0
        self._passes = 0
        self._ko = -1
        """open_spiel's ko point (illegal for the player to move), -1 if none."""
        self._mask: np.ndarray | None = None
        """Cached legal mask of this position, never written once cached (clones share it)."""
        self._seen = (np.array([board_hash(self._history[0].ravel(), game.zobrist)],
                               np.uint64)
                      if game.superko or game.rules == "open_spiel" else None)
        """uint64[P], sorted: hashes of every position since the handicap setup, for
        superko and for `search_root` (open_spiel ends a game when a position recurs);
        None with native rules and no superko. Shared by clones, replaced (never
        written) by a move."""

    # The State protocol.

    def legal_mask(self) -> np.ndarray:
        """bool[N*N+1]: legal actions (all False when terminal)."""
        return self._legal().copy()

    def _legal(self) -> np.ndarray:
        mask = self._mask
        if mask is None:
            if self.is_terminal():
                mask = np.zeros(self.game.info.num_actions, dtype=bool)
            else:
                # open_spiel's rule, computed here: its legal_actions_mask() costs
                # more than the rest of a search step on 19x19.
                game = self.game
                mask = legal_moves(self._history[0].ravel(), game.size, self.to_play() + 1,
                                   self._ko, game.zobrist)
                if game.superko:
                    mask = self._superko_mask(mask)
            self._mask = mask
        return mask

    def _superko_mask(self, mask: np.ndarray) -> np.ndarray:
        game = self.game
        _, next_hash, _, _ = analyse_moves(self._history[0].ravel(), game.size,
                                           self.to_play() + 1, game.zobrist)
        drop_repeats(mask, next_hash, self._seen)
        return mask

    def apply(self, action: int) -> float:
        """Plays `action` in place; returns the mover's reward (+1/-1 on the last move, else 0).

        Raises GameError for an out-of-range or illegal action, or a finished game.
        """
        action = int(action)
        game = self.game
        if not 0 <= action < game.info.num_actions or not self._legal()[action]:
            raise GameError(self._illegal_message(action))
        mover = self.to_play()
        self.spiel_state.apply_action(action)
        self._mask = None
        self._num_moves += 1
        if action == game.pass_action:
            self._passes += 1
            self._ko = -1
            self._history = game._push(self._history, None)
        else:
            self._passes = 0
            before = self._history[0]
            self._history = game._push(self._history, self.spiel_state)
            self._ko = ko_point(before.ravel(), self._history[0].ravel(), action, game.size)
            if self._seen is not None:
                self._seen = insert_sorted(
                    self._seen, np.uint64(board_hash(self._history[0].ravel(), game.zobrist)))
        if self.is_terminal():
            return float(self.returns()[mover])
        return 0.0

    def clone(self) -> "GoState":
        """An independent copy (board history and cached mask are shared, immutable)."""
        other = object.__new__(GoState)
        other.game = self.game
        other.spiel_state = self.spiel_state.clone()
        other._setup = self._setup
        other._history = self._history
        other._num_moves = self._num_moves
        other._passes = self._passes
        other._ko = self._ko
        other._mask = self._mask
        other._seen = self._seen
        return other

    def is_terminal(self) -> bool:
        """Two consecutive passes, or max_game_length moves played."""
        return (self.spiel_state.is_terminal()
                or self._num_moves >= self.game.max_game_length)

    def returns(self) -> np.ndarray:
        """float32[2] (Black, White): +1/-1 by area score when over, zeros before."""
        if not self.is_terminal():
            return np.zeros(2, dtype=np.float32)
        score = self.area_score()
        black = float(np.sign(score))
        return np.array([black, -black], dtype=np.float32)

    def to_play(self) -> int:
        """0 Black, 1 White; when terminal, the colour that would move next."""
        player = self.spiel_state.current_player()
        if player < 0:
            return (int(bool(self._setup)) + self._num_moves) % 2
        return player

    def observation(self) -> np.ndarray:
        """float32[17, N, N] from the point of view of `to_play()` (see module doc)."""
        return observe(self._history, self.to_play())

    def search_root(self) -> GoRoot:
        """The arrays and counters a `GoBatch` tree starts from (shared, not copied)."""
        game = self.game
        empty = np.zeros(0, np.uint64)
        repeats = empty
        if game.rules == "open_spiel":
            repeats = self._seen
            if self._setup:  # open_spiel also saw the boards of the setup
                prefixes = np.bitwise_xor.accumulate(game.zobrist[1, list(self._setup)])
                repeats = np.union1d(repeats, np.append(prefixes, np.uint64(0)))
        return GoRoot(self._history, self.to_play(), self._ko, self._passes, self._num_moves,
                      self.is_terminal(), self._legal(),
                      self._seen if game.superko else empty, repeats)

    def history(self) -> list[int]:
        """Actions played after the handicap setup."""
        history = self.spiel_state.history()
        return history[2 * len(self._setup) - 1:] if self._setup else history

    def action_to_text(self, action: int) -> str:
        """'D4' or 'pass' (GameError out of range)."""
        return self.game.action_to_vertex(action)

    def text_to_action(self, text: str) -> int:
        """A GTP vertex (or an action id) of a legal move; GameError if malformed or illegal."""
        t = str(text).strip()
        if t.isdigit():  # an action id
            action = parse_count(t, self.game.info.num_actions)
            if action is None:
                raise GameError(f"{self.game.info.name}: action {t!r} out of range "
                                f"[0, {self.game.info.num_actions})")
        else:
            action = self.game.vertex_to_action(t)
        if not 0 <= action < self.game.info.num_actions or not self._legal()[action]:
            raise GameError(self._illegal_message(action, t))
        return action

    def __str__(self) -> str:
        size = self.game.size
        letters = "   " + " ".join(GTP_COLUMNS[:size])
        board = self.board()
        lines = [letters]
        for row in range(size - 1, -1, -1):
            cells = " ".join(".XO"[v] for v in board[row])
            lines.append(f"{row + 1:>2} {cells} {row + 1:<2}".rstrip())
        lines.append(letters)
        if self.is_terminal():
            score = self.area_score()
            result = "draw" if score == 0 else f"{'BW'[score < 0]}+{abs(score):g}"
            lines.append(f"game over: {result}")
        else:
            lines.append(f"{('Black', 'White')[self.to_play()]} to move")
        return "\n".join(lines)

    def __repr__(self) -> str:
        moves = " ".join(self.game.action_to_vertex(a) for a in self.history())
        return f"<{self.game.info.name} state, handicap={self.handicap()}, moves='{moves}'>"

    # Go specifics.

    def board(self) -> np.ndarray:
        """int8[N, N], row 0 = rank 1: 0 empty, 1 black, 2 white."""
        return self._history[0].copy()

    def handicap(self) -> list[str]:
        """GTP vertices of the handicap stones placed before the first move."""
        return [self.game.action_to_vertex(a) for a in self._setup]

    def moves(self) -> list[int]:
        """Actions played after the handicap setup (same as `history()`)."""
        return self.history()

    def passes(self) -> int:
        """Consecutive passes at the end of the game so far."""
        return self._passes

    def area_score(self) -> float:
        """Tromp-Taylor: Black's stones and territory minus White's, minus komi.

        An empty point is territory of a colour if every path from it through
        empty points reaches stones of that colour only. > 0: Black is ahead.
        """
        black, white = area_counts(self.board().ravel(), self.game.size)
        return float(black - white) - self.game.komi

    def final_territory(self) -> tuple[np.ndarray, float]:
        """(int8[N*N] owner of each point, +1 Black, -1 White, 0 neither; `area_score()`),
        by the Tromp-Taylor rules the game is scored by, in action order (row 0 = rank 1)."""
        owner = area_owner(self.board().ravel(), self.game.size)
        signed = np.where(owner == 1, 1, np.where(owner == 2, -1, 0)).astype(np.int8)
        return signed, self.area_score()

    def final_status(self, status: str) -> list[str]:
        """GTP final_status_list: 'alive' lists every stone; 'dead' and 'seki' none.

        No life-and-death analysis: as in Tromp-Taylor scoring, every stone on
        the board counts as alive.
        """
        status = str(status).strip().lower()
        if status == "alive":
            return [self.game.action_to_vertex(a) for a in np.flatnonzero(self.board().ravel())]
        if status in ("dead", "seki"):
            return []
        raise GameError(f"unknown final status {status!r}: expected alive, dead or seki")

    def _illegal_message(self, action: int, text: str | None = None) -> str:
        game = self.game
        if self.is_terminal():
            return f"{game.info.name}: the game is over, no move is legal"
        if not 0 <= action < game.info.num_actions:
            return (f"{game.info.name}: action {action} out of range "
                    f"[0, {game.info.num_actions})")
        vertex = game.action_to_vertex(action)
        board = self._history[0].ravel()
        if board[action]:
            reason = "the point is occupied"
        elif action == self._ko:
            reason = "ko: it retakes the ko at once"
        elif not legal_moves(board, game.size, self.to_play() + 1, -1, game.zobrist)[action]:
            reason = "suicide"
        else:
            reason = "positional superko: it would recreate an earlier position"
        return f"illegal move {text or vertex!r} ({vertex}): {reason}"
