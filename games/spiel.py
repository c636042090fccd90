"""Adapter over open_spiel for two-player, deterministic, perfect-information games.

`SpielGame` wraps a pyspiel game and declares its facts in a `GameInfo`;
`SpielState` wraps a pyspiel state and implements the `State` protocol.
Game-specific presentation (board text, move text) lives in small overridable
methods of `SpielGame`, so a game module only subclasses and overrides those.

Observation: open_spiel's tensors for tic-tac-toe and Connect Four are
absolute (one plane per colour plus an empty plane, the same whatever the
player to move). When `player_planes` is given, the adapter reorders the
planes so the observation is from the point of view of the player to move:
plane 0 = stones of the player to move, plane 1 = the opponent's stones,
plane 2 = empty cells. Spatial layout is open_spiel's unchanged (tic-tac-toe:
row 0 is the top row; Connect Four: row 0 is the bottom row). For a terminal
state the point of view is the player who would move next in strict
alternation (`len(history) % 2`), which is also what `to_play()` returns then.
Other layouts override `SpielGame.observe` (games/spiel_family.py).

A game whose players do not strictly alternate (an extra turn, a move made of
several actions) declares `GameInfo.alternating` False, and the search asks
who moves at each node; `SpielState.apply` raises if a game declared
alternating lets a player move twice in a row anyway. For a terminal state of
such a game, `to_play()`'s `len(history) % 2` names no real turn (nothing
reads the view of a finished game but the turn plane).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyspiel

from games.base import GameError, GameInfo, ObjectBatch, SearchBatch, State, parse_count

REQUIREMENT = ("Tabula plays two-player, zero-sum, deterministic, perfect-information, "
               "sequential games")


def unsupported_reason(spiel_game: pyspiel.Game) -> str | None:
    """Why Tabula cannot play `spiel_game`, on one line (every excluding property), or None.

    Checked: two players, sequential moves, perfect information, no chance
    events, zero-sum returns within [-1, 1] (the value head's range), an
    observation tensor. Whether players alternate is not declared by open_spiel;
    games declare it (GameInfo.alternating, games/spiel_family.py) and
    `SpielState.apply` enforces a declared alternation.
    """
    game_type = spiel_game.get_type()
    kind = pyspiel.GameType
    reasons = []
    if spiel_game.num_players() != 2:
        players = spiel_game.num_players()
        reasons.append(f"{players} player{'s' * (players != 1)}")
    if game_type.dynamics != kind.Dynamics.SEQUENTIAL:
        reasons.append("simultaneous moves")
    if game_type.information != kind.Information.PERFECT_INFORMATION:
        reasons.append("imperfect information")
    if game_type.chance_mode != kind.ChanceMode.DETERMINISTIC:
        reasons.append("chance events")
    if game_type.utility != kind.Utility.ZERO_SUM:
        utility = {kind.Utility.GENERAL_SUM: "general-sum", kind.Utility.CONSTANT_SUM:
                   "constant-sum (not zero-sum)", kind.Utility.IDENTICAL: "identical (team)"}
        reasons.append(f"{utility.get(game_type.utility, str(game_type.utility))} returns")
    elif not -1 <= spiel_game.min_utility() <= spiel_game.max_utility() <= 1:
        reasons.append(f"returns in [{spiel_game.min_utility():g}, "
                       f"{spiel_game.max_utility():g}], outside the value range [-1, 1]")
    if not game_type.provides_observation_tensor:
        reasons.append("no observation tensor")
    if not reasons:
        return None
    return f"{', '.join(reasons)}; {REQUIREMENT}"


class SpielGame:
    """A `Game` backed by open_spiel's C++ rules.

    Attributes:
      info: the game's facts.
      spiel_game: the pyspiel game (e.g. for open_spiel's MCTSBot).
    """

    def __init__(
        self,
        info: GameInfo,
        spiel_name: str,
        params: dict | None = None,
        *,
        player_planes: tuple[int, int, int] | None = None,
        spiel_game: pyspiel.Game | None = None,
    ):
        """Loads the pyspiel game and checks it against `info`.

        Args:
          info: facts declared by the game module.
          spiel_name: open_spiel's short name, e.g. 'connect_four'.
          params: open_spiel game parameters.
          player_planes: indices in open_spiel's observation tensor of the
            planes (player 0's stones, player 1's stones, empty). If given, the
            observation is reordered to (mover, opponent, empty); if None,
            open_spiel's tensor (for the player to move) is used as is.
          spiel_game: the pyspiel game, already loaded (then `spiel_name` and
            `params` are not used).
        """
        self.info = info
        self.spiel_game = (pyspiel.load_game(spiel_name, dict(params or {}))
                           if spiel_game is None else spiel_game)
        self.player_planes = player_planes
        if (reason := unsupported_reason(self.spiel_game)) is not None:
            raise GameError(f"{spiel_name!r}: {reason}")
        if self.spiel_game.num_distinct_actions() != info.num_actions:
            raise GameError(
                f"{info.name}: num_actions {info.num_actions} != open_spiel's "
                f"{self.spiel_game.num_distinct_actions()}")
        # A loaded game's info is derived from it, with its own observation layout.
        if (spiel_game is None and self.spiel_game.observation_tensor_size()
                != int(np.prod(info.observation_shape))):
            raise GameError(
                f"{info.name}: observation_shape {info.observation_shape} does not "
                f"match open_spiel's tensor size {self.spiel_game.observation_tensor_size()}")

    def new_initial_state(self) -> "SpielState":
        """The starting position."""
        return SpielState(self, self.spiel_game.new_initial_state())

    def state_from_actions(self, actions: Sequence[int]) -> "SpielState":
        """The position reached by playing `actions` from the start (GameError if illegal)."""
        state = self.new_initial_state()
        for action in actions:
            state.apply(int(action))
        return state

    def apply_symmetry(
        self, k: int, obs: np.ndarray, policy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Identity only; games with symmetries override this."""
        if k != 0:
            raise GameError(f"{self.info.name} has only the identity symmetry (k=0), got {k}")
        return obs.copy(), policy.copy()

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> SearchBatch:
        """A generic `ObjectBatch`; fast games override this."""
        return ObjectBatch(roots, capacity)

    def observe(self, spiel_state: pyspiel.State, player: int) -> np.ndarray:
        """float32[observation_shape]: `spiel_state` seen by `player` (see the module doc)."""
        shape = self.info.observation_shape
        planes = self.player_planes
        if planes is None:
            tensor = spiel_state.observation_tensor(player)
            return np.asarray(tensor, dtype=np.float32).reshape(shape)
        # open_spiel's tensor is absolute here: any player's view is the same.
        tensor = np.asarray(spiel_state.observation_tensor(0), dtype=np.float32)
        tensor = tensor.reshape(shape)
        order = [planes[player], planes[1 - player], planes[2]]
        return np.ascontiguousarray(tensor[order])

    # Presentation hooks, overridden by game modules.

    def board_text(self, spiel_state: pyspiel.State) -> str:
        """The board as text (default: open_spiel's)."""
        return str(spiel_state)

    def action_text(self, spiel_state: pyspiel.State, action: int) -> str:
        """Move text for a valid action id (default: open_spiel's)."""
        player = spiel_state.current_player()
        return spiel_state.action_to_string(max(player, 0), action)

    def parse_move(self, spiel_state: pyspiel.State, text: str) -> int:
        """Move text to an action id; checks syntax only.

        Default: open_spiel's text of a legal move (exactly as written, else ignoring
        case: chess's 'bxc4' and 'Bxc4' differ), or an action id.
        """
        text = text.strip()
        for action in spiel_state.legal_actions():
            if self.action_text(spiel_state, action) == text:
                return action
        if text.lstrip("-").isdigit():  # an action id
            action = parse_count(text, self.info.num_actions)
            if action is None:
                raise GameError(f"{self.info.name}: action {text!r} out of range "
                                f"[0, {self.info.num_actions})")
            return action
        for action in spiel_state.legal_actions():
            if self.action_text(spiel_state, action).lower() == text.lower():
                return action
        raise GameError(
            f"cannot parse move {text!r} for {self.info.name}: expected an action id "
            f"in [0, {self.info.num_actions}) or open_spiel's move text")


class SpielState:
    """A `State` wrapping a pyspiel state.

    Attributes:
      game: the owning `SpielGame`.
      spiel_state: the wrapped pyspiel state (read it, do not mutate it).
    """

    def __init__(self, game: SpielGame, spiel_state: pyspiel.State):
        self.game = game
        self.spiel_state = spiel_state

    def legal_mask(self) -> np.ndarray:
        """bool[num_actions]: legal actions (all False when terminal)."""
        mask = np.zeros(self.game.info.num_actions, dtype=bool)
        mask[self.spiel_state.legal_actions()] = True
        return mask

    def _check_action(self, action: int) -> None:
        if self.spiel_state.is_terminal():
            raise GameError(f"{self.game.info.name}: the game is over, no move is legal")
        num_actions = self.game.info.num_actions
        if not 0 <= action < num_actions:
            raise GameError(
                f"{self.game.info.name}: action {action} out of range [0, {num_actions})")
        if action not in self.spiel_state.legal_actions():
            raise GameError(
                f"{self.game.info.name}: illegal move {self.action_to_text(action)!r} "
                f"(action {action}); legal: {self._legal_texts()}")

    def apply(self, action: int) -> float:
        """Plays `action` in place; returns the mover's reward (its return on a terminal move, else 0.0).

        Raises GameError for an out-of-range or illegal action, or a finished game.
        """
        action = int(action)
        self._check_action(action)
        mover = self.spiel_state.current_player()
        self.spiel_state.apply_action(action)
        if self.spiel_state.is_terminal():
            return float(self.spiel_state.returns()[mover])
        if self.game.info.alternating and self.spiel_state.current_player() == mover:
            raise GameError(not_alternating(self.game.info.name, mover))
        return 0.0

    def clone(self) -> "SpielState":
        """An independent copy."""
        return SpielState(self.game, self.spiel_state.clone())

    def is_terminal(self) -> bool:
        """Whether the game is over."""
        return self.spiel_state.is_terminal()

    def returns(self) -> np.ndarray:
        """float32[2]: outcome per player (+1 win, 0 draw, -1 loss; zeros if not over)."""
        return np.asarray(self.spiel_state.returns(), dtype=np.float32)

    def to_play(self) -> int:
        """Player to move; for a terminal state, `len(history) % 2`."""
        player = self.spiel_state.current_player()
        if player < 0:
            return len(self.spiel_state.history()) % 2
        return player

    def observation(self) -> np.ndarray:
        """float32[observation_shape] from the point of view of `to_play()` (see module doc)."""
        return self.game.observe(self.spiel_state, self.to_play())

    def history(self) -> list[int]:
        """Actions played from the initial position."""
        return list(self.spiel_state.history())

    def action_to_text(self, action: int) -> str:
        """Human move text for `action` (GameError if out of range)."""
        action = int(action)
        if not 0 <= action < self.game.info.num_actions:
            raise GameError(
                f"{self.game.info.name}: action {action} out of range "
                f"[0, {self.game.info.num_actions})")
        return self.game.action_text(self.spiel_state, action)

    def text_to_action(self, text: str) -> int:
        """Parses move text; raises GameError if malformed or illegal here."""
        action = self.game.parse_move(self.spiel_state, str(text))
        self._check_action(action)
        return action

    def _legal_texts(self) -> str:
        return " ".join(self.game.action_text(self.spiel_state, a)
                        for a in self.spiel_state.legal_actions())

    def __str__(self) -> str:
        return self.game.board_text(self.spiel_state)

    def __repr__(self) -> str:
        return f"<{self.game.info.name} state, history={self.history()}>"


def not_alternating(name: str, player: int) -> str:
    """The error of a game declared alternating that left `player` to move twice in a row."""
    return (f"{name}: player {player} moved twice in a row, but the game declares that "
            "players alternate (GameInfo.alternating)")


def status_text(spiel_state: pyspiel.State, symbols: Sequence[str] = "xo") -> str:
    """'x to play', 'o wins' or 'draw' for a two-player state; symbols name players 0, 1."""
    if not spiel_state.is_terminal():
        return f"{symbols[spiel_state.current_player()]} to play"
    returns = spiel_state.returns()
    if returns[0] == returns[1]:
        return "draw"
    return f"{symbols[int(returns[1] > returns[0])]} wins"
