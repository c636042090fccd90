"""Matches, players, the results database, Elo, exact checkers and the protocol front-ends.

Names are re-exported lazily (PEP 562), so that `from arena import TextSession`
imports only arena.text and not every heavy dependency of the package.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # players.py
    "LowestActionPlayer": "arena.players",
    "PlayerSpec": "arena.players",
    "PlayerSpecError": "arena.players",
    "build_player": "arena.players",
    "checkpoint_spec": "arena.players",
    "parse_player": "arena.players",
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
    # match.py, tournament.py, gating.py
    "GameResult": "arena.match",
    "MatchSettings": "arena.match",
    "play_games": "arena.match",
    "run_match": "arena.match",
    "Tournament": "arena.tournament",
    "gauntlet_pairings": "arena.tournament",
    "round_robin_pairings": "arena.tournament",
    "gate": "arena.gating",
    "sprt_llr": "arena.gating",
    # external.py
    "ExternalPlayer": "arena.external",
    "Forfeit": "arena.external",
    # results.py
    "ResultsDB": "arena.results",
    "ResultsError": "arena.results",
    # elo.py, records.py, report.py
    "EloError": "arena.elo",
    "Ratings": "arena.elo",
    "rate": "arena.elo",
    "pgn_results": "arena.records",
    "read_pgn": "arena.records",
    "format_pgn": "arena.records",
    "format_sgf": "arena.records",
    "write_reports": "arena.report",
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
