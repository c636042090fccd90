"""The UCI engine's options, declared once: they feed `uci`, `setoption` and the CLI.

Each `UciOption` knows its UCI name and type, its default, its range and its
command-line flag; `tabula uci --nodes 8` and `setoption name Nodes value 8`
go through the same `UciOption.parse`. Values are ints (spin), bools (check)
or strings (string; '<empty>' is the empty string, as in Stockfish).

`make_player` builds the engine.player.Player the options describe.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.interactive import INTERACTIVE_BATCH

EMPTY = "<empty>"
"""How UCI writes an empty string value."""
MAX_NODES = 1_000_000_000


class UciError(Exception):
    """A command that cannot be carried out; the message goes into `info string`."""


@dataclass(frozen=True)
class UciOption:
    """One engine option."""

    name: str
    """UCI name (setoption matches it case-insensitively)."""
    kind: str
    """'spin', 'check' or 'string'."""
    default: int | bool | str
    help: str
    """One line for `tabula uci --help`."""
    flag: str | None = None
    """Command-line flag, e.g. '--nodes'; None: UCI only."""
    low: int = 0
    """Smallest spin value."""
    high: int = 0
    """Largest spin value."""

    def declaration(self) -> str:
        """The `option name ...` line of the `uci` answer."""
        if self.kind == "spin":
            return (f"option name {self.name} type spin default {self.default} "
                    f"min {self.low} max {self.high}")
        if self.kind == "check":
            return f"option name {self.name} type check default {str(self.default).lower()}"
        return f"option name {self.name} type string default {self.default or EMPTY}"

    def parse(self, text: str | None) -> int | bool | str:
        """The value of `text`; UciError (with the reason) if it is not one."""
        text = (text or "").strip()
        if self.kind == "string":
            return "" if text == EMPTY else text
        if self.kind == "check":
            if text.lower() not in ("true", "false"):
                raise UciError(f"option {self.name} takes true or false, not {text!r}")
            return text.lower() == "true"
        try:
            value = int(text)
        except ValueError:
            raise UciError(f"option {self.name} takes an integer, not {text!r}") from None
        if not self.low <= value <= self.high:
            raise UciError(f"option {self.name} must be in [{self.low}, {self.high}], "
                           f"not {value}")
        return value


OPTIONS = (
    UciOption("Nodes", "spin", 0, "simulations per move: the whole budget of a `go` without "
              "limits, and the most a timed move uses (0: no cap; a bare `go` then uses the "
              "checkpoint's training setting)", "--nodes", 0, MAX_NODES),
    UciOption("Threads", "spin", 0, "inference threads of the network (0: one per core); "
              "applies to the loaded checkpoint at once", "--threads", 0, 256),
    UciOption("MinibatchSize", "spin", 0, "positions per network call the search aims "
              "for, by selecting several leaves of the tree at once with virtual loss (fewer "
              "in small searches; 1: one leaf at a time; 0: automatic, "
              f"{INTERACTIVE_BATCH})", "--minibatch-size", 0, 256),
    UciOption("WeightsFile", "string", "", "checkpoint file (empty: a uniform evaluator, "
              "for testing)", "--checkpoint"),
    UciOption("UCI_ShowWDL", "check", False, "add `wdl W D L` to info lines", "--show-wdl"),
    UciOption("MoveOverhead", "spin", 100, "milliseconds kept back from every timed move "
              "for the GUI's and the pipe's delays", "--move-overhead", 0, 10_000),
    UciOption("Ponder", "check", False, "the GUI may send `go ponder` (always supported)"),
)
"""Every option, in the order `uci` lists them."""

_BY_NAME = {o.name.lower(): o for o in OPTIONS}


def find_option(name: str) -> UciOption:
    """The option called `name` (any case); UciError if there is none."""
    option = _BY_NAME.get(" ".join(name.split()).lower())
    if option is None:
        raise UciError(f"unknown option {name!r}")
    return option


def defaults() -> dict[str, int | bool | str]:
    """{name: default} of every option."""
    return {o.name: o.default for o in OPTIONS}


def make_player(game, values: dict):
    """The Player the option `values` describe (WeightsFile, Threads, MinibatchSize).

    Raises:
      CheckpointError, OSError, ValueError: the checkpoint cannot be loaded or is
        not for `game`.
    """
    from engine.evaluator import UniformEvaluator
    from engine.player import Player
    from engine.search import SearchConfig

    batch = int(values.get("MinibatchSize", 0)) or INTERACTIVE_BATCH
    path = values.get("WeightsFile", "")
    if path:
        threads = int(values.get("Threads", 0)) or None
        return Player.from_checkpoint(path, game=game, threads=threads, batch=batch)
    info = game.info
    evaluator = UniformEvaluator(info.num_actions, info.observation_shape)
    return Player(game, evaluator, SearchConfig(), name="uniform", batch=batch)
