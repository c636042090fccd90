"""Game rules behind one interface (see games/base.py) and a registry of names."""

from games.base import (Game, GameError, GameInfo, MoverBatch, ObjectBatch, SearchBatch,
                        State)
from games.check import check_game
from games.registry import game_names, get_game, is_user_game, list_games, register_game
from games.sgf import SgfError, SgfGame, gtp_to_sgf, read_sgf, sgf_to_gtp, write_sgf

_LAZY = {"ChessGame": "games.chess", "ChessState": "games.chess",
         "GoGame": "games.go", "GoState": "games.go"}
"""Names re-exported on first use, so that `import games` stays light (no pyspiel)."""

__all__ = [
    "ChessGame",
    "ChessState",
    "Game",
    "GameError",
    "GameInfo",
    "GoGame",
    "GoState",
    "MoverBatch",
    "ObjectBatch",
    "SearchBatch",
    "SgfError",
    "SgfGame",
    "State",
    "check_game",
    "game_names",
    "get_game",
    "gtp_to_sgf",
    "is_user_game",
    "list_games",
    "read_sgf",
    "register_game",
    "sgf_to_gtp",
    "write_sgf",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'games' has no attribute {name!r}")
