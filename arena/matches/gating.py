"""Arena work during training: short gauntlets for the Elo curve, and gating.

Gating decides whether a new checkpoint replaces the one the actors play
with ("promoted"), either by a fixed win-rate threshold over N games or by a
sequential probability ratio test (SPRT) that stops as soon as the evidence
is clear.

SPRT: H0 "the new checkpoint is elo0 stronger", H1 "it is elo1 stronger",
on the logistic Elo scale. The log-likelihood ratio uses the normal
approximation of the mean game score (as chess engine testing does):

    LLR = n * (s1 - s0) * (2 x - s0 - s1) / (2 var)

with x the mean score, var its per-game variance (draws included), s0 and
s1 the expected scores under H0 and H1. Accept H1 when LLR >= log((1-beta)/alpha),
H0 when LLR <= log(beta/(1-alpha)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

SPRT_CHUNK = 10
"""Games played between two SPRT decisions."""


def expected_score(elo: float) -> float:
    """Score of a player `elo` points stronger (400-point logistic)."""
    return 1.0 / (1.0 + 10.0 ** (-elo / 400.0))


def sprt_llr(wins: int, draws: int, losses: int, elo0: float, elo1: float) -> float:
    """Log-likelihood ratio of H1 (elo1) against H0 (elo0) for these results.

    0 when there are no games or no variance yet.
    """
    n = wins + draws + losses
    if n == 0:
        return 0.0
    x = (wins + 0.5 * draws) / n
    var = (wins * (1 - x) ** 2 + draws * (0.5 - x) ** 2 + losses * x ** 2) / n
    if var <= 0:
        var = 0.25 / n  # all results equal: fall back to the largest per-game spread
    s0, s1 = expected_score(elo0), expected_score(elo1)
    return n * (s1 - s0) * (2 * x - s0 - s1) / (2 * var)


def sprt_bounds(alpha: float = 0.05, beta: float = 0.05) -> tuple[float, float]:
    """(lower, upper) LLR bounds: below lower accept H0, above upper accept H1."""
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


@dataclass
class GateResult:
    """The outcome of a gating match."""

    promoted: bool
    wins: int
    draws: int
    losses: int
    detail: str

    def line(self, new: str, best: str) -> str:
        verdict = "promoted" if self.promoted else "not promoted"
        return (f"gate {new} vs {best}: +{self.wins} ={self.draws} -{self.losses} "
                f"({self.detail}): {verdict}")


def _counts(db, new: str, best: str, key: str) -> tuple[int, int, int]:
    wins = draws = losses = 0
    for g in db.games(match=key):
        score = g.score if g.first == new else 1 - g.score
        if score == 1:
            wins += 1
        elif score == 0:
            losses += 1
        else:
            draws += 1
    return wins, draws, losses


def gate(tournament, new, best, mode: str, games: int, threshold: float = 0.55,
         elo0: float = 0.0, elo1: float = 30.0) -> GateResult:
    """Plays `new` against `best` and decides whether `new` is promoted; blocks.

    Args:
      tournament: an arena.matches.tournament.Tournament (its database keeps the games).
      new, best: PlayerSpecs.
      mode: 'winrate' (score >= threshold over `games`) or 'sprt' (at most `games`).
    """
    from arena.matches.tournament import match_key

    key = match_key(tournament.settings, new, best)
    if mode == "winrate":
        tournament.play(new, best, games)
        w, d, l = _counts(tournament.db, new.name, best.name, key)
        score = (w + 0.5 * d) / max(w + d + l, 1)
        return GateResult(score >= threshold, w, d, l,
                          f"score {score:.3f}, threshold {threshold:.3f}")
    if mode != "sprt":
        raise ValueError(f"unknown gating mode {mode!r}; use off, winrate or sprt")
    lower, upper = sprt_bounds()
    played = 0
    while True:
        played = min(games, played + SPRT_CHUNK)
        tournament.play(new, best, played)
        w, d, l = _counts(tournament.db, new.name, best.name, key)
        llr = sprt_llr(w, d, l, elo0, elo1)
        detail = f"SPRT [{elo0:g}, {elo1:g}] LLR {llr:.2f} in ({lower:.2f}, {upper:.2f})"
        if llr >= upper:
            return GateResult(True, w, d, l, detail + ", H1 accepted")
        if llr <= lower or played >= games:
            return GateResult(False, w, d, l, detail + (", H0 accepted" if llr <= lower
                                                       else ", undecided"))


def gauntlet_step(tournament, run_dir: Path, new, previous, first, games: int) -> list[str]:
    """The new checkpoint against the previous one and the first; updates elo.csv/elo.png.

    Returns the lines to show (match summaries and the new checkpoint's rating).
    """
    from arena.matches.report import ratings_from_db, write_reports

    lines = []
    for other in dict.fromkeys(p for p in (previous, first) if p is not None and p != new):
        lines.append(tournament.play(new, other, games).line())
    db = tournament.db
    game = tournament.settings.game
    if db.outcomes(game):
        ratings = ratings_from_db(db, game)
        write_reports(run_dir, ratings, db.players(game), f"{game}: {Path(run_dir).name}")
        mine = ratings.by_name().get(new.name)
        if mine is not None:
            lines.append(f"elo {new.name}: {mine.elo:+.0f} ({mine.low:+.0f} to "
                         f"{mine.high:+.0f}) against {ratings.anchor}")
    return lines
