"""`tabula arena` and `tabula elo`: tournaments over a run's checkpoints, and ratings.

    tabula arena RUN_DIR [--games N] [--sims N] [--round-robin] [--opponent SPEC ...]
    tabula elo RUN_DIR | --pgn FILE [--anchor NAME] [--csv FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabula.options import positive_int

DEFAULT_ARENA_GAMES = 100
DEFAULT_ARENA_SIMS = 100


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _rating_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--anchor", metavar="NAME",
                   help="player rated 0 (default: random if present, else the first "
                        "checkpoint / the first player)")
    p.add_argument("--scale", type=float, default=400.0,
                   help="logistic scale: a difference of SCALE Elo is 10:1 odds (default 400; "
                        "Ordo's default, -z 202, is 403.53)")
    p.add_argument("--first-move-advantage", action="store_true",
                   help="fit an advantage for the player who moves first (off by default)")
    p.add_argument("--csv", metavar="FILE", help="also write the ratings as CSV to FILE")
    p.add_argument("--los", action="store_true", help="print the likelihood-of-superiority matrix")


def add_parsers(sub) -> None:
    """Registers `arena` and `elo` on the CLI's subparsers."""
    p = sub.add_parser("arena", help="rate a run's checkpoints: gauntlet or round robin")
    p.add_argument("run", metavar="RUN_DIR", help="training run directory (with checkpoints/)")
    p.add_argument("--games", type=positive_int, default=DEFAULT_ARENA_GAMES,
                   help=f"games per pairing (default {DEFAULT_ARENA_GAMES}); pairings already "
                        "in the database are only completed")
    p.add_argument("--sims", type=positive_int, default=DEFAULT_ARENA_SIMS,
                   help=f"simulations per move of the checkpoints (default {DEFAULT_ARENA_SIMS})")
    p.add_argument("--round-robin", action="store_true",
                   help="every pair of players (default: a gauntlet: each checkpoint against "
                        "the previous one, the first one and the opponents)")
    p.add_argument("--opponent", action="append", default=[], metavar="SPEC",
                   help="also play SPEC: random, mcts[:SIMS], gtp:COMMAND, uci:COMMAND, "
                        "NAME=uci:COMMAND or a checkpoint file (repeatable)")
    p.add_argument("--every", type=positive_int, default=1,
                   help="use every K-th checkpoint (the first and last always)")
    p.add_argument("--processes", type=positive_int, default=1,
                   help="worker processes (default 1)")
    p.add_argument("--opening-plies", type=int, default=None, metavar="N",
                   help="random opening moves per game pair (default 2)")
    p.add_argument("--engine-option", action="append", default=[], type=_option,
                   metavar="NAME=VALUE", help="UCI option for uci: opponents (repeatable)")
    p.add_argument("--move-time", type=float, metavar="S",
                   help="seconds per move for external engines")
    p.add_argument("--db", metavar="PATH", help="results database (default RUN_DIR/arena.sqlite)")
    p.add_argument("--seed", type=int, default=0, help="match seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _rating_options(p)
    p.set_defaults(func=cmd_arena)

    p = sub.add_parser("elo", help="ratings from a run's arena database or a PGN file")
    p.add_argument("run", metavar="RUN_DIR", nargs="?",
                   help="run directory (or an arena .sqlite file)")
    p.add_argument("--pgn", metavar="FILE", help="rate the games of a PGN file instead")
    p.add_argument("--game", help="the game to rate when the database holds several")
    _rating_options(p)
    p.set_defaults(func=cmd_elo)


def _open_db(path: Path, readonly: bool = False):
    from arena.matches.results import ResultsDB, ResultsError

    try:
        return ResultsDB(path, readonly=readonly)
    except ResultsError as e:
        raise ValueError(str(e)) from None


def _rating_kwargs(args) -> dict:
    if not args.scale > 0:
        raise ValueError(f"--scale must be positive, got {args.scale}")
    return {"scale": args.scale, "first_move_advantage": args.first_move_advantage}


def _print_ratings(ratings, args, db_path: Path | None = None) -> None:
    """The table (and LOS matrix, advantage); with --csv also the CSV file."""
    print(ratings.table())
    if ratings.advantage is not None:
        print(f"first-move advantage: {ratings.advantage:+.1f} Elo "
              f"(+/- {1.96 * ratings.advantage_se:.1f})")
    if args.los:
        print()
        print(ratings.los_table())
    if args.csv:
        _write_csv(args.csv, ratings, db_path)


def cmd_arena(args) -> int:
    from arena.matches.match import DEFAULT_OPENING_PLIES, MatchSettings
    from arena.matches.players import parse_player
    from arena.matches.report import ratings_from_db, write_reports
    from arena.matches.tournament import (Tournament, gauntlet_pairings, round_robin_pairings,
                                  run_checkpoint_specs)
    from checkpoints import read_metadata

    run = Path(args.run)
    specs = _run_specs(run, args)
    game = read_metadata(specs[0].target)["game"]
    opponents = [parse_player(o, game, args.sims, args.engine_option, args.move_time,
                              [run / "checkpoints"]) for o in args.opponent]
    plies = DEFAULT_OPENING_PLIES if args.opening_plies is None else args.opening_plies
    if plies < 0:
        raise ValueError(f"--opening-plies must be at least 0, got {plies}")
    players = specs + opponents
    pairs = (round_robin_pairings(players) if args.round_robin
             else gauntlet_pairings(specs, opponents))
    if not pairs:
        raise ValueError(f"{run} has one checkpoint and no --opponent: nothing to play")
    db_path = Path(args.db) if args.db else run / "arena.sqlite"
    _check_writable(db_path)
    rating = _rating_kwargs(args)
    with _open_db(db_path) as db:
        tournament = Tournament(db, MatchSettings(game, args.seed, plies), args.processes,
                                progress=not args.no_progress)
        played = 0
        for a, b in pairs:
            summary = tournament.play(a, b, args.games)
            played += summary.played
            print(summary.line(), flush=True)
            for reason in sorted(set(summary.forfeits)):
                print(f"  forfeit: {reason}")
        ratings = ratings_from_db(db, game, args.anchor, **rating)
        written = write_reports(run if args.db is None else db_path.parent, ratings,
                                db.players(game), f"{game}: {run.name}")
    print()
    _print_ratings(ratings, args, db_path)
    print(f"arena: {played} games played, {len(pairs)} pairings, {len(ratings.players)} "
          f"players rated; wrote {', '.join(map(str, written))}")
    return 0


def _check_writable(db_path: Path) -> None:
    """Refuses (OSError naming the path) a database or its directory that cannot be written.

    Before any game is played: SQLite would otherwise fail at the first
    game's commit, and the reports at the end go to the same directory.
    """
    from checkpoints.files import check_writable

    check_writable(db_path.parent, *(db_path.with_name(db_path.name + suffix)
                                     for suffix in ("", "-wal", "-shm", "-journal")))


def _run_specs(run: Path, args):
    from arena.matches.tournament import run_checkpoint_specs
    from checkpoints import list_checkpoints, read_metadata

    if not run.is_dir():
        raise ValueError(f"run directory {run} does not exist")
    paths = list_checkpoints(run / "checkpoints")
    if not paths:
        raise ValueError(f"{run} has no checkpoints (expected {run}/checkpoints/"
                         "step-*.safetensors)")
    game = read_metadata(paths[0])["game"]
    return run_checkpoint_specs(run, game, args.sims, args.every)


def _write_csv(path: str, ratings, db_path: Path | None) -> None:
    from arena.matches.report import csv_text
    from checkpoints.files import atomic_write_bytes

    players = []
    if db_path is not None:
        with _open_db(db_path, readonly=True) as db:
            players = db.players()
    atomic_write_bytes(Path(path), csv_text(ratings, players).encode())
    print(f"wrote {path}")


def cmd_elo(args) -> int:
    from arena.matches.elo import rate
    from arena.matches.report import ratings_from_db

    rating = _rating_kwargs(args)
    if args.pgn is not None:
        if args.run is not None:
            raise ValueError("give RUN_DIR or --pgn FILE, not both")
        from arena.matches.records import pgn_results
        text = Path(args.pgn).read_text(encoding="utf-8-sig", errors="replace")
        results, problems, unfinished = pgn_results(text)
        for problem in problems:
            print(f"tabula: warning: {args.pgn}: game {problem.number} skipped: "
                  f"{problem.message}", file=sys.stderr)
        if not results:
            raise ValueError(f"{args.pgn} has no decided games to rate")
        ratings = rate(results, anchor=args.anchor, **rating)
        _print_ratings(ratings, args)
        print(f"elo: {len(results)} games rated, {len(problems)} skipped as malformed, "
              f"{unfinished} unfinished")
        return 0
    if args.run is None:
        raise ValueError("give a run directory (RUN_DIR) or --pgn FILE")
    path = Path(args.run)
    db_path = path / "arena.sqlite" if path.is_dir() else path
    if not db_path.exists():
        raise ValueError(f"{db_path} does not exist; play games first with "
                         f"`tabula arena {args.run}`")
    with _open_db(db_path, readonly=True) as db:
        games = sorted({p.game for p in db.players()})
        game = args.game or (games[0] if len(games) == 1 else None)
        if game is None and len(games) > 1:
            raise ValueError(f"{db_path} holds players of several games ({', '.join(games)}); "
                             "choose one with --game")
        ratings = ratings_from_db(db, game, args.anchor, **rating)
        summary = db.summary()
        written = []
        if path.is_dir():  # refresh the run's report with these rating options
            from arena.matches.report import write_reports
            written = write_reports(path, ratings, db.players(game), f"{game}: {path.name}")
    _print_ratings(ratings, args, db_path)
    wrote = f"; wrote {', '.join(map(str, written))}" if written else ""
    print(f"elo: {summary['games']} games, {summary['players']} players from {db_path}{wrote}")
    return 0
