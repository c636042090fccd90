"""Training configuration: frozen dataclasses, TOML presets, command-line overrides.

A run's configuration is built as: dataclass defaults < the game's preset
(selfplay/presets/<game>.toml) < a user TOML file < `--set section.key=value`
overrides. The resolved configuration is written to the run directory as
config.toml and reused when the run resumes.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.evaluator import BACKENDS
from engine.muzero_net import MuZeroNetConfig
from engine.networks import NetworkConfig
from engine.search import SearchConfig
from games.base import parse_count

PRESETS = Path(__file__).parent / "presets"
USER_PRESET = PRESETS / "user_game.toml"
"""The start of a user's game that has no preset of its own (a small board game's)."""


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message says how."""


def _check_ints(obj, minimum: int, *names: str) -> None:
    """Raises ValueError unless every named field is an int >= minimum."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_floats(obj, *names: str) -> None:
    """Raises ValueError unless every named field is a number >= 0 (NaN refused)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _digits(text: str) -> bool:
    """Whether `text` is a small non-negative integer in ASCII digits (games.base.parse_count)."""
    return parse_count(text, 10**9) is not None


@dataclass(frozen=True)
class SelfPlayConfig:
    """How the actor plays."""

    parallel_games: int = 256
    """Games played at once; each search step evaluates one leaf per game in one batch."""
    moves_per_iteration: int = 32
    """Moves played in every parallel game per training iteration."""
    temperature_moves: int = 8
    """Plies sampled at temperature 1 (PUCT: from visits; Gumbel: from the improved policy)
    before the search's own move is played."""
    inference_backend: str = "auto"
    """Network runtime for self-play: auto (the fastest measured on this machine at the
    actors' batch, cached per machine; engine/backend_choice.py), onnx, torch, torch_cl,
    torch_bf16 or compile."""
    full_search_fraction: float = 1.0
    """Playout cap randomization (KataGo): the share of moves searched with
    search.num_simulations; only those positions are trained on. The other moves get a
    fast search of fast_simulations without root noise that only picks the move, so
    more games (value targets) come from the same network evaluations. 1: every move."""
    fast_simulations: int = 0
    """Simulations of the fast searches (0: a quarter of search.num_simulations)."""
    random_move_fraction: float = 0.0
    """The share of moves replaced by a uniformly random legal move after the search (its
    position keeps the search's policy target), so the window holds positions after
    mistakes, which an opponent makes and near-perfect self-play no longer does."""
    eval_cache: int = 0
    """Positions kept in a cache of network evaluations keyed by a hash of the observation
    (engine.eval_cache), shared by all games of an actor and across its moves while the
    weights stay the same; 0: no cache. Exact: the network is a function of its input."""

    # Checked here, not where they are used: a bad value must fail before the
    # run directory's config.toml is written, since resuming cannot change it.
    def __post_init__(self):
        _check_ints(self, 1, "parallel_games", "moves_per_iteration")
        _check_ints(self, 0, "temperature_moves", "fast_simulations", "eval_cache")
        _check_floats(self, "full_search_fraction", "random_move_fraction")
        if self.random_move_fraction >= 1:
            raise ValueError("random_move_fraction must be in [0, 1), got "
                             f"{self.random_move_fraction!r}")
        if not 0 < self.full_search_fraction <= 1:
            raise ValueError("full_search_fraction must be in (0, 1], got "
                             f"{self.full_search_fraction!r}")
        if self.inference_backend not in BACKENDS:
            raise ValueError(f"inference_backend must be one of {', '.join(BACKENDS)}, "
                             f"got {self.inference_backend!r}")


@dataclass(frozen=True)
class ReplayConfig:
    """The sliding window of recent positions."""

    window_positions: int = 200_000
    """Most recent positions kept for sampling."""
    min_positions: int = 2_000
    """Positions required before training starts."""
    window_mb: float = 0.0
    """Upper bound on the window's memory in MiB (0: window_positions alone bounds it)."""
    window_start: int = 0
    """A window that grows with the run (KataGo's): training samples the newest
    window_start * (1 + 0.4 * ((N / window_start) ** 0.75 - 1) / 0.75) positions after N
    self-play positions (at most window_positions), so the first, weakest games leave
    soon. 0: the whole window from the start."""
    archive: bool = False
    """Keep every replay shard: shards older than the window move to replay/archive/ (for
    later analysis) instead of being deleted. Off, the replay directory holds the window
    and what resuming needs, so disk use stays bounded however long the run."""

    def __post_init__(self):
        _check_ints(self, 1, "window_positions")
        _check_ints(self, 0, "min_positions", "window_start")
        _check_floats(self, "window_mb")


@dataclass(frozen=True)
class LearnerConfig:
    """Optimisation."""

    batch_size: int = 256
    """Positions per gradient step."""
    learning_rate: float = 2e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""
    replay_ratio: float = 4.0
    """Average number of times each new position is sampled for training."""
    max_steps_per_iteration: int = 400
    """Upper bound on gradient steps per iteration."""
    value_loss_weight: float = 1.0
    """Weight of the value loss against the policy cross-entropy."""
    augment: bool = True
    """Apply random game symmetries to sampled positions."""
    value_target_q: float = 0.0
    """Value target (1 - w) z + w q: z the game's result, q the root search value of the
    position (AlphaZero: w = 0). AlphaZero only; MuZero has its own n-step targets."""
    lr_schedule: str = "constant"
    """constant, or cosine: the learning rate falls along a half cosine from
    learning_rate to lr_final * learning_rate over the session's budget (run.max_minutes
    or run.max_iterations, whichever ends it first; a resumed session starts it again)."""
    lr_final: float = 0.1
    """cosine: the final learning rate as a fraction of learning_rate."""
    ema_decay: float = 0.0
    """An exponential moving average of the weights, updated after every step with this
    decay (e.g. 0.998: about the last 500 steps), is the network that plays and is
    checkpointed; the optimiser trains the raw weights, kept in the train state.
    AlphaZero only. 0: the raw weights play."""
    ownership_weight: float = 1.5
    """Weight of the ownership loss (binary cross-entropy per point, averaged over the
    board; KataGo's 1.5) when the network has auxiliary heads (network.aux_heads)."""
    score_weight: float = 0.1
    """Weight of the score loss (Huber, in points divided by the board side) when the
    network has auxiliary heads."""

    def __post_init__(self):
        _check_ints(self, 1, "batch_size", "max_steps_per_iteration")
        _check_floats(self, "learning_rate", "weight_decay", "replay_ratio",
                      "value_loss_weight", "value_target_q", "lr_final", "ema_decay",
                      "ownership_weight", "score_weight")
        if self.ema_decay >= 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.value_target_q > 1:
            raise ValueError(f"value_target_q must be in [0, 1], got {self.value_target_q!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be constant or cosine, got "
                             f"{self.lr_schedule!r}")


@dataclass(frozen=True)
class RunConfig:
    """Budget and bookkeeping."""

    seed: int = 0
    """Seed of every random generator in the run."""
    max_minutes: float = 0.0
    """Stop after this many minutes of wall time (0: no limit)."""
    max_iterations: int = 0
    """Stop after this many iterations in total (0: no limit)."""
    checkpoint_every: int = 1
    """Write a checkpoint every this many iterations."""
    device: str = "cpu"
    """Torch device for the learner and for self-play inference: cpu, cuda or cuda:N."""
    backend: str = "local"
    """Where actors run: local (processes on this machine) or ray (a Ray cluster)."""
    actors: str = "auto"
    """Self-play actor processes: auto (suits the machine), 0 (self-play in the learner's
    process, alternating with training) or a number N."""
    address: str = ""
    """Ray only: empty starts a Ray instance on this machine; auto joins the running one;
    HOST:PORT joins that cluster's head."""
    inference_server: bool = False
    """Local actors send their network batches to one shared inference process
    (AlphaZero only) instead of each running its own copy of the network."""

    def __post_init__(self):
        _check_ints(self, 0, "max_iterations")
        _check_ints(self, 1, "checkpoint_every")
        _check_floats(self, "max_minutes")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        kind, _, index = str(self.device).partition(":")
        if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and _digits(index))):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be local or ray, got {self.backend!r}")
        if isinstance(self.actors, int) and not isinstance(self.actors, bool):
            object.__setattr__(self, "actors", str(self.actors))  # RunConfig(actors=2)
        if not isinstance(self.actors, str) or not (
                self.actors == "auto" or (_digits(self.actors) and int(self.actors) <= 4096)):
            raise ValueError(f"actors must be auto or a number of processes, got {self.actors!r}")


@dataclass(frozen=True)
class ArenaConfig:
    """Evaluation during training (off by default; it costs self-play time)."""

    every: int = 0
    """Play a gauntlet every this many checkpoints: the new checkpoint against the
    previous gauntlet's and the first, updating elo.csv / elo.png (0: never)."""
    games: int = 20
    """Games per pairing of a gauntlet, and the most games of a gating match."""
    simulations: int = 0
    """Simulations per move in arena games (0: the training setting)."""
    gating: str = "off"
    """off: the actors always play with the newest weights. winrate: a new checkpoint
    replaces the actors' network only if it scores at least gate_score over `games`
    games against it. sprt: the same decided by an SPRT (sprt_elo0 against sprt_elo1,
    alpha = beta = 0.05), at most `games` games; undecided means not promoted."""
    gate_score: float = 0.55
    """winrate gating: the score needed for promotion."""
    sprt_elo0: float = 0.0
    """sprt gating: Elo gain of the null hypothesis."""
    sprt_elo1: float = 30.0
    """sprt gating: Elo gain of the alternative hypothesis."""
    processes: int = 1
    """Worker processes for arena games."""

    def __post_init__(self):
        _check_ints(self, 0, "every", "simulations")
        _check_ints(self, 1, "games", "processes")
        _check_floats(self, "gate_score")
        if self.gating not in ("off", "winrate", "sprt"):
            raise ValueError(f"gating must be off, winrate or sprt, got {self.gating!r}")
        if not 0 < self.gate_score <= 1:
            raise ValueError(f"gate_score must be in (0, 1], got {self.gate_score!r}")
        if not self.sprt_elo1 > self.sprt_elo0:
            raise ValueError("sprt_elo1 must be greater than sprt_elo0")


@dataclass(frozen=True)
class MuZeroConfig:
    """MuZero training (used when algo = "muzero")."""

    unroll_steps: int = 5
    """K: steps the dynamics network is unrolled per sample in training."""
    td_steps: int = 10
    """n: value targets are n-step returns bootstrapped from the search value n steps on
    (board games: set it above the game length for the final outcome)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016): sample by |value target - prediction|^alpha."""
    priority_alpha: float = 0.6
    """Prioritized replay exponent (0: uniform)."""
    priority_beta: float = 0.4
    """Importance-sampling correction exponent (1: full correction)."""
    reanalyze_fraction: float = 0.0
    """Fraction of the positions searched per iteration that re-search stored positions
    with the newest network (MuZero Reanalyze), refreshing their policy and value targets."""
    value_loss_weight: float = 0.25
    """Weight of the value loss (the MuZero Reanalyze paper's 0.25)."""
    segment_length: int = 200
    """Environments: a running episode is stored in segments of this many positions."""

    def __post_init__(self):
        _check_ints(self, 1, "unroll_steps", "td_steps", "segment_length")
        _check_floats(self, "priority_alpha", "priority_beta", "reanalyze_fraction",
                      "value_loss_weight")
        if not self.reanalyze_fraction < 1:
            raise ValueError("reanalyze_fraction must be below 1 (some positions must be fresh)")


ALGOS = ("alphazero", "muzero")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs."""

    game: str = "tictactoe"
    """Registry name of the game."""
    algo: str = "alphazero"
    """alphazero (the rules in the search) or muzero (learned dynamics; environments)."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """AlphaZero's network (algo = alphazero)."""
    muzero_network: MuZeroNetConfig = field(default_factory=MuZeroNetConfig)
    """MuZero's networks (algo = muzero)."""
    muzero: MuZeroConfig = field(default_factory=MuZeroConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    arena: ArenaConfig = field(default_factory=ArenaConfig)

    def inference_batch(self) -> int:
        """The batch one self-play actor sends the network: its games times leaves per step."""
        return self.selfplay.parallel_games * self.search.leaves_per_step


SECTIONS = {
    "network": NetworkConfig,
    "muzero_network": MuZeroNetConfig,
    "muzero": MuZeroConfig,
    "search": SearchConfig,
    "selfplay": SelfPlayConfig,
    "replay": ReplayConfig,
    "learner": LearnerConfig,
    "run": RunConfig,
    "arena": ArenaConfig,
}


INT_MIN, INT_MAX = -2**63, 2**63 - 1
"""TOML's integers are 64-bit: config.toml must be able to hold every accepted value."""


MAX_SETTING = 2**31 - 1
"""Largest integer setting (the seed excepted): counts index int32 arrays and tensors."""
SIZE_LIMITS = {
    "learner.batch_size": 65_536, "selfplay.parallel_games": 65_536,
    "search.num_simulations": 1_000_000, "search.max_num_considered_actions": 65_536,
    "network.blocks": 256, "network.channels": 4_096, "network.policy_channels": 4_096,
    "network.value_channels": 4_096, "network.value_hidden": 65_536,
    "muzero_network.blocks": 256, "muzero_network.channels": 4_096,
    "muzero_network.head_channels": 4_096, "muzero_network.hidden": 65_536,
    "muzero_network.value_support": 100_000, "muzero_network.reward_support": 100_000,
}
"""Sizes that allocate memory in proportion: far beyond any network or batch that trains
on one machine, so a typo is refused at once instead of exhausting memory."""


def _text(where: str, value: str) -> str:
    """`value`, if it can be written to config.toml (no lone surrogates from undecodable argv)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where} must be valid Unicode text, got {value!r}") from None
    return value


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"{section}.{key}"
    number = None
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        if number is not None and not INT_MIN <= number <= INT_MAX:
            raise ConfigError(f"invalid [{section}] settings: {key} must be an integer of at "
                              f"most 64 bits, got {value!r}")
        limit = SIZE_LIMITS.get(where, MAX_SETTING if where != "run.seed" else None)
        if number is not None and limit is not None and number > limit:
            raise ConfigError(f"invalid [{section}] settings: {key} must be at most "
                              f"{limit:,}, got {number:,}")
    elif isinstance(default, float):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # a huge TOML integer
                number = math.inf
            except ValueError:
                pass
        if number is not None and not math.isfinite(number):
            raise ConfigError(f"invalid [{section}] settings: {key} must be a finite number, "
                              f"got {value!r}")
    elif isinstance(default, str):
        if isinstance(value, str):
            return _text(where, value)
        if where == "run.actors" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # actors = 2 in a TOML file
    if number is not None:
        return number
    raise ConfigError(f"{where} must be {type(default).__name__}, got {value!r}")


def _section(cls, section: str, values: dict, base) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {section}.{key}{hint}")
        changes[key] = _coerce(section, key, value, getattr(base, key))
    try:
        return dataclasses.replace(base, **changes)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid [{section}] settings: {e}") from None


def merge(config: TrainConfig, data: dict) -> TrainConfig:
    """Returns `config` updated by a nested dict (as read from TOML)."""
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "game":
            if not isinstance(value, str):
                raise ConfigError(f"game must be a string, got {value!r}")
            changes["game"] = _text("game", value)
        elif key == "algo":
            if value not in ALGOS:
                raise ConfigError(f"algo must be one of {', '.join(ALGOS)}, got {value!r}")
            changes["algo"] = value
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table of settings")
            changes[key] = _section(SECTIONS[key], key, value, getattr(config, key))
        else:
            close = difflib.get_close_matches(key, ["game", "algo", *SECTIONS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown config section {key!r}{hint}")
    return dataclasses.replace(config, **changes)


def parse_overrides(items: list[str]) -> dict:
    """['search.num_simulations=32', ...] -> {'search': {'num_simulations': '32'}}."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value")
        parts = key.strip().split(".")
        if parts in (["game"], ["algo"]):
            data[parts[0]] = value.strip()
        elif len(parts) == 2:
            data.setdefault(parts[0], {})[parts[1]] = value.strip()
        else:
            raise ConfigError(f"override {item!r} must look like section.key=value")
    return data


def load_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as e:  # tomllib decodes the bytes itself
        raise ConfigError(f"config file {path} is not UTF-8 text: {e.reason} at byte "
                          f"{e.start}") from None
    except ValueError as e:  # TOMLDecodeError, or int() of an integer of > 4300 digits
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"config file {path} is not valid TOML: nested too deeply") from None


def check_file(path: Path, data: dict) -> None:
    """Raises ConfigError naming `path` unless its settings (from load_toml) are valid.

    The settings of a file are merged with --set overrides later; checking
    the file's alone first lets the error say which file holds the bad one.
    """
    game = data.get("game", "tictactoe")
    if not isinstance(game, str):
        raise ConfigError(f"config file {path}: game must be a string, got {game!r}")
    if "game" in data:
        from games import GameError, get_game

        try:
            get_game(game)
        except GameError as e:
            raise ConfigError(f"config file {path}: {e}") from None
    try:
        merge(TrainConfig(game=game), data)
    except ConfigError as e:
        raise ConfigError(f"config file {path}: {e}") from None


def preset(game: str, algo: str = "alphazero") -> TrainConfig:
    """Defaults plus the game's preset, if it has one.

    Presets: selfplay/presets/<game>.toml (a family's game such as atari/Pong
    falls back to atari.toml), then for MuZero <game>.muzero.toml on top. A user's
    game (games.is_user_game) without a preset of its own starts from USER_PRESET.
    """
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {', '.join(ALGOS)}, got {algo!r}")
    config = TrainConfig(game=game, algo=algo)
    stem = game.replace("/", "_")
    family = game.split("/")[0] if "/" in game else None
    names = [stem] if family is None else [family, stem]
    names += [f"{n}.{algo}" for n in names]  # e.g. tictactoe.muzero.toml
    paths = [path for path in (PRESETS / f"{name}.toml" for name in names) if path.exists()]
    if not paths:
        from games import is_user_game

        if is_user_game(game):
            paths = [USER_PRESET]
    for path in paths:
        config = merge(config, load_toml(path))
    return dataclasses.replace(config, game=game, algo=algo)


def to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


def from_dict(data: dict) -> TrainConfig:
    game = data.get("game")
    if not isinstance(game, str):
        raise ConfigError("config has no game name")
    return merge(TrainConfig(game=game), data)


def to_toml(config: TrainConfig) -> str:
    """The resolved configuration as TOML text (flat sections of scalars)."""
    data = to_dict(config)
    lines = [f"game = {_toml_value(data.pop('game'))}",
             f"algo = {_toml_value(data.pop('algo'))}", ""]
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_toml_char(c) for c in value) + '"'
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_char(c: str) -> str:
    """One character of a TOML basic string: control characters must be escaped."""
    if c in _TOML_ESCAPES:
        return _TOML_ESCAPES[c]
    return f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c
