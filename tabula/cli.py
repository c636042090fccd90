"""The `tabula` command: parse arguments, build settings, call a package.

    tabula train   [--game NAME] [--run DIR] [--config FILE] [--set s.k=v ...] ...
    tabula play    --game NAME [--checkpoint PATH] [--sims N] [--batch N] [--engine-first]
    tabula analyze [--game NAME] [--checkpoint PATH] [--sims N] [--batch N]   (JSON lines)
    tabula eval    --game NAME [--checkpoint PATH] --vs minimax|solved|mcts ...
    tabula arena   RUN_DIR [--games N] [--sims N] [--round-robin] [--opponent SPEC ...]
    tabula elo     RUN_DIR | --pgn FILE [--anchor NAME]
    tabula games
    tabula bench   mcts|inference|selfplay|actors|memory|learning|backends|arena|gtp|perft|uci|muzero [ARGS ...]

User errors (bad game, config, checkpoint, run directory, file) print one
line `tabula: error: ...` on stderr and exit with status 2. Heavy packages
(torch, numba) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from tabula.options import batch_option, positive_int

# OpenMP threads that spin while waiting collapse when another process takes a
# core (measured: 2-thread training went from 2.3 to 0.25 steps/s with one
# busy core; passive waiting kept 1.0). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCH_MODULES = {
    "mcts": "engine.bench_mcts",
    "inference": "engine.bench_inference",
    "selfplay": "selfplay.bench",
    "muzero": "selfplay.bench_muzero",
    "actors": "selfplay.bench_actors",
    "memory": "selfplay.bench_memory",
    "learning": "selfplay.bench_learning",
    "backends": "selfplay.bench_backends",
    "arena": "arena.matches.bench",
    "gtp": "arena.protocols.bench_gtp",
    "perft": "games.bench_chess",
    "uci": "arena.protocols.bench_uci",
}
DEFAULT_TRAIN_GAME = "tictactoe"
DEFAULT_ANALYZE_GAME = "connect4"
DEFAULT_MCTS_SIMS = 200


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with its error message on one line: it may quote an argument holding a
    newline or another control character, which is shown escaped ('\\n')."""

    def error(self, message: str):
        super().error(_ASCII_CONTROL.sub(lambda m: repr(m.group())[1:-1], message))


def _engine_options(p: argparse.ArgumentParser, game_help: str) -> None:
    p.add_argument("--game", help=game_help)
    p.add_argument("--checkpoint", metavar="PATH",
                   help="checkpoint file (default: the model shipped for the game)")
    p.add_argument("--algo", choices=("alphazero", "muzero"),
                   help="without --checkpoint: the model shipped for this algorithm (e.g. "
                        "--game tictactoe --algo muzero; default: the game's first)")
    p.add_argument("--sims", type=positive_int, metavar="N",
                   help="simulations per move (default: the checkpoint's training setting)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _ArgumentParser(
        prog="tabula", description="Tabula: AlphaZero-style self-play, play and analysis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train (or resume) a run")
    p.add_argument("--game", help=f"game to learn (default {DEFAULT_TRAIN_GAME}, or the "
                                  "saved game when resuming)")
    p.add_argument("--algo", choices=("alphazero", "muzero"),
                   help="alphazero (search with the rules; default for board games) or muzero "
                        "(learned dynamics; the only choice for Atari)")
    p.add_argument("--run", metavar="DIR",
                   help="run directory (default runs/<game>, runs/<game>_muzero for MuZero on "
                        "a board game)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML settings merged over the preset")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable)")
    p.add_argument("--minutes", type=float, help="wall-time budget (run.max_minutes)")
    p.add_argument("--iterations", type=positive_int,
                   help="iteration budget in total (run.max_iterations)")
    p.add_argument("--seed", type=int, help="run seed (run.seed; new runs only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    s = p.add_argument_group("scale (run.* settings; may change when resuming)")
    s.add_argument("--actors", metavar="N|auto",
                   help="self-play actor processes: auto (default: none on 1-2 cores, else one "
                        "per core but the learner's), 0 (self-play and training alternate in "
                        "one process) or N")
    s.add_argument("--backend", choices=("local", "ray"),
                   help="local processes (default) or Ray actors (pip install 'tabula[ray]')")
    s.add_argument("--address", metavar="auto|HOST:PORT",
                   help="ray: join a running cluster (default: start Ray on this machine)")
    s.add_argument("--device", metavar="cpu|cuda[:N]",
                   help="torch device for the learner and inference (default cpu)")
    s.add_argument("--inference-server", action=argparse.BooleanOptionalAction, default=None,
                   help="local actors share one inference process (AlphaZero)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("play", help="play against a checkpoint at a text prompt, or watch it "
                                    "play an environment (Atari, gym)")
    _engine_options(p, "game to play (default: the checkpoint's game)")
    batch_option(p)
    p.add_argument("--engine-first", action="store_true", help="the engine plays first")
    w = p.add_argument_group("environments (atari/<Name>, gym/<EnvId>)")
    w.add_argument("--agent", choices=("random",),
                   help="random: uniformly random actions instead of a checkpoint")
    w.add_argument("--episodes", type=int, metavar="N", help="episodes, played at once (default 1)")
    w.add_argument("--max-steps", type=int, metavar="N",
                   help="agent steps per episode at most (default: the game's limit)")
    w.add_argument("--gif", metavar="FILE",
                   help="GIF of the first episode (default: <checkpoint stem>-<game>.gif; "
                        "games with a screen, e.g. Atari)")
    w.add_argument("--no-gif", action="store_true", help="write no GIF")
    w.add_argument("--json", metavar="FILE", help="write the returns and their summary as JSON")
    w.add_argument("--noise", action="store_true",
                   help="search with self-play's root noise (default: noise-free, greedy)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_play)

    p = sub.add_parser("analyze", help="JSON-lines analysis engine on stdin/stdout")
    _engine_options(p, f"game (default: the checkpoint's, else {DEFAULT_ANALYZE_GAME})")
    batch_option(p)
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("eval", help="measure a checkpoint against exact play or a baseline")
    _engine_options(p, "game (default: the checkpoint's game)")
    p.add_argument("--vs", required=True, choices=("minimax", "solved", "mcts"),
                   help="minimax: perfect-play check (tictactoe); solved: solved positions "
                        "(connect4); mcts: games against open_spiel's rollout MCTS")
    p.add_argument("--games", type=positive_int, default=100, help="mcts: games (default 100)")
    p.add_argument("--mcts-sims", type=positive_int, default=1000,
                   help="mcts: the baseline's simulations per move (default 1000)")
    p.add_argument("--data", metavar="FILE", help="solved: positions file (JSONL)")
    p.add_argument("--run", metavar="DIR",
                   help="evaluate the checkpoints of a run directory instead of one checkpoint")
    p.add_argument("--every", type=positive_int, default=1,
                   help="--run: every K-th checkpoint (the last one always)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)

    from tabula.arena_cmd import add_parsers
    add_parsers(sub)
    from tabula.gtp_cmd import add_parser as _gtp
    _gtp(sub)
    from tabula.uci_cmd import add_parser as _uci
    _uci(sub)

    p = sub.add_parser("games", help="list the registered games")
    p.set_defaults(func=_cmd_games)

    p = sub.add_parser("bench", help="benchmarks: tabula bench mcts|inference|selfplay|muzero|"
                                     "learning|arena|gtp|perft|uci --help")
    p.add_argument("target", choices=sorted(BENCH_MODULES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    p.set_defaults(func=lambda a: _bench(a.target, a.args))
    return parser


# train -----------------------------------------------------------------------

def _train_settings(args) -> tuple[str | None, dict]:
    """The game the user named (or None) and the nested overrides dict."""
    from selfplay import config as cfg

    toml = cfg.load_toml(Path(args.config)) if args.config else {}
    if args.config:
        cfg.check_file(Path(args.config), toml)
    sets = cfg.parse_overrides(args.set)
    named = {src: g for src, g in (("--game", args.game), ("--set game", sets.pop("game", None)),
                                   ("--config", toml.pop("game", None))) if g is not None}
    if len(set(named.values())) > 1:
        raise cfg.ConfigError("conflicting game names: " + ", ".join(
            f"{src} {g!r}" for src, g in named.items()))
    overrides: dict = {}
    for data in (toml, sets):
        for section, values in data.items():
            if isinstance(values, dict):
                overrides.setdefault(section, {}).update(values)
            else:
                overrides[section] = values
    if args.actors is not None and not (args.actors == "auto" or args.actors.isdigit()):
        raise cfg.ConfigError(f"--actors {args.actors!r}: expected auto or a number")
    if args.address is not None and args.backend not in (None, "ray"):
        raise cfg.ConfigError("--address is for --backend ray")
    if args.address is not None:
        args.backend = "ray"
    run = {"max_minutes": args.minutes, "max_iterations": args.iterations, "seed": args.seed,
           "actors": args.actors, "backend": args.backend, "address": args.address,
           "device": args.device, "inference_server": args.inference_server}
    run = {k: v for k, v in run.items() if v is not None}
    if run:
        overrides.setdefault("run", {}).update(run)
    return next(iter(named.values()), None), overrides


def _cmd_train(args) -> int:
    from games import get_game
    from selfplay import config as cfg
    from selfplay.algorithms import algorithm, default_algorithm
    from selfplay.loop import train

    game, overrides = _train_settings(args)
    the_game = get_game(game or DEFAULT_TRAIN_GAME)
    # The game's own spelling of its name ('spiel/hex()' is 'spiel/hex'): the run
    # directory, config and checkpoints all carry this one.
    name = the_game.info.name
    game = name if game else None
    algo = args.algo or default_algorithm(the_game)
    if (refusal := algorithm(algo).refuse(the_game)) is not None:
        raise cfg.ConfigError(refusal)
    suffix = algorithm(algo).run_dir_suffix(the_game)
    run_dir = Path(args.run or f"runs/{name.replace('/', '_').replace(':', '_')}{suffix}")
    if args.algo:
        overrides["algo"] = args.algo
    if args.actors not in (None, "auto") and args.backend != "ray":
        from selfplay.parallel import check_actors

        check_actors(int(args.actors), "local")  # before a new run directory is written
    if (run_dir / "config.toml").exists():
        if args.seed is not None:
            print("tabula: note: --seed is ignored when resuming a run", file=sys.stderr)
        config = cfg.TrainConfig(game=game) if game else None
        summary = train(config, run_dir, overrides=overrides, progress=not args.no_progress)
    else:
        game = game or DEFAULT_TRAIN_GAME
        get_game(game)  # Unknown names fail here, before anything is written.
        config = cfg.merge(cfg.preset(game, algo), overrides)
        summary = train(config, run_dir, progress=not args.no_progress)
    print(summary.line())
    if summary.checkpoint is not None:
        from arena import checkpoint_game

        print(f"play against it: tabula play --game {checkpoint_game(summary.checkpoint)} "
              f"--checkpoint {summary.checkpoint}")
    # 130 like any program stopped by Ctrl-C, so `tabula train ... && next` stops too.
    return 130 if summary.interrupted else 0


# play, analyze, eval ---------------------------------------------------------

def _cmd_play(args) -> int:
    from arena import TextSession, checkpoint_game, load_player, run_text
    from games import get_game

    if args.game is None and args.checkpoint is None:
        raise ValueError("play needs --game NAME (or --checkpoint PATH)")
    game = get_game(args.game or checkpoint_game(args.checkpoint))
    watch_flags = ("agent", "episodes", "max_steps", "gif", "no_gif", "json", "noise",
                   "no_progress")
    if game.info.kind == "environment":
        from arena.protocols.watch import WatchConfig, run_watch

        if args.engine_first:
            raise ValueError(f"--engine-first: {game.info.name} has no turns to give")
        checkpoint = args.checkpoint
        if checkpoint is None and args.agent is None:  # the shipped model, if any
            from arena import shipped_checkpoint

            shipped = shipped_checkpoint(game.info.name, args.algo or "muzero")
            if not shipped.exists():
                raise ValueError(f"give --checkpoint PATH or --agent random (no "
                                 f"{args.algo + ' ' if args.algo else ''}model is shipped "
                                 f"for {game.info.name})")
            checkpoint = str(shipped)
        elif args.algo is not None:
            raise ValueError("--algo chooses among the shipped models; a --checkpoint file "
                             "names its own algorithm" if args.agent is None else
                             "--algo chooses a shipped model, not the random agent")
        return run_watch(game, WatchConfig(
            checkpoint=checkpoint, agent=args.agent, sims=args.sims,
            episodes=1 if args.episodes is None else args.episodes, seed=args.seed,
            max_steps=args.max_steps, gif=args.gif, no_gif=args.no_gif, json=args.json,
            noise=args.noise, progress=not args.no_progress))
    used = [f"--{f.replace('_', '-')}" for f in watch_flags
            if getattr(args, f) is not None and getattr(args, f) is not False]
    if used:
        raise ValueError(f"{', '.join(used)}: only for environments such as atari/Breakout")
    player = load_player(args.game, args.checkpoint, args.sims, args.seed, batch=args.batch,
                         algo=args.algo)
    return run_text(TextSession(player.game, player, engine_first=args.engine_first))


def _cmd_analyze(args) -> int:
    from arena import AnalysisEngine, load_player, run_analysis

    player = load_player(args.game, args.checkpoint, args.sims, args.seed,
                         default_game=DEFAULT_ANALYZE_GAME, batch=args.batch, algo=args.algo)
    return run_analysis(AnalysisEngine(player.game, player, player.search.num_simulations))


def _cmd_eval(args) -> int:
    if args.run is not None:
        return _eval_run(args)
    if args.game is None and args.checkpoint is None:
        raise ValueError("eval needs --game NAME (or --checkpoint PATH)")
    lines, _ = _evaluate(args, args.checkpoint)
    for line in lines:
        print(line)
    return 0


def _evaluate(args, checkpoint: str | None) -> tuple[list[str], bool | None]:
    """Evaluates one player as `args` ask; returns the report's lines (the verdict last)
    and, for --vs minimax, whether it plays perfectly (None otherwise)."""
    from arena import load_player

    if args.vs == "solved":  # Read the data first: a bad file fails before the model loads.
        data, positions = _solved_positions(args.data)
    sims = DEFAULT_MCTS_SIMS if args.sims is None and args.vs == "mcts" else args.sims
    player = load_player(args.game, checkpoint, sims, args.seed, algo=args.algo)
    name = player.game.info.name
    head = (f"{player.name} ({name}), {player.search.root_mode} search, "
            f"{player.search.num_simulations} simulations")
    if args.vs == "minimax":
        lines, perfect = _eval_minimax(player, name)
        return [head, *lines], perfect
    if args.vs == "solved":
        return [head, *_eval_solved(player, name, data, positions)], None
    return [head, _eval_mcts(player, args)], None


def _eval_run(args) -> int:
    """Evaluates a run's checkpoints in order; reports the first perfect one (minimax)."""
    from arena.matches.progress import run_checkpoints

    first_perfect = None
    for ckpt in run_checkpoints(args.run, args.every):
        quiet = argparse.Namespace(**{**vars(args), "no_progress": True})
        lines, perfect = _evaluate(quiet, str(ckpt.path))
        minutes = "?" if ckpt.seconds is None else f"{ckpt.seconds / 60:.2f}"
        last = "\n".join(lines).splitlines()[-1]  # the verdict (a table's last row)
        print(f"step {ckpt.step} iteration {ckpt.iteration} at {minutes} min: {last}",
              flush=True)
        if first_perfect is None and perfect:
            first_perfect = (ckpt, minutes)
    if args.vs == "minimax":
        if first_perfect is None:
            print("no checkpoint plays perfectly")
        else:
            print(f"first perfect checkpoint: step {first_perfect[0].step} "
                  f"({first_perfect[0].path.name}) after {first_perfect[1]} min of training")
    return 0


def _eval_minimax(player, name: str) -> tuple[list[str], bool]:
    from arena import check_perfect

    if name != "tictactoe":
        raise ValueError(f"--vs minimax needs tictactoe (a game small enough to solve), not "
                         f"{name}; use --vs solved for connect4")
    report = check_perfect(player.game, player)
    lines = []
    for history, action, before, after in report.examples:
        state = player.game.new_initial_state()
        moves = []
        for a in history:
            moves.append(state.action_to_text(a))
            state.apply(a)
        lines.append(f"  after [{' '.join(moves)}]: played {state.action_to_text(action)}, "
                     f"value {before:+d} -> {after:+d}")
    return [*lines, report.line()], report.perfect


def _solved_positions(data: str | None):
    from arena import DEFAULT_DATA, load_positions

    if data is None:
        if not DEFAULT_DATA.exists():
            raise ValueError(f"give --data FILE (the default {DEFAULT_DATA} does not exist)")
        data = DEFAULT_DATA
    return data, load_positions(data)


def _eval_solved(player, name: str, data, positions) -> list[str]:
    from arena import evaluate_solved

    if name != "connect4":
        raise ValueError(f"--vs solved needs connect4, not {name}")
    report = evaluate_solved(player.game, player, positions)
    return [f"{len(positions)} solved positions from {data}; keeps = keeps the win/draw/loss, "
            "best = an optimal move; pol = the network prior's argmax", report.table()]


def _eval_mcts(player, args) -> str:
    from arena import make_bot, play_match

    bot = make_bot(player.game, args.mcts_sims, args.seed)
    result = play_match(player.game, player, bot, args.games, progress=not args.no_progress)
    return result.line(f"open_spiel MCTS ({args.mcts_sims} simulations, random rollouts)")


# games, bench ----------------------------------------------------------------

def _cmd_games(args) -> int:
    from games import GameError, game_names, get_game

    rows = [("name", "actions", "observation", "players", "symmetries")]
    notes = []
    for name in game_names():
        if name == "atari/<name>":
            import textwrap

            from games.atari import INSTALL_HINT, atari_names

            atari = atari_names()  # empty without the atari extra
            notes.append(textwrap.fill(
                f"{name}: {len(atari)} games: {', '.join(atari)}", width=100,
                subsequent_indent="    ") if atari else f"{name}: unavailable ({INSTALL_HINT})")
            continue
        if name == "gym/<name>":
            from games.gym import family_note

            notes.append(family_note())
            continue
        if name == "spiel/<name>":
            import textwrap

            from games.spiel_family import spiel_names

            spiel = spiel_names()
            notes.append(textwrap.fill(
                f"{name}: {len(spiel)} open_spiel games: {', '.join(spiel)}; parameters in "
                "open_spiel's syntax, e.g. 'spiel/hex(board_size=7)'", width=100,
                subsequent_indent="    "))
            continue
        if name.endswith("<name>"):
            notes.append(f"{name}: a family; give the member name, e.g. {name[:-6]}<member>")
            continue
        try:
            info = get_game(name).info
        except (GameError, ImportError) as e:
            notes.append(f"{name}: unavailable ({_one_line(e)})")
            continue
        rows.append((info.name, str(info.num_actions),
                     "x".join(map(str, info.observation_shape)), str(info.num_players),
                     str(info.num_symmetries)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for note in notes:
        print(note)
    print("any other game: --game module.path:Attribute (a Python file of your own; "
          "docs/NEW_GAME.md)")
    return 0


def _bench(target: str, argv: Sequence[str]) -> int:
    module_name = BENCH_MODULES[target]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise ValueError(f"bench {target} is not available ({module_name} is missing)") \
                from None
        raise
    main_fn = getattr(module, "main", None)
    if main_fn is None:
        if target != "inference":
            raise ValueError(f"bench {target} is not available ({module_name} has no main)")
        main_fn = _bench_inference_main
    program, sys.argv[0] = sys.argv[0], f"tabula bench {target}"  # for the bench's usage text
    try:
        rc = main_fn(list(argv))
    finally:
        sys.argv[0] = program
    return int(rc or 0)


def _bench_inference_main(argv: list[str]) -> int:
    """Adaptor for an engine.bench_inference without main(): default sizes, printed table."""
    from engine.bench_inference import bench_inference, format_table
    from engine.networks import NetworkConfig

    if argv:
        raise ValueError("this engine.bench_inference takes no arguments")
    print(format_table(bench_inference((3, 6, 7), 7, NetworkConfig())))
    return 0


# entry point -----------------------------------------------------------------

def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Advice for the errors of a full, read-only or foreign disk (OSError.errno).
_DISK_ADVICE = {
    errno.ENOSPC: "disk full: free space on that disk (or move the directory to a larger "
                  "one) and run the same command again; training and arena runs resume "
                  "where they stopped",
    errno.EDQUOT: "disk quota exceeded: free space (or move the directory elsewhere) and "
                  "run the same command again; training and arena runs resume where they "
                  "stopped",
    errno.EROFS: "remount it read-write (or copy the directory to a writable disk and name "
                 "the copy), then run the same command again",
    errno.EACCES: "check the owner and permissions of that path",
    errno.EPERM: "check the owner and permissions of that path",
}


def _error_line(error: BaseException) -> str:
    """The one line `tabula: error: ...` shows; disk errors name their path and say what to do."""
    if not isinstance(error, OSError) or error.errno not in _DISK_ADVICE:
        return _one_line(error)
    if error.filename is None and error.errno in (errno.EACCES, errno.EPERM):
        return _one_line(error)  # not about a file (e.g. signalling a process)
    where = "(file not known)" if error.filename is None else error.filename
    return f"{where}: {error.strerror or os.strerror(error.errno)}; {_DISK_ADVICE[error.errno]}"


def _user_errors() -> tuple[type, ...]:
    """Exception types that are the user's to fix (ValueError covers Game/Config/Run/Replay)."""
    errors: list[type] = [ValueError, OSError]
    # CheckpointError is not a ValueError; it can only be raised once its module is loaded.
    checkpoint_format = sys.modules.get("checkpoints.format")
    if checkpoint_format is not None:
        errors.append(checkpoint_format.CheckpointError)
    results = sys.modules.get("arena.matches.results")
    if results is not None:
        errors.append(results.ResultsError)
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status (0 ok, 2 user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in BENCH_MODULES:
        # Bypass argparse so the benchmark sees its own options (and --help).
        run = lambda: _bench(argv[1], argv[2:])  # noqa: E731
    else:
        args = parser.parse_args(argv)
        run = lambda: args.func(args)  # noqa: E731
    try:
        return run()
    except KeyboardInterrupt:
        print("tabula: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise
        print(f"tabula: error: {_error_line(e)}", file=sys.stderr)
        return 2
