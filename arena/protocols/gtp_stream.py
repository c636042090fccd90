"""Streaming analysis for GUIs (lz-analyze, kata-analyze) and the GTP stdio loop.

An analysis command answers '=[id]' at once, then one line of `info move ...`
entries per search, searching again with more simulations every `interval`
until the next command arrives; an empty line then ends the response:

    lz-analyze b 50
    =
    info move D4 visits 12 winrate 5123 prior 1034 lcb 4880 order 0 pv D4 info move ...
    <next command arrives>
    <empty line>

Leela Zero's format gives winrate and prior in 1/10000, for the player to move;
kata-analyze gives them in [0, 1] and adds `utility` (the value in [-1, 1]). The
search keeps only root statistics, so `pv` is the move itself and `lcb` is a
plain winrate - 1 / (2 sqrt(visits)), no score fields are reported, and
searches stop growing once one would take longer than MAX_SEARCH_SECONDS (the
next command waits for the running search).
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Iterator, TextIO

from arena.protocols.lines import LineTooLong, read_line

DEFAULT_INTERVAL = 1.0
"""Seconds between analysis lines when the command gives no interval."""
MIN_INTERVAL = 0.05
MAX_INTERVAL = 3600.0
"""Longest wait between analysis lines: a bigger one ('lz-analyze b 1e308') would
overflow the queue's timeout and stop the engine."""
FIRST_SIMS = 16
MAX_SEARCH_SECONDS = 2.0
"""Longest single analysis search (judged by the measured speed)."""
_EOF = object()


@dataclass
class AnalysisStream:
    """The lines of one streaming analysis."""

    interval: float
    """Seconds to wait for the next command between lines."""
    lines: Iterator[str]
    """One `info move ...` line per search; ends when searches stop growing."""


def parse_analysis_args(args: list[str], to_move: int,
                        colours: dict[str, int]) -> tuple[int, float] | None:
    """(colour, interval in seconds) of `[colour] [interval] [interval N] [other K V...]`.

    The interval is in centiseconds as in Leela Zero, kept within
    [MIN_INTERVAL, MAX_INTERVAL] seconds; other keys (minmoves, avoid,
    ownership...) are ignored. None for a bad interval.
    """
    words = list(args)
    colour, interval = to_move, DEFAULT_INTERVAL
    if words and words[0].lower() in colours:
        colour = colours[words.pop(0).lower()]
    if words and _number(words[0]) is not None:
        interval = _number(words.pop(0)) / 100.0
    while words:  # key-value pairs; only `interval` is used
        if words.pop(0) == "interval":
            value = _number(words.pop(0)) if words else None
            if value is None:
                return None
            interval = value / 100.0
    return colour, min(max(interval, MIN_INTERVAL), MAX_INTERVAL)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def info_line(game, analysis, kata: bool = False) -> str:
    """The visited moves of one Analysis: the chosen move first, then by visits."""
    visits, prior, q = analysis.visits, analysis.prior, analysis.q
    visited = [int(a) for a in (visits > 0).nonzero()[0]]
    visited.sort(key=lambda a: (a != analysis.action, -int(visits[a]), -float(prior[a]), a))
    parts = []
    for order, a in enumerate(visited):
        n = int(visits[a])
        value = float(q[a]) if q[a] == q[a] else 0.0
        winrate = min(max((value + 1.0) / 2.0, 0.0), 1.0)
        lcb = max(winrate - 0.5 / math.sqrt(n), 0.0)
        move = game.action_to_vertex(a)
        if kata:
            parts.append(f"info move {move} visits {n} utility {value:.4f} winrate "
                         f"{winrate:.4f} prior {float(prior[a]):.4f} lcb {lcb:.4f} "
                         f"order {order} pv {move}")
        else:
            parts.append(f"info move {move} visits {n} winrate {round(winrate * 10000)} "
                         f"prior {round(float(prior[a]) * 10000)} lcb {round(lcb * 10000)} "
                         f"order {order} pv {move}")
    return " ".join(parts)


def analysis_stream(session, state, interval: float, kata: bool) -> AnalysisStream:
    """Searches `state` (a GoState, not changed) again and again with more simulations."""

    def lines() -> Iterator[str]:
        if state.is_terminal():
            return
        sims = max(FIRST_SIMS, session.options.min_sims)
        while True:
            analysis = session.search(state, int(state.to_play()), sims=sims)
            yield info_line(session.game, analysis, kata)
            bigger = min(2 * sims, session.options.max_sims)
            if session.rate.measured:
                bigger = min(bigger, max(sims, int(session.rate.rate * MAX_SEARCH_SECONDS)))
            if bigger <= sims:
                return
            sims = bigger

    return AnalysisStream(interval, lines())


# The stdio loop ----------------------------------------------------------------

def _reader(stream, lines: queue.Queue) -> None:
    """Reader thread: every input line (bytes decoded leniently; a LineTooLong for one
    over arena.protocols.lines.MAX_LINE_BYTES), then _EOF."""
    try:
        while (raw := read_line(stream)) is not None:  # bytes, str or LineTooLong
            lines.put(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    except (OSError, ValueError):
        pass
    finally:
        lines.put(_EOF)


def _drive(ident: str, stream: AnalysisStream, lines: queue.Queue, stdout: TextIO):
    """Writes an analysis until input arrives; returns that input (a line or _EOF)."""
    stdout.write(f"={ident}\n")
    stdout.flush()
    arrived = None
    while arrived is None:
        try:
            info = next(stream.lines)
        except Exception:  # StopIteration, or a failing search: the stream ends, not the engine
            break
        if info:
            stdout.write(info + "\n")
            stdout.flush()
        try:
            arrived = lines.get(timeout=stream.interval)
        except queue.Empty:
            continue
    if arrived is None:
        arrived = lines.get()
    stdout.write("\n")
    stdout.flush()
    return arrived


def _private_bytes(stdin):
    """A binary reader of its own over stdin's file descriptor, if it has one (else stdin's).

    Bytes, so that bad UTF-8 cannot stop the reader. Its own, because after `quit`
    the reader thread is still blocked in it, holding its lock, and Python aborts
    ('Fatal Python error: could not acquire lock for <stdin> at interpreter
    shutdown') when it closes sys.stdin while a daemon thread holds that lock.
    """
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: StringIO
        return getattr(stdin, "buffer", stdin)
    return open(os.dup(fd), "rb")


def run_gtp(engine, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Answers GTP commands until `quit` or end of input; returns exit code 0. Blocks.

    A thread reads the input, so that a streaming analysis notices the next
    command. stdin and stdout default to sys.stdin and sys.stdout at call time.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(_private_bytes(stdin), lines), daemon=True).start()
    try:
        line = lines.get()
        while line is not _EOF and not engine.done:
            if isinstance(line, LineTooLong):  # no id can be read: a plain error answer
                stdout.write(f"? {line.reason()}\n\n")
                stdout.flush()
                line = lines.get()
                continue
            streamed = engine.stream(line)
            if streamed is not None:
                line = _drive(*streamed, lines, stdout)
                continue
            answer = engine.handle(line)
            if answer:
                stdout.write(answer)
                stdout.flush()
            if not engine.done:
                line = lines.get()
    except BrokenPipeError:  # the controller went away
        pass
    return 0
