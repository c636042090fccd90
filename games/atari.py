"""Atari 2600 games through gymnasium and ale-py: the family 'atari/<Name>'.

`get_game('atari/Breakout')` is `atari_game('Breakout')`. The preprocessing is
gymnasium's own, in the usual DQN / MuZero order (Machado et al. 2018):

    ALE/<Name>-v5 (frameskip=1, sticky actions, minimal action set)
      -> AtariPreprocessing (no-op starts, frame skip with max-pooling of the
         last two frames, grayscale, area resize to frame_size x frame_size)
      -> FrameStackObservation (stack frames, padded with the first one)
      -> TimeLimit (max_episode_steps agent steps)

and, where the game needs it, FIRE after a lost life (`fire_after_life_loss`:
Breakout waits for FIRE to serve the next ball, and an agent that has not
learnt that stalls for the rest of the episode; the usual Atari wrapper).

Atari games are environments, not board games: `AtariGame.kind` is
'environment' and there is no `State` to clone; an `AtariEnv` is stepped
forward only. gymnasium, ale-py and opencv (needed by AtariPreprocessing) are
imported inside functions, so `import games.atari` works without them.
"""

from __future__ import annotations

import difflib

import numpy as np

from games.base import GameError, GameInfo
from games.symmetry import identity_only

ATARI_DEFAULTS = dict(frame_size=96, frame_skip=4, stack=4, sticky_prob=0.25, noop_max=30,
                      max_episode_steps=27_000, fire_after_life_loss=True)
"""frame_size: side of the square grayscale frames; frame_skip: emulator frames per
agent step; stack: frames per observation; sticky_prob: probability that the
emulator repeats the previous action on each frame; noop_max: at most this many
no-op frames start an episode (uniform in [1, noop_max], 0 = none);
max_episode_steps: agent steps before an episode is truncated (27,000 steps =
108,000 frames = 30 minutes of play); fire_after_life_loss: in games whose action
set has FIRE, a step that loses a life (and does not end the game) is followed by
one FIRE step inside the same `step` call, whose reward and frames it adds."""

INSTALL_HINT = "atari games need gymnasium and ale-py: pip install 'tabula[atari]'"
DISCOUNT = 0.997
"""Per-step discount of MuZero's Atari experiments."""


def _modules():
    """(gymnasium, ale_py) with the ALE environments registered; GameError if missing."""
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
        import gymnasium
    except ImportError:
        raise GameError(INSTALL_HINT) from None
    gymnasium.register_envs(ale_py)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner per env
    return gymnasium, ale_py


def _rom_to_name(rom_id: str) -> str:
    """'montezuma_revenge' -> 'MontezumaRevenge', as ale-py names its gymnasium ids."""
    return rom_id.title().replace("_", "")


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def atari_names() -> list[str]:
    """Names of the games ale-py ships that gymnasium registers as 'ALE/<Name>-v5'.

    Sorted CamelCase names, e.g. 'Breakout', 'MontezumaRevenge'; an empty list
    when gymnasium or ale-py is missing.
    """
    try:
        gymnasium, ale_py = _modules()
    except GameError:
        return []
    from ale_py import roms

    names = (_rom_to_name(r) for r in roms.get_all_rom_ids())
    return sorted(n for n in names if f"ALE/{n}-v5" in gymnasium.registry)


def _canonical_name(name: str) -> str:
    names = atari_names()
    by_key = {_key(n): n for n in names}
    if _key(name) in by_key:
        return by_key[_key(name)]
    close = difflib.get_close_matches(_key(name), list(by_key), n=3, cutoff=0.5)
    hint = (f"closest: {', '.join(by_key[k] for k in close)}" if close
            else f"{len(names)} games, see `tabula games`")
    raise GameError(f"unknown Atari game {name!r}; {hint}")


def _check_settings(settings: dict) -> dict:
    unknown = sorted(set(settings) - set(ATARI_DEFAULTS))
    if unknown:
        raise GameError(f"unknown Atari setting {unknown[0]!r}; known: "
                        f"{', '.join(ATARI_DEFAULTS)}")
    resolved = {**ATARI_DEFAULTS, **settings}
    for key in ("frame_size", "frame_skip", "stack", "max_episode_steps", "noop_max"):
        low = 0 if key == "noop_max" else 1
        value = resolved[key]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise GameError(f"Atari setting {key} must be an integer >= {low}, got {value!r}")
        resolved[key] = int(value)
    resolved["sticky_prob"] = _check_sticky(resolved["sticky_prob"])
    if not isinstance(resolved["fire_after_life_loss"], (bool, np.bool_)):
        raise GameError("Atari setting fire_after_life_loss must be true or false, got "
                        f"{resolved['fire_after_life_loss']!r}")
    resolved["fire_after_life_loss"] = bool(resolved["fire_after_life_loss"])
    return resolved


def _check_sticky(p) -> float:
    """p as a float; GameError unless it is a probability."""
    try:
        ok = 0.0 <= float(p) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise GameError(f"Atari setting sticky_prob must be in [0, 1], got {p!r}")
    return float(p)


def atari_game(name: str, **settings) -> "AtariGame":
    """The Atari game `name` ('Breakout', case and underscores ignored).

    Args:
      name: a name from `atari_names()`.
      **settings: overrides of ATARI_DEFAULTS.
    Raises:
      GameError: gymnasium / ale-py missing, unknown name or bad setting.
    """
    _modules()
    return AtariGame(_canonical_name(name), _check_settings(settings))


class AtariGame:
    """One Atari game with its preprocessing settings; a factory of `AtariEnv`s."""

    def __init__(self, name: str, settings: dict):
        """Use `atari_game`, which checks the name and settings."""
        gymnasium, _ = _modules()
        self.short_name = name
        self.settings = dict(settings)
        probe = gymnasium.make(f"ALE/{name}-v5")  # minimal action set is the v5 default
        try:
            self.action_names: list[str] = list(probe.unwrapped.get_action_meanings())
        finally:
            probe.close()
        s = self.settings
        self.info = GameInfo(
            name=f"atari/{name}",
            num_actions=len(self.action_names),
            observation_shape=(s["stack"], s["frame_size"], s["frame_size"]),
            num_players=1,
            max_game_length=s["max_episode_steps"],
            num_symmetries=1,
            has_draws=False,
            discount=DISCOUNT,
            kind="environment",
            frame_stack=s["stack"],
            screen=True,
        )

    def new_env(self, seed: int, sticky_prob: float | None = None,
                render: bool = False) -> "AtariEnv":
        """A new environment; call `reset()` before stepping.

        Args:
          seed: seeds the emulator (sticky actions) and the no-op starts at the
            first reset; later resets go on with the same generators.
          sticky_prob: overrides settings['sticky_prob'] (e.g. 0 for evaluation).
          render: ask gymnasium for rgb_array rendering (`rgb()` works either way).
        """
        sticky = (self.settings["sticky_prob"] if sticky_prob is None
                  else _check_sticky(sticky_prob))
        return AtariEnv(self, int(seed), sticky, render)

    def apply_symmetry(self, k: int, obs: np.ndarray,
                       policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Identity (Atari screens have no symmetry); k must be 0."""
        return identity_only(self.info.name, k, obs, policy)

    @staticmethod
    def transform_reward(r: float) -> float:
        """Sign clipping to -1, 0 or 1 (DQN / MuZero Atari training targets)."""
        return float(np.sign(r))

    def __repr__(self) -> str:
        return f"AtariGame({self.short_name!r}, {self.settings})"


class AtariEnv:
    """One running Atari emulator with the game's preprocessing.

    Attributes (valid after `reset()`):
      lives: lives left, as the game counts them (0 for games without lives).
      life_lost: whether the last `step` lost a life.
      truncated: whether the last `step` ended the episode by the time limit
        (max_episode_steps) rather than by the game's end: for value targets the
        position after it is unseen, not terminal.
      episode_return: raw game score summed over the episode.
      episode_steps: agent steps in the episode.
      episode_frames: emulator frames in the episode, no-op start included
        (the emulator's own counter).
    """

    def __init__(self, game: AtariGame, seed: int, sticky_prob: float, render: bool):
        gymnasium, _ = _modules()
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

        s = game.settings
        self.game = game
        self.sticky_prob = sticky_prob
        self._seed: int | None = seed
        env = gymnasium.make(
            f"ALE/{game.short_name}-v5",
            frameskip=1,  # AtariPreprocessing skips frames (and max-pools)
            repeat_action_probability=sticky_prob,
            obs_type="grayscale",  # cheaper per frame; AtariPreprocessing reads the ALE screen
            max_num_frames_per_episode=None,  # the TimeLimit below counts agent steps instead
            render_mode="rgb_array" if render else None,
        )
        self._ale = env.unwrapped.ale
        names = game.action_names
        self._fire = (names.index("FIRE") if s["fire_after_life_loss"] and "FIRE" in names
                      else None)
        env = AtariPreprocessing(env, noop_max=s["noop_max"], frame_skip=s["frame_skip"],
                                 screen_size=s["frame_size"], terminal_on_life_loss=False,
                                 grayscale_obs=True, scale_obs=False)
        env = FrameStackObservation(env, s["stack"], padding_type="reset")
        self._env = TimeLimit(env, max_episode_steps=s["max_episode_steps"])
        self._stack: np.ndarray | None = None  # uint8[stack, H, W], oldest first
        self._done = True
        self.lives = 0
        self.life_lost = False
        self.truncated = False
        self.episode_return = 0.0
        self.episode_steps = 0
        self.episode_frames = 0

    def reset(self) -> None:
        """Starts a new episode (no-op starts included); blocks for up to noop_max frames."""
        seed, self._seed = self._seed, None  # seed once; later episodes continue the RNGs
        self._stack, _ = self._env.reset(seed=seed)
        self._done = False
        self.lives = int(self._ale.lives())
        self.life_lost = False
        self.truncated = False
        self.episode_return = 0.0
        self.episode_steps = 0
        self.episode_frames = int(self._ale.getEpisodeFrameNumber())

    def step(self, action: int) -> tuple[float, bool]:
        """Plays `action` for frame_skip frames.

        Returns:
          (reward, done): the raw game score over the skipped frames, and whether
          the game is over or was truncated at max_episode_steps agent steps.
        Raises:
          GameError: action out of range, or the episode is over (call reset()).
        """
        if self._done:
            raise GameError("the Atari episode is over (or never started); call reset()")
        action = int(action)
        if not 0 <= action < self.game.info.num_actions:
            raise GameError(f"action {action} out of range for {self.game.info.name} "
                            f"({self.game.info.num_actions} actions)")
        self._stack, reward, terminated, truncated, _ = self._env.step(action)
        lives = int(self._ale.lives())
        self.life_lost = lives < self.lives
        self.lives = lives
        if self.life_lost and self._fire is not None and not (terminated or truncated):
            # Serve the next ball: one FIRE step, counted by the time limit too.
            self._stack, more, terminated, truncated, _ = self._env.step(self._fire)
            reward += more
            self.episode_steps += 1
            self.lives = int(self._ale.lives())
        self.episode_return += float(reward)
        self.episode_steps += 1
        self.episode_frames = int(self._ale.getEpisodeFrameNumber())
        self._done = bool(terminated or truncated)
        self.truncated = bool(truncated and not terminated)
        return float(reward), self._done

    def observation(self) -> np.ndarray:
        """float32[stack, frame_size, frame_size] in [0, 1], oldest frame first."""
        return self._stack.astype(np.float32) / 255

    def frame(self) -> np.ndarray:
        """uint8[frame_size, frame_size]: the newest processed frame."""
        return self._stack[-1].copy()

    def rgb(self) -> np.ndarray:
        """uint8[210, 160, 3]: the current full-colour screen (for videos)."""
        return self._ale.getScreenRGB()

    def legal_mask(self) -> np.ndarray:
        """bool[num_actions]: all True (every action of the minimal set is legal)."""
        return np.ones(self.game.info.num_actions, dtype=bool)

    def close(self) -> None:
        """Frees the emulator."""
        self._env.close()
