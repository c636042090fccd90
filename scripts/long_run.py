"""A long self-play + training run, watched from outside: memory, files, processes.

Starts `tabula train` as a real subprocess and samples its whole process tree
(the learner and every actor it spawns) from /proc every --interval seconds:
resident memory, open file descriptors, processes, threads, the run
directory's size on disk and its replay shards' (pruned to the window). Writes the samples as CSV, draws them as PNG and
prints a one-line verdict: the memory growth after the replay window filled.

    python scripts/long_run.py --run /tmp/long60 --minutes 60 --game connect4 \\
        --actors 1 --window-mb 16 --out docs/reliability/long_run

Linux only (/proc).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["time_s", "rss_mb", "learner_rss_mb", "actors_rss_mb", "processes", "threads",
           "open_files", "run_dir_mb", "replay_mb"]


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, threads) of a live process, None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[17])


def _tree(root: int) -> list[int]:
    """root and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _stat(pid) is None:
            continue
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _du_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total / 2**20


def sample(root: int, run_dir: Path, t: float) -> dict:
    pids = _tree(root)
    rss = {pid: _rss_mb(pid) for pid in pids}
    return {"time_s": round(t, 1), "rss_mb": round(sum(rss.values()), 1),
            "learner_rss_mb": round(rss.get(root, 0.0), 1),
            "actors_rss_mb": round(sum(v for p, v in rss.items() if p != root), 1),
            "processes": len(pids),
            "threads": sum((_stat(p) or (0, 0))[1] for p in pids),
            "open_files": sum(_fds(p) for p in pids),
            "run_dir_mb": round(_du_mb(run_dir), 1),
            "replay_mb": round(_du_mb(run_dir / "replay"), 1)}


def _fill_time(run_dir: Path) -> float | None:
    """Seconds into the run when the replay window stopped growing (from metrics.csv)."""
    path = run_dir / "metrics.csv"
    if not path.exists():
        return None
    rows = [r for r in csv.DictReader(path.open()) if r.get("buffer_positions")]
    if not rows:
        return None
    # AlphaZero's window is preallocated (replay/bytes is constant): count positions.
    top = max(int(r["buffer_positions"]) for r in rows)
    for r in rows:
        if int(r["buffer_positions"]) >= top:
            return float(r["time_s"])
    return None


def _slope_per_hour(rows: list[dict], key: str, after: float) -> float:
    """Least-squares growth of `key` per hour over the samples after `after` seconds."""
    pts = [(r["time_s"], r[key]) for r in rows if r["time_s"] >= after]
    if len(pts) < 2:
        return float("nan")
    n = len(pts)
    mx = sum(t for t, _ in pts) / n
    my = sum(v for _, v in pts) / n
    var = sum((t - mx) ** 2 for t, _ in pts)
    return 3600 * sum((t - mx) * (v - my) for t, v in pts) / var if var else float("nan")


def plot(rows: list[dict], fill: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["time_s"] / 60 for r in rows]
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, label in (("rss_mb", "all processes"), ("learner_rss_mb", "learner"),
                       ("actors_rss_mb", "actors"), ("run_dir_mb", "run directory on disk"),
                       ("replay_mb", "replay shards on disk")):
        ax.plot(minutes, [r[key] for r in rows], label=label)
    if fill is not None:
        ax.axvline(fill / 60, color="grey", linestyle="--", label="replay window full")
    ax.set_ylabel("MiB")
    ax.legend(fontsize=8)
    ax.set_title(title)
    for key in ("open_files", "processes", "threads"):
        bx.plot(minutes, [r[key] for r in rows], label=key)
    bx.set_xlabel("minutes")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="new run directory")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--game", default="connect4")
    parser.add_argument("--actors", default="1")
    parser.add_argument("--window-mb", type=float, default=16.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, required=True,
                        help="path prefix: writes PREFIX.csv and PREFIX.png")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    if args.run.exists():
        parser.error(f"{args.run} exists; give a new run directory")
    cmd = [sys.executable, "-m", "tabula", "train", "--game", args.game, "--run", str(args.run),
           "--actors", args.actors, "--no-progress",
           "--set", f"run.max_minutes={args.minutes}",
           "--set", f"replay.window_mb={args.window_mb}"]
    for item in args.set:
        cmd += ["--set", item]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = open(f"{args.out}.log", "w")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    rows: list[dict] = []
    with open(f"{args.out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        while proc.poll() is None:
            row = sample(proc.pid, args.run, time.monotonic() - start)
            if row["processes"]:
                rows.append(row)
                writer.writerow(row)
                f.flush()
            time.sleep(args.interval)
    log.close()
    fill = _fill_time(args.run)
    after = fill if fill is not None else rows[-1]["time_s"] / 2
    plot(rows, fill, Path(f"{args.out}.png"),
         f"tabula train {args.game}, {args.actors} actor(s), window {args.window_mb:g} MiB")
    steady = [r for r in rows if r["time_s"] >= after] or rows
    print(f"exit {proc.returncode}; {len(rows)} samples over {rows[-1]['time_s'] / 60:.1f} min; "
          f"window full at {after / 60:.1f} min; memory after that "
          f"{min(r['rss_mb'] for r in steady):.0f}-{max(r['rss_mb'] for r in steady):.0f} MiB "
          f"(growth {_slope_per_hour(rows, 'rss_mb', after):+.1f} MiB/h, learner "
          f"{_slope_per_hour(rows, 'learner_rss_mb', after):+.1f}, actors "
          f"{_slope_per_hour(rows, 'actors_rss_mb', after):+.1f}); peak "
          f"{max(r['rss_mb'] for r in rows):.0f} MiB; open files "
          f"{min(r['open_files'] for r in steady)}-{max(r['open_files'] for r in steady)}; "
          f"processes {min(r['processes'] for r in steady)}-"
          f"{max(r['processes'] for r in steady)}; threads "
          f"{min(r['threads'] for r in steady)}-{max(r['threads'] for r in steady)}; "
          f"replay on disk {min(r['replay_mb'] for r in steady):.1f}-"
          f"{max(r['replay_mb'] for r in steady):.1f} MiB "
          f"({_slope_per_hour(rows, 'replay_mb', after):+.1f} MiB/h), run directory "
          f"{rows[-1]['run_dir_mb']:.0f} MiB "
          f"({_slope_per_hour(rows, 'run_dir_mb', after):+.1f} MiB/h: checkpoints are kept)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
