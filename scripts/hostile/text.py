"""Text formats through the real CLI and GTP: SGF, PGN and the config TOML."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from .base import Case

GUARD_RUN = "guard-run"
"""A directory that is not a run directory: `tabula train --run` stops there after the config."""


class CliError(Exception):
    """The CLI exited with status 2; the message is its one line."""


class GtpRefusal(Exception):
    """The GTP engine answered `? message`."""


VALID_SGF = b"""(;FF[4]GM[1]SZ[9]KM[7.5]PB[Black]PW[White]DT[2024-01-01]RE[B+R]
C[a comment with \\] and an escaped bracket]
;B[ee];W[cc](;B[gc];W[cg]
;B[gg];W[]
)(;B[ge]))
"""

VALID_PGN = b"""[Event "hostile files"]
[Site "?"]
[Date "2024.01.01"]
[Round "1"]
[White "alpha"]
[Black "beta"]
[Result "1-0"]

1. e4 e5 {a comment} 2. Nf3 (2. Bc4 Nf6) Nc6 $1 3. Bb5 1-0

[Event "hostile files"]
[White "beta"]
[Black "gamma"]
[Result "1/2-1/2"]

1. d4 d5 1/2-1/2

[Event "hostile files"]
[White "gamma"]
[Black "alpha"]
[Result "0-1"]

1. c4 ; a line comment
e5 0-1
"""

VALID_TOML = b"""# settings for the hostile files test
game = "tictactoe"

[search]
num_simulations = 16

[learner]
batch_size = 32
learning_rate = 0.002
"""


def _cli(argv: list[str], guard: str | None = None) -> str:
    """Runs `tabula ARGV` in this process; returns stdout or raises CliError (exit 2).

    A second line, a traceback or another exit status raises AssertionError
    (counted as a crash). `guard`: an error containing it means the command got
    past the file (accepted).
    """
    from tabula.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    errors = [line for line in err.getvalue().splitlines() if "warning:" not in line]
    if status == 0:
        return out.getvalue()
    if status != 2 or len(errors) != 1 or not errors[0].startswith("tabula: error: "):
        raise AssertionError(f"exit status {status}, stderr {err.getvalue()[-300:]!r}")
    if guard is not None and guard in errors[0]:
        return "accepted"
    raise CliError(errors[0])


def load_config(path: Path) -> dict:
    """`tabula train --config FILE` into a directory that is not a run: stops after the config."""
    from selfplay import config as cfg

    _cli(["train", "--config", str(path), "--run", str(path.parent / GUARD_RUN),
          "--no-progress"], guard="is not a Tabula run directory")
    return cfg.load_toml(path)


def load_pgn(path: Path) -> str:
    """`tabula elo --pgn FILE`: its output (the file's name left out)."""
    return _cli(["elo", "--pgn", str(path)]).replace(str(path), "FILE")


def load_elo(path: Path) -> str:
    """`tabula elo DB`: its output (the file's name left out)."""
    return _cli(["elo", str(path)]).replace(str(path), "FILE")


def load_sgf_gtp(path: Path) -> tuple:
    """`loadsgf FILE` to a fresh GTP engine; refusals must leave the position unchanged."""
    from arena.protocols.gtp import GtpEngine
    from tabula.gtp_cmd import _player

    class Args:
        checkpoint = game = time_per_move = None
        sims, resign_threshold, seed, batch = 2, 0.95, 0, 1
        uniform = True  # no network: any board size

    player, resize = _player(Args)
    engine = GtpEngine(player, resize=resize)
    engine.handle("play b c3")
    before = _gtp_position(engine)
    answer = engine.handle(f"loadsgf {path}").strip()
    if answer.startswith("?"):
        if _gtp_position(engine) != before:
            raise AssertionError(f"refused ({answer}) but the position changed")
        if not answer.startswith(("? cannot load file: ", "? unacceptable size")) \
                or "internal error" in answer:
            raise AssertionError(f"not GTP's refusal of a file: {answer}")
        # GTP's own phrase; the file is the argument of the command it answers.
        raise GtpRefusal(f"{answer} (to loadsgf {path})")
    return _gtp_position(engine)


def _gtp_position(engine) -> tuple:
    s = engine.session
    return (s.game.size, s.game.komi, tuple(s.moves), tuple(s.handicap),
            tuple(s.state.history()))


def sgf_cases() -> list[Case]:
    head = b"(;FF[4]GM[1]SZ[9]"
    cases = [
        ("depth-bomb-unclosed", b"(;" * 100_000),
        ("depth-bomb-variations", head + b"(;B[aa]" * 20_000 + b")" * 20_001),
        ("size-huge", b"(;GM[1]SZ[" + b"9" * 30 + b"])"),
        ("size-5000-digits", b"(;GM[1]SZ[" + b"9" * 5000 + b"])"),
        ("size-zero", b"(;GM[1]SZ[0])"), ("size-26", b"(;GM[1]SZ[26])"),
        ("size-negative", b"(;GM[1]SZ[-9])"), ("size-rectangular", b"(;GM[1]SZ[9:13])"),
        ("komi-infinity", head + b"KM[1e999];B[ee])"), ("komi-nan", head + b"KM[nan];B[ee])"),
        ("komi-text", head + b"KM[seven])"),
        ("move-occupied", head + b";B[ee];W[ee])"), ("move-off-board", head + b";B[zz])"),
        ("move-one-letter", head + b";B[e])"),
        ("setup-white", head + b"AW[ee])"), ("setup-later", head + b";B[ee];AB[cc])"),
        ("not-go", b"(;GM[3]SZ[9];B[ee])"), ("unterminated-value", head + b"C[abc"),
        ("unbalanced", head + b";B[ee]"), ("no-node", b"()"),
    ]
    out = [Case(name, data, "crafted") for name, data in cases]
    # Text the reader may take: a name in Latin-1 under an unknown charset, bad UTF-8, UTF-16.
    # Valid however odd: 20,000 nested trees, a komi of 1e300, play on after two passes
    # (GTP allows it), 20,000 moves.
    out += [Case(name, data, "crafted", "either") for name, data in [
        ("depth-20k", b"(;" * 20_000 + b")" * 20_000),
        ("komi-1e300", head + b"KM[1e300];B[ee])"),
        ("moves-after-two-passes", head + b";B[];W[];B[ee])"),
        ("20k-passes", head + b";B[];W[]" * 10_000 + b")"),
        ("charset-unknown-latin1", head + b"CA[x-klingon]PB[J\xf6rg];B[ee])"),
        ("invalid-utf8", head + b"C[\xff\xfe\xc3\x28];B[ee])"),
        ("utf16", "\ufeff(;FF[4]GM[1]SZ[9];B[ee])".encode("utf-16")),
        ("nul-bytes", head + b"C[\x00\x00];B[ee])"),
        ("comment-1MB", head + b"C[" + b"x" * 1_000_000 + b"];B[ee])"),
        ("properties-50k", head + b"XX[1]" * 50_000 + b")")]]
    return out


def pgn_cases() -> list[Case]:
    tags = b'[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n'
    cases = [
        ("variation-depth-bomb", tags + b"1. e4 " + b"(" * 100_000 + b")" * 100_000 + b" 1-0\n"),
        ("variations-unclosed", tags + b"1. e4 " + b"(" * 200_000 + b" 1-0\n"),
        # Was quadratic: each '{' searched the rest of the file for its '}'.
        ("unterminated-comments", tags + (b"{" + b" " * 1000 + b"\n") * 20_000),
        ("unterminated-tags", b'[White "' * 200_000),
        ("tags-40k", b'[White "a"]\n[Black "b"]\n' * 20_000),
        ("tag-1MB", b'[White "' + b"x" * 1_000_000 + b'"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n'),
        ("move-number-huge", tags + b"9" * 5000 + b". e4 1-0\n"),
        ("illegal-moves", tags + b"1. Zz9 Qx?? 2. O-O-O-O 1-0\n"),
        ("result-mismatch", tags + b"1. e4 0-1\n"),
        ("result-unknown", b'[White "a"]\n[Black "b"]\n[Result "2-0"]\n\n2-0\n'),
        ("latin1-names", b'[White "J\xf6rg"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n'),
        ("invalid-utf8", tags + b"\xff\xfe\xc3\x28 1-0\n"),
        ("utf16", ('[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n').encode("utf-16")),
        ("nul-bytes", tags.replace(b"a", b"a\x00") + b"1-0\n"),
        ("percent-escapes", b"%" * 100_000 + b"\n" + tags + b"1-0\n"),
        ("only-comments", b"{just a comment}\n; and a line\n"),
    ]
    return [Case(name, data, "crafted", "either") for name, data in cases]


def toml_cases() -> list[Case]:
    refuse = [
        ("array-depth-bomb", b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
        ("table-depth-bomb", b"a = " + b"{b = " * 50_000 + b"1" + b"}" * 50_000 + b"\n"),
        ("invalid-utf8", b"game = \"tic\xff\"\n"),
        ("utf16", '[search]\nnum_simulations = 16\n'.encode("utf-16")),
        ("unknown-section", b"[bogus]\nx = 1\n"),
        ("unknown-key", b"[search]\nbogus = 1\n"),
        ("wrong-type", b"[search]\nnum_simulations = \"many\"\n"),
        ("section-not-table", b"search = 5\n"),
        ("game-number", b"game = 5\n"),
        ("game-unknown", b"game = \"tictactoc\"\n"),
        ("simulations-negative", b"[search]\nnum_simulations = -5\n"),
        ("simulations-huge", b"[search]\nnum_simulations = 99999999999999999999999\n"),
        ("learning-rate-nan", b"[learner]\nlearning_rate = nan\n"),
        ("batch-size-2**62", b"[learner]\nbatch_size = 4611686018427387904\n"),
        ("window-2**62", b"[replay]\nwindow_positions = 4611686018427387904\n"),
        ("string-1MB", b"game = \"" + b"x" * 1_000_000 + b"\"\n"),
    ]
    return [Case(name, data, "crafted") for name, data in refuse]
