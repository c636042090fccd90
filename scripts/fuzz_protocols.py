"""Fuzz the protocol front-ends and the parsers at a larger scale than the tests do.

    python scripts/fuzz_protocols.py --examples 5000 --seed 1
    python scripts/fuzz_protocols.py --examples 500 --targets gtp,uci

The same targets, inputs and properties as tests/fuzz (tests/fuzz/targets.py:
GTP sessions, GTP loadsgf records, UCI sessions, text-prompt sessions, `--set`
overrides, TOML files, CLI argvs), but N Hypothesis examples per target from a
seed (other inputs than the tests' derandomized ones), nothing shrunk, and a
violation counted instead of stopping the run. Prints, per target: examples,
inputs tried (lines, files or argvs), escapes (examples where a property failed:
an exception, a malformed answer, a rejected command that changed the state),
seconds and the process's peak memory so far; then the first escapes of each
target. Exit status 1 if any.
Run from the repository root; each target works in its own temporary directory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.targets import TARGETS, working_directory  # noqa: E402

SHOWN = 3
"""Escapes printed per target."""


def fuzz(name: str, examples: int, run_seed: int) -> dict:
    """Runs one target; returns its figures and first escapes."""
    target = TARGETS[name]()
    escapes: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @seed(run_seed)
    @given(target.inputs_strategy())
    def run(example):
        try:
            target.check(example)
        except Exception as e:  # a Violation, or an exception the check let through
            escapes.append(f"{type(e).__name__}: {e}")

    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        with working_directory(Path(tmp)):
            target.open(Path(tmp))
            start = time.perf_counter()
            with target.session():
                run()
            seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"target": name, "examples": examples, "inputs": target.inputs,
            "escapes": len(escapes), "seconds": seconds, "peak_mib": peak,
            "first": escapes[:SHOWN]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, metavar="N",
                        help="Hypothesis examples per target (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated subset of {','.join(TARGETS)}")
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown or args.examples < 1:
        parser.error(f"unknown targets {unknown}" if unknown else "--examples must be >= 1")
    rows = []
    print(f"{'target':<18} {'examples':>8} {'inputs':>8} {'escapes':>7} {'seconds':>8} "
          f"{'peak MiB':>8}", flush=True)
    for name in names:
        row = fuzz(name, args.examples, args.seed)
        rows.append(row)
        print(f"{name:<18} {row['examples']:>8} {row['inputs']:>8} {row['escapes']:>7} "
              f"{row['seconds']:>8.1f} {row['peak_mib']:>8.0f}", flush=True)
    total = sum(r["escapes"] for r in rows)
    print(f"{'total':<18} {sum(r['examples'] for r in rows):>8} "
          f"{sum(r['inputs'] for r in rows):>8} {total:>7} "
          f"{sum(r['seconds'] for r in rows):>8.1f}")
    for row in rows:
        for escape in row["first"]:
            print(f"\n[{row['target']}] {escape}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
