"""Helpers shared by the game tests."""

from __future__ import annotations

import numpy as np

from games import get_game

GAMES = ("tictactoe", "connect4")


def play(game_name: str, moves: str):
    """The state after space-separated move texts, e.g. play('connect4', '4 4 3')."""
    state = get_game(game_name).new_initial_state()
    for text in moves.split():
        state.apply(state.text_to_action(text))
    return state


def random_action(state, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(state.legal_mask())))


def random_state(game_name: str, rng: np.random.Generator, max_moves: int | None):
    """A state after up to `max_moves` random legal moves (None: to the end)."""
    state = get_game(game_name).new_initial_state()
    num_moves = 10**6 if max_moves is None else int(rng.integers(0, max_moves + 1))
    for _ in range(num_moves):
        if state.is_terminal():
            break
        state.apply(random_action(state, rng))
    return state


def board_from_text(spiel_state, height: int, width: int) -> np.ndarray:
    """int[height, width] from open_spiel's board text (top row first): 0 '.', 1 'x', 2 'o'."""
    rows = [line for line in str(spiel_state).splitlines() if line.strip()]
    assert len(rows) == height and all(len(r) == width for r in rows), rows
    return np.array([[".xo".index(ch) for ch in row] for row in rows])
