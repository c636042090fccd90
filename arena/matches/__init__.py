"""Matches between players, their results database, Elo ratings, gating and reports.

players.py declares the one interface the match loop plays (`ArenaPlayer`) and
builds every kind of player from a `PlayerSpec`: a checkpoint, any searching
player through `SearchPlayer`, the baselines of baselines.py (a random mover,
open_spiel's rollout MCTS) and an external GTP/UCI engine (external.py).
match.py is the one match loop (games in lockstep, across worker processes);
mcts_match.py sums up a match against the rollout-MCTS baseline from the
engine's side (`tabula eval --vs mcts`); tournament.py plays gauntlets and
round robins into the SQLite results database (results.py) and gating.py
decides promotions; elo.py rates, report.py writes tables and plots,
records.py formats and reads SGF/PGN. progress.py lists a run's checkpoints
with their training time; bench.py is `tabula bench arena` (not exported).

Names are re-exported lazily (PEP 562, arena.lazy).
"""

from __future__ import annotations

from arena.lazy import lazy_exports

_EXPORTS = {
    # players.py
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
    "ArenaPlayer": "arena.matches.players",
    "NetworkPlayer": "arena.matches.players",
    "SearchPlayer": "arena.matches.players",
    # baselines.py
    "RandomPlayer": "arena.matches.baselines",
    "RolloutMCTSPlayer": "arena.matches.baselines",
    "make_bot": "arena.matches.baselines",
    # external.py
    "ExternalPlayer": "arena.matches.external",
    "Forfeit": "arena.matches.external",
    # match.py, mcts_match.py
    "GameResult": "arena.matches.match",
    "MatchSettings": "arena.matches.match",
    "play_games": "arena.matches.match",
    "run_match": "arena.matches.match",
    "MatchResult": "arena.matches.mcts_match",
    "play_match": "arena.matches.mcts_match",
    # tournament.py, gating.py
    "Tournament": "arena.matches.tournament",
    "gauntlet_pairings": "arena.matches.tournament",
    "round_robin_pairings": "arena.matches.tournament",
    "gate": "arena.matches.gating",
    "sprt_llr": "arena.matches.gating",
    # results.py, elo.py, report.py, records.py
    "ResultsDB": "arena.matches.results",
    "ResultsError": "arena.matches.results",
    "EloError": "arena.matches.elo",
    "Ratings": "arena.matches.elo",
    "rate": "arena.matches.elo",
    "write_reports": "arena.matches.report",
    "pgn_results": "arena.matches.records",
    "read_pgn": "arena.matches.records",
    "format_pgn": "arena.matches.records",
    "format_sgf": "arena.matches.records",
    # progress.py
    "RunCheckpoint": "arena.matches.progress",
    "run_checkpoints": "arena.matches.progress",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
