"""A fake UCI engine for tests: `fake_uci.py GAME MODE [N] [--log PATH]` (see _fakelib)."""

from __future__ import annotations

import sys

from _fakelib import Log, parse_args, reply


def main() -> None:
    game, mode, n, log_path = parse_args(sys.argv)
    log = Log(log_path)
    moves: list[str] = []
    hung = False
    for raw in sys.stdin:
        line = raw.strip()
        log.write(line)
        words = line.split()
        if hung or not words:
            continue
        command = words[0]
        if command == "quit" and mode != "stubborn":
            return
        if command == "uci":
            say("id name fake_uci", "id author tabula",
                "option name Hash type spin default 16 min 1 max 1024", "uciok")
        elif command == "isready":
            say("readyok")
        elif command == "position":
            moves = words[words.index("moves") + 1:] if "moves" in words else []
        elif command == "go":
            move = reply(game, mode, n, moves)
            if move is None:
                hung = True
                continue
            move = "(none)" if move == "resign" else move
            say("info depth 1 score cp 0 nodes 1", "info string thinking", f"bestmove {move}")


def say(*lines: str) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
