"""Command-line option helpers shared by the subcommands (cli, arena_cmd, gtp_cmd, uci_cmd).

A module of their own so that the subcommand modules, which tabula.cli
imports, need not import tabula.cli back.
"""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def batch_option(p: argparse.ArgumentParser) -> None:
    """--batch N: interactive batching (engine.interactive), for play, analyze and gtp."""
    from engine.interactive import INTERACTIVE_BATCH

    p.add_argument("--batch", type=positive_int, default=INTERACTIVE_BATCH, metavar="N",
                   help="positions per network call: a search selects several leaves of "
                        "its tree at once (virtual loss) to fill it; fewer in small "
                        "searches, and positions searched together share it (default "
                        f"{INTERACTIVE_BATCH}; 1: one leaf at a time)")


__all__ = ["batch_option", "positive_int"]
