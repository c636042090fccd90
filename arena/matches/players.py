"""Players for the front ends and matches: finding checkpoints, PlayerSpecs, the arena player.

Every front end gets its engine here, so the rules for finding a checkpoint
(an explicit path, else the model shipped with the `checkpoints` package)
and the messages when there is none live in one place.

There are two levels of player. A searching player (engine.player.Player, or
a stand-in such as LowestActionPlayer) has `analyze(states) -> [Analysis]`:
the move with its policy, value and principal variation, which the protocol
front ends (arena.protocols) and the exact checkers (arena.exact) need. A
match needs only moves: it plays `ArenaPlayer`s, the one interface of the
match loop (arena.matches.match), which checkpoints, baselines and external
engines all have. `SearchPlayer` is the one adapter from the first to the
second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from arena.matches.baselines import RandomPlayer, RolloutMCTSPlayer, make_bot


def shipped_checkpoint(game_name: str, algo: str | None = None) -> Path:
    """Path of the model shipped for `game_name` (it may not exist).

    The file is `checkpoints/shipped/<game>.safetensors` inside the installed
    `checkpoints` package, with '/' in the game name replaced by '_'; a second
    model of another algorithm for the same game is `<game>.<algo>.safetensors`
    (tictactoe.muzero.safetensors next to AlphaZero's tictactoe.safetensors).
    With `algo`, the file of that algorithm: the plain name if its header says
    `algo`, else the suffixed one.
    """
    import checkpoints

    folder = Path(checkpoints.__file__).parent / "shipped"
    name = game_name.replace("/", "_")
    plain = folder / f"{name}.safetensors"
    if algo is None:
        return plain
    if plain.exists():
        from checkpoints import CheckpointError, read_metadata

        try:
            if read_metadata(plain).get("algo", "alphazero") == algo:
                return plain
        except CheckpointError:
            pass
    return folder / f"{name}.{algo}.safetensors"


def resolve_checkpoint(game_name: str, checkpoint: str | Path | None,
                       algo: str | None = None) -> Path:
    """The checkpoint to load: `checkpoint` if given, else the shipped model (of `algo`,
    when given).

    Raises:
      CheckpointError: no checkpoint given and no model shipped for the game.
      ValueError: both a checkpoint and an algorithm given (the file says its own).
    """
    from checkpoints import CheckpointError

    if checkpoint is not None:
        if algo is not None:
            raise ValueError("--algo chooses among the shipped models; a --checkpoint file "
                             "names its own algorithm")
        return Path(checkpoint)
    path = shipped_checkpoint(game_name, algo)
    if not path.exists():
        which = "" if algo is None else f"{algo} "
        command = f"tabula train --game {game_name}" + ("" if algo is None else f" --algo {algo}")
        raise CheckpointError(
            f"no {which}model is shipped for {game_name} ({path} does not exist); train one "
            f"with `{command}` or pass --checkpoint PATH")
    return path


def checkpoint_game(path: str | Path) -> str:
    """The game a checkpoint was trained on, read from its header (CheckpointError if bad)."""
    from checkpoints import read_metadata

    return read_metadata(path)["game"]


def load_player(game_name: str | None, checkpoint: str | Path | None,
                sims: int | None = None, seed: int = 0, default_game: str = "connect4",
                batch: int | None = None, algo: str | None = None):
    """Loads a verified checkpoint as a deterministic (temperature 0) `Player`.

    Args:
      game_name: registry name; None means the checkpoint's game (or
        `default_game` when no checkpoint is given either).
      checkpoint: a checkpoint file, or None for the shipped model.
      sims: simulations per move (default: the checkpoint's training setting).
      seed: the Player's random seed.
      default_game: game used when neither a game nor a checkpoint is given.
      batch: interactive batching, positions per network call (engine.player.Player);
        None: the checkpoint's leaves_per_step.
      algo: without a checkpoint, the shipped model of this algorithm (alphazero,
        muzero); None: the game's default shipped model.
    Raises:
      GameError: unknown game.
      CheckpointError: missing, tampered or mismatched checkpoint.
      ValueError: invalid search settings (e.g. sims < 1).
    """
    from engine.player import Player
    from games import get_game

    if game_name is None:
        game_name = checkpoint_game(checkpoint) if checkpoint is not None else default_game
    game = get_game(game_name)
    path = resolve_checkpoint(game_name, checkpoint, algo)
    overrides = {} if sims is None else {"num_simulations": int(sims)}
    player = Player.from_checkpoint(path, game=game, batch=batch, **overrides)
    player.rng = np.random.default_rng(seed)
    return player


class LowestActionPlayer:
    """A deliberately weak baseline: always the legal action with the lowest id.

    Has the `analyze` interface of engine.player.Player (only `.action` and
    `.prior` are meaningful), so checkers can be tested against it.
    """

    name = "lowest"

    def analyze(self, states: Sequence, num_simulations: int | None = None,
                add_noise: bool = False) -> list[Any]:
        """One fake analysis per state; blocks for no time."""
        out = []
        for state in states:
            mask = state.legal_mask()
            action = int(np.flatnonzero(mask)[0])
            prior = np.zeros(len(mask), np.float32)
            prior[action] = 1.0
            out.append(_FakeAnalysis(action, prior))
        return out


class _FakeAnalysis:
    def __init__(self, action: int, prior: np.ndarray):
        self.action = action
        self.prior = prior
        self.value = 0.0


# --------------------------------------------------------------------------
# Arena players: one interface for checkpoints, baselines and external engines.


class ArenaPlayer(Protocol):
    """What the match loop plays (arena.matches.match.play_games).

    Implemented by NetworkPlayer (a checkpoint), SearchPlayer (any searching
    player), baselines.RandomPlayer, baselines.RolloutMCTSPlayer and
    external.ExternalPlayer (a GTP or UCI engine). A `PlayerSpec` is the
    picklable, JSON-able description a worker process builds one from.
    """

    name: str
    """The player's name in results and ratings."""

    def select(self, states: Sequence) -> list:
        """One move per state (none terminal), searched as one batch where it can be; blocks.

        A move is an action id, or an external.Forfeit when the player gives up
        the game (the match scores it as a loss).
        """

    def new_game(self) -> None:
        """Called once for every game the player starts."""

    def close(self) -> None:
        """Releases what the player holds (an engine's process); called once, at the end."""


BASELINE_MCTS_SIMS = 1000
"""Simulations of the rollout-MCTS baseline when `mcts` is given without a number."""


class PlayerSpecError(ValueError):
    """A player description that cannot be used (unknown spec, missing file, other game)."""


@dataclass(frozen=True)
class PlayerSpec:
    """How to build one arena player.

    Attributes:
      name: the player's name in results and ratings.
      kind: 'checkpoint', 'random', 'mcts', 'gtp' or 'uci'.
      target: checkpoint path, or the engine's command line (gtp/uci).
      sims: simulations per move (checkpoint: None = its training setting;
        mcts: rollout simulations).
      step: a checkpoint's learner step (for Elo-over-training plots).
      options: UCI options as (name, value) pairs.
      move_time: seconds per move for external engines (None: their default).
      timeout: seconds an external engine may take beyond move_time.
    """

    name: str
    kind: str
    target: str = ""
    sims: int | None = None
    step: int | None = None
    options: tuple = ()
    move_time: float | None = None
    timeout: float = 10.0

    def describe(self) -> dict:
        """The spec as a JSON-able dict (stored with the player in the results database)."""
        out = {"kind": self.kind, "target": self.target, "sims": self.sims}
        if self.options:
            out["options"] = dict(self.options)
        if self.move_time is not None:
            out["move_time"] = self.move_time
        return out


def checkpoint_spec(path: str | Path, game_name: str, sims: int | None = None) -> PlayerSpec:
    """A checkpoint player named after its file ('step-00001216'); checks the game.

    Raises:
      PlayerSpecError: missing or unreadable file, or a checkpoint of another game.
    """
    from checkpoints import CheckpointError, read_metadata

    path = Path(path)
    try:
        meta = read_metadata(path)
    except CheckpointError as e:
        raise PlayerSpecError(str(e).splitlines()[0]) from None
    if meta["game"] != game_name:
        raise PlayerSpecError(f"{path} is a {meta['game']} checkpoint; this match is "
                              f"{game_name}")
    return PlayerSpec(path.stem, "checkpoint", str(path), sims, int(meta.get("step", 0)))


def parse_player(text: str, game_name: str, sims: int | None = None,
                 options: Sequence[tuple[str, str]] = (), move_time: float | None = None,
                 search_dirs: Sequence[Path] = ()) -> PlayerSpec:
    """A PlayerSpec from its command-line form.

    Forms: `random`; `mcts` or `mcts:SIMS` (open_spiel's rollout MCTSBot);
    `gtp:COMMAND` / `uci:COMMAND` (an external engine, e.g. `gtp:gnugo --mode gtp`),
    optionally named `NAME=gtp:COMMAND`; a checkpoint path; or a checkpoint
    name or step number found in `search_dirs` (e.g. `step-00001216` or `1216`).

    Args:
      sims: simulations per move for checkpoint players.
      options: UCI options for uci engines.
      move_time: seconds per move for external engines.
    Raises:
      PlayerSpecError: the text names no player.
    """
    text = text.strip()
    name, sep, rest = text.partition("=")
    if not sep or ":" not in rest or not name or ":" in name:
        name, rest = "", text
    kind, _, arg = rest.partition(":")
    if rest == "random":
        return PlayerSpec("random", "random")
    if kind == "mcts":
        try:
            n = int(arg) if arg else BASELINE_MCTS_SIMS
        except ValueError:
            raise PlayerSpecError(f"bad player {text!r}: mcts:N needs a number of "
                                  "simulations") from None
        if n < 1:
            raise PlayerSpecError(f"bad player {text!r}: mcts needs at least 1 simulation")
        return PlayerSpec(name or f"mcts-{n}", "mcts", sims=n)
    if kind in ("gtp", "uci"):
        import shlex
        try:
            argv = shlex.split(arg)
        except ValueError as e:
            raise PlayerSpecError(f"bad player {text!r}: {e}") from None
        if not argv:
            raise PlayerSpecError(f"bad player {text!r}: {kind}: needs a command line")
        return PlayerSpec(name or Path(argv[0]).name, kind, arg,
                          options=tuple(options) if kind == "uci" else (),
                          move_time=move_time)
    return checkpoint_spec(_find_checkpoint(text, search_dirs), game_name, sims)


def _find_checkpoint(text: str, search_dirs: Sequence[Path]) -> Path:
    from checkpoints import checkpoint_name

    path = Path(text)
    if path.suffix == ".safetensors" or path.exists() or "/" in text:
        if not path.exists():
            raise PlayerSpecError(f"checkpoint {path} does not exist")
        return path
    candidates = [f"{text}.safetensors"]
    if text.isdigit():
        candidates.append(checkpoint_name(int(text)))
    for directory in search_dirs:
        for candidate in candidates:
            if (Path(directory) / candidate).exists():
                return Path(directory) / candidate
    raise PlayerSpecError(
        f"unknown player {text!r}: expected random, mcts[:SIMS], gtp:COMMAND, uci:COMMAND, "
        "a checkpoint file, or a checkpoint name or step of the run")


def build_player(spec: PlayerSpec, game, seed: int = 0, threads: int | None = None):
    """The arena player `spec` describes, for `game`. Loads weights / starts nothing yet.

    Raises:
      PlayerSpecError: the checkpoint cannot be loaded, or the game cannot host it.
    """
    if spec.kind == "random":
        return RandomPlayer(seed, spec.name)
    if spec.kind == "mcts":
        try:
            bot = make_bot(game, spec.sims or BASELINE_MCTS_SIMS, seed)
        except ValueError as e:
            raise PlayerSpecError(str(e)) from None
        return RolloutMCTSPlayer(spec.name, game, bot)
    if spec.kind in ("gtp", "uci"):
        from arena.matches.external import ExternalPlayer
        try:
            return ExternalPlayer(spec.kind, spec.target, game, name=spec.name,
                                  options=dict(spec.options), move_time=spec.move_time,
                                  timeout=spec.timeout)
        except ValueError as e:
            raise PlayerSpecError(str(e)) from None
    if spec.kind == "checkpoint":
        return NetworkPlayer(spec, game, seed, threads)
    raise PlayerSpecError(f"unknown player kind {spec.kind!r}")


class SearchPlayer:
    """A searching player (`analyze(states)`, as engine.player.Player) as an ArenaPlayer.

    select() is one analyze() call over all the positions, with the player's
    own search settings (a loaded Player plays at temperature 0, no noise).
    """

    def __init__(self, name: str, player):
        self.name = name
        self.player = player

    def select(self, states: Sequence) -> list[int]:
        """One move per state, searched as one batch. Blocks."""
        return [a.action for a in self.player.analyze(list(states))]

    def new_game(self) -> None:
        pass

    def close(self) -> None:
        pass


class NetworkPlayer(SearchPlayer):
    """A checkpoint searching at temperature 0 (batched across games)."""

    def __init__(self, spec: PlayerSpec, game, seed: int = 0, threads: int | None = None):
        from checkpoints import CheckpointError
        from engine.player import Player

        overrides = {} if spec.sims is None else {"num_simulations": int(spec.sims)}
        try:
            player = Player.from_checkpoint(spec.target, game=game, threads=threads,
                                            **overrides)
        except CheckpointError as e:
            raise PlayerSpecError(str(e).splitlines()[0]) from None
        player.rng = np.random.default_rng(seed)
        super().__init__(spec.name, player)
