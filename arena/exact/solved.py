"""Accuracy on solved Connect Four positions (format: /work/shared/data/README.md).

Each line of the data file is a position (1-based column string from the
empty board) with its exact score and the exact score of every move. A move
*keeps the value* when sign(child_scores[move]) == sign(score); it is *best*
when it is in best_moves. Both are reported for the searching player and for
the raw network policy (the prior's argmax at the same root), by depth band.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The development set beside the repository (../shared/data), where the project keeps it.
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "connect4_dev.jsonl"
DEPTH_BANDS = ((0, 9), (10, 14), (15, 19), (20, 24), (25, 42))
CHUNK = 256


@dataclass(frozen=True)
class SolvedPosition:
    """One solved position."""

    moves: str
    """1-based columns played from the empty board, e.g. '4453'."""
    score: int
    """Exact score for the side to move (> 0 win, 0 draw, < 0 loss)."""
    best_moves: tuple[int, ...]
    """0-based columns with the optimal score."""
    child_scores: tuple[int | None, ...]
    """Exact score for the side to move of each 0-based column (None: full)."""

    @property
    def depth(self) -> int:
        return len(self.moves)


def load_positions(path: str | Path) -> list[SolvedPosition]:
    """Reads a solved-positions JSONL file.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a malformed line (the message gives the line number).
    """
    path = Path(path)
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            pos = SolvedPosition(str(d["moves"]), int(d["score"]),
                                 tuple(int(m) for m in d["best_moves"]),
                                 tuple(None if c is None else int(c)
                                       for c in d["child_scores"]))
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise ValueError(f"{path}:{number}: not a solved position "
                             f"({type(e).__name__ if isinstance(e, RecursionError) else e})"
                             ) from None
        if not pos.moves.isdigit() or len(pos.child_scores) != 7:
            raise ValueError(f"{path}:{number}: 'moves' must be digits 1..7 and "
                             "'child_scores' must have 7 entries")
        out.append(pos)
    return out


def position_state(game, position: SolvedPosition):
    """The game state after the position's moves (GameError if a move is illegal)."""
    state = game.new_initial_state()
    for ch in position.moves:
        state.apply(int(ch) - 1)
    return state


@dataclass
class BandStats:
    """Counts for one depth band (or all positions)."""

    label: str
    n: int = 0
    search_keeps: int = 0
    search_best: int = 0
    policy_keeps: int = 0
    policy_best: int = 0

    def add(self, position: SolvedPosition, search_move: int, policy_move: int) -> None:
        self.n += 1
        self.search_keeps += keeps_value(position, search_move)
        self.search_best += search_move in position.best_moves
        self.policy_keeps += keeps_value(position, policy_move)
        self.policy_best += policy_move in position.best_moves

    def row(self) -> str:
        def pct(k: int) -> str:
            return f"{100.0 * k / self.n:6.1f}%" if self.n else "      -"
        return (f"{self.label:<8} {self.n:>5} {pct(self.search_keeps):>8} "
                f"{pct(self.search_best):>8} {pct(self.policy_keeps):>8} "
                f"{pct(self.policy_best):>8}")


@dataclass
class SolvedReport:
    """Accuracy by depth band and in total."""

    bands: list[BandStats]
    total: BandStats
    moves: list = field(default_factory=list)
    """(search move, policy move) per position, in input order."""

    def table(self) -> str:
        header = (f"{'depth':<8} {'n':>5} {'keeps':>8} {'best':>8} "
                  f"{'pol keeps':>9} {'pol best':>8}")
        lines = [header, "-" * len(header)]
        lines += [b.row() for b in self.bands if b.n]
        lines.append(self.total.row())
        return "\n".join(lines)


def keeps_value(position: SolvedPosition, move: int) -> bool:
    """Whether `move` (0-based column) keeps the sign of the position's score."""
    child = position.child_scores[move] if 0 <= move < len(position.child_scores) else None
    return child is not None and np.sign(child) == np.sign(position.score)


def evaluate_solved(game, player, positions: list[SolvedPosition],
                    sims: int | None = None, chunk: int = CHUNK) -> SolvedReport:
    """Asks `player` about every position, in batches of `chunk`; blocks.

    Args:
      game: the Connect Four Game.
      player: an object with `analyze(states, num_simulations) -> [Analysis]`
        (only `.action` and `.prior` are used).
      positions: solved positions.
      sims: simulations per position (None: the player's setting).
    """
    bands = [BandStats(f"{lo}-{hi}") for lo, hi in DEPTH_BANDS]
    total = BandStats("all")
    report = SolvedReport(bands, total)
    for start in range(0, len(positions), chunk):
        part = positions[start:start + chunk]
        states = [position_state(game, p) for p in part]
        analyses = player.analyze(states, num_simulations=sims)
        for p, state, a in zip(part, states, analyses):
            prior = np.where(state.legal_mask(), np.asarray(a.prior, np.float64), -np.inf)
            search_move, policy_move = int(a.action), int(np.argmax(prior))
            report.moves.append((search_move, policy_move))
            total.add(p, search_move, policy_move)
            for (lo, hi), band in zip(DEPTH_BANDS, bands):
                if lo <= p.depth <= hi:
                    band.add(p, search_move, policy_move)
    return report
