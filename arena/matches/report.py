"""Reports of ratings: the terminal table, CSV with training steps, and the Elo-over-training plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

ELO_CSV = "elo.csv"
ELO_PNG = "elo.png"


def ratings_from_db(db, game: str | None = None, anchor: str | None = None, **options):
    """Ratings of every player in the database (for one game).

    The anchor defaults to `random` when it played, else the checkpoint with
    the lowest step, else the first player stored.

    Raises:
      EloError: no games, or an unknown anchor.
    """
    from arena.matches.elo import EloError, rate

    players = db.players(game)
    outcomes = db.outcomes(game)
    if not outcomes:
        raise EloError(f"{db.path} holds no games" + (f" of {game}" if game else ""))
    if anchor is None:
        names = {p.name for p in players}
        stepped = sorted((p.step, i, p.name) for i, p in enumerate(players)
                         if p.step is not None and p.kind == "checkpoint")
        if "random" in names:
            anchor = "random"
        elif stepped:
            anchor = stepped[0][2]
    return rate(outcomes, anchor=anchor, **options)


def csv_text(ratings, players) -> str:
    """The ratings table as CSV, with each player's kind and training step."""
    rows = {p.name: p for p in players}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "name", "kind", "step", "elo", "low", "high", "games", "points",
                     "wins", "draws", "losses", "score", "flag"])
    for rank, r in enumerate(ratings.players, 1):
        row = rows.get(r.name)
        step = "" if row is None or row.step is None else row.step
        writer.writerow([rank, r.name, row.kind if row else "", step, f"{r.elo:.1f}",
                         f"{r.low:.1f}", f"{r.high:.1f}", r.games, f"{r.points:g}", r.wins,
                         r.draws, r.losses, f"{r.score:.4f}", r.flag or ""])
    return out.getvalue()


def write_reports(directory: str | Path, ratings, players, title: str) -> list[Path]:
    """Writes elo.csv and (when checkpoints have steps) elo.png into `directory`."""
    from checkpoints.files import atomic_write_bytes

    directory = Path(directory)
    written = [directory / ELO_CSV]
    atomic_write_bytes(written[0], csv_text(ratings, players).encode())
    if plot_elo(ratings, players, directory / ELO_PNG, title):
        written.append(directory / ELO_PNG)
    return written


def plot_elo(ratings, players, path: Path, title: str) -> bool:
    """Elo against training step with the 95% band; baselines as horizontal lines.

    Returns False (and writes nothing) when fewer than two checkpoints have steps.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from checkpoints.files import atomic_write_bytes

    by_name = {r.name: r for r in ratings.players}
    points = sorted((p.step, by_name[p.name]) for p in players
                    if p.kind == "checkpoint" and p.step is not None and p.name in by_name)
    if len(points) < 2:
        return False
    steps = [s for s, _ in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.fill_between(steps, [r.low for _, r in points], [r.high for _, r in points],
                    alpha=0.25, label="95% confidence")
    ax.plot(steps, [r.elo for _, r in points], marker="o", label="checkpoints")
    for p in players:
        r = by_name.get(p.name)
        if p.kind != "checkpoint" and r is not None:
            ax.axhline(r.elo, linestyle="--", linewidth=1, color="grey")
            ax.annotate(p.name, (steps[0], r.elo), fontsize=8, va="bottom")
    ax.set_xlabel("learner step")
    ax.set_ylabel(f"Elo (anchor {ratings.anchor} = {by_name[ratings.anchor].elo:g})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return True
