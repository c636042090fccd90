"""The CLI fuzz target: tabula.cli.main(argv), the commands' long-running parts stubbed."""

from __future__ import annotations

import contextlib
import functools
import io
import re
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, Violation, expect

CLI_LINES = [
    "train --game tictactoe --set search.num_simulations=8 --iterations 1",
    "train --game connect4 --algo muzero --run r1 --minutes 0.5 --seed 3",
    "train --set learner.learning_rate=0.01 --set run.actors=0 --actors 2 --backend local",
    "train --config cfg.toml --device cpu --address auto --backend ray --inference-server",
    "train --config bad.toml --no-inference-server --no-progress --actors auto",
    "train --run emptyrun --game go9 --set game=go9 --set arena.every=2",
    "play --game tictactoe --checkpoint ttt.safetensors --sims 4 --engine-first --seed 1",
    "play --checkpoint ttt.safetensors --agent random --episodes 1 --max-steps 5 --no-gif",
    "play --checkpoint missing.safetensors",
    "analyze --checkpoint ttt.safetensors --sims 8 --seed 2",
    "eval --checkpoint ttt.safetensors --vs minimax --sims 2",
    "eval --game connect4 --vs solved --data solved.jsonl",
    "eval --checkpoint ttt.safetensors --vs mcts --games 2 --mcts-sims 10 --no-progress",
    "eval --game tictactoe --vs minimax --run emptyrun --every 2",
    "arena emptyrun --games 2 --sims 2 --round-robin --opponent random --processes 1 "
    "--opening-plies 2 --move-time 0.1 --engine-option Hash=16 --every 1 --db x.sqlite",
    "elo --pgn games.pgn --anchor A --scale 400 --first-move-advantage --csv out.csv --los",
    "elo emptyrun --game chess",
    "gtp --sims 8 --resign-threshold 0.9 --seed 2",
    "gtp --game go13 --time-per-move 0.01",
    "gtp --checkpoint ttt.safetensors",
    "uci --nodes 8 --threads 1 --minibatch-size 2 --show-wdl --move-overhead 10",
    "uci --checkpoint ttt.safetensors",
    "games",
    "bench nonsense",
]
CLI_WORDS = ["--game", "--sims", "--set", "--checkpoint", "--seed", "--run", "--vs", "--help",
             "-h", "tictactoe", "connect4", "go9", "chess", "atari/Breakout", "nope",
             "search.num_simulations=3", "run.actors=\u00b2", "run.device=cuda:\u0663",
             "game=\x02", "run.address=a\nb", "run.address=\udcff", "\udcff", "x\ny",
             "--game=\n", "\r\n", "a\x00\nb", "search.c_scale=nan", "learner.augment=maybe",
             "cfg.toml", "bad.toml", "emptyrun", "ttt.safetensors", "--", "-", "=", "train",
             "play", "uci", "gtp"]
PGN = """[White "A"]\n[Black "B"]\n[Result "1-0"]\n\n1. e4 e5 1-0\n\n""" \
      """[White "B"]\n[Black "C"]\n[Result "1/2-1/2"]\n\n1. d4 d5 1/2-1/2\n\n""" \
      """[White "C"]\n[Black "A"]\n[Result "0-1"]\n\n1. c4 c5 0-1\n"""


MAX_ARGV = 400


@st.composite
def argvs(draw) -> list[str]:
    """A real command line's argv, mutated (an empty argument, NUL, huge numbers ...)."""
    c = S.DrawChooser(draw)
    # argparse is quadratic in the number of options (a min() over all of them per
    # option): an argv of thousands takes seconds and teaches nothing new.
    argv = S.mutate(c.pick(CLI_LINES).split(" "), c, S.HOSTILE + CLI_WORDS, max_repeat=20)
    argv = argv[:MAX_ARGV]
    if draw(st.booleans()):  # one argument replaced by a value with a line break in it
        i = c.number(0, len(argv) - 1) if argv else 0
        argv[i:i + 1] = [c.pick(_BREAKS)]
    if draw(st.booleans()):  # a real argv cannot hold NUL; main() may still be given one
        argv = [a.replace("\x00", "") for a in argv]
    return argv


_BREAKS = ["a\nb", "1\r2", "x\n", "--game=go\n9", "search.c_scale=1\n", "\u2028", "\x1b[2J"]


_USAGE = re.compile(r"usage: |\s")
_REASON = re.compile(r"tabula(?: [\w-]+)*: error: \S.*")


def _stub_summary(*args, **kwargs):
    return SimpleNamespace(line=lambda: "trained (stub)", checkpoint=None, interrupted=False)


def _cached_loader():
    """Player.from_checkpoint that loads each (file, game, backend, threads) once: the fuzz
    parses arguments; building an inference session per argv would be most of its time."""
    import dataclasses

    from engine.player import Player

    real, cache = Player.from_checkpoint.__func__, {}

    def from_checkpoint(cls, path, game=None, backend="auto", threads=None, batch=None,
                        **overrides):
        key = (str(path), None if game is None else game.info.name, backend, threads)
        if key not in cache:
            try:
                cache[key] = real(cls, path, game=game, backend=backend, threads=threads)
            except Exception as e:  # CheckpointError, OSError ...: raised again each time
                cache[key] = e
        base = cache[key]
        if isinstance(base, Exception):
            raise base
        search = dataclasses.replace(base.search, **overrides)  # validates, like the real one
        player = cls(base.game, base.evaluator, search, name=base.name, batch=batch)
        player.meta = getattr(base, "meta", None)
        return player

    return mock.patch.object(Player, "from_checkpoint", classmethod(from_checkpoint))


def _stub_arena(args) -> int:
    from tabula import arena_cmd

    arena_cmd._run_specs(Path(args.run), args)  # the checks before any game
    arena_cmd._rating_kwargs(args)
    return 0


class CliTarget(Target):
    """tabula.cli.main(argv) with training, the stdio loops and the games stubbed out."""

    name = "cli"
    inputs_strategy = staticmethod(argvs)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg
        from tabula.cli import build_parser
        from tests.conftest import make_checkpoint

        (workdir / "cfg.toml").write_text((cfg.PRESETS / "tictactoe.toml").read_text())
        (workdir / "bad.toml").write_text("[search\nnum_simulations = 3\n")
        (workdir / "games.pgn").write_text(PGN)
        (workdir / "solved.jsonl").write_text(
            '{"moves": "4444", "score": 0, "best_moves": [3], '
            '"child_scores": [0, 0, 0, 0, 0, 0, 0], "depth": 4}\n')
        (workdir / "emptyrun").mkdir(exist_ok=True)
        make_checkpoint(workdir / "ttt.safetensors", "tictactoe")
        self.loader = _cached_loader()
        self.parser = functools.cache(build_parser)  # ~10 ms to build; parsing is the subject

    @contextlib.contextmanager
    def session(self):
        """The long-running parts of the commands replaced (what they are given is parsed)."""
        import arena
        import arena.protocols.gtp
        import arena.protocols.uci
        import arena.protocols.watch
        import selfplay.loop
        from tabula import arena_cmd, cli

        patches = [self.loader, mock.patch.object(cli, "build_parser", self.parser),
                   mock.patch.object(selfplay.loop, "train", _stub_summary),
                   mock.patch.object(arena, "run_text", lambda *a, **k: 0, create=True),
                   mock.patch.object(arena, "run_analysis", lambda *a, **k: 0, create=True),
                   mock.patch.object(arena.protocols.watch, "run_watch", lambda *a, **k: 0),
                   mock.patch.object(arena.protocols.gtp, "run_gtp", lambda *a, **k: 0),
                   mock.patch.object(arena.protocols.uci, "run_uci", lambda *a, **k: 0),
                   mock.patch.object(arena.protocols.uci.UciEngine, "warm_up", lambda self: None),
                   mock.patch.object(cli, "_eval_minimax", lambda *a: (["stub"], False)),
                   mock.patch.object(cli, "_eval_solved", lambda *a: ["stub"]),
                   mock.patch.object(cli, "_eval_mcts", lambda *a: "stub"),
                   mock.patch.object(cli, "_bench", lambda *a: 0),
                   mock.patch.object(arena_cmd, "cmd_arena", _stub_arena),
                   mock.patch("sys.stdin", io.StringIO(""))]
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            yield

    def check(self, argv: list[str]) -> None:
        self.inputs += 1
        code, out, err = run_cli(argv)
        check_cli_exit(argv, code, err)


def run_cli(argv: list[str]) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of tabula.cli.main(argv), in this process."""
    from tabula import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except Exception as e:
            raise Violation(f"{type(e).__name__} escaped main: {e}\n  argv: {argv!r}\n"
                            f"  stderr: {err.getvalue()[-500:]!r}") from e
    return code, out.getvalue(), err.getvalue()


def check_cli_exit(argv: list[str], code, err: str) -> None:
    expect(code in (0, 2), f"exit status {code!r}", argv, err)
    expect("Traceback" not in err, "a traceback", argv, err)
    if code == 2:
        lines = err.rstrip("\n").split("\n")  # as a terminal or a log shows them
        expect(bool(lines) and _REASON.fullmatch(lines[-1]) is not None,
               "the last line is not 'tabula: error: <reason>'", argv, err)
        expect(all(_USAGE.match(line) for line in lines[:-1]),
               "more than the reason and argparse's usage", argv, err)
