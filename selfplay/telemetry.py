"""What self-play and training are doing, for the progress line and metrics.csv.

Actors report one `dict` per chunk of moves (`chunk_stats`); the learner sums
them per iteration (`combine`) into the metrics columns: positions and
simulations per second, mean network batch, the split of actor time between
network, tree and game rules, and resident memory.
"""

from __future__ import annotations

import os

from engine.search import Timings

COUNTS = ("moves", "simulations", "evaluations", "batches", "games", "cache_hits")
SECONDS = ("seconds", "network_s", "tree_s", "rules_s")


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default) in bytes; 0 if unknown.

    Reads /proc (Linux); elsewhere this process's peak RSS from getrusage.
    """
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        if pid is not None:
            return 0
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_files() -> int:
    """File descriptors this process holds open (Linux /proc; 0 if unknown)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def threads() -> int:
    """Threads of this process (Linux /proc; 0 if unknown)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def child_processes() -> int:
    """Live processes whose parent is this one (Linux /proc; 0 if unknown)."""
    me, count = os.getpid(), 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(me) and fields[0] != "Z":
            count += 1
    return count


def chunk_stats(before: Timings, after: Timings, moves: int, simulations: int, games: int,
                seconds: float) -> dict:
    """One actor chunk's figures, from its search timings before and after."""
    return {
        "moves": moves, "simulations": simulations, "games": games, "seconds": seconds,
        "evaluations": after.evaluations - before.evaluations,
        "batches": after.batches - before.batches,
        "network_s": after.network_s - before.network_s,
        "tree_s": after.tree_s - before.tree_s,
        "rules_s": after.game_s - before.game_s,
    }


def snapshot(timings: Timings) -> Timings:
    return Timings(timings.network_s, timings.game_s, timings.tree_s, timings.evaluations,
                   timings.batches)


def combine(chunks: list[dict]) -> dict:
    """Metrics columns for the chunks that arrived in one iteration.

    Rates are each actor's own (moves over the time it spent playing them),
    summed over actors: the pool's throughput while it plays. Chunks finish
    at their own times, so dividing by the learner's iteration time would
    swing with how many happened to land in it. The time split is the share
    of the actors' search time.
    """
    total = {k: sum(c.get(k, 0) for c in chunks) for k in COUNTS + SECONDS}
    by_actor: dict = {}
    for c in chunks:
        a = by_actor.setdefault(c.get("actor", 0), {"seconds": 0.0, "moves": 0,
                                                     "simulations": 0, "evaluations": 0})
        for key in a:
            a[key] += c.get(key, 0)

    def rate(key):
        return sum(a[key] / max(a["seconds"], 1e-9) for a in by_actor.values())

    busy = max(total["network_s"] + total["tree_s"] + total["rules_s"], 1e-9)
    row = {
        "selfplay/positions_per_s": rate("moves"),
        "selfplay/sims_per_s": rate("simulations"),
        "selfplay/evals_per_s": rate("evaluations"),
        "selfplay/mean_batch": total["evaluations"] / max(total["batches"], 1),
        "time/network": total["network_s"] / busy,
        "time/tree": total["tree_s"] / busy,
        "time/rules": total["rules_s"] / busy,
    }
    if not chunks:
        row = {k: float("nan") for k in row}
    row["selfplay/cache_hit_rate"] = (total["cache_hits"] / total["evaluations"]
                                      if total["evaluations"] else float("nan"))
    row["selfplay/backend"] = "+".join(sorted({c["backend"] for c in chunks if c.get("backend")}))
    return row
