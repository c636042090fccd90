"""Time management for the GTP engine: clock settings -> seconds per move -> simulations.

The controller sets the clock with `time_settings` (Canadian byo-yomi) or
`kgs-time_settings` (none, absolute, Japanese byo-yomi, Canadian) and reports
the remaining time with `time_left`; between reports the engine runs its own
clock. `Clock.budget` turns the remaining time into a budget for one move, and
`SimsRate` turns the budget into simulations from the speed of earlier searches
(the search cannot be stopped once started, so the count is fixed up front).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("none", "absolute", "canadian", "byoyomi")
SAFETY_FRACTION = 0.7
"""Share of the raw budget actually planned: big searches run up to ~25% slower per
simulation than the small ones the speed was measured on (uniform evaluator, 9x9)."""
SAFETY_SECONDS = 0.1
"""Subtracted from every budget: protocol, replay and process overhead."""
MIN_MOVES_LEFT = 10
"""Main time is never planned over fewer moves than this."""
INITIAL_RATE = 20.0
"""Simulations per second assumed before any search was measured (deliberately low)."""
CALIBRATION_DISCOUNT = 0.5
"""Factor on the speed measured by a tiny calibration search, until real moves are timed."""
RATE_SMOOTHING = 0.5
"""Weight of the newest measurement in the simulations-per-second estimate."""


@dataclass
class Period:
    """One colour's clock: main time left, then byo-yomi."""

    main: float
    """Seconds of main time left (absolute time: the whole game)."""
    byo_time: float = 0.0
    """Seconds left in the current byo-yomi period (0 while in main time)."""
    byo_stones: int = 0
    """Stones (Canadian) or periods (Japanese) left; 0 while in main time."""


@dataclass
class Clock:
    """Time settings and both colours' remaining time.

    Attributes:
      kind: one of KINDS; 'none' means no limit.
      main: main time (seconds).
      byo_time: byo-yomi period (seconds).
      byo_stones: stones per Canadian period, or the number of Japanese periods.
      left: Period per colour (0 Black, 1 White).
    """

    kind: str = "none"
    main: float = 0.0
    byo_time: float = 0.0
    byo_stones: int = 0
    left: dict = field(default_factory=dict)

    def set(self, kind: str, main: float = 0.0, byo_time: float = 0.0,
            byo_stones: int = 0) -> None:
        """New settings; both clocks start full. ValueError for bad values."""
        if kind not in KINDS:
            raise ValueError(f"unknown time system {kind!r}")
        if min(main, byo_time, byo_stones) < 0:
            raise ValueError("times and stones must not be negative")
        if kind == "canadian" and byo_time > 0 and byo_stones == 0:
            kind = "none"  # GTP: byo-yomi time without stones means no time limit
        elif kind == "canadian" and byo_time == 0:
            kind = "absolute" if main > 0 else "none"
        self.kind, self.main, self.byo_time, self.byo_stones = kind, main, byo_time, byo_stones
        self.left = {c: Period(float(main)) for c in (0, 1)}

    def time_left(self, colour: int, seconds: float, stones: int) -> None:
        """The controller's report: `stones` 0 means main time, else byo-yomi."""
        if seconds < 0 or stones < 0:
            raise ValueError("time and stones must not be negative")
        if stones == 0:
            self.left[colour] = Period(float(seconds))
        else:
            self.left[colour] = Period(0.0, float(seconds), int(stones))

    def used(self, colour: int, seconds: float) -> None:
        """Runs `colour`'s own clock after a move that took `seconds`."""
        if self.kind in ("none", "absolute"):
            if colour in self.left:
                self.left[colour].main -= seconds
            return
        p = self.left.setdefault(colour, Period(self.main))
        if p.byo_stones == 0:
            p.main -= seconds
            if p.main >= 0:
                return
            seconds, p.main = -p.main, 0.0
            p.byo_time, p.byo_stones = self.byo_time, self.byo_stones
        if self.kind == "byoyomi":  # the period restarts after every move in time
            if seconds > p.byo_time and p.byo_stones > 1:
                p.byo_stones -= 1
            p.byo_time = self.byo_time
            return
        p.byo_time -= seconds
        p.byo_stones -= 1
        if p.byo_stones <= 0:  # a new Canadian period
            p.byo_time, p.byo_stones = self.byo_time, self.byo_stones

    def budget(self, colour: int, moves_left: float) -> float | None:
        """Seconds to plan for `colour`'s next move (safety margin applied), or None.

        Args:
          moves_left: the mover's expected number of remaining moves.
        Returns:
          None when there is no time limit; else seconds >= 0.
        """
        if self.kind == "none":
            return None
        p = self.left.get(colour, Period(self.main))
        if p.byo_stones > 0:  # in byo-yomi
            raw = p.byo_time if self.kind == "byoyomi" else p.byo_time / p.byo_stones
        else:
            raw = max(p.main, 0.0) / max(MIN_MOVES_LEFT, moves_left)
            if self.kind == "canadian" and self.byo_stones > 0:
                raw = max(raw, self.byo_time / self.byo_stones)
            elif self.kind == "byoyomi" and self.byo_stones > 0:
                raw = max(raw, self.byo_time)
        return plan(raw)


def plan(seconds: float) -> float:
    """The seconds to plan for a move that must end within `seconds` (safety margin)."""
    return max(0.0, seconds * SAFETY_FRACTION - SAFETY_SECONDS)


def moves_left(board_cells: int, moves_played: int) -> float:
    """The mover's expected remaining moves: games last about 0.75 * cells plies."""
    return max(0.0, 0.75 * board_cells - moves_played) / 2.0


class SimsRate:
    """Simulations per second, measured on earlier searches (smoothed)."""

    def __init__(self, initial: float = INITIAL_RATE):
        self.rate = float(initial)
        self.measured = False

    def record(self, sims: int, seconds: float, discount: float = 1.0) -> None:
        """Adds a search of `sims` simulations that took `seconds` (its speed times `discount`)."""
        if sims <= 0 or seconds <= 0:
            return
        rate = discount * sims / seconds
        self.rate = rate if not self.measured else (
            RATE_SMOOTHING * rate + (1 - RATE_SMOOTHING) * self.rate)
        self.measured = True

    def sims_for(self, seconds: float, low: int, high: int) -> int:
        """Simulations that fit in `seconds`, clamped to [low, high]."""
        return int(min(max(seconds * self.rate, low), high))
