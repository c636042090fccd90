"""Tournaments over a results database: pairings, resumable matches, gauntlets.

A match is identified in the database by its key: the game, both players,
the match seed and the opening length. Only games of a match not yet stored
are played, so a killed tournament resumes where it stopped and repeated
runs add games instead of replaying them (asking for more games extends a
match with new openings).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from arena.matches.match import GameResult, MatchSettings, run_match
from arena.matches.players import PlayerSpec, PlayerSpecError


@dataclass
class MatchSummary:
    """What one call of `Tournament.play` did."""

    first: str
    second: str
    played: int = 0
    """Games played now."""
    stored: int = 0
    """Games of the match in the database afterwards."""
    points: float = 0.0
    """A's points over the games played now."""
    forfeits: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        score = f"{self.points}/{self.played}" if self.played else "nothing new"
        return (f"{self.first} vs {self.second}: {score} "
                f"({self.stored} games stored, {self.seconds:.0f} s)")


def match_key(settings: MatchSettings, a: PlayerSpec, b: PlayerSpec) -> str:
    """The database key of the match A vs B under `settings`."""
    return (f"{settings.game}|{a.name}|{b.name}|seed={settings.seed}"
            f"|open={settings.opening_plies}")


class Tournament:
    """Plays matches of one game and stores every game in a ResultsDB."""

    def __init__(self, db, settings: MatchSettings, processes: int = 1,
                 progress: bool = True, stop: Callable[[], bool] = lambda: False):
        self.db = db
        self.settings = settings
        self.processes = processes
        self.progress = progress
        self.stop = stop

    def register(self, spec: PlayerSpec) -> None:
        """Adds the player to the database; refuses a name that means another player.

        Raises:
          PlayerSpecError: the name is stored with other settings (e.g. sims).
        """
        described = json.loads(json.dumps(spec.describe()))
        for row in self.db.players(self.settings.game):
            if row.name == spec.name and _strength(row.spec) != _strength(described):
                raise PlayerSpecError(
                    f"{spec.name} is stored in {self.db.path} with other settings "
                    f"({_strength(row.spec)}, now {_strength(described)}); use the same "
                    "settings or another --db")
        self.db.add_player(spec.name, spec.kind, self.settings.game, described, spec.step)

    def play(self, a: PlayerSpec, b: PlayerSpec, games: int) -> MatchSummary:
        """Completes the match A vs B to `games` games (plays only those missing); blocks."""
        from tqdm import tqdm

        if a.name == b.name:
            raise PlayerSpecError(f"a match needs two different players, got {a.name} twice")
        self.register(a)
        self.register(b)
        key = match_key(self.settings, a, b)
        pending = [i for i in range(games) if i not in self.db.played(key)]
        summary = MatchSummary(a.name, b.name)
        start = time.perf_counter()
        with tqdm(total=len(pending), disable=not self.progress or not pending, unit="game",
                  desc=f"{a.name} vs {b.name}", dynamic_ncols=True, leave=False) as bar:
            def store(result: GameResult) -> None:
                self._store(key, result)
                summary.played += 1
                summary.points += result.score if result.first == a.name else 1 - result.score
                if result.reason:
                    summary.forfeits.append(result.reason)
                bar.update(1)
                bar.set_postfix_str(f"{a.name} {summary.points:g}/{summary.played}")

            run_match(self.settings.game, a, b, pending, self.settings, store,
                      self.processes, self.stop)
        summary.seconds = time.perf_counter() - start
        summary.stored = len(self.db.played(key))
        return summary

    def _store(self, key: str, result: GameResult) -> None:
        record_format, record = game_record(self.settings.game, key, result)
        self.db.add_game(match=key, index=result.index, game=self.settings.game,
                         first=result.first, second=result.second, score=result.score,
                         record=record, record_format=record_format, reason=result.reason,
                         plies=len(result.moves), seconds=result.seconds)


def game_record(game_name: str, key: str, result: GameResult) -> tuple[str, str]:
    """(format, text) of a finished game's record.

    A game that defines `record_format` ('sgf' for Go, 'pgn' for chess) and
    `format_record(moves, result, headers) -> str` writes its own; others get
    a move list with PGN-style headers.
    """
    from arena.matches.records import format_move_list
    from games import get_game

    headers = {"Game": game_name, "First": result.first, "Second": result.second,
               "Match": key, "Index": str(result.index),
               "OpeningPlies": str(result.opening_plies)}
    if result.reason:
        headers["Termination"] = result.reason
    game = get_game(game_name)
    record_format = game.info.record_format
    if record_format != "moves":
        return record_format, game.format_record(list(result.moves), result.result, headers)
    return "moves", format_move_list(list(result.moves), result.result, headers)


def _strength(spec: dict) -> dict:
    """The parts of a stored spec that change how a player plays."""
    return {k: spec.get(k) for k in ("kind", "sims", "options", "move_time")}


def gauntlet_pairings(checkpoints: Sequence[PlayerSpec],
                      baselines: Sequence[PlayerSpec] = ()) -> list[tuple[PlayerSpec, PlayerSpec]]:
    """Each checkpoint against the one before it, the first one and every baseline.

    The newer checkpoint is player A. The first checkpoint plays only the
    baselines (and the second checkpoint).
    """
    pairs = []
    for i, ckpt in enumerate(checkpoints):
        if i >= 1:
            pairs.append((ckpt, checkpoints[i - 1]))
        if i >= 2:
            pairs.append((ckpt, checkpoints[0]))
        pairs.extend((ckpt, base) for base in baselines)
    return pairs


def round_robin_pairings(players: Sequence[PlayerSpec]) -> list[tuple[PlayerSpec, PlayerSpec]]:
    """Every pair once (the later player in the list is A)."""
    return [(players[j], players[i]) for j in range(len(players)) for i in range(j)]


def run_checkpoint_specs(run_dir: str | Path, game_name: str, sims: int | None,
                         every: int = 1) -> list[PlayerSpec]:
    """Every `every`-th checkpoint of a run (always the first and the last), oldest first."""
    from arena.matches.players import checkpoint_spec
    from checkpoints import list_checkpoints

    paths = list_checkpoints(Path(run_dir) / "checkpoints")
    chosen = paths[::max(every, 1)]
    if paths and chosen[-1] != paths[-1]:
        chosen.append(paths[-1])
    return [checkpoint_spec(p, game_name, sims) for p in chosen]
