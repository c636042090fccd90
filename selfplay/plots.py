"""Training curves as PNG: losses and throughput against wall time, from metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from checkpoints.files import atomic_write_bytes


def _column(rows: list[dict], key: str) -> list[float]:
    out = []
    for row in rows:
        try:
            out.append(float(row.get(key) or "nan"))
        except ValueError:
            out.append(float("nan"))
    return out


def plot_metrics(metrics_csv: Path, out_png: Path, title: str = "") -> Path:
    """Draws loss/policy, loss/value and self-play positions/s against minutes.

    MuZero runs add the reward loss; environments (Atari) a third panel with the
    mean return of the training episodes that ended in each iteration.

    Writes `out_png` atomically and returns it. Blocks (about a second).
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    minutes = [t / 60 for t in _column(rows, "time_s")]
    returns = _column(rows, "selfplay/mean_return")
    episodic = any(r == r for r in returns)  # some value is not NaN
    fig, axes = plt.subplots(1, 3 if episodic else 2, figsize=(15 if episodic else 10, 3.6))
    ax_loss, ax_speed = axes[0], axes[1]
    ax_loss.plot(minutes, _column(rows, "loss/policy"), label="policy cross-entropy")
    ax_loss.plot(minutes, _column(rows, "loss/value"), label="value loss")
    reward = _column(rows, "loss/reward")
    if any(r == r for r in reward):
        ax_loss.plot(minutes, reward, label="reward loss")
    ax_loss.set_xlabel("minutes")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_speed.plot(minutes, _column(rows, "selfplay/positions_per_s"), color="tab:green")
    ax_speed.set_xlabel("minutes")
    ax_speed.set_ylabel("self-play positions/s")
    ax_speed.grid(alpha=0.3)
    if episodic:
        points = [(m, r) for m, r in zip(minutes, returns) if r == r]
        axes[2].plot([m for m, _ in points], [r for _, r in points], ".", alpha=0.5,
                     label="mean return of the episodes ending in an iteration")
        axes[2].set_xlabel("minutes")
        axes[2].set_ylabel("training episode return (game score)")
        axes[2].legend(fontsize="small")
        axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())
    return Path(out_png)
