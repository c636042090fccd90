"""Fuzz real `tabula analyze` processes: N hostile query lines per game, every answer checked.

    python scripts/fuzz_analysis.py --lines 11200 --seed 1
    python scripts/fuzz_analysis.py --lines 2000 --games connect4,chess

One process per game (a tiny random network, 4 simulations) is fed N lines
(tests/fuzz/analysis_targets.py: valid and hostile queries, bad UTF-8, random
text, blank lines) and its input is closed. Prints per game: lines, queries
due an answer, answers, error answers, lost answers, exit status, tracebacks on
stderr, property violations (a wrong id, a valid query refused, a hostile one
answered, an illegal move, malformed JSON) and seconds; then the first
violations. Exit status 1 if any process exited non-zero, printed a traceback,
lost an answer or broke a property. Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import make_checkpoint  # noqa: E402
from tests.fuzz.analysis_targets import ANALYSIS_GAMES, run_process  # noqa: E402

SHOWN = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=11_200, metavar="N",
                        help="lines per game (default 11200: some 10,000 queries, the rest blank)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the lines (default 0)")
    parser.add_argument("--games", default=",".join(ANALYSIS_GAMES),
                        help=f"comma-separated subset of {','.join(ANALYSIS_GAMES)}")
    args = parser.parse_args(argv)
    games = [g for g in args.games.split(",") if g]
    unknown = sorted(set(games) - set(ANALYSIS_GAMES))
    if unknown or args.lines < 1:
        parser.error(f"unknown games {unknown}" if unknown else "--lines must be >= 1")
    print(f"{'game':<10} {'lines':>7} {'queries':>7} {'answers':>7} {'errors':>7} {'lost':>5} "
          f"{'exit':>4} {'tracebacks':>10} {'violations':>10} {'seconds':>8}", flush=True)
    bad = 0
    reports = []
    for game in games:
        with tempfile.TemporaryDirectory(prefix=f"fuzz-analysis-{game}-") as tmp:
            checkpoint = make_checkpoint(Path(tmp) / f"{game}.safetensors", game)
            r = run_process(game, checkpoint, args.lines, args.seed, Path(tmp))
        reports.append(r)
        print(f"{game:<10} {r.lines:>7} {r.queries:>7} {r.answered:>7} {r.errors:>7} "
              f"{r.lost:>5} {r.exit_code:>4} {r.tracebacks:>10} {len(r.violations):>10} "
              f"{r.seconds:>8.1f}", flush=True)
        bad += bool(r.exit_code or r.tracebacks or r.lost or r.violations)
    for r in reports:
        for violation in r.violations[:SHOWN]:
            print(f"\n[{r.game}] {violation}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
