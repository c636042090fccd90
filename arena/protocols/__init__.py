"""The front ends: GTP, UCI, the JSON-lines analysis engine, the text prompt, the Atari watcher.

Each protocol front end is a `handle(line) -> str`-style object over a table of
commands that never raises, wrapped by a small stdio loop (`run_*`), reaching
the engine only through `engine.player.Player`; every one reads bounded lines
(lines.py). GTP is split into the command table (gtp.py), the game record and
the engine's moves (gtp_game.py), time management (gtp_time.py) and analysis
streaming with the loop (gtp_stream.py); UCI into the command table (uci.py),
its declared options (uci_options.py) and the search thread (uci_search.py).
`tabula play` is text.py for board games and watch.py for Atari. bench_gtp.py
and bench_uci.py are `tabula bench gtp` / `tabula bench uci` (not exported).

Names are re-exported lazily (PEP 562, arena.lazy).
"""

from __future__ import annotations

from arena.lazy import lazy_exports

_EXPORTS = {
    # lines.py
    "MAX_LINE_BYTES": "arena.protocols.lines",
    "LineTooLong": "arena.protocols.lines",
    "read_line": "arena.protocols.lines",
    # text.py
    "TextSession": "arena.protocols.text",
    "run_text": "arena.protocols.text",
    # analysis.py
    "AnalysisEngine": "arena.protocols.analysis",
    "QueryError": "arena.protocols.analysis",
    "run_analysis": "arena.protocols.analysis",
    # gtp.py, gtp_game.py, gtp_stream.py, gtp_time.py
    "GtpEngine": "arena.protocols.gtp",
    "GtpError": "arena.protocols.gtp_game",
    "GtpOptions": "arena.protocols.gtp_game",
    "GoSession": "arena.protocols.gtp_game",
    "run_gtp": "arena.protocols.gtp_stream",
    "Clock": "arena.protocols.gtp_time",
    "SimsRate": "arena.protocols.gtp_time",
    # uci.py, uci_options.py, uci_search.py
    "UciEngine": "arena.protocols.uci",
    "run_uci": "arena.protocols.uci",
    "OPTIONS": "arena.protocols.uci_options",
    "UciError": "arena.protocols.uci_options",
    "SearchJob": "arena.protocols.uci_search",
    # watch.py
    "WatchConfig": "arena.protocols.watch",
    "run_watch": "arena.protocols.watch",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
