"""Matches, baselines, exact checkers and the protocol front-ends (text, JSON analysis).

Names are re-exported lazily (PEP 562), so that `from arena import TextSession`
imports only arena.text and not every heavy dependency of the package.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # players.py
    "LowestActionPlayer": "arena.players",
    "checkpoint_game": "arena.players",
    "load_player": "arena.players",
    "resolve_checkpoint": "arena.players",
    "shipped_checkpoint": "arena.players",
    # text.py
    "TextSession": "arena.text",
    "run_text": "arena.text",
    # analysis.py
    "AnalysisEngine": "arena.analysis",
    "QueryError": "arena.analysis",
    "run_analysis": "arena.analysis",
    # minimax.py
    "PerfectReport": "arena.minimax",
    "Solver": "arena.minimax",
    "check_perfect": "arena.minimax",
    # solved.py
    "DEFAULT_DATA": "arena.solved",
    "SolvedPosition": "arena.solved",
    "SolvedReport": "arena.solved",
    "evaluate_solved": "arena.solved",
    "keeps_value": "arena.solved",
    "load_positions": "arena.solved",
    # mcts_match.py
    "MatchResult": "arena.mcts_match",
    "make_bot": "arena.mcts_match",
    "play_match": "arena.mcts_match",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arena' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
