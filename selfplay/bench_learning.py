"""`tabula bench learning`: strength against ground truth along a run, as curves.

Trains a run first when asked (`--minutes`), or reads one that exists, then
evaluates every k-th checkpoint after the training has ended (evaluation never
shares the cores with the run it measures) against truth:

  tictactoe  minimax   share of the checkpoint's moves that keep the exact value
                       (every position it can reach, both sides)
  connect4   strict    share of moves that keep the win or the draw on the solved
                       positions won or drawn for the side to move (../shared/data)
             keeps     the same over every solved position (lost ones flatter it)
             mcts      score against open_spiel's MCTSBot (random rollouts)
  go9        gnugo     score against gnugo --level 1 --capture-all-dead (GTP)
  chess      random    score against a uniformly random mover
             stockfish score against stockfish at Skill Level 0 (UCI)
  spiel/*    mcts      score against open_spiel's MCTSBot (random rollouts)
             random    score against a uniformly random mover
  a user's game  random (MCTSBot needs open_spiel's rules)
  gym/*, atari/*
             return    mean greedy (noise-free) return over --games episodes, with
                       its normal 95% interval instead of Wilson's
  any board game
             first     score against the run's first checkpoint

Each measure comes with its 95% Wilson interval. RUN/learning.csv gets a row
per checkpoint: minutes of training, self-play positions, network evaluations,
learner steps and the measures; RUN/learning.png draws them against minutes
(what users feel) and against network evaluations (what holds across
machines). Rows already in learning.csv for the same settings are reused.
`--compare RUN_A RUN_B ...` draws several runs' learning.csv on one plot and
prints each run's last row.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from checkpoints.files import atomic_write_bytes

Z95 = 1.959964

MEASURES = {
    "tictactoe": ("minimax", "first"),
    "connect4": ("strict", "keeps", "mcts", "first"),
    "go9": ("gnugo", "first"),
    "chess": ("random", "stockfish", "first"),
}
"""The measures each game offers; the first ones are the defaults (see DEFAULTS)."""
DEFAULTS = {"tictactoe": ("minimax",), "connect4": ("strict", "keeps"),
            "go9": ("gnugo",), "chess": ("random",)}
# Games end after two passes and are scored by Tromp-Taylor area (every stone on the
# board alive), so gnugo must remove the stones it knows are dead before it passes.
GNUGO = "gnugo1=gtp:gnugo --mode gtp --level 1 --chinese-rules --capture-all-dead"
STOCKFISH = "uci:stockfish"
COLUMNS = ["checkpoint", "step", "iteration", "minutes", "games", "positions", "evaluations",
           "learner_steps", "sims"]


def wilson(successes: float, n: int) -> tuple[float, float, float]:
    """(share, low, high): the 95% Wilson score interval of successes out of n."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    p = successes / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Settings:
    game: str
    measures: tuple[str, ...]
    sims: int | None
    games: int
    final_games: int
    opponent_sims: int
    seed: int

    def key(self) -> str:
        """What a cached row must agree on to be reused."""
        return json.dumps([self.measures, self.sims, self.games, self.final_games,
                           self.opponent_sims, self.seed])


# Measures ----------------------------------------------------------------------------

def _player(game: str, path: Path, sims: int | None, seed: int):
    from arena import load_player

    return load_player(game, str(path), sims, seed)


def measure_minimax(game: str, path: Path, s: Settings) -> tuple[float, float, float, int]:
    from arena import check_perfect

    player = _player(game, path, s.sims, s.seed)
    report = check_perfect(player.game, player)
    return (*wilson(report.decisions - report.blunders, report.decisions), report.decisions)


_SOLVED_CACHE: dict = {}


def _solved(game: str, path: Path, s: Settings, strict: bool):
    """One search over every solved position serves both measures (`strict` keeps only
    the positions won or drawn for the side to move)."""
    from arena import DEFAULT_DATA, evaluate_solved, keeps_value, load_positions

    key = (str(path), s.sims, s.seed)
    if key not in _SOLVED_CACHE:
        positions = load_positions(DEFAULT_DATA)
        player = _player(game, path, s.sims, s.seed)
        report = evaluate_solved(player.game, player, positions)
        _SOLVED_CACHE.clear()
        _SOLVED_CACHE[key] = [(p.score, keeps_value(p, move))
                              for p, (move, _) in zip(positions, report.moves)]
    pairs = [(score, kept) for score, kept in _SOLVED_CACHE[key] if score >= 0 or not strict]
    return (*wilson(sum(k for _, k in pairs), len(pairs)), len(pairs))


def measure_strict(game, path, s):
    return _solved(game, path, s, strict=True)


def measure_keeps(game, path, s):
    return _solved(game, path, s, strict=False)


def _match(game: str, path: Path, opponent: str, games: int, s: Settings,
           options=(), move_time: float | None = None):
    """(score, low, high, games) of the checkpoint against `opponent` (a player spec)."""
    from arena.matches.match import MatchSettings, run_match
    from arena.matches.players import checkpoint_spec, parse_player

    if games <= 0:
        return math.nan, math.nan, math.nan, 0
    mine = checkpoint_spec(path, game, s.sims)
    other = parse_player(opponent, game, s.opponent_sims, options=options, move_time=move_time)
    scores: list[float] = []

    def on_result(result):
        first_is_mine = result.first == mine.name
        scores.append(result.score if first_is_mine else 1.0 - result.score)

    run_match(game, mine, other, range(games), MatchSettings(game, s.seed), on_result)
    return (*wilson(sum(scores), len(scores)), len(scores))


def measure_mcts(game, path, s, games):
    return _match(game, path, f"mcts:{s.opponent_sims}", games, s)


def measure_gnugo(game, path, s, games):
    return _match(game, path, GNUGO, games, s, move_time=1.0)


def measure_random(game, path, s, games):
    return _match(game, path, "random", games, s)


def measure_stockfish(game, path, s, games):
    return _match(game, path, STOCKFISH, games, s, options=[("Skill Level", "0")],
                  move_time=0.05)


def measure_first(game, path, s, games, first: Path):
    return _match(game, path, str(first), games, s)


def measure_return(game, path, s, games):
    """(mean, low, high, episodes): the checkpoint's greedy return over `games` episodes,
    played at once, environment i seeded s.seed + i."""
    from arena.protocols.watch import WatchConfig, load_agent, mean_ci95, play_episodes
    from games import get_game

    if games <= 0:
        return math.nan, math.nan, math.nan, 0
    env_game = get_game(game)
    config = WatchConfig(checkpoint=str(path), sims=s.sims, episodes=games, seed=s.seed,
                         progress=False)
    episodes = play_episodes(env_game, load_agent(env_game, config), config)
    mean, half = mean_ci95([e.ret for e in episodes])
    half = 0.0 if half is None else half
    return mean, mean - half, mean + half, len(episodes)


_POSITIONAL = {"minimax": measure_minimax, "strict": measure_strict, "keeps": measure_keeps}
_GAMES = {"mcts": measure_mcts, "gnugo": measure_gnugo, "random": measure_random,
          "stockfish": measure_stockfish, "return": measure_return}


def game_measures(game: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the measures `game` offers, the default ones) for any game, wired by hand or not."""
    if game in MEASURES:
        return MEASURES[game], DEFAULTS[game]
    from games import get_game
    from games.base import SpielBacked

    the_game = get_game(game)
    if the_game.info.kind == "environment":  # gym/*, atari/*: no opponent
        return ("return",), ("return",)
    if isinstance(the_game, SpielBacked) and the_game.spiel_game is not None:
        return ("mcts", "random", "first"), ("mcts",)  # MCTSBot plays open_spiel's games
    return ("random", "first"), ("random",)  # a user's own rules


# Run bookkeeping ---------------------------------------------------------------------

def _metrics_rows(run: Path) -> dict[int, dict]:
    """iteration -> its metrics.csv row, with cumulative minutes over resumed sessions."""
    from arena.matches.progress import iteration_times

    path = run / "metrics.csv"
    times = iteration_times(path)
    if not times:
        return {}
    with open(path, newline="") as f:
        rows = {row.get("iteration"): row for row in csv.DictReader(f)}
    return {i: dict(rows[str(i)], minutes=t / 60) for i, t in times.items()}


def _estimated_evaluations(metrics: dict[int, dict]) -> dict[int, float]:
    """iteration -> network evaluations, for runs from before they were counted: each
    iteration's new positions times its evaluations per position (the two rates)."""
    out, total, previous = {}, 0.0, 0
    for iteration in sorted(metrics):
        row = metrics[iteration]
        positions = int(_number(row, "positions")) if _number(row, "positions") == \
            _number(row, "positions") else previous
        ratio = _number(row, "selfplay/evals_per_s") / _number(row, "selfplay/positions_per_s")
        if ratio == ratio and ratio != math.inf:
            total += ratio * (positions - previous)
        previous = positions
        out[iteration] = total
    return out


def _number(row: dict, key: str) -> float:
    """A row's number (rows from learning.csv hold text), NaN where it has none."""
    value = row.get(key)
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def checkpoint_facts(run: Path, every: int) -> list[dict]:
    """The chosen checkpoints (every `every`-th and the last), with their run counters."""
    from checkpoints import list_checkpoints, read_metadata

    paths = list_checkpoints(run / "checkpoints")
    if not paths:
        raise ValueError(f"{run} has no checkpoints (train it first, or give --minutes)")
    chosen = paths[::max(every, 1)]
    if chosen[-1] != paths[-1]:
        chosen.append(paths[-1])
    metrics = _metrics_rows(run)
    estimated = _estimated_evaluations(metrics)
    out = []
    for path in chosen:
        meta = read_metadata(path)
        extra = meta.get("extra", {})
        iteration = int(extra.get("iteration", 0))
        row = metrics.get(iteration, {})
        evaluations = extra.get("evaluations")
        if evaluations is None:  # a run from before the count: estimated from its rates
            evaluations = estimated.get(iteration, math.nan)
            evaluations = round(evaluations) if evaluations == evaluations else ""
        out.append({"checkpoint": path.name, "path": path, "step": int(meta["step"]),
                    "iteration": iteration, "minutes": row.get("minutes", math.nan),
                    "games": int(meta.get("games", 0)), "positions": int(meta.get("positions", 0)),
                    "evaluations": evaluations, "learner_steps": int(meta["step"])})
    return out


def read_learning(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_learning(path: Path, rows: list[dict], measures: tuple[str, ...]) -> None:
    columns = COLUMNS + [f"{m}{suffix}" for m in measures for suffix in ("", "_low", "_high",
                                                                       "_n")] + ["settings"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, out.getvalue().encode())


def evaluate_run(run: Path, s: Settings, every: int, progress: bool = True) -> list[dict]:
    """Evaluates the chosen checkpoints (reusing rows learning.csv has for the same
    settings); rewrites learning.csv after each; returns the rows. Blocks."""
    facts = checkpoint_facts(run, every)
    cached = {r["checkpoint"]: r for r in read_learning(run / "learning.csv")
              if r.get("settings") == s.key()}
    first = checkpoint_facts(run, 10**9)[0]["path"]
    rows = []
    for i, fact in enumerate(facts):
        if fact["checkpoint"] in cached:  # its measures; the run's figures as they are now
            rows.append(cached[fact["checkpoint"]] | {k: v for k, v in fact.items()
                                                      if k != "path"})
            continue
        last = i == len(facts) - 1
        games = s.final_games if last else s.games
        row = {k: v for k, v in fact.items() if k != "path"}
        row.update(sims=s.sims if s.sims is not None else "trained", settings=s.key())
        for m in s.measures:
            if m in _POSITIONAL:
                value = _POSITIONAL[m](s.game, fact["path"], s)
            elif m == "first":
                value = measure_first(s.game, fact["path"], s, games, first)
            else:
                value = _GAMES[m](s.game, fact["path"], s, games)
            for suffix, v in zip(("", "_low", "_high", "_n"), value):
                row[f"{m}{suffix}"] = v
        rows.append(row)
        if progress:
            print(_row_line(row, s.measures), flush=True)
        write_learning(run / "learning.csv", rows + [cached[f["checkpoint"]] for f in
                                                     facts[i + 1:] if f["checkpoint"] in cached],
                       s.measures)
    write_learning(run / "learning.csv", rows, s.measures)
    return rows


def _row_line(row: dict, measures) -> str:
    parts = [f"{row['checkpoint']}: {_number(row, 'minutes'):6.1f} min, "
             f"{int(_number(row, 'positions')):>9,} positions"]
    for m in measures:
        n = _number(row, f"{m}_n")
        if not n > 0:  # not measured at this checkpoint (NaN or 0 games)
            continue
        digits = 1 if m == "return" else 3
        parts.append(f"{m} {_number(row, m):.{digits}f} ({_number(row, m + '_low'):.{digits}f}-"
                     f"{_number(row, m + '_high'):.{digits}f}, n {int(n)})")
    return "; ".join(parts)


# Plots -------------------------------------------------------------------------------

def plot_runs(runs: dict[str, list[dict]], measures: tuple[str, ...], out_png: Path,
              title: str) -> Path:
    """Each measure against minutes (left) and network evaluations (right), a line per run,
    the 95% intervals shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in measures if any(_number(r, f"{m}_n") > 0 for rows in runs.values()
                                        for r in rows)]
    fig, axes = plt.subplots(max(len(shown), 1), 2, figsize=(12, 3.6 * max(len(shown), 1)),
                             squeeze=False)
    for row_axes, m in zip(axes, shown):
        for label, rows in runs.items():
            points = [r for r in rows if _number(r, f"{m}_n") > 0]
            for ax, x_key in zip(row_axes, ("minutes", "evaluations")):
                xs = [_number(r, x_key) for r in points]
                ys = [_number(r, m) for r in points]
                line, = ax.plot(xs, ys, marker="o", markersize=3, label=label)
                ax.fill_between(xs, [_number(r, m + "_low") for r in points],
                                [_number(r, m + "_high") for r in points],
                                color=line.get_color(), alpha=0.15)
        for ax, x_label in zip(row_axes, ("minutes of training", "network evaluations")):
            ax.set_xlabel(x_label)
            ax.set_ylabel(m)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())
    return out_png


def machine() -> str:
    """The CPU model and the flags that decide network speed (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
              if f in flags]
    return f"{model}, {os.cpu_count()} cores ({' '.join(wanted) or 'no AVX2'})"


# Command line ------------------------------------------------------------------------

def _train(args, run: Path) -> None:
    command = [sys.executable, "-m", "tabula", "train", "--run", str(run), "--minutes",
               str(args.minutes), "--no-progress"]
    if args.game:
        command += ["--game", args.game]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    for item in args.set or []:
        command += ["--set", item]
    print("training:", " ".join(command[2:]), flush=True)
    code = subprocess.call(command)
    if code != 0:
        raise ValueError(f"training failed (exit {code}); see its output above")


def _run_game(run: Path) -> str:
    from checkpoints import list_checkpoints, read_metadata

    paths = list_checkpoints(run / "checkpoints")
    if paths:
        return str(read_metadata(paths[-1])["game"])
    config = run / "config.toml"
    if config.exists():
        import tomllib

        return str(tomllib.loads(config.read_text()).get("game", ""))
    raise ValueError(f"{run} is not a run directory (no checkpoints, no config.toml)")


def _compare(args) -> int:
    runs = {}
    measures: list[str] = []
    for text in args.compare:
        run = Path(text)
        rows = read_learning(run / "learning.csv")
        if not rows:
            raise ValueError(f"{run}/learning.csv is missing or empty: run "
                             f"tabula bench learning --run {run} first")
        runs[run.name] = rows
        for key in rows[0]:
            if key + "_n" in rows[0] and key not in measures:
                measures.append(key)
    out = Path(args.out or "learning_compare.png")
    plot_runs(runs, tuple(measures), out, "learning curves: " + ", ".join(runs))
    for name, rows in runs.items():
        print(f"{name}: " + _row_line(rows[-1], measures))
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="tabula bench learning", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Measures: " + "; ".join(f"{g}: {', '.join(m)}" for g, m in MEASURES.items())
               + "; spiel/*: mcts, random, first; users' games: random, first; "
                 "gym/*, atari/*: return "
                 "(--games episodes)")
    parser.add_argument("--run", type=Path, help="the run directory to evaluate (and train)")
    parser.add_argument("--game", help="game (new runs; default: the run's)")
    parser.add_argument("--minutes", type=float,
                        help="train (or resume) the run this many minutes first")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="training setting for --minutes (repeatable)")
    parser.add_argument("--seed", type=int, help="training seed for --minutes (new runs)")
    parser.add_argument("--every", type=int, default=1,
                        help="evaluate every K-th checkpoint (the last always)")
    parser.add_argument("--measures", help="comma-separated (default: the game's cheap ones)")
    parser.add_argument("--sims", type=int, default=None,
                        help="simulations per move of the checkpoint (default: connect4 200, "
                             "else its training setting)")
    parser.add_argument("--games", type=int, default=0,
                        help="games per match measure at each checkpoint (default 0)")
    parser.add_argument("--final-games", type=int, default=None,
                        help="games per match measure at the last checkpoint (default: --games)")
    parser.add_argument("--opponent-sims", type=int, default=1000,
                        help="mcts: MCTSBot's rollouts per move (default 1000)")
    parser.add_argument("--seed-eval", type=int, default=0, dest="eval_seed",
                        help="evaluation seed (openings, players)")
    parser.add_argument("--compare", nargs="+", metavar="RUN",
                        help="draw these runs' learning.csv on one plot; no evaluation")
    parser.add_argument("--out", help="--compare: the PNG (default learning_compare.png)")
    parser.add_argument("--no-progress", action="store_true", help="no line per checkpoint")
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(args)
    if args.run is None:
        parser.error("give --run DIR (or --compare RUN ...)")
    if args.minutes is not None:
        if args.game is None and not (args.run / "config.toml").exists():
            raise ValueError(f"{args.run} is a new run: give --game (tabula games lists them)")
        _train(args, args.run)
    game = args.game or _run_game(args.run)
    offered, defaults = game_measures(game)
    measures = tuple(args.measures.split(",")) if args.measures else defaults
    unknown = [m for m in measures if m not in offered]
    if unknown:
        raise ValueError(f"{game} has no measure {', '.join(unknown)} (it has "
                         f"{', '.join(offered)})")
    # Match measures without games are listed, not measured; when nothing else is asked
    # (or the run's first checkpoint is) that is a mistake.
    if args.games <= 0 and not args.final_games and (
            "first" in measures or all(m in _GAMES for m in measures)):
        name = "first" if "first" in measures else measures[0]
        raise ValueError(f"the measure '{name}' plays "
                         f"{'episodes' if name == 'return' else 'games'}: give --games N")
    sims = args.sims if args.sims is not None else (200 if game == "connect4" else None)
    settings = Settings(game, measures, sims, args.games,
                        args.games if args.final_games is None else args.final_games,
                        args.opponent_sims, args.eval_seed)
    print(f"evaluating {args.run} ({game}) on {machine()}", flush=True)
    rows = evaluate_run(args.run, settings, args.every, progress=not args.no_progress)
    png = plot_runs({args.run.name: rows}, measures, args.run / "learning.png",
                    f"{game}: {args.run.name} ({machine()})")
    print(f"{len(rows)} checkpoints; last: {_row_line(rows[-1], measures)}")
    print(f"wrote {args.run / 'learning.csv'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
