"""Drive real `tabula uci` processes as an outside UCI fuzzer does: random lines, searches
started at random and never waited for; count the gos left without a bestmove.

    python scripts/fuzz_uci_overlap.py --lines 2000 --seeds 1,2,3

Each seed: one `tabula uci --nodes 4` process fed N mutated lines
(tests/fuzz/uci_targets.overlapping_session) without stop between them, then
`stop` and `isready`. Prints per seed the lines, the gos owed a bestmove (every
go but a valid perft), the bestmoves received, gos without one, and output lines
that are not UCI. Exit status 1 if any go lacked its bestmove or got two.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.uci_targets import overlapping_session  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000, metavar="N")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds (default 1)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    print(f"{'seed':>4} {'lines':>6} {'gos':>5} {'bestmoves':>9} {'missing':>7} "
          f"{'bad lines':>9} {'seconds':>8}", flush=True)
    bad = 0
    for seed in seeds:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="fuzz-uci-") as tmp:
            r = overlapping_session(args.lines, seed, Path(tmp))
        missing = r.gos - r.bestmoves
        print(f"{seed:>4} {r.lines:>6} {r.gos:>5} {r.bestmoves:>9} {missing:>7} "
              f"{len(r.bad_lines):>9} {time.perf_counter() - start:>8.1f}", flush=True)
        bad += bool(missing or r.bad_lines)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
