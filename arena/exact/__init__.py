"""Exact checkers: a searching player scored against perfect play.

minimax.py solves small games (tic-tac-toe) by negamax and checks that a
player never loses and never misses a win against every reply; solved.py
scores a player's moves on solved Connect Four positions. Both take any
player with the `analyze(states)` interface of `engine.player.Player`.

Names are re-exported lazily (PEP 562, arena.lazy).
"""

from __future__ import annotations

from arena.lazy import lazy_exports

_EXPORTS = {
    # minimax.py
    "PerfectReport": "arena.exact.minimax",
    "Solver": "arena.exact.minimax",
    "check_perfect": "arena.exact.minimax",
    # solved.py
    "DEFAULT_DATA": "arena.exact.solved",
    "SolvedPosition": "arena.exact.solved",
    "SolvedReport": "arena.exact.solved",
    "evaluate_solved": "arena.exact.solved",
    "keeps_value": "arena.exact.solved",
    "load_positions": "arena.exact.solved",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
