"""A quick self-check of a game through its public API, by random play.

`check_game` plays a few seeded random games through the `State` protocol and
checks what the engine relies on: GameInfo's facts, observation shape and
dtype, legal masks, that a non-terminal position has a legal move, that
apply() takes every legal move and refuses illegal ones with GameError, the
terminal reward, returns(), strict alternation (unless GameInfo.alternating is
False), clone() independence, the game
length, the move-text round trip, symmetries, and the game's search batch
against clone() + apply(). The first fault found is raised as a GameError of
one line that names the method at fault, e.g.

    hexapawn:Hexapawn: State.observation() returned shape (2, 9), expected
    GameInfo.observation_shape (2, 3, 3) (after moves b1-b2)

The registry runs it on every game a user loads (a module path or an entry
point). It costs a few milliseconds for a small game; built-in games are
checked by the test suite instead of at every load.
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from games.base import GameError, GameInfo, MoverBatch

PLAYS = 16
"""Random games per check."""
MAX_MOVES = 2_000
"""No new game is started once this many moves were played (long games stay cheap)."""
MOVE_SAMPLES = 16
"""Legal moves per position tried on a clone and round-tripped through their text."""
BATCH_ROOTS = 8
"""Positions the search-batch check expands."""


class _Fault(Exception):
    """A failed check; `check_game` turns it into a GameError with the game's name."""


def check_game(game, plays: int = PLAYS, seed: int = 0, max_moves: int = MAX_MOVES) -> None:
    """Checks `game` by `plays` random games; raises GameError naming the method at fault.

    Args:
      game: a Game (games.base.Game). Environments (kind 'environment') get the
        GameInfo checks only.
      plays: random games to play (fewer once `max_moves` moves were played).
      seed: seed of the random moves.
      max_moves: no game is started after this many moves in total.
    Raises:
      GameError: one line, '<game name>: <Method>() ...'.
    """
    info = getattr(game, "info", None)
    name = info.name if isinstance(info, GameInfo) else type(game).__name__
    try:
        _Checker(game, np.random.default_rng(seed)).run(plays, max_moves)
    except _Fault as fault:
        raise GameError(f"{name}: {fault}") from None


def error_site(error: BaseException) -> str:
    """' (file.py, line N)': where `error` was raised (its innermost frame), or ''."""
    if isinstance(error, SyntaxError) and error.filename:
        return f" ({Path(error.filename).name}, line {error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    return f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"


def describe_error(error: BaseException) -> str:
    """'TypeError: first line of the message (file.py, line N)', for one-line reports."""
    message = error.msg if isinstance(error, SyntaxError) else str(error)  # str() adds the site
    text = str(message).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"{type(error).__name__}{detail}{error_site(error)}"


class _Checker:
    """The checks of one `check_game` call; `moves` is the current game's move list."""

    def __init__(self, game, rng: np.random.Generator):
        self.game, self.rng = game, rng
        self.info: GameInfo = game.info
        self.moves: list[str] | None = None  # the current random game's moves, as text
        self.positions: list = []  # non-terminal states kept for the later checks

    def call(self, method: str, fn: Callable, *args):
        """fn(*args); any exception becomes a fault naming `method`."""
        try:
            return fn(*args)
        except _Fault:
            raise
        except Exception as e:
            raise self.fail(f"{method} raised {describe_error(e)}") from None

    def fail(self, message: str) -> _Fault:
        """A fault saying where in the current game it happened (if in one)."""
        if self.moves is None:
            return _Fault(message)
        after = f" (after moves {' '.join(self.moves)})" if self.moves else " (initial position)"
        return _Fault(message + after)

    def run(self, plays: int, max_moves: int) -> None:
        self.check_info()
        if self.info.kind != "board":
            return
        total = 0
        for _ in range(plays):
            if total >= max_moves:
                break
            total += self.play_one()
        self.check_symmetries()
        self.check_search_batch()

    def check_info(self) -> None:
        info = self.info
        if not isinstance(info, GameInfo):
            raise _Fault(f"Game.info must be a games.base.GameInfo, got {type(info).__name__}")
        shape = info.observation_shape
        if not (isinstance(shape, tuple) and shape
                and all(isinstance(n, int) and n >= 1 for n in shape)):
            raise _Fault(f"GameInfo.observation_shape must be a tuple of positive ints, "
                         f"got {shape!r}")
        if info.kind == "board" and len(shape) != 3:
            raise _Fault(f"GameInfo.observation_shape must be (planes, rows, columns): the "
                         f"network is convolutional, got {shape!r}")
        for field, low in (("num_actions", 1), ("max_game_length", 1), ("num_symmetries", 1)):
            value = getattr(info, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise _Fault(f"GameInfo.{field} must be an int >= {low}, got {value!r}")
        if info.kind == "board" and info.num_players != 2:
            raise _Fault(f"GameInfo.num_players must be 2 for a board game (two players who "
                         f"take turns), got {info.num_players!r}")
        for method in ("new_initial_state", "apply_symmetry", "new_search_batch"):
            if info.kind == "board" and not callable(getattr(self.game, method, None)):
                raise _Fault(f"Game.{method}() is missing")

    def play_one(self) -> int:
        """One random game from the initial position; returns its number of moves."""
        self.moves = []
        state = self.call("Game.new_initial_state()", self.game.new_initial_state)
        if self.call("State.is_terminal()", state.is_terminal):
            raise self.fail("State.is_terminal() is True before any move")
        played: list[int] = []
        while True:
            terminal = self.check_state(state, played)
            if terminal:
                return len(played)
            if len(played) >= self.info.max_game_length:
                raise self.fail(f"a game lasted more than GameInfo.max_game_length = "
                                f"{self.info.max_game_length} moves: raise it, or end the "
                                "game in is_terminal()")
            mask = state.legal_mask()
            self.check_moves(state, mask)
            self.check_text(state, mask)
            if len(self.positions) < 4 * BATCH_ROOTS and self.rng.random() < 0.3:
                self.positions.append(state.clone())
            action = int(self.rng.choice(np.flatnonzero(mask)))
            self.check_move(state, action, played)
            played.append(action)

    def check_state(self, state, played: list[int]) -> bool:
        """Checks one position; returns is_terminal()."""
        info = self.info
        terminal = self.call("State.is_terminal()", state.is_terminal)
        if not isinstance(terminal, (bool, np.bool_)):
            raise self.fail(f"State.is_terminal() must return a bool, got "
                            f"{type(terminal).__name__}")
        mask = self.call("State.legal_mask()", state.legal_mask)
        if (not isinstance(mask, np.ndarray) or mask.dtype != np.bool_
                or mask.shape != (info.num_actions,)):
            raise self.fail(f"State.legal_mask() must return a bool array of shape "
                            f"({info.num_actions},), got {_describe(mask)}")
        history = self.call("State.history()", state.history)
        if [int(a) for a in history] != played:
            raise self.fail(f"State.history() returned {list(history)[:20]}, expected the "
                            f"actions played, {played[:20]}")
        self.call("State.__str__()", str, state)
        if terminal:
            self.check_terminal(state, mask)
            return True
        if not mask.any():
            raise self.fail("State.legal_mask() has no legal move but is_terminal() is "
                            "False: end the game in is_terminal() (with returns()) when the "
                            "player to move has no move, or give them a pass action")
        player = self.call("State.to_play()", state.to_play)
        if player not in (0, 1):
            raise self.fail(f"State.to_play() must be 0 or 1, got {player!r}")
        if self.info.alternating and int(player) != len(played) % 2:
            raise self.fail(f"State.to_play() is {player} after {len(played)} moves: players "
                            "must take turns (the search negates values at every move); a "
                            "player who cannot move plays a pass action, and a game where "
                            "one can move twice in a row declares GameInfo.alternating=False")
        obs = self.call("State.observation()", state.observation)
        if not isinstance(obs, np.ndarray) or obs.dtype != np.float32:
            raise self.fail(f"State.observation() must return a float32 array, got "
                            f"{_describe(obs)}")
        if obs.shape != info.observation_shape:
            raise self.fail(f"State.observation() returned shape {obs.shape}, expected "
                            f"GameInfo.observation_shape {info.observation_shape}")
        if not np.isfinite(obs).all():
            raise self.fail("State.observation() has NaN or infinite values")
        return False

    def check_terminal(self, state, mask: np.ndarray) -> None:
        if mask.any():
            raise self.fail("State.legal_mask() must be all False once is_terminal() is True")
        returns = self.call("State.returns()", state.returns)
        if not isinstance(returns, np.ndarray) or returns.shape != (2,):
            raise self.fail(f"State.returns() must return a float array of shape (2,), got "
                            f"{_describe(returns)}")
        r0, r1 = (float(x) for x in returns)
        if not (-1 <= r0 <= 1 and math.isclose(r0, -r1, abs_tol=1e-6)):
            raise self.fail(f"State.returns() is {[r0, r1]}: a finished game's returns are "
                            "[+1, -1], [-1, +1] or [0, 0] (zero-sum, in [-1, 1])")
        if r0 == 0 and not self.info.has_draws:
            raise self.fail("State.returns() is a draw [0, 0] but GameInfo.has_draws is False")
        self.expect_game_error(state, int(self.rng.integers(self.info.num_actions)),
                               "a finished game")

    def check_moves(self, state, mask: np.ndarray) -> None:
        """On clones: apply() takes the legal actions (a sample) and refuses illegal and
        out-of-range ones with GameError; a move on a clone leaves `state` as it was."""
        before = (state.observation(), mask, list(state.history()), state.to_play())
        clone = self.call("State.clone()", state.clone)
        if clone is state:
            raise self.fail("State.clone() returned the state itself, not a copy")
        copy = (clone.observation(), clone.legal_mask(), list(clone.history()), clone.to_play())
        if not _same(before, copy):
            raise self.fail("State.clone() returned a position that differs from the original")
        action = int(self.rng.choice(np.flatnonzero(mask)))
        self.call(f"State.apply({action})", clone.apply, action)
        after = (state.observation(), state.legal_mask(), list(state.history()),
                 state.to_play())
        if not _same(before, after):
            raise self.fail("State.clone() is not independent: a move on the clone changed "
                            "the original")
        for action in self.sample(np.flatnonzero(mask)):
            try:
                state.clone().apply(action)
            except GameError as e:
                raise self.fail(f"State.legal_mask() marks action {action} "
                                f"({_text(state, action)}) legal but State.apply() refused "
                                f"it: {_first_line(e)}") from None
            except Exception as e:
                raise self.fail(f"State.apply({action}) raised {describe_error(e)}") from None
        illegal = np.flatnonzero(~mask)
        for action in ([int(self.rng.choice(illegal))] if illegal.size else []) + [
                -1, self.info.num_actions]:
            self.expect_game_error(state.clone(), action, "an illegal move")

    def sample(self, actions: np.ndarray) -> list[int]:
        """At most MOVE_SAMPLES of `actions`, as ints."""
        if actions.size > MOVE_SAMPLES:
            actions = self.rng.choice(actions, MOVE_SAMPLES, replace=False)
        return [int(a) for a in actions]

    def check_move(self, state, action: int, played: list[int]) -> None:
        """Plays a legal `action` on `state`; checks the reward and that old arrays stay put."""
        text = self.call("State.action_to_text()", state.action_to_text, action)
        obs, mask = state.observation(), state.legal_mask()
        kept_obs, kept_mask = obs.copy(), mask.copy()
        mover = int(state.to_play())
        reward = self.call(f"State.apply({action})", state.apply, action)
        self.moves.append(text)
        if not np.array_equal(obs, kept_obs) or not np.array_equal(mask, kept_mask):
            method = "observation" if not np.array_equal(obs, kept_obs) else "legal_mask"
            raise self.fail(f"State.{method}() returned an array that apply() changed "
                            "afterwards: return a new array each call")
        try:
            reward = float(reward)
        except (TypeError, ValueError):
            raise self.fail(f"State.apply() must return the mover's reward (a float), got "
                            f"{type(reward).__name__}") from None
        if state.is_terminal():
            expected = float(self.call("State.returns()", state.returns)[mover])
            if not math.isclose(reward, expected, abs_tol=1e-6):
                raise self.fail(f"State.apply() returned {reward} for the move that ended the "
                                f"game, but returns()[mover] is {expected}: the search scores "
                                "a finished game by this reward")
        elif reward != 0:
            raise self.fail(f"State.apply() returned {reward} for a move that did not end the "
                            "game: board games reward only the last move (returns()[mover])")

    def expect_game_error(self, state, action: int, what: str) -> None:
        try:
            state.apply(action)
        except GameError:
            return
        except Exception as e:
            raise self.fail(f"State.apply({action}) on {what} raised {type(e).__name__} "
                            f"instead of games.base.GameError{error_site(e)}") from None
        raise self.fail(f"State.apply({action}) accepted {what}: it must raise "
                        "games.base.GameError")

    def check_text(self, state, mask: np.ndarray) -> None:
        for action in self.sample(np.flatnonzero(mask)):
            text = self.call("State.action_to_text()", state.action_to_text, action)
            if not isinstance(text, str) or not text.strip() or "\n" in text:
                raise self.fail(f"State.action_to_text({action}) must return one line of "
                                f"text, got {text!r}")
            back = self.call("State.text_to_action()", state.text_to_action, text)
            if back != action:
                raise self.fail(f"State.text_to_action({text!r}) returned {back!r}, but "
                                f"action_to_text({action}) is {text!r}")
        try:
            state.text_to_action("?? not a move ??")
        except GameError:
            return
        except Exception as e:
            raise self.fail(f"State.text_to_action() raised {type(e).__name__} on malformed "
                            f"text instead of games.base.GameError{error_site(e)}") from None
        raise self.fail("State.text_to_action() accepted malformed text '?? not a move ??': "
                        "it must raise games.base.GameError")

    def check_symmetries(self) -> None:
        if not self.positions:
            return
        self.moves = None
        obs = np.stack([s.observation() for s in self.positions])
        policy = np.stack([s.legal_mask() for s in self.positions]).astype(np.float32)
        policy /= policy.sum(axis=1, keepdims=True)
        for k in range(self.info.num_symmetries):
            kept = obs.copy(), policy.copy()
            out = self.call(f"Game.apply_symmetry({k})", self.game.apply_symmetry, k, obs,
                            policy)
            if not np.array_equal(obs, kept[0]) or not np.array_equal(policy, kept[1]):
                raise _Fault(f"Game.apply_symmetry({k}) changed its input arrays: return new "
                             "ones")
            if not (isinstance(out, tuple) and len(out) == 2
                    and all(isinstance(x, np.ndarray) for x in out)
                    and out[0].shape == obs.shape and out[1].shape == policy.shape):
                raise _Fault(f"Game.apply_symmetry({k}) must return (obs, policy) arrays of "
                             f"the shapes it was given, {obs.shape} and {policy.shape}")
            if not np.allclose(out[1].sum(axis=1), 1.0, atol=1e-5):
                raise _Fault(f"Game.apply_symmetry({k}) must permute the policy's actions "
                             "(probabilities no longer sum to 1)")
            if k == 0 and not (np.array_equal(out[0], obs) and np.array_equal(out[1], policy)):
                raise _Fault("Game.apply_symmetry(0) must be the identity")

    def check_search_batch(self) -> None:
        """One expansion per root, compared with clone() + apply()."""
        roots = self.positions[:BATCH_ROOTS]
        if not roots:
            return
        self.moves = None
        info, n = self.info, len(roots)
        method = "Game.new_search_batch()"
        batch = self.call(method, self.game.new_search_batch, roots, 2)
        if not info.alternating and not isinstance(batch, MoverBatch):
            raise _Fault(f"{method}: a game declaring GameInfo.alternating=False needs a "
                         "search batch with players_to_move() (games.base.MoverBatch)")
        obs = np.zeros((n, *info.observation_shape), np.float32)
        mask = np.zeros((n, info.num_actions), np.bool_)
        self.call("SearchBatch.observe_roots()", batch.observe_roots, obs, mask)
        for b, root in enumerate(roots):
            if not (np.array_equal(obs[b], root.observation())
                    and np.array_equal(mask[b], root.legal_mask())):
                raise _Fault(f"{method}: observe_roots() wrote another observation or legal "
                             f"mask than the State's for root {b}")
        actions = np.array([self.rng.choice(np.flatnonzero(m)) for m in mask], np.int32)
        reward, terminal = np.zeros(n, np.float32), np.zeros(n, np.bool_)
        self.call("SearchBatch.expand()", batch.expand, np.arange(n, dtype=np.int32),
                  np.zeros(n, np.int32), np.ones(n, np.int32), actions, obs, mask, reward,
                  terminal)
        for b, root in enumerate(roots):
            child = root.clone()
            expected = self.call("State.apply()", child.apply, int(actions[b]))
            done = child.is_terminal()
            if (bool(terminal[b]) != done or not math.isclose(float(reward[b]), expected,
                                                              abs_tol=1e-6)
                    or not np.array_equal(mask[b], child.legal_mask())
                    or not (done or np.array_equal(obs[b], child.observation()))):
                raise _Fault(f"{method}: expand() of action {int(actions[b])} on root {b} "
                             "disagrees with State.clone() + apply() (observation, legal "
                             "mask, reward or terminal flag)")


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
               for x, y in zip(a, b))


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _text(state, action: int) -> str:
    """repr of the action's text, or '?' if action_to_text fails on it."""
    try:
        return repr(state.action_to_text(action))
    except Exception:
        return "?"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
