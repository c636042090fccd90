"""Exact play for small games (tic-tac-toe): negamax with a memo, and a perfect-play check.

`Solver.value(state)` is the game-theoretic value for the player to move
(+1 win, 0 draw, -1 loss). `check_perfect` lets a player play both sides
against EVERY legal reply of the opponent (the full tree below the player's
own deterministic choices) and reports losses and missed wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _key(state) -> bytes:
    # The observation is from the mover's point of view, and the value for the
    # mover depends only on that; equal keys have equal values.
    return state.observation().tobytes()


def _legal(state) -> list[int]:
    return [int(a) for a in state.legal_mask().nonzero()[0]]


class Solver:
    """Negamax over a game's State interface, memoised by position.

    Only for games whose whole tree is small (tic-tac-toe: 5478 positions).
    """

    def __init__(self):
        self._memo: dict[bytes, int] = {}

    def value(self, state) -> int:
        """+1, 0 or -1: the exact value for the player to move (terminal: that player's return)."""
        if state.is_terminal():
            return int(round(float(state.returns()[state.to_play()])))
        key = _key(state)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        best = -1
        for action in _legal(state):
            best = max(best, self.move_value(state, action))
            if best == 1:
                break
        self._memo[key] = best
        return best

    def move_value(self, state, action: int) -> int:
        """The exact value of playing `action` in `state`, for the player to move there
        (who may move again: games declaring GameInfo.alternating False)."""
        mover = state.to_play()
        child = state.clone()
        child.apply(action)
        if child.is_terminal():
            return int(round(float(child.returns()[mover])))
        value = self.value(child)
        return value if child.to_play() == mover else -value

    def move_values(self, state) -> dict[int, int]:
        """Exact value of every legal move, for the player to move."""
        return {a: self.move_value(state, a) for a in _legal(state)}


@dataclass
class PerfectReport:
    """What check_perfect found."""

    games: int = 0
    """Distinct games (leaves of the explored tree), both sides together."""
    wins: int = 0
    draws: int = 0
    losses: int = 0
    """Games the player lost; a perfect player has none."""
    missed_win_games: int = 0
    """Games in which the player had a forced win at some point but did not win."""
    missed_win_decisions: int = 0
    """Positions with value +1 where the player's move had value < +1."""
    blunders: int = 0
    """Positions where the player's move had a lower value than the position (any drop)."""
    decisions: int = 0
    """Distinct positions where the player's move was checked."""
    examples: list = field(default_factory=list)
    """Up to 5 (history, move, position value, move value) of bad decisions."""

    @property
    def perfect(self) -> bool:
        return self.losses == 0 and self.missed_win_decisions == 0

    def line(self) -> str:
        verdict = "PERFECT" if self.perfect else "NOT PERFECT"
        return (f"{verdict}: {self.losses} losses, {self.missed_win_games} games with a missed "
                f"win ({self.missed_win_decisions} decisions), {self.blunders} value-losing "
                f"moves; {self.games} games (W {self.wins} D {self.draws} L {self.losses}), "
                f"{self.decisions} decisions checked")


def check_perfect(game, player, solver: Solver | None = None) -> PerfectReport:
    """Checks a deterministic player against every line of play, on both sides.

    For each side, the player moves (one batched `player.analyze` call per
    ply over the distinct positions) and the opponent tries every legal move.
    Blocks; tic-tac-toe needs a few thousand decisions.

    Args:
      game: a small two-player Game.
      player: an object with `analyze(states) -> [obj with .action]`,
        deterministic for a given position.
      solver: a Solver to reuse (its memo), or None for a new one.
    """
    solver = solver or Solver()
    report = PerfectReport()
    for side in (0, 1):
        _explore_side(game, player, solver, side, report)
    return report


def _explore_side(game, player, solver: Solver, side: int, report: PerfectReport) -> None:
    # Each line is (state, had_missed_win); the frontier advances one ply at a time.
    frontier = [(game.new_initial_state(), False)]
    while frontier:
        ours = [(s, m) for s, m in frontier if not s.is_terminal() and s.to_play() == side]
        nxt = []
        for state, missed in frontier:
            if state.is_terminal():
                _score(state, side, missed, report)
            elif state.to_play() != side:
                for action in _legal(state):
                    child = state.clone()
                    child.apply(action)
                    nxt.append((child, missed))
        if ours:
            choices = _decide(player, solver, [s for s, _ in ours], report)
            for state, missed in ours:
                action, missed_here = choices[_key(state)]
                child = state.clone()
                child.apply(action)
                nxt.append((child, missed or missed_here))
        frontier = nxt


def _decide(player, solver: Solver, states: list, report: PerfectReport) -> dict:
    """The player's move at each distinct position: key -> (action, missed a win)."""
    unique = {}
    for s in states:
        unique.setdefault(_key(s), s)
    analyses = player.analyze(list(unique.values()))
    choices = {}
    for (key, state), analysis in zip(unique.items(), analyses):
        action = int(analysis.action)
        before, after = solver.value(state), solver.move_value(state, action)
        missed = before == 1 and after < 1
        report.decisions += 1
        report.missed_win_decisions += missed
        if after < before:
            report.blunders += 1
            if len(report.examples) < 5:
                report.examples.append((state.history(), action, before, after))
        choices[key] = (action, missed)
    return choices


def _score(state, side: int, missed: bool, report: PerfectReport) -> None:
    result = float(state.returns()[side])
    report.games += 1
    if result > 0:
        report.wins += 1
    elif result < 0:
        report.losses += 1
    else:
        report.draws += 1
    if missed and result <= 0:
        report.missed_win_games += 1
