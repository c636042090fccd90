"""`tabula gtp`: a GTP v2 engine for Go GUIs, servers and other engines.

    tabula gtp [--checkpoint PATH] [--game go9] [--sims N | --time-per-move S]
               [--resign-threshold V] [--seed N] [--batch N]

Without --checkpoint the engine plays the model shipped for the game (go9
has one); with --uniform, or for a board without a shipped model, it searches
with a uniform evaluator (no network: for tests and GUIs' set-up checks) and
`boardsize` may change the board. A network fixes the size to its own.
"""

from __future__ import annotations

import argparse

from tabula.options import batch_option, positive_int

DEFAULT_GTP_GAME = "go9"
DEFAULT_UNIFORM_SIMS = 64


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_parser(sub) -> None:
    """Registers `gtp` on the CLI's subparsers."""
    p = sub.add_parser("gtp", help="GTP v2 engine for Go on stdin/stdout")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="checkpoint file (default: the model shipped for the game, if any)")
    p.add_argument("--uniform", action="store_true",
                   help="no network: a uniform evaluator that plays any board size (for "
                        "testing); the default where no model is shipped for the game")
    p.add_argument("--game", help=f"Go game (default: the checkpoint's, else {DEFAULT_GTP_GAME})")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--sims", type=positive_int, metavar="N",
                        help="simulations per move without a clock (default: the "
                             f"checkpoint's training setting, else {DEFAULT_UNIFORM_SIMS}); "
                             "also the most a timed move uses")
    budget.add_argument("--time-per-move", type=_positive_float, metavar="S",
                        help="seconds per move (the game clock may lower it)")
    p.add_argument("--resign-threshold", type=float, default=0.95, metavar="V",
                   help="resign when the search value is below -V (default 0.95; 1 never)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    batch_option(p)
    p.set_defaults(func=cmd_gtp)


def cmd_gtp(args) -> int:
    from arena.protocols.gtp import GtpEngine, GtpOptions, run_gtp

    player, resize = _player(args)
    options = GtpOptions(resign_threshold=args.resign_threshold,
                         time_per_move=args.time_per_move,
                         max_sims=args.sims or GtpOptions.max_sims)
    engine = GtpEngine(player, options, resize)
    if args.time_per_move is not None:
        engine.session.calibrate()
    return run_gtp(engine)


def _check_go(game) -> None:
    if not hasattr(game, "vertex_to_action"):
        raise ValueError(f"gtp plays Go (go9, go13, go19), not {game.info.name}")


def _player(args):
    """(Player, resize) from the arguments; resize is None with a checkpoint."""
    import numpy as np

    from engine.player import Player
    from games import get_game

    checkpoint = args.checkpoint
    if args.uniform and checkpoint is not None:
        raise ValueError("--uniform plays without a network; leave out --checkpoint")
    if checkpoint is None and not args.uniform:
        from arena.matches.players import shipped_checkpoint

        shipped = shipped_checkpoint(args.game or DEFAULT_GTP_GAME)
        checkpoint = shipped if shipped.exists() else None
    if checkpoint is not None:
        game = get_game(args.game) if args.game else None
        if game is not None:
            _check_go(game)
        overrides = {} if args.sims is None else {"num_simulations": args.sims}
        player = Player.from_checkpoint(checkpoint, game=game, batch=args.batch, **overrides)
        _check_go(player.game)
        player.rng = np.random.default_rng(args.seed)
        return player, None
    game = get_game(args.game or DEFAULT_GTP_GAME)
    _check_go(game)
    sims = args.sims or DEFAULT_UNIFORM_SIMS

    def resize(size: int, komi: float):
        return _uniform_player(type(game)(size, komi), sims, args.seed, args.batch)

    return _uniform_player(game, sims, args.seed, args.batch), resize


def _uniform_player(game, sims: int, seed: int, batch: int):
    from engine.evaluator import UniformEvaluator
    from engine.player import Player
    from engine.search import SearchConfig

    info = game.info
    evaluator = UniformEvaluator(info.num_actions, info.observation_shape)
    return Player(game, evaluator, SearchConfig(num_simulations=sims), seed=seed,
                  name="uniform", batch=batch)
