"""`tabula uci`: a UCI engine for chess GUIs, python-chess and cutechess.

    tabula uci [--checkpoint PATH] [--nodes N] [--threads N] [--minibatch-size N]
               [--show-wdl] [--move-overhead MS]

The flags are the engine's UCI options (arena.protocols.uci_options.OPTIONS: each is
declared once there and feeds both these flags and `setoption`). Without a
checkpoint the engine searches with a uniform evaluator (no network: for
tests).
"""

from __future__ import annotations

import argparse


def _flag_type(option):
    """argparse type of one option: its own parser, errors as argparse errors."""
    from arena.protocols.uci_options import UciError

    def parse(text: str):
        try:
            return option.parse(text)
        except UciError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = option.name  # argparse names the type in its error message
    return parse


def add_parser(sub) -> None:
    """Registers `uci` on the CLI's subparsers."""
    from arena.protocols.uci_options import OPTIONS

    p = sub.add_parser("uci", help="UCI engine for chess on stdin/stdout")
    for option in OPTIONS:
        if option.flag is None:
            continue
        shown = {"spin": option.default, "check": "off"}.get(option.kind, "none")
        text = f"{option.help} (UCI option {option.name}; default {shown})"
        if option.kind == "check":
            p.add_argument(option.flag, dest=option.name, action="store_const", const=True,
                           help=text)
        else:
            p.add_argument(option.flag, dest=option.name, type=_flag_type(option),
                           metavar="PATH" if option.kind == "string" else "N", help=text)
    p.set_defaults(func=cmd_uci)


def cmd_uci(args) -> int:
    from arena.protocols.uci import GAME, UciEngine, run_uci
    from arena.protocols.uci_options import OPTIONS
    from games import get_game

    game = get_game(GAME)
    values = {o.name: getattr(args, o.name) for o in OPTIONS
              if o.flag is not None and getattr(args, o.name, None) is not None}
    engine = UciEngine(game, values=values)  # checks the options first: exit 2 if bad
    engine.warm_up()
    return run_uci(engine)
