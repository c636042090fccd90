"""Shared by the fake engines: replaying moves with the `games` package, choosing a reply.

Modes (the fake engine's second argument):
  good      the lowest legal action.
  stubborn  like good, but ignores `quit` (the client must kill it).
  crash     exits with code 3 when asked to move after N or more moves (third argument).
  hang      never answers a move request (nor anything after it).
  nonsense  answers 'zz'.
  illegal   answers the lowest illegal action (an occupied cell), else 'zz'.
  resign    resigns (GTP 'resign', UCI 'bestmove (none)').
"""

from __future__ import annotations

import sys
from pathlib import Path

MODES = ("good", "stubborn", "crash", "hang", "nonsense", "illegal", "resign")
CRASH_EXIT_CODE = 3


def parse_args(argv: list[str]) -> tuple[str, str, int, str | None]:
    """(game, mode, n, log path) from `fake_x.py GAME MODE [N] [--log PATH]`."""
    args = list(argv[1:])
    log = None
    if "--log" in args:
        i = args.index("--log")
        log = args[i + 1]
        del args[i:i + 2]
    game, mode = args[0], args[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}")
    return game, mode, int(args[2]) if len(args) > 2 else 0, log


def replay(game_name: str, texts: list[str]):
    """The position after `texts` (GameError if one is illegal).

    `games` is imported here, not at start-up, so that the handshake is instant.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from games import get_game

    state = get_game(game_name).new_initial_state()
    for text in texts:
        state.apply(state.text_to_action(text))
    return state


def reply(game_name: str, mode: str, n: int, texts: list[str]) -> str | None:
    """Move text for the position after `texts`; None means: do not answer."""
    if mode == "hang":
        return None
    if mode == "crash" and len(texts) >= n:
        sys.exit(CRASH_EXIT_CODE)
    if mode == "nonsense":
        return "zz"
    if mode == "resign":
        return "resign"
    state = replay(game_name, texts)
    mask = state.legal_mask()
    if mode == "illegal":
        illegal = [a for a in range(len(mask)) if not mask[a]]
        return state.action_to_text(illegal[0]) if illegal else "zz"
    return state.action_to_text(int(mask.nonzero()[0][0]))


class Log:
    """Appends every received line to a file (a transcript for the tests)."""

    def __init__(self, path: str | None):
        self.path = path

    def write(self, line: str) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
