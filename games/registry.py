"""Registry of games by name, loaded lazily.

A game is registered as 'module:attribute' text (or a callable) so that
listing names imports nothing heavy; the module is imported on the first
`get_game`. A name ending in '/' registers a family: `get_game('atari/Breakout')`
calls the family's factory with 'Breakout'. Users' games (games/user.py) are
found by module path ('hexapawn:Hexapawn') or as installed 'tabula.games' entry
points, and are self-checked when loaded.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable

from games.base import Game, GameError, GameInfo
from games.user import entry_point_targets, load_user_game

Factory = Callable[..., Game]

_GAMES: dict[str, str | Factory] = {}
_LOADED: dict[str, Game] = {}


def register_game(name: str, target: str | Factory) -> None:
    """Registers a game (or a family, if `name` ends with '/').

    Args:
      name: registry name, e.g. 'go9', or a family prefix, e.g. 'atari/'.
      target: 'module:attribute' naming a zero-argument factory (a family's
        factory takes the part of the name after the prefix), or the factory.
    """
    if name in _GAMES and _GAMES[name] != target:
        raise ValueError(f"game {name!r} is already registered as {_GAMES[name]!r}")
    _GAMES[name] = target


def game_names() -> list[str]:
    """Registered names and installed entry points' names, sorted, without loading
    anything; families shown as 'atari/<name>'."""
    names = {n + "<name>" if n.endswith("/") else n for n in _GAMES}
    return sorted(names | set(_user_entry_points()))


def _user_entry_points() -> dict[str, str]:
    """Installed 'tabula.games' entry points whose names no built-in game takes."""
    return {n: t for n, t in entry_point_targets().items() if n not in _GAMES}


def is_user_game(name: str) -> bool:
    """Whether `name` is a user's game: a module path or an installed entry point's name."""
    return ":" in name or (name not in _GAMES and name in _user_entry_points())


def _resolve(target: str | Factory) -> Factory:
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_game(name: str) -> Game:
    """The game registered as `name` (created once, then cached).

    `name` is a registered name, a family member ('go/7'), a module path
    'module.path:Attribute' or an installed 'tabula.games' entry point's name
    (user games: imported, then checked by games.check.check_game).

    Raises GameError (one line) for an unknown name, listing the known ones, or a
    user's game that cannot be loaded or fails its check.
    """
    if name in _LOADED:
        return _LOADED[name]
    if name in _GAMES and not name.endswith("/"):
        game = _resolve(_GAMES[name])()
    elif ":" in name:
        game = load_user_game(name, name)
    elif "/" not in name and name in (user := _user_entry_points()):
        game = load_user_game(user[name], name)
    else:
        prefix, slash, rest = name.partition("/")
        family = prefix + slash
        if not slash or not rest or family not in _GAMES:
            raise GameError(_unknown_message(name))
        game = _resolve(_GAMES[family])(rest)
    _LOADED[name] = game
    # A family may normalise the name ('spiel/hex()' is 'spiel/hex'): both find the game.
    _LOADED.setdefault(game.info.name, game)
    return game


def _unknown_message(name: str) -> str:
    names = game_names()
    message = (f"unknown game {name!r}; known games: {', '.join(names)}, or a module "
               "path module:Attribute")
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.5)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


def list_games() -> list[GameInfo]:
    """GameInfo of every registered game that is not a family (imports their modules)."""
    return [get_game(n).info for n in sorted(_GAMES) if not n.endswith("/")]


register_game("tictactoe", "games.tictactoe:TicTacToe")
register_game("connect4", "games.connect4:ConnectFour")
register_game("chess", "games.chess:ChessGame")
register_game("go9", "games.go:go9")
register_game("go13", "games.go:go13")
register_game("go19", "games.go:go19")
register_game("go/", "games.go:go_family")
register_game("atari/", "games.atari:atari_game")
register_game("gym/", "games.gym:gym_game")
register_game("spiel/", "games.spiel_family:spiel_game")
