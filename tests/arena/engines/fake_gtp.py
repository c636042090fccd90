"""A fake GTP v2 engine for tests: `fake_gtp.py GAME MODE [N] [--log PATH]` (see _fakelib)."""

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
        if hung or not line or line.startswith("#"):
            continue
        words = line.split()
        ident = words.pop(0) if words[0].isdigit() else ""
        command, args = words[0], words[1:]
        if command == "quit":
            if mode == "stubborn":
                continue
            answer(ident, True, "")
            return
        if command == "genmove":
            move = reply(game, mode, n, moves)
            if move is None:
                hung = True
                continue
            moves.append(move)
            answer(ident, True, move)
        elif command == "play":
            moves.append(args[1])
            answer(ident, True, "")
        elif command == "clear_board":
            moves.clear()
            answer(ident, True, "")
        elif command in ("protocol_version", "name", "version", "boardsize", "komi"):
            answer(ident, True, {"protocol_version": "2", "name": "fake_gtp",
                                 "version": "1"}.get(command, ""))
        else:
            answer(ident, False, "unknown command")


def answer(ident: str, ok: bool, text: str) -> None:
    sys.stdout.write(f"{'=' if ok else '?'}{ident} {text}\n\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
