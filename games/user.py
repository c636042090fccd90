"""Games from outside Tabula: a module path 'module.path:Attribute', or an entry point.

A user's game is any object that implements the `Game` protocol of games/base.py
(docs/NEW_GAME.md writes one from scratch). It is named either

  * by its module path, `--game hexapawn:Hexapawn`: the module is imported from
    sys.path (PYTHONPATH, installed packages) and, like `python -m`, from the
    current directory; the attribute (dotted names allowed) is a Game instance,
    a Game class, or a zero-argument factory; or
  * by the name of an entry point of the group 'tabula.games' that an installed
    package declares (pyproject.toml: [project.entry-points."tabula.games"]
    hexapawn = "mypkg.hexapawn:Hexapawn").

The loaded game's `info.name` is set to the name it was loaded under, which
checkpoints record, so `tabula play --checkpoint FILE` finds it again. Every
user game passes `games.check.check_game` before it is used. Each failure is a
GameError of one line.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from importlib import metadata
from pathlib import Path

from games.base import GameError, GameInfo
from games.check import check_game, describe_error

ENTRY_POINT_GROUP = "tabula.games"
PATH_FORMAT = "module.path:Attribute, e.g. hexapawn:Hexapawn"


def entry_point_targets() -> dict[str, str]:
    """name -> 'module:attribute' of every installed 'tabula.games' entry point.

    Reads package metadata only (nothing is imported). Names holding ':' or '/'
    (module paths, families) are left out; of two entry points with one name,
    the first found is kept.
    """
    targets: dict[str, str] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ":" not in entry.name and "/" not in entry.name:
            targets.setdefault(entry.name, entry.value)
    return targets


def load_user_game(target: str, name: str) -> object:
    """Imports, creates, renames and checks a user's game.

    Args:
      target: 'module.path:Attribute'.
      name: the name it is loaded under (`target` itself, or an entry point's name);
        becomes the game's `info.name`.
    Returns:
      The Game, checked by `games.check.check_game`.
    Raises:
      GameError: one line: a malformed path, a module that is missing or fails to
        import, a missing attribute, an object that is not a game, or a failed check.
    """
    module_name, _, attribute = target.strip().partition(":")
    if not module_name or not attribute:
        raise GameError(f"game {name!r}: expected {PATH_FORMAT}")
    obj = _import_module(module_name, name)
    for part in attribute.split("."):
        if not hasattr(obj, part):
            where = getattr(obj, "__file__", None)
            where = f" ({Path(where).name})" if where else ""
            raise GameError(f"game {name!r}: {module_name}{where} has no attribute {part!r}")
        obj = getattr(obj, part)
    game = _instantiate(obj, f"{module_name}:{attribute}", name)
    if game.info.name != name:
        try:
            game.info = dataclasses.replace(game.info, name=name)
        except (AttributeError, TypeError) as e:
            raise GameError(f"game {name!r}: cannot set its info.name ({describe_error(e)}): "
                            "make `info` a plain attribute") from None
    check_game(game)
    return game


def _import_module(module_name: str, name: str):
    """The module, imported with the current directory on sys.path (appended, as a
    console script does not put it there and `python -m` does)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise GameError(
                f"game {name!r}: no module named {e.name!r} (a module path is imported from "
                "the current directory, PYTHONPATH or installed packages)") from None
        raise GameError(f"game {name!r}: importing {module_name} raised "
                        f"{describe_error(e)}") from None
    except Exception as e:  # the user's module failed: say where, on one line
        raise GameError(f"game {name!r}: importing {module_name} raised "
                        f"{describe_error(e)}") from None


def _is_game(obj) -> bool:
    return not isinstance(obj, type) and isinstance(getattr(obj, "info", None), GameInfo)


def _instantiate(obj, path: str, name: str):
    """`obj` if it is a game, else obj() (a class or a factory), checked to be a game."""
    if _is_game(obj):
        return obj
    if not callable(obj):
        raise GameError(f"game {name!r}: {path} (of type {type(obj).__name__}) is not a game "
                        "(an object with info: GameInfo), a Game class or a factory")
    try:
        game = obj()
    except Exception as e:
        raise GameError(f"game {name!r}: {path}() raised {describe_error(e)}") from None
    if not _is_game(game):
        raise GameError(f"game {name!r}: {path}() returned a {type(game).__name__}, not a "
                        "game: a Game has `info` (a games.base.GameInfo) and the methods of "
                        "games.base.Game")
    return game
