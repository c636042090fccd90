"""Every suitable open_spiel game as `spiel/<name>` or `spiel/<name>(param=value,...)`.

The text after 'spiel/' is open_spiel's own game string (`pyspiel.load_game`);
the game's registry name is open_spiel's normal form of it (parameters sorted,
'hex()' written 'hex'), so 'spiel/breakthrough(rows=6,columns=6)' is the game
'spiel/breakthrough(columns=6,rows=6)'. Tabula plays the games AlphaZero
handles: two players, zero-sum, deterministic, perfect information, sequential
moves (games.spiel.unsupported_reason). Whether the players alternate is not
declared by open_spiel: `REPEATED_MOVERS` lists the games where one player
makes several actions in a row (a move split into parts, an extra turn); they
declare `GameInfo.alternating` False, and the search asks who moves at each
node instead of negating every value.

GameInfo from open_spiel: `num_distinct_actions`, `max_game_length`, draws
unless the game is in `NO_DRAWS`, no symmetries. Move text is open_spiel's
`action_to_string` (action ids are accepted too), the board `str(state)`.

Observation, float32[C + 1, H, W]: open_spiel's observation tensor for the
player to move, then one constant plane that is 1 when player 1 is to move and
0 when player 0 is, so the network can always tell whose turn it is, whatever
open_spiel's layout. A 3-D tensor keeps its (C, H, W); a 2-D one (C, N) becomes
(C, N, 1) (gomoku: (3, size, size)); a 1-D one (D,) becomes (D, 1, 1). How each
game's tensor is read (`LAYOUTS`; checked in tests/games/test_spiel_family.py):

  * relative: open_spiel's tensor is already the mover's view (othello,
    clobber, havannah, y, pentago, hive): used as is.
  * absolute with colour planes swapped: tic_tac_toe, connect_four, mnk,
    gomoku, go. The two planes of the players' stones are exchanged when
    player 1 moves, so the first of them always holds the mover's stones.
  * absolute, kept: every other game (breakthrough, hex, twixt,
    lines_of_action, chess, antichess, crazyhouse, shogi, xiangqi, quoridor,
    oware, nim, ...), whose boards are not the same for both colours (a
    direction of play, sides to connect); the turn plane tells them apart.

open_spiel's twixt keeps its board size process-wide: after 'spiel/twixt' another size
in the same process gives tensors of the wrong size (open_spiel raises).

Search goes through games.spiel_batch.SpielBatch: pyspiel states per node,
clone and apply in C++.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import pyspiel

from games.base import GameError, GameInfo, SearchBatch, State
from games.spiel import SpielGame, status_text, unsupported_reason

PREFIX = "spiel/"
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")

REPEATED_MOVERS = {
    "amazons": "a move is three actions (queen, destination, arrow)",
    "checkers": "a multiple jump is one action per jump",
    "chinese_checkers": "a chain of hops is one action per hop",
    "cursor_go": "a move is several cursor actions",
    "dots_and_boxes": "completing a box gives another turn",
    "mancala": "the last seed in one's store gives another turn",
    "nine_mens_morris": "a mill's capture is a second action",
    "ultimate_tic_tac_toe": "choosing the sub-board is a separate action",
}
"""Games where one player can act twice in a row, and why (measured on random games):
GameInfo.alternating False. chinese_checkers and cursor_go play, but their games are long
(open_spiel's bounds: 22000 and 72922 actions)."""

NO_DRAWS = frozenset({"hex", "y", "havannah", "clobber", "breakthrough", "nim", "amazons"})
"""Games that cannot end in a draw (GameInfo.has_draws)."""


@dataclass(frozen=True)
class Layout:
    """How a game's observation tensor is read (see the module doc)."""

    colour_planes: tuple[int, int] | None = None
    """Planes of player 0's and player 1's stones in an absolute tensor: exchanged when
    player 1 moves. None: the tensor is kept as open_spiel gives it."""
    board: Callable[[dict], tuple[int, int] | None] | None = None
    """(H, W) of a 2-D tensor (C, H*W) from the game's parameters (None: (N, 1))."""


LAYOUTS = {
    "tic_tac_toe": Layout(colour_planes=(2, 1)),  # planes: empty, o, x
    "mnk": Layout(colour_planes=(2, 1)),
    "connect_four": Layout(colour_planes=(0, 1)),
    "go": Layout(colour_planes=(0, 1)),  # black, white, empty, white to play
    "gomoku": Layout(colour_planes=(0, 1), board=lambda p: (
        (p["size"], p["size"]) if p["dims"] == 2 else None)),
}
"""Declared layouts; every other game reads as `Layout()`."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silences file descriptor 2: open_spiel's C++ prints its errors (and warnings, e.g.
    quoridor's 'known issues') there before raising, which would add lines to ours."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_spiel(text: str) -> pyspiel.Game:
    """`pyspiel.load_game(text)`; GameError with open_spiel's reason on one line."""
    try:
        with _quiet_stderr():
            return pyspiel.load_game(text)
    except pyspiel.SpielError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "cannot load it"
        if reason.startswith("Unknown game"):  # open_spiel lists all of its games next
            reason = f"{reason.split('.')[0]}; playable: {', '.join(spiel_names())}"
        raise GameError(f"{PREFIX}{text}: {reason.rstrip(':.')}") from None


def canonical_name(spiel_game: pyspiel.Game) -> str:
    """'spiel/<open_spiel's game string>' without empty parentheses."""
    return PREFIX + str(spiel_game).removesuffix("()")


def spiel_names() -> list[str]:
    """Short names of open_spiel's games that Tabula plays with their default parameters
    (from the declared game types; loads nothing)."""
    names = []
    for game_type in pyspiel.registered_games():
        if not game_type.default_loadable:
            continue
        if not game_type.min_num_players <= 2 <= game_type.max_num_players:
            continue
        kind = pyspiel.GameType
        if (game_type.dynamics == kind.Dynamics.SEQUENTIAL
                and game_type.information == kind.Information.PERFECT_INFORMATION
                and game_type.chance_mode == kind.ChanceMode.DETERMINISTIC
                and game_type.utility == kind.Utility.ZERO_SUM
                and game_type.provides_observation_tensor):
            names.append(game_type.short_name)
    return sorted(names)


def board_shape(spiel_game: pyspiel.Game, layout: Layout) -> tuple[int, int, int]:
    """(C, H, W) of open_spiel's tensor as planes (see the module doc)."""
    shape = tuple(int(n) for n in spiel_game.observation_tensor_shape())
    if len(shape) == 3:
        return shape
    if len(shape) == 2:
        board = layout.board(spiel_game.get_parameters()) if layout.board else None
        if board is not None and board[0] * board[1] == shape[1]:
            return (shape[0], *board)
        return (shape[0], shape[1], 1)
    return (int(np.prod(shape)), 1, 1)


class OpenSpielGame(SpielGame):
    """Any suitable open_spiel game, its facts read from open_spiel (module doc).

    Attributes:
      layout: how the observation tensor is read.
    """

    def __init__(self, spiel_game: pyspiel.Game):
        short = spiel_game.get_type().short_name
        name = canonical_name(spiel_game)
        if (reason := unsupported_reason(spiel_game)) is not None:
            raise GameError(f"{name}: {reason}")
        self.layout = LAYOUTS.get(short, Layout())
        channels, height, width = self._planes = board_shape(spiel_game, self.layout)
        info = GameInfo(
            name=name,
            num_actions=spiel_game.num_distinct_actions(),
            observation_shape=(channels + 1, height, width),
            num_players=2,
            max_game_length=spiel_game.max_game_length(),
            has_draws=short not in NO_DRAWS,
            alternating=short not in REPEATED_MOVERS,
        )
        super().__init__(info, short, spiel_game=spiel_game)

    def observe(self, spiel_state: pyspiel.State, player: int) -> np.ndarray:
        """float32[C + 1, H, W]: open_spiel's tensor for `player`, then the turn plane."""
        channels, height, width = self._planes
        obs = np.empty((channels + 1, height, width), np.float32)
        tensor = np.asarray(spiel_state.observation_tensor(player), np.float32)
        obs[:channels] = tensor.reshape(self._planes)
        colours = self.layout.colour_planes
        if colours is not None and player == 1:
            obs[list(colours)] = obs[list(colours[::-1])]
        obs[channels] = float(player)
        return obs

    def board_text(self, spiel_state: pyspiel.State) -> str:
        """open_spiel's `str(state)` without colour codes (twixt's default), then whose turn
        or the result."""
        board = _ANSI_CODE.sub("", str(spiel_state)).rstrip()
        return f"{board}\n{status_text(spiel_state, ('player 0', 'player 1'))}"

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> SearchBatch:
        """pyspiel states per node (games.spiel_batch)."""
        from games.spiel_batch import SpielBatch

        return SpielBatch(self, roots, capacity)


def spiel_game(text: str) -> OpenSpielGame:
    """The family factory: `get_game('spiel/hex(board_size=7)')` calls it with 'hex(board_size=7)'.

    Raises GameError: open_spiel cannot load the string (its reason), or a game
    Tabula cannot play (which property excludes it).
    """
    return OpenSpielGame(load_spiel(text))
