"""`tabula arena ...` whose game writes wait on a gate the test controls.

    python tests/arena/gated_arena.py GATE arena RUN_DIR --games 200 ...

Before each game is stored, ResultsDB.add_game waits until the number written
in the file GATE is larger than the games this process has stored so far. A
test that kills the arena thereby decides how far the tournament can get,
whatever the machine's speed: with GATE = N the process stores at most N
games, and between a kill's moment and the gate it runs freely (games in
flight, writes), so a kill lands mid-work or at the gate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

POLL = 0.005
"""Seconds between two reads of the gate file."""


def allowed(gate: Path) -> int:
    try:
        return int(gate.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):  # being written: read again
        return 0


def gate_writes(gate: Path) -> None:
    from arena.matches.results import ResultsDB

    store = ResultsDB.add_game
    stored = 0

    def gated(self, **game):
        nonlocal stored
        while stored >= allowed(gate):
            time.sleep(POLL)
        stored += 1
        return store(self, **game)

    ResultsDB.add_game = gated


def open_gate(gate: Path, games: int) -> None:
    """Lets a gated arena store `games` games in all (written atomically)."""
    tmp = gate.with_suffix(".tmp")
    tmp.write_text(str(games))
    tmp.replace(gate)


if __name__ == "__main__":
    gate_writes(Path(sys.argv[1]))
    from tabula.cli import main

    sys.exit(main(sys.argv[2:]))
