"""Matches, players, the results database, Elo, exact checkers and the protocol front ends.

Three subpackages (protocols uses matches; exact stands alone):

- `arena.matches`: players (checkpoints, baselines, external GTP/UCI engines)
  behind one interface, the match loop, tournaments and gating, the SQLite
  results database, Elo ratings, reports and SGF/PGN records.
- `arena.exact`: exact checkers (tic-tac-toe negamax, solved Connect Four
  positions) that score a searching player against perfect play.
- `arena.protocols`: the front ends that put a checkpoint in front of a
  person or a program: GTP, UCI, the JSON-lines analysis engine, the text
  prompt and the Atari watcher, with their benchmarks.

Names are re-exported lazily (PEP 562, arena.lazy), so that `from arena import
TextSession` imports only arena.protocols.text and not every heavy dependency
of the package.
"""

from __future__ import annotations

from arena.lazy import lazy_exports

_EXPORTS = {
    # matches/players.py
    "LowestActionPlayer": "arena.matches.players",
    "PlayerSpec": "arena.matches.players",
    "PlayerSpecError": "arena.matches.players",
    "build_player": "arena.matches.players",
    "checkpoint_spec": "arena.matches.players",
    "parse_player": "arena.matches.players",
    "checkpoint_game": "arena.matches.players",
    "load_player": "arena.matches.players",
    "resolve_checkpoint": "arena.matches.players",
    "shipped_checkpoint": "arena.matches.players",
    # protocols/text.py
    "TextSession": "arena.protocols.text",
    "run_text": "arena.protocols.text",
    # protocols/analysis.py
    "AnalysisEngine": "arena.protocols.analysis",
    "QueryError": "arena.protocols.analysis",
    "run_analysis": "arena.protocols.analysis",
    # exact/minimax.py
    "PerfectReport": "arena.exact.minimax",
    "Solver": "arena.exact.minimax",
    "check_perfect": "arena.exact.minimax",
    # exact/solved.py
    "DEFAULT_DATA": "arena.exact.solved",
    "SolvedPosition": "arena.exact.solved",
    "SolvedReport": "arena.exact.solved",
    "evaluate_solved": "arena.exact.solved",
    "keeps_value": "arena.exact.solved",
    "load_positions": "arena.exact.solved",
    # matches/: match.py, tournament.py, gating.py
    "GameResult": "arena.matches.match",
    "MatchSettings": "arena.matches.match",
    "play_games": "arena.matches.match",
    "run_match": "arena.matches.match",
    "Tournament": "arena.matches.tournament",
    "gauntlet_pairings": "arena.matches.tournament",
    "round_robin_pairings": "arena.matches.tournament",
    "gate": "arena.matches.gating",
    "sprt_llr": "arena.matches.gating",
    # matches/external.py
    "ExternalPlayer": "arena.matches.external",
    "Forfeit": "arena.matches.external",
    # matches/results.py
    "ResultsDB": "arena.matches.results",
    "ResultsError": "arena.matches.results",
    # matches/: elo.py, records.py, report.py
    "EloError": "arena.matches.elo",
    "Ratings": "arena.matches.elo",
    "rate": "arena.matches.elo",
    "pgn_results": "arena.matches.records",
    "read_pgn": "arena.matches.records",
    "format_pgn": "arena.matches.records",
    "format_sgf": "arena.matches.records",
    "write_reports": "arena.matches.report",
    # matches/mcts_match.py, matches/baselines.py
    "MatchResult": "arena.matches.mcts_match",
    "play_match": "arena.matches.mcts_match",
    "make_bot": "arena.matches.baselines",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
