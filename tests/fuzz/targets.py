"""Fuzz targets: a handler or parser, the inputs to feed it, and what every answer must be.

Each target's `check(example)` feeds one Hypothesis example (lines played to
a fresh engine, an SGF file, a list of `--set` items, a TOML file, an argv)
and raises Violation, naming the input and the answer, when a property fails;
`inputs` counts the lines, files or argvs fed so far. `open(workdir)` does
the slow set-up once (players, files) and must run with `workdir` as the
current directory (loadsgf, printsgf and the CLI's paths are relative).

Properties:
  GTP   a blank or comment line gets no answer; every other line exactly one GTP 2
        response: '=id text' or '?id message', the line's id echoed, ASCII, no inner
        empty line, ended by an empty line; never 'internal error'; a '?' answer
        leaves the session (size, komi, handicap, moves, board, clock, player) as it was.
  UCI   every answer line is a UCI line (id, uciok, readyok, option, info, bestmove;
        perft lines after `go perft`, the board after `d`), also when split by
        str.splitlines(); bad input gets one `info string` line and leaves the
        position, options and player as they were; every started search ends,
        after `stop`, with one legal bestmove; never 'internal error'.
  text  no 'error: <Exception>' answer (an exception caught by handle), no control
        characters; a rejected move is one line and changes nothing.
  config  parse_overrides, merge and load_toml raise only ConfigError; an accepted
        configuration is written as TOML that reads back to the same configuration.
  analysis  one strict JSON object per query line, in order; the id echoed when valid,
        else null; a query of valid parts answered, one with a hostile part refused; an
        answer's move legal (tests/fuzz/analysis_targets.py).
  CLI   main(argv) returns or exits with 0 or 2; with 2 the reason is the last line on
        stderr, 'tabula...: error: ...', after at most argparse's usage lines, and
        there is no traceback. The commands' long-running parts (training, the
        stdio loops, games) are replaced by stubs: the fuzz is about parsing.
"""

from __future__ import annotations

from tests.fuzz.analysis_targets import ANALYSIS_TARGETS
from tests.fuzz.base import Target, Violation, working_directory
from tests.fuzz.cli_targets import CliTarget
from tests.fuzz.config_targets import ConfigTarget, TomlTarget
from tests.fuzz.gtp_targets import GtpSgfTarget, GtpTarget
from tests.fuzz.text_targets import TextTarget
from tests.fuzz.uci_targets import UciTarget

TARGETS: dict[str, type[Target]] = {
    "gtp": GtpTarget, "gtp-sgf": GtpSgfTarget, "uci": UciTarget, "text": TextTarget,
    "config": ConfigTarget, "toml": TomlTarget, "cli": CliTarget, **ANALYSIS_TARGETS}
"""Every target by its name in scripts/fuzz_protocols.py."""

__all__ = ["TARGETS", "Target", "Violation", "working_directory"]
