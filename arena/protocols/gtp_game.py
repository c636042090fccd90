"""The GTP engine's game: the record of moves, the position, and the engine's own moves.

The record is Black's handicap stones plus the (colour, action) moves; the
GoState follows from it by replay, which also gives `undo`. GTP lets a colour
move twice in a row ('play b D4' after 'play b C3'): the replay then inserts a
pass for the other side. A position is over after two passes and takes no
more moves, so when play goes on after two passes (a GUI that continues, KGS
clean-up) the replay drops that pair of passes; the board is the same (one
difference: a ko may not be retaken right after both passed). A game over by
its move limit takes no more moves; genmove answers 'pass' there. The record
keeps every move as given (printsgf writes it).
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from typing import Callable

from arena.protocols.gtp_time import CALIBRATION_DISCOUNT, Clock, SimsRate, moves_left, plan

COLOURS = {"b": 0, "black": 0, "w": 1, "white": 1}
COLOUR_NAMES = ("B", "W")
MAX_SGF_BYTES = 10 * 2**20
"""Largest file `loadsgf` reads: a Go record is a few KiB; /dev/zero is endless."""


class GtpError(Exception):
    """A command that fails; the message is the GTP error text, e.g. 'illegal move'."""


@dataclass(frozen=True)
class GtpOptions:
    """Engine settings from the command line."""

    resign_threshold: float = 0.95
    """Resign when the search value for the mover is below -resign_threshold (1: never)."""
    resign_min_fraction: float = 0.25
    """...and at least this fraction of the board's points in moves were played."""
    time_per_move: float | None = None
    """Seconds per move (lowered by the clock, if set); None: the clock or fixed sims."""
    min_sims: int = 8
    """Fewest simulations of a timed move."""
    max_sims: int = 1600
    """Most simulations of a timed move or of one analysis search."""


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def rebind(player, game):
    """The same network and search settings playing `game` (e.g. another komi)."""
    other = type(player)(game, player.evaluator, player.search,
                         temperature=player.temperature, name=player.name, batch=player.batch)
    other.rng, other.meta, other.timings = player.rng, player.meta, player.timings
    return other


def replay(game, handicap: list[str], moves: list[tuple[int, int]],
           next_colour: int | None = None):
    """The GoState after `moves` from `handicap`, with `next_colour` to move if given.

    Raises:
      GameError: a handicap stone or a move is illegal.
    """
    state = game.new_initial_state(handicap)
    passed = game.pass_action
    actions, turn = [], int(state.to_play())
    for colour, action in moves:
        if colour != turn:
            actions.append(passed)
        actions.append(action)
        turn = 1 - colour
    if next_colour is not None and next_colour != turn:
        actions.append(passed)
    more = next_colour is not None
    i = 0
    while i < len(actions):
        pair = actions[i] == passed and actions[i + 1:i + 2] == [passed]
        if pair and (i + 2 < len(actions) or more):
            i += 2  # play goes on after two passes
            continue
        state.apply(actions[i])
        i += 1
    return state


class GoSession:
    """The game a GTP engine plays, and the engine's moves in it.

    Args:
      player: engine.player.Player of a GoGame.
      options: GtpOptions.
      resize: (size, komi) -> Player for another board size; None fixes the size.
    """

    def __init__(self, player, options: GtpOptions,
                 resize: Callable[[int, float], object] | None = None):
        self.player = player
        self.game = player.game
        self.options = options
        self.resize = resize
        self.handicap: list[str] = []
        self.moves: list[tuple[int, int]] = []
        self.state = self.game.new_initial_state()
        self.clock = Clock()
        self.rate = SimsRate()

    # The position ------------------------------------------------------------

    def vertex(self, text: str) -> int:
        """The action of a GTP vertex ('D4', 'pass', any case); GtpError if not one."""
        try:
            return int(self.game.vertex_to_action(text))
        except ValueError:  # GameError
            raise GtpError("invalid coordinates") from None

    def to_move(self) -> int:
        """The colour whose turn it is after the recorded moves."""
        if self.moves:
            return 1 - self.moves[-1][0]
        return int(self.game.new_initial_state(self.handicap).to_play())

    def position(self, colour: int):
        """A new GoState of the current position with `colour` to move.

        A game over by its move limit stays over (the copy is terminal).
        Raises GtpError('illegal move') in the one case where dropping two
        passes makes the replay illegal: a ko retaken right after both passed.
        """
        over = self.state.is_terminal()
        if (not over and self.state.to_play() == colour) or (over and self.state.passes() < 2):
            return self.state.clone()
        try:
            return replay(self.game, self.handicap, self.moves, colour)
        except ValueError:  # GameError
            raise GtpError("illegal move") from None

    def play(self, colour: int, action: int, state=None) -> None:
        """Records a move; GtpError('illegal move') and no change if it is not legal."""
        state = self.position(colour) if state is None else state
        if state.is_terminal() or not state.legal_mask()[action]:
            raise GtpError("illegal move")
        state.apply(action)
        self.state = state
        self.moves.append((colour, action))

    def undo(self) -> None:
        if not self.moves:
            raise GtpError("cannot undo")
        try:
            self.state = replay(self.game, self.handicap, self.moves[:-1])
        except ValueError:  # GameError: see position()
            raise GtpError("cannot undo") from None
        self.moves.pop()

    def clear(self, handicap: list[str] | None = None) -> None:
        """An empty board, with Black's `handicap` stones if given."""
        self.state = self.game.new_initial_state(list(handicap or []))
        self.handicap = list(handicap or [])
        self.moves = []

    def empty(self) -> bool:
        return not self.moves and not self.handicap

    def set_game(self, game, player=None) -> None:
        """Plays `game` (another komi, or size with `player`) from now on."""
        if player is None and game.size != self.game.size:
            raise ValueError("a new board size needs a new player")
        moves = self.moves if game.size == self.game.size else []
        handicap = self.handicap if game.size == self.game.size else []
        self.state = replay(game, handicap, moves)
        self.player = player if player is not None else rebind(self.player, game)
        self.game, self.handicap, self.moves = game, handicap, moves

    def record(self) -> list[tuple[str, str]]:
        """The moves as (colour 'B'/'W', vertex)."""
        return [(COLOUR_NAMES[c], self.game.action_to_vertex(a)) for c, a in self.moves]

    def score_for(self, state, colour: int) -> float:
        """Tromp-Taylor area score from `colour`'s side (komi included)."""
        score = float(state.area_score())
        return score if colour == 0 else -score

    # The engine's moves ------------------------------------------------------

    def genmove(self, colour: int, commit: bool = True, cleanup: bool = False) -> str:
        """The engine's move for `colour`: a vertex, 'pass' or 'resign'; played if `commit`.

        Passes at once when the opponent just passed and passing wins on the
        board. Clean-up (kgs-genmove_cleanup) never resigns and never passes
        while it has a move that does not fill its own eye.
        """
        start = time.perf_counter()
        state = self.position(colour)
        move = self._choose(state, colour, cleanup)
        if commit and move is not None and not state.is_terminal():
            self.play(colour, move, state)
        if commit:
            self.clock.used(colour, time.perf_counter() - start)
        return "resign" if move is None else self.game.action_to_vertex(move)

    def _choose(self, state, colour: int, cleanup: bool) -> int | None:
        """The action to play in `state`, or None to resign."""
        passing = self.game.pass_action
        if state.is_terminal():  # the move limit: nothing can be played
            return passing
        opponent_passed = bool(self.moves) and self.moves[-1] == (1 - colour, passing)
        if not cleanup and opponent_passed and self.score_for(state, colour) > 0:
            return passing
        analysis = self.search(state, colour)
        if cleanup:
            return cleanup_move(state, analysis)
        return None if self.should_resign(analysis.value) else analysis.action

    def should_resign(self, value: float) -> bool:
        points = self.game.size * self.game.size
        return (value < -self.options.resign_threshold
                and len(self.moves) >= self.options.resign_min_fraction * points)

    def search(self, state, colour: int, sims: int | None = None, discount: float = 1.0):
        """The Player's Analysis of `state`; simulations from the clock unless given."""
        if sims is None:
            sims = self.timed_sims(colour)
        start = time.perf_counter()
        analysis = self.player.analyze([state], num_simulations=sims)[0]
        used = sims if sims is not None else self.player.search.num_simulations
        self.rate.record(used, time.perf_counter() - start, discount)
        return analysis

    def timed_sims(self, colour: int) -> int | None:
        """Simulations for the next move under the clock, or None (the player's setting)."""
        points = self.game.size * self.game.size
        budget = self.clock.budget(colour, moves_left(points, len(self.moves)))
        if self.options.time_per_move is not None:
            fixed = plan(self.options.time_per_move)
            budget = fixed if budget is None else min(budget, fixed)
        if budget is None:
            return None
        return self.rate.sims_for(budget, self.options.min_sims, self.options.max_sims)

    def calibrate(self) -> None:
        """Measures the search speed once (after a first call that compiles the kernels)."""
        if self.rate.measured:
            return
        state = self.game.new_initial_state()
        self.player.analyze([state], num_simulations=2)
        self.search(state, 0, sims=2 * self.options.min_sims, discount=CALIBRATION_DISCOUNT)

    # SGF ---------------------------------------------------------------------

    def load_sgf(self, path: str, move_number: int | None = None) -> None:
        """Replaces the game by an SGF file's, up to before `move_number`; all or nothing."""
        from games import read_sgf

        try:
            sgf = read_sgf(read_record(path))
        except (OSError, ValueError) as e:  # SgfError is a ValueError
            raise GtpError(f"cannot load file: {one_line(e)}") from None
        game, player = self.game, None
        try:
            if sgf.size != game.size:
                if self.resize is None:
                    raise GtpError("unacceptable size")
                player = self.resize(sgf.size, sgf.komi)
                game = player.game
            elif sgf.komi != game.komi:
                game = game.with_komi(sgf.komi)
            moves = [(COLOURS[c.lower()], int(game.vertex_to_action(v))) for c, v in sgf.moves]
            if move_number is not None:
                moves = moves[:max(move_number - 1, 0)]
            state = replay(game, list(sgf.handicap), moves)
        except ValueError as e:  # GameError: a bad vertex, an illegal move, a bad size
            raise GtpError(f"cannot load file: {one_line(e)}") from None
        if player is None:
            player = self.player if game is self.game else rebind(self.player, game)
        self.player, self.game = player, game
        self.handicap, self.moves, self.state = list(sgf.handicap), moves, state


def read_record(path: str) -> str:
    """The text of a regular file of at most MAX_SGF_BYTES (bad UTF-8 replaced).

    Raises:
      OSError: it cannot be read, is not a regular file (a FIFO or a device would
        block or never end), or is bigger.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_SGF_BYTES + 1)
    if len(data) > MAX_SGF_BYTES:
        raise OSError(f"{path} is bigger than {MAX_SGF_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def cleanup_move(state, analysis) -> int:
    """The most searched legal move that neither passes nor fills an own eye, else a pass."""
    board = state.board()  # int8[N, N], row 0 = rank 1; actions are row * N + col
    n = board.shape[0]
    me = 1 + int(state.to_play())
    legal = state.legal_mask()

    def own_eye(action: int) -> bool:
        r, c = divmod(action, n)
        near = [board[y, x] for y, x in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                if 0 <= y < n and 0 <= x < n]
        return all(v == me for v in near)

    choices = [a for a in range(n * n) if legal[a] and not own_eye(a)]
    if not choices:
        return n * n
    return max(choices, key=lambda a: (int(analysis.visits[a]), float(analysis.prior[a])))
