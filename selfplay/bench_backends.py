"""`tabula bench backends`: the same short training run on several backends, compared.

Runs `tabula train` once per configuration, one after another, each for
`--minutes` of wall time from scratch with the same seed and settings, and
prints for each: positions and learner steps per minute over the whole run
(start-up included), and the loss at equal numbers of positions seen, so
learning curves can be compared. Writes OUT.csv and OUT.png (loss against
positions). Configurations:

    local0   self-play and training alternating in one process (--actors 0)
    localN   N local actor processes beside the learner
    rayN     N Ray actors on a Ray instance started on this machine
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import time
from pathlib import Path

from checkpoints.files import atomic_write_bytes


def _parse(name: str) -> tuple[str, str]:
    m = re.fullmatch(r"(local|ray)(\d+)", name)
    if not m:
        raise ValueError(f"--configs: {name!r} is not localN or rayN")
    return m.group(1), m.group(2)


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def loss_at(rows: list[dict], positions: float) -> float:
    """loss/total of the first iteration that had seen `positions` positions (NaN if none)."""
    for r in rows:
        if float(r["positions"]) >= positions and r.get("loss/total"):
            return float(r["loss/total"])
    return float("nan")


def run_config(name: str, game: str, minutes: float, out_dir: Path, extra: list[str]) -> dict:
    backend, actors = _parse(name)
    run = out_dir / name
    cmd = [sys.executable, "-m", "tabula", "train", "--game", game, "--run", str(run),
           "--minutes", str(minutes), "--backend", backend, "--actors", actors,
           "--no-progress", *extra]
    print("$ " + " ".join(cmd[2:]), flush=True)
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    rows = _rows(run)
    last = rows[-1]
    return {"config": name, "wall_s": wall, "rows": rows, "run": str(run),
            "positions": int(last["positions"]), "games": int(last["games"]),
            "learner_step": int(last["learner_step"]),
            "positions_per_min": int(last["positions"]) / (wall / 60),
            "steps_per_min": int(last["learner_step"]) / (wall / 60)}


def plot(results: list[dict], out_png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    styles = [("-", "o", 7), ("--", "x", 9), (":", "+", 11)]  # curves that coincide stay visible
    for i, r in enumerate(results):
        xs = [float(x["positions"]) for x in r["rows"] if x.get("loss/total")]
        ys = [float(x["loss/total"]) for x in r["rows"] if x.get("loss/total")]
        line, marker, size = styles[i % len(styles)]
        ax.plot(xs, ys, label=r["config"], linestyle=line, marker=marker, markersize=size,
                fillstyle="none")
    ax.set_xlabel("positions seen")
    ax.set_ylabel("loss/total")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_png, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench backends",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="connect4")
    parser.add_argument("--minutes", type=float, default=8.0, help="per configuration")
    parser.add_argument("--configs", default="local1,ray1")
    parser.add_argument("--dir", required=True, help="a new directory for the runs")
    parser.add_argument("--out", default="backends", help="writes OUT.csv and OUT.png")
    parser.add_argument("train_args", nargs="*", help="more `tabula train` arguments (after --)")
    args = parser.parse_args(argv)
    out_dir = Path(args.dir)
    if out_dir.exists():
        parser.error(f"--dir {out_dir} exists; give a new directory")
    try:
        names = [n.strip() for n in args.configs.split(",") if n.strip()]
        for n in names:
            _parse(n)
    except ValueError as e:
        parser.error(str(e))
    results = [run_config(n, args.game, args.minutes, out_dir, args.train_args) for n in names]
    common = min(r["positions"] for r in results)
    marks = [common * f for f in (0.25, 0.5, 0.75, 1.0)]
    print(f"\n{args.game}, {args.minutes:g} min per run (wall time includes start-up)")
    print(f"  {'config':8s} {'positions/min':>13s} {'steps/min':>10s} {'games':>7s} "
          + " ".join(f"loss@{m / 1000:.0f}k" for m in marks))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["config", "wall_s", "positions", "games", "learner_step",
                     "positions_per_min", "steps_per_min"] + [f"loss_at_{int(m)}" for m in marks])
    for r in results:
        losses = [loss_at(r["rows"], m) for m in marks]
        print(f"  {r['config']:8s} {r['positions_per_min']:13.0f} {r['steps_per_min']:10.1f} "
              f"{r['games']:7d} " + " ".join(f"{x:8.3f}" for x in losses))
        writer.writerow([r["config"], f"{r['wall_s']:.1f}", r["positions"], r["games"],
                         r["learner_step"], f"{r['positions_per_min']:.1f}",
                         f"{r['steps_per_min']:.2f}"] + [f"{x:.4f}" for x in losses])
    atomic_write_bytes(Path(f"{args.out}.csv"), table.getvalue().encode())
    plot(results, Path(f"{args.out}.png"), f"{args.game}: loss against positions seen")
    print(f"wrote {args.out}.csv, {args.out}.png; runs in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
