"""`tabula bench memory`: resident memory of a training run, sampled every minute.

Starts `tabula train` as a subprocess (local backend, its actor processes as
children) and every `--interval` seconds adds up the resident memory (RSS)
of the learner process and of every process below it, with the replay
window's fill from metrics.csv. Writes OUT.csv and OUT.png and prints the
growth after the window filled, in MB per hour: memory must stay flat once
the window is full (the replay ring is preallocated; shards live on disk).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

from checkpoints.files import atomic_write_bytes
from selfplay.telemetry import rss_bytes


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _buffer(run_dir: Path) -> int:
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return int(rows[-1]["buffer_positions"]) if rows else 0
    except (OSError, KeyError, ValueError):
        return 0


def plot(rows: list[dict], window: int, out_png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["minute"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(minutes, [r["total_mb"] for r in rows], label="all processes", marker=".")
    ax.plot(minutes, [r["learner_mb"] for r in rows], label="learner process", marker=".")
    ax.plot(minutes, [r["actors_mb"] for r in rows], label="actor processes", marker=".")
    full = next((r["minute"] for r in rows if r["buffer_positions"] >= window), None)
    if full is not None:
        ax.axvline(full, color="grey", linestyle="--", label="replay window full")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_png, buf.getvalue())


def growth_per_hour(rows: list[dict], window: int) -> float | None:
    """Least-squares slope of total RSS (MB/hour) over the samples after the window filled."""
    after = [r for r in rows if r["buffer_positions"] >= window]
    if len(after) < 3:
        return None
    xs = [r["minute"] / 60 for r in after]
    ys = [r["total_mb"] for r in after]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench memory",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="connect4")
    parser.add_argument("--run", required=True, help="a new run directory")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--window", type=int, default=50_000, help="replay.window_positions")
    parser.add_argument("--actors", default="auto")
    parser.add_argument("--out", default="memory", help="writes OUT.csv and OUT.png")
    parser.add_argument("train_args", nargs="*", help="more `tabula train` arguments (after --)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run)
    if run_dir.exists():
        parser.error(f"--run {run_dir} exists; give a new directory")
    cmd = [sys.executable, "-m", "tabula", "train", "--game", args.game, "--run", str(run_dir),
           "--minutes", str(args.minutes), "--actors", args.actors, "--no-progress",
           "--set", f"replay.window_positions={args.window}", *args.train_args]
    print("$ " + " ".join(cmd[2:]), flush=True)
    proc = subprocess.Popen(cmd)
    rows: list[dict] = []
    start = time.monotonic()
    try:
        while True:
            pids = descendants(proc.pid)
            learner = rss_bytes(proc.pid) / 2**20
            actors = sum(rss_bytes(p) for p in pids) / 2**20
            row = {"minute": round((time.monotonic() - start) / 60, 2),
                   "learner_mb": round(learner, 1), "actors_mb": round(actors, 1),
                   "total_mb": round(learner + actors, 1), "processes": 1 + len(pids),
                   "buffer_positions": _buffer(run_dir)}
            if learner > 0:
                rows.append(row)
                print(f"  {row['minute']:6.1f} min  learner {learner:7.0f} MB  actors "
                      f"{actors:7.0f} MB  replay {row['buffer_positions']}/{args.window}",
                      flush=True)
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=list(row))
                writer.writeheader()
                writer.writerows(rows)
                atomic_write_bytes(Path(f"{args.out}.csv"), text.getvalue().encode())
            try:
                proc.wait(timeout=args.interval)
                break
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
    if rows:
        plot(rows, args.window, Path(f"{args.out}.png"),
             f"{args.game} training, replay window {args.window:,} positions")
    slope = growth_per_hour(rows, args.window)
    full = [r for r in rows if r["buffer_positions"] >= args.window]
    if full:
        print(f"window full at {full[0]['minute']:.1f} min: {full[0]['total_mb']:.0f} MB; "
              f"last sample {full[-1]['minute']:.1f} min: {full[-1]['total_mb']:.0f} MB; "
              f"growth after the window filled {slope if slope is not None else float('nan'):+.1f}"
              f" MB/hour; wrote {args.out}.csv, {args.out}.png")
    else:
        print(f"the replay window ({args.window}) never filled; wrote {args.out}.csv")
    return proc.returncode or 0


if __name__ == "__main__":
    raise SystemExit(main())
