"""Matches: N games between two players, colours alternating, varied openings, in parallel.

Game `i` of a match is fully determined by the match seed and `i`: player A
moves first in the even-numbered games, and games 2k and 2k+1 start from the
same random opening (`opening_plies` uniformly random legal moves), so each
opening is played once from each side. Deterministic players therefore meet
in different positions, and an unbalanced opening favours nobody.

Within one process the games run in lockstep: every step, each player
searches all positions where it is to move as one batch. Across processes
the games are dealt round-robin to workers (spawned, one inference thread
each), which send each finished game back to the caller as it ends, so the
caller can store it at once (a killed match loses only games in flight).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

DEFAULT_OPENING_PLIES = 2
LOCKSTEP_GAMES = 64
"""Games a process plays at once: the batch its network players search together."""


@dataclass(frozen=True)
class GameResult:
    """One finished game of a match."""

    index: int
    first: str
    """Name of the player who moved first."""
    second: str
    score: float
    """First's score: 1 win, 0.5 draw, 0 loss."""
    reason: str | None
    """Why the game ended early (a forfeit), or None."""
    moves: tuple[str, ...]
    """Every move as text, the opening included."""
    opening_plies: int
    seconds: float

    @property
    def result(self) -> str:
        """'1-0', '0-1' or '1/2-1/2'."""
        return {1.0: "1-0", 0.0: "0-1"}.get(self.score, "1/2-1/2")


@dataclass(frozen=True)
class MatchSettings:
    """What makes the games of a match reproducible."""

    game: str
    seed: int = 0
    opening_plies: int = DEFAULT_OPENING_PLIES


def opening(game, settings: MatchSettings, index: int) -> list[int]:
    """The opening moves of game `index` (the same for games 2k and 2k+1)."""
    rng = np.random.default_rng([settings.seed, index // 2])
    for plies in range(settings.opening_plies, -1, -1):
        for _ in range(20):  # redraw openings that end the game
            state = game.new_initial_state()
            moves = []
            for _ in range(plies):
                action = int(rng.choice(np.flatnonzero(state.legal_mask())))
                state.apply(action)
                moves.append(action)
                if state.is_terminal():
                    break
            if not state.is_terminal():
                return moves
    return []


class _Slot:
    """A game in progress."""

    def __init__(self, game, settings: MatchSettings, index: int, a, b):
        self.index = index
        self.players = (a, b) if index % 2 == 0 else (b, a)
        self.state = game.new_initial_state()
        self.moves: list[str] = []
        self.opening = opening(game, settings, index)
        for action in self.opening:
            self.moves.append(self.state.action_to_text(action))
            self.state.apply(action)
        self.start = time.perf_counter()
        for p in self.players:
            p.new_game()

    def finish(self, score: float, reason: str | None = None) -> GameResult:
        return GameResult(self.index, self.players[0].name, self.players[1].name, score,
                          reason, tuple(self.moves), len(self.opening),
                          time.perf_counter() - self.start)


def play_games(game, a, b, indices: Iterable[int], settings: MatchSettings,
               on_result: Callable[[GameResult], None],
               stop: Callable[[], bool] = lambda: False,
               lockstep: int = LOCKSTEP_GAMES) -> None:
    """Plays the games `indices` of the match A vs B in this process; blocks.

    Args:
      game: the Game.
      a, b: the two players (arena.matches.players.ArenaPlayer; distinct objects).
      indices: game numbers to play (A moves first in even ones).
      on_result: called with each GameResult as its game ends.
      stop: polled between moves; True abandons the games in progress.
      lockstep: games played at once.
    """
    pending = list(indices)[::-1]
    slots: list[_Slot] = []
    while (pending or slots) and not stop():
        while pending and len(slots) < lockstep:
            slots.append(_Slot(game, settings, pending.pop(), a, b))
        for player in (a, b):
            mine = [s for s in slots if s.players[s.state.to_play()] is player]
            if not mine:
                continue
            for slot, move in zip(mine, player.select([s.state for s in mine])):
                outcome = _apply(slot, move)
                if outcome is not None:
                    slots.remove(slot)
                    on_result(slot.finish(*outcome))


def _apply(slot: _Slot, move) -> tuple[float, str | None] | None:
    """Plays `move` in `slot`; (first's score, reason) if that ended the game."""
    state = slot.state
    mover = state.to_play()
    if not isinstance(move, (int, np.integer)):  # a Forfeit
        side = "first" if mover == 0 else "second"
        return (0.0 if mover == 0 else 1.0), f"{side} forfeits: {move.reason}"
    move = int(move)
    if not (0 <= move < len(state.legal_mask())) or not state.legal_mask()[move]:
        side = "first" if mover == 0 else "second"
        return (0.0 if mover == 0 else 1.0), f"{side} forfeits: illegal action {move}"
    slot.moves.append(state.action_to_text(move))
    state.apply(move)
    if state.is_terminal():
        return (float(state.returns()[0]) + 1.0) / 2.0, None
    return None


def run_match(game_name: str, spec_a, spec_b, indices: Sequence[int], settings: MatchSettings,
              on_result: Callable[[GameResult], None], processes: int = 1,
              stop: Callable[[], bool] = lambda: False) -> None:
    """Plays games `indices` of spec_a vs spec_b across `processes` processes; blocks.

    Players are built from their PlayerSpecs in each process (seeded by the
    match seed). `on_result` runs in the calling process, once per game, in
    the order games end.

    Raises:
      PlayerSpecError: a player cannot be built.
      RuntimeError: a worker process died.
    """
    indices = list(indices)
    if not indices:
        return
    processes = max(1, min(processes, len(indices)))
    if processes == 1:
        _play_here(game_name, spec_a, spec_b, indices, settings, on_result, stop, None)
        return
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, daemon=True,
                           args=(game_name, spec_a, spec_b, indices[w::processes], settings,
                                 results, os.getpid()))
               for w in range(processes)]
    for w in workers:
        w.start()
    try:
        _collect(workers, results, len(indices), on_result, stop)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
            w.join(5)


def _collect(workers, results, expected: int, on_result, stop) -> None:
    received = 0
    while received < expected and not stop():
        try:
            message = results.get(timeout=0.5)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"an arena worker died (exit code {dead[0].exitcode})")
            if all(w.exitcode == 0 for w in workers) and results.empty():
                raise RuntimeError("arena workers ended before every game was played")
            continue
        if isinstance(message, BaseException):
            raise message
        received += 1
        on_result(message)


def _play_here(game_name, spec_a, spec_b, indices, settings, on_result, stop, threads):
    from arena.matches.players import build_player
    from games import get_game

    game = get_game(game_name)
    a = build_player(spec_a, game, seed=settings.seed, threads=threads)
    try:
        b = build_player(spec_b, game, seed=settings.seed + 1, threads=threads)
        try:
            play_games(game, a, b, indices, settings, on_result, stop)
        finally:
            b.close()
    finally:
        a.close()


def _worker(game_name, spec_a, spec_b, indices, settings, results, parent: int) -> None:
    """Worker process: one inference thread, results onto the queue; ends with its parent."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
        torch.set_num_threads(1)
        _play_here(game_name, spec_a, spec_b, indices, settings, results.put,
                   lambda: os.getppid() != parent, 1)
    except BaseException as e:  # the caller re-raises it
        from arena.matches.players import PlayerSpecError
        results.put(e if isinstance(e, PlayerSpecError) else RuntimeError(
            f"arena worker failed: {type(e).__name__}: {e}"))
