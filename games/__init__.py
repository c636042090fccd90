"""Game rules behind one interface (see games/base.py) and a registry of names."""

from games.base import Game, GameError, GameInfo, ObjectBatch, SearchBatch, State
from games.registry import game_names, get_game, list_games, register_game

__all__ = [
    "Game",
    "GameError",
    "GameInfo",
    "ObjectBatch",
    "SearchBatch",
    "State",
    "game_names",
    "get_game",
    "list_games",
    "register_game",
]
