"""Checkpoints of a run directory with the wall time at which each was written.

Used to evaluate a whole training run (`tabula eval --run DIR`), e.g. to find
the first checkpoint that plays perfectly and how long training took to get
there.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunCheckpoint:
    """A checkpoint of a run and when training produced it."""

    path: Path
    step: int
    iteration: int
    seconds: float | None
    """Training wall time when its iteration ended (metrics.csv), if known."""


def run_checkpoints(run_dir: str | Path, every: int = 1) -> list[RunCheckpoint]:
    """Every `every`-th checkpoint of `run_dir` (always the last), oldest first.

    Raises:
      ValueError: `run_dir` has no checkpoints.
    """
    from checkpoints import list_checkpoints, read_metadata

    run_dir = Path(run_dir)
    paths = list_checkpoints(run_dir / "checkpoints")
    if not paths:
        raise ValueError(f"{run_dir} has no checkpoints (expected {run_dir}/checkpoints/"
                         "step-*.safetensors)")
    chosen = paths[::max(every, 1)]
    if chosen[-1] != paths[-1]:
        chosen.append(paths[-1])
    times = iteration_times(run_dir / "metrics.csv")
    out = []
    for path in chosen:
        meta = read_metadata(path)
        iteration = int(meta.get("extra", {}).get("iteration", 0))
        out.append(RunCheckpoint(path, int(meta["step"]), iteration, times.get(iteration)))
    return out


def iteration_times(path: Path) -> dict[int, float]:
    """iteration -> cumulative training seconds, summed over resumed sessions."""
    if not path.exists():
        return {}
    times: dict[int, float] = {}
    offset = 0.0
    previous = 0.0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                iteration, t = int(row["iteration"]), float(row["time_s"])
            except (KeyError, TypeError, ValueError):
                continue
            if t < previous:  # a resumed session restarts its clock
                offset += previous
            previous = t
            times[iteration] = offset + t
    return times
