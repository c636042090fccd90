"""Hostile and broken files against every file loader: build a corpus, tally what happens.

    python scripts/hostile_files.py                       # every loader, 300 bit flips each
    python scripts/hostile_files.py --flips 2000 --only checkpoint -v

For each kind of file Tabula reads (checkpoints, the train state, replay
shards, the arena database, SGF, PGN, the config TOML) a valid file is built
in a temporary directory, and from it a corpus: the empty file, truncations,
a seeded sweep of single-bit flips, random garbage, files of every other kind
(PNG, gzip, SQLite, the other formats' valid files, and a pickle, a
torch.save file and a NumPy object array whose unpickling would create a
marker file) and crafted ones (sizes announcing gigabytes, wrong types,
depth bombs, ...). Each file is given to its loader in a directory of its
own, next to other files whose hashes are compared before and after.

Outcomes:
  refused         the loader's own error, naming the file (for the CLI: exit
                  status 2 and one line `tabula: error: ...` naming it; for GTP's
                  `loadsgf FILE`: `? cannot load file: ...` or `? unacceptable size`,
                  the protocol's phrases, with the position unchanged);
  accepted-same   the loader returned what the valid file gives (a flip in a
                  byte the format ignores: JSON spacing, an unused SQLite byte);
  accepted-other  the loader returned other, well-formed content: a flip in a
                  float the format has no checksum for (optimiser state, replay
                  targets), in free text (a comment, a name, a date), or in a
                  digit of a move; checkpoint weights are covered by sha256, so
                  an accepted checkpoint always has the original weights;
  unclear         the loader's own error, but the message does not name the file;
  crashed         anything else: another exception (KeyError, RecursionError,
                  MemoryError, ...), no answer within the time limit, a
                  neighbouring file changed or created, a refused file
                  modified, or the pickle marker file created.

Each load runs under a time limit (TIME_LIMIT_S) and, on Linux, an address
space limit (MEMORY_LIMIT beyond the process's size), so a loader that
trusts an announced size fails here instead of swamping the machine.

This file is the command line; the corpus, the loaders and the runner are the
package scripts/hostile/ next to it (the limits are in hostile/runner.py).

Exit status 1 if a file was unclear or crashed, or a file that must be
refused was not (a crafted file marked so, or for binary formats a truncated,
empty, garbage, foreign or pickle file). tests/reliability/test_hostile_*.py
run the same corpus with fewer flips.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
# The project's packages, and the `hostile` package next to this file (the tests load this
# file by path, so its directory is not always on sys.path).
for _path in (REPO, SCRIPTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from hostile import (MARKER, OUTCOMES, Case, Loader, Result, arena_db_cases,  # noqa: E402
                     build_arena_db, build_checkpoint, build_loaders, build_run,
                     build_segments, checkpoint_cases, corpus, failures, load_train_state,
                     memory_limit, others_for, pickle_cases, run_case, run_loader,
                     sqlite_bytes, train_state_cases)
from hostile import runner  # noqa: E402  (its TIME_LIMIT_S is the one loads run under)
from hostile.checkpoints import _checkpoint_fingerprint  # noqa: E402

__all__ = [  # what tests/reliability/test_hostile_*.py use as hf.<name>
    "MARKER", "Case", "Loader", "Result", "_checkpoint_fingerprint", "arena_db_cases",
    "build_arena_db", "build_checkpoint", "build_loaders", "build_run", "build_segments",
    "checkpoint_cases", "corpus", "failures", "load_train_state", "main", "memory_limit",
    "others_for", "pickle_cases", "run_case", "run_loader", "runner", "sqlite_bytes",
    "train_state_cases",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flips", type=int, default=300, help="bit flips per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="formats whose name starts with this")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every file not refused")
    args = parser.parse_args(argv)
    rows, bad, accepted = [], [], []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp)
        (root / "build").mkdir()
        loaders = build_loaders(root / "build", args.only)
        others = others_for(loaders, root / "build")
        for loader in loaders:
            results = run_loader(loader, corpus(loader, args.flips, args.seed, others,
                                                root / MARKER), root)
            counts = Counter(r.outcome for r in results)
            rows.append((loader.key, len(results), *(counts[o] for o in OUTCOMES)))
            bad += [(loader.key, r) for r in failures(loader, results)]
            kinds = Counter(r.case.kind for r in results if r.outcome.startswith("accepted"))
            accepted.append(f"{loader.key}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
            if args.verbose:
                for r in results:
                    if r.outcome != "refused" or r.seconds > 1:
                        print(f"  {loader.key} {r.case.name}: {r.outcome} {r.detail} "
                              f"({r.seconds:.2f} s)")
            print(f"{loader.key}: {len(results)} files", file=sys.stderr, flush=True)
    _print_table(rows)
    print("\naccepted, by kind of file:")
    print("\n".join(f"  {line}" for line in accepted))
    for key, r in bad:
        print(f"FAIL {key} {r.case.kind} {r.case.name}: {r.outcome} {r.detail}")
    return 1 if bad else 0


def _print_table(rows: list[tuple]) -> None:
    header = ("format/loader", "tried", *OUTCOMES)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths))))
    total = ("total", *(sum(r[i] for r in rows) for i in range(1, len(header))))
    print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                    for i, (v, w) in enumerate(zip(total, widths))))


if __name__ == "__main__":
    sys.exit(main())
