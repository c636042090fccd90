"""The UCI engine's thinking: `go` limits -> a search plan -> a stoppable search thread.

`run_search` cannot be interrupted, so a `SearchJob` runs a series of
searches, each a fresh one with more simulations (iterative deepening: 1, then
16, 32, 64, ... simulations), keeping the last one that finished. The
evaluator is wrapped (`StoppableEvaluator`) so that `stop`, `ponderhit` with
the time up, or the deadline abandon the running search within one network
call; the move then comes from the last finished search. A search of N
simulations is reported as depth floor(log2 N) (the tree keeps only root
statistics, so seldepth is the same number and the pv is the move alone), and
`go depth D` asks for 2^D simulations. `nodes` counts the positions the
network evaluated in all searches of this `go`.

Time: `movetime` minus MoveOverhead; with a clock, time_left / movestogo (30
if not given) + 0.8 * increment, at most half the time left, minus
MoveOverhead. A timed search grows while the next one is predicted (from the
measured simulations per second, arena.protocols.gtp_time.SimsRate, with its safety
fraction: big searches are slower per simulation) to finish in time and to be
at least 1.5 times bigger; the deadline stops it regardless.

Score: cp = 111.714640912 * tan(1.5620688421 * v) for the search value v in
[-1, 1] of the side to move, Leela Chess Zero's mapping, clamped to
+-MAX_CP. WDL (UCI_ShowWDL): the value has no separate draw probability, so
the engine reports the most drawish split with the same expected score
(1 + v) / 2: win = 1000 max(v, 0), loss = 1000 max(-v, 0), draw the rest.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np

from arena.protocols.gtp_time import SAFETY_FRACTION, SimsRate

FIRST_SIMS = 1
"""The first search of every `go`: one simulation, the network's favourite move; it
cannot be interrupted, so there is always a move to answer."""
GROWN_SIMS = 16
"""The second search; later ones double."""
MIN_GROWTH = 1.5
"""A timed search is started only if it is this many times bigger than the last one."""
INFO_INTERVAL = 1.0
"""Longest pause (seconds) between two info lines while thinking."""
DEFAULT_MOVES_TO_GO = 30
"""Moves the remaining clock time is spread over when movestogo is not given."""
INCREMENT_SHARE = 0.8
MAX_CLOCK_SHARE = 0.5
"""Never plan more than this share of the time left for one move."""
MAX_DEPTH = 30
MAX_TREE_BYTES = 256 * 2**20
"""Memory of the biggest tree one search may allocate (8 bytes per node and action)."""
CP_SCALE, CP_ANGLE, MAX_CP = 111.714640912, 1.5620688421, 12800
_INT_KEYS = ("wtime", "btime", "winc", "binc", "movestogo", "movetime", "nodes", "depth", "mate")
_FLAGS = ("infinite", "ponder")


@dataclass
class GoLimits:
    """The arguments of one `go` command (times in milliseconds)."""

    wtime: int | None = None
    btime: int | None = None
    winc: int | None = None
    binc: int | None = None
    movestogo: int | None = None
    movetime: int | None = None
    nodes: int | None = None
    depth: int | None = None
    mate: int | None = None
    infinite: bool = False
    ponder: bool = False
    searchmoves: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    """What could not be read, each as a short phrase for an `info string`."""


_NUMBER = re.compile(r"-?[0-9]{1,18}")
"""A `go` number: ASCII digits (int() also takes '\u0663', '1_000' and ' 7'), at most 18."""


def _go_value(key: str, word: str) -> int | str:
    """The value of `go KEY WORD`, or why it is ignored."""
    if not _NUMBER.fullmatch(word):
        return f"go {key} needs an integer, not {word[:40]!r}"
    value = int(word)
    if value < 0 and key not in ("wtime", "btime"):  # a GUI may report an overdrawn clock
        return f"go {key} must not be negative, got {value}"
    if key in ("movestogo", "nodes", "depth", "mate", "movetime") and value == 0:
        return f"go {key} must be positive"
    return value


def parse_go(args: list[str]) -> GoLimits:
    """GoLimits of `go`'s arguments. Never raises: like Stockfish, what cannot be read
    is skipped (a bad value, a key without one, an unknown word) and named in `ignored`,
    so that every `go` still searches and answers bestmove."""
    limits = GoLimits()
    ignored = []
    i = 0
    while i < len(args):
        key = args[i]
        i += 1
        if key in _FLAGS:
            setattr(limits, key, True)
        elif key == "searchmoves":
            moves = []
            while i < len(args) and args[i] not in _INT_KEYS + _FLAGS:
                moves.append(args[i])
                i += 1
            limits.searchmoves = tuple(moves)
        elif key in _INT_KEYS:
            if i >= len(args) or args[i] in _INT_KEYS + _FLAGS + ("searchmoves",):
                ignored.append(f"go {key} needs a number")
                continue
            value = _go_value(key, args[i])
            i += 1
            if isinstance(value, str):
                ignored.append(value)
            else:
                setattr(limits, key, value)
        else:
            ignored.append(f"unknown go parameter {key[:40]!r}")
    limits.ignored = tuple(ignored)
    return limits


def clock_seconds(limits: GoLimits, white: bool, overhead_ms: int) -> float | None:
    """Seconds to plan for this move from movetime or the clock, or None (no time limit)."""
    overhead = overhead_ms / 1000.0
    if limits.movetime is not None:
        return max(limits.movetime / 1000.0 - overhead, 0.0)
    left_ms = limits.wtime if white else limits.btime
    if left_ms is None:
        return None
    left = max(left_ms, 0) / 1000.0
    inc = (limits.winc if white else limits.binc) or 0
    budget = left / (limits.movestogo or DEFAULT_MOVES_TO_GO) + INCREMENT_SHARE * inc / 1000.0
    return max(min(budget, MAX_CLOCK_SHARE * left) - overhead, 0.0)


def max_sims(num_actions: int) -> int:
    """The biggest search whose tree fits in MAX_TREE_BYTES."""
    return max(GROWN_SIMS, MAX_TREE_BYTES // (8 * num_actions + 64))


@dataclass(frozen=True)
class SearchPlan:
    """How long one `go` thinks."""

    seconds: float | None
    """Time for the move (counted from `go`, or from `ponderhit`); None: no limit."""
    cap: int
    """Most simulations of one search once not pondering."""
    grow: bool
    """Iterative deepening up to `cap` (else: FIRST_SIMS, then `cap` directly)."""
    infinite: bool
    """bestmove only after `stop`, even when the search is over."""
    ponder: bool
    """Started as `go ponder`: infinite until `ponderhit` (then the plan above) or `stop`."""
    limit: int
    """Most simulations of one search while infinite or pondering (memory)."""


def plan_search(limits: GoLimits, white: bool, overhead_ms: int, nodes_option: int,
                default_sims: int, num_actions: int) -> SearchPlan:
    """The SearchPlan of `limits`: explicit nodes/depth beat the Nodes option."""
    limit = max_sims(num_actions)
    explicit = [n for n in (limits.nodes, None if limits.depth is None else
                            2 ** min(limits.depth, MAX_DEPTH)) if n is not None]
    seconds = clock_seconds(limits, white, overhead_ms)
    if explicit:
        cap = min(explicit)
    elif seconds is not None:
        cap = nodes_option or limit
    else:
        cap = nodes_option or default_sims
    cap = max(1, min(cap, limit))
    grow = seconds is not None or limits.infinite or limits.ponder
    return SearchPlan(seconds, cap, grow, limits.infinite, limits.ponder,
                      cap if limits.infinite and explicit else limit)


# Reporting ----------------------------------------------------------------------

def centipawns(value: float) -> int:
    """Leela Chess Zero's mapping of a value in [-1, 1] to centipawns, clamped."""
    v = min(max(float(value), -1.0), 1.0)
    return int(round(min(max(CP_SCALE * math.tan(CP_ANGLE * v), -MAX_CP), MAX_CP)))


def wdl(value: float) -> tuple[int, int, int]:
    """(win, draw, loss) per mille with expected score (1 + v) / 2, draws maximal."""
    v = min(max(float(value), -1.0), 1.0)
    win, loss = round(1000 * max(v, 0.0)), round(1000 * max(-v, 0.0))
    return win, 1000 - win - loss, loss


def depth_of(sims: int) -> int:
    return max(1, int(math.log2(max(sims, 1))))


# The search thread ----------------------------------------------------------------

class _Stopped(Exception):
    """Raised inside run_search (through the evaluator) to abandon a search."""


class StoppableEvaluator:
    """An Evaluator that counts positions and abandons the search when the job says so."""

    def __init__(self, inner, job: "SearchJob"):
        self.inner = inner
        self.job = job

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See engine.search.Evaluator; raises _Stopped instead when the job is to stop."""
        if self.job.interrupted():
            raise _Stopped
        out = self.inner.evaluate(obs, mask)
        self.job.counted(len(obs))
        return out


@dataclass
class Best:
    """The last finished search."""

    analysis: object
    """engine.player.Analysis."""
    sims: int
    move: str


class SearchJob:
    """One `go`: a thread that searches `state` and ends with exactly one bestmove line.

    Args:
      player: engine.player.Player (its evaluator is wrapped, not changed).
      state: the position (a clone the job owns); must not be terminal.
      plan: SearchPlan.
      rate: SimsRate shared by the engine's jobs (updated here).
      emit: writes one output line; called from the search thread.
      show_wdl: add wdl to info lines.
      wait_for: a thread to join before searching (the warm-up), or None.
      game_over: for a finished game, its info lines (ending in a newline): then
        nothing is searched and the bestmove is 0000.
    """

    def __init__(self, player, state, plan: SearchPlan, rate: SimsRate,
                 emit: Callable[[str], None], show_wdl: bool = False,
                 wait_for: threading.Thread | None = None, game_over: str | None = None):
        from engine.player import Player

        self.player = Player(player.game, StoppableEvaluator(player.evaluator, self),
                             player.search, name=player.name, batch=player.batch)
        self.state, self.plan, self.rate, self.emit = state, plan, rate, emit
        self.show_wdl = show_wdl
        self.wait_for = wait_for
        self.game_over = game_over
        self.pondering = plan.ponder
        self.start = time.monotonic()
        self.deadline = None if plan.seconds is None or plan.ponder else self.start + plan.seconds
        self.nodes = 0
        self.last_info = self.start
        self.best: Best | None = None
        self.reported: tuple | None = None
        """(nodes, best) of the last info line."""
        self.chunk = 0
        """Simulations of the search running now (0 between searches)."""
        self.answered = False
        """True from the moment the bestmove line is written."""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="uci-search", daemon=True)

    # Control (called from the input thread) ---------------------------------

    def start_thread(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ends the search: bestmove follows within one network call."""
        self._stop.set()
        self._wake.set()

    def ponderhit(self) -> None:
        """The predicted move was played: think on under the plan's time, from now."""
        if self.plan.seconds is not None:
            self.deadline = time.monotonic() + self.plan.seconds
        self.pondering = False
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def running(self) -> bool:
        """Whether bestmove is still to come."""
        return not self.answered and self.thread.is_alive()

    # Limits ----------------------------------------------------------------

    def _open_ended(self) -> bool:
        return self.plan.infinite or self.pondering

    def _cap(self) -> int:
        return self.plan.limit if self._open_ended() else self.plan.cap

    def interrupted(self) -> bool:
        """Whether the running search is to be abandoned (never the first one)."""
        if self.best is None:
            return False
        if self._stop.is_set():
            return True
        if self._open_ended():
            return False
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return late or self.chunk > self.plan.cap

    def counted(self, positions: int) -> None:
        self.nodes += positions
        if time.monotonic() - self.last_info >= INFO_INTERVAL:
            self._info()

    def _next_sims(self) -> int | None:
        """Simulations of the next search, or None when no search is due."""
        if self._stop.is_set():
            return None
        if self.best is None:
            return FIRST_SIMS
        done, cap = self.best.sims, self._cap()
        if done >= cap:
            return None
        if (self.deadline is not None and not self._open_ended()
                and time.monotonic() >= self.deadline):
            return None  # else a search abandoned for lateness would be started again
        if not self.plan.grow:
            return cap
        sims = min(max(GROWN_SIMS, 2 * done), cap)
        if self.deadline is not None and not self._open_ended() and self.rate.measured:
            fit = self.rate.sims_for(SAFETY_FRACTION * (self.deadline - time.monotonic()),
                                     0, sims)
            if fit < MIN_GROWTH * done:
                return None
            sims = fit
        return sims

    # The thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.game_over is not None:
                self.emit(self.game_over.rstrip("\n"))
            else:
                if self.wait_for is not None:
                    self.wait_for.join()
                self._think()
        except Exception as e:  # the engine must answer bestmove whatever happens
            traceback.print_exc(file=sys.stderr)
            self.emit(f"info string search failed: {type(e).__name__}: {e}")
        finally:
            self._wait_for_stop()
            if self.game_over is None and (self.nodes, self.best) != self.reported:
                self._info()  # the last word before bestmove, unless it was just said
            move = self.best.move if self.best is not None else self._fallback()
            self.answered = True  # the next go may start (after joining this thread)
            self.emit(f"bestmove {move}")

    def _think(self) -> None:
        while True:
            sims = self._next_sims()
            if sims is None:
                if not self._open_ended() or self._stop.is_set():
                    return
                self._idle()
                continue
            self.chunk = sims
            began = time.monotonic()
            try:
                analysis = self.player.analyze([self.state], num_simulations=sims)[0]
            except _Stopped:
                continue  # _next_sims decides: stopped, out of time, or a smaller search
            finally:
                self.chunk = 0
            if sims >= GROWN_SIMS:
                self.rate.record(sims, time.monotonic() - began)
            self.best = Best(analysis, sims, self.state.action_to_text(analysis.action))
            self._info()

    def _idle(self) -> None:
        """Waits (infinite or pondering, nothing left to search) for stop or ponderhit."""
        self._wake.wait(INFO_INTERVAL)
        self._wake.clear()
        if time.monotonic() - self.last_info >= INFO_INTERVAL:
            self._info()

    def _wait_for_stop(self) -> None:
        while self._open_ended() and not self._stop.is_set():
            self._idle()

    def _fallback(self) -> str:
        """The first legal move (only if even the first search failed)."""
        legal = np.flatnonzero(self.state.legal_mask())
        return self.state.action_to_text(int(legal[0])) if len(legal) else "0000"

    def _info(self) -> None:
        if self.game_over is not None:
            return
        now = time.monotonic()
        self.last_info = now
        self.reported = (self.nodes, self.best)
        ms = int(1000 * (now - self.start))
        nps = int(self.nodes / max(now - self.start, 1e-3))
        if self.best is None:
            self.emit(f"info nodes {self.nodes} nps {nps} time {ms}")
            return
        depth = depth_of(self.best.sims)
        value = self.best.analysis.value
        parts = [f"info depth {depth} seldepth {depth} time {ms} nodes {self.nodes} nps {nps}",
                 f"score cp {centipawns(value)}"]
        if self.show_wdl:
            parts.append("wdl %d %d %d" % wdl(value))
        parts.append(f"pv {self.best.move}")
        self.emit(" ".join(parts))
