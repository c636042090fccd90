"""Gymnasium environments with discrete actions and vector observations: 'gym/<EnvId>'.

`get_game('gym/CartPole-v1')` is `gym_game('CartPole-v1')`: any environment id
registered with gymnasium whose action space is `Discrete` and whose
observation space is a 1-D `Box` (CartPole-v1, Acrobot-v1, MountainCar-v0,
LunarLander-v3 where Box2D is installed). Anything else is refused with one
line naming the property that excludes it; Atari screens are `atari/<Name>`.

Observations: a vector of D floats is given to the network as float32[D, 1, 1],
D channels on a 1x1 board. MuZero's network (engine/muzero_net.py) needs no
variant for that: on a 1x1 board a padded 3x3 convolution only ever meets its
centre weight, so every convolution is a linear layer over the channels and
every residual block a residual fully connected block (with BatchNorm, which
also scales the raw inputs); the action plane becomes one learned number per
action. A separate fully connected network would compute the same functions
and add a second architecture to checkpoints, loading and tests; the padded
convolutions cost some arithmetic on zeros, small next to the per-call overhead
at these sizes.

Like Atari these are environments (`GameInfo.kind` 'environment': MuZero
only, min-max normalised values, episode returns reported), but their
observations are stored whole in the replay (`GameInfo.frame_stack` 0), and
they have no screen to record (`GameInfo.screen` False: gymnasium's renderers
need pygame, which Tabula does not depend on). gymnasium is imported inside
functions, so `import games.gym` works without it.
"""

from __future__ import annotations

import difflib

import numpy as np

from games.base import GameError, GameInfo
from games.symmetry import identity_only

INSTALL_HINT = "gym games need gymnasium: pip install 'tabula[gym]'"
DISCOUNT = 0.997
"""Per-step discount: muzero-general's CartPole and MuZero's Atari experiments."""
DEFAULT_MAX_EPISODE_STEPS = 10_000
"""Time limit for an environment registered without one, so every episode ends."""
EXAMPLES = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
"""Ids that `tabula games` names as examples of the family."""


def _gymnasium():
    """The gymnasium module; GameError if it is missing."""
    try:
        import gymnasium
    except ImportError:
        raise GameError(INSTALL_HINT) from None
    return gymnasium


def _check_id(gymnasium, env_id: str) -> str:
    """env_id if gymnasium registers it; else GameError with the closest ids."""
    if env_id in gymnasium.registry:
        return env_id
    ids = sorted(gymnasium.registry)
    by_lower = {i.lower(): i for i in ids}
    close = difflib.get_close_matches(env_id.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = (f"closest: {', '.join(by_lower[c] for c in close)}" if close
            else f"e.g. {', '.join(EXAMPLES)}")
    raise GameError(f"unknown gymnasium environment {env_id!r}; {hint}")


def _make(gymnasium, env_id: str, max_episode_steps: int):
    """gymnasium.make with the time limit; GameError (one line) if it cannot be built."""
    try:
        return gymnasium.make(env_id, max_episode_steps=max_episode_steps)
    except gymnasium.error.DependencyNotInstalled as e:
        raise GameError(f"gym/{env_id}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # noqa: BLE001  (any failure of a third-party constructor)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GameError(f"gym/{env_id}: gymnasium cannot make it ({first})") from None


def _check_spaces(gymnasium, env_id: str, env) -> None:
    """GameError naming the space that Tabula cannot use, if any."""
    spaces = gymnasium.spaces
    action, obs = env.action_space, env.observation_space
    if not isinstance(action, spaces.Discrete):
        raise GameError(f"gym/{env_id}: the action space is {action}, not Discrete; "
                        "the search needs a finite set of actions")
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        hint = "; Atari screens are atari/<Name>" if env_id.startswith("ALE/") else ""
        raise GameError(f"gym/{env_id}: the observation space is {obs}, not a 1-D Box "
                        f"(a vector of numbers){hint}")


def gym_game(env_id: str, max_episode_steps: int | None = None) -> "GymGame":
    """The gymnasium environment `env_id` as a game.

    Args:
      env_id: a gymnasium id, e.g. 'CartPole-v1' (case matters, as in gymnasium).
      max_episode_steps: agent steps before an episode is truncated (default: the
        environment's registered limit, else DEFAULT_MAX_EPISODE_STEPS).
    Raises:
      GameError: gymnasium missing, unknown id, a dependency of the environment
        missing, or an action or observation space Tabula cannot use.
    """
    gymnasium = _gymnasium()
    env_id = _check_id(gymnasium, env_id)
    if max_episode_steps is not None and (
            not isinstance(max_episode_steps, (int, np.integer))
            or isinstance(max_episode_steps, bool) or max_episode_steps < 1):
        raise GameError(f"max_episode_steps must be an integer >= 1, got {max_episode_steps!r}")
    if max_episode_steps is None:
        max_episode_steps = (gymnasium.spec(env_id).max_episode_steps
                             or DEFAULT_MAX_EPISODE_STEPS)
    return GymGame(env_id, int(max_episode_steps))


def family_note() -> str:
    """One line for `tabula games` describing the family and what is available."""
    import importlib.util

    try:
        _gymnasium()
    except GameError:
        return f"gym/<EnvId>: unavailable ({INSTALL_HINT})"
    box2d = importlib.util.find_spec("Box2D") is not None
    examples = ", ".join(f"gym/{e}" + ("" if box2d or "Lunar" not in e else " (needs Box2D)")
                         for e in EXAMPLES)
    return (f"gym/<EnvId>: gymnasium environments with discrete actions and vector "
            f"observations (MuZero), e.g. {examples}")


class GymGame:
    """One gymnasium environment id with its time limit; a factory of `GymEnv`s."""

    def __init__(self, env_id: str, max_episode_steps: int):
        """Use `gym_game`, which checks the id; raises GameError for unusable spaces."""
        gymnasium = _gymnasium()
        self.env_id = env_id
        self.max_episode_steps = max_episode_steps
        probe = _make(gymnasium, env_id, max_episode_steps)
        try:
            _check_spaces(gymnasium, env_id, probe)
            self.action_start = int(probe.action_space.start)  # Discrete(n, start)
            num_actions = int(probe.action_space.n)
            size = int(probe.observation_space.shape[0])
        finally:
            probe.close()
        self.info = GameInfo(
            name=f"gym/{env_id}",
            num_actions=num_actions,
            observation_shape=(size, 1, 1),
            num_players=1,
            max_game_length=max_episode_steps,
            num_symmetries=1,
            has_draws=False,
            discount=DISCOUNT,
            kind="environment",
        )

    def new_env(self, seed: int, render: bool = False) -> "GymEnv":
        """A new environment; call `reset()` before stepping.

        Args:
          seed: seeds the environment at the first reset; later resets go on with
            the same generator.
          render: must be False (these environments have no screen to record).
        """
        if render:
            raise GameError(f"{self.info.name} has no screen to render")
        return GymEnv(self, int(seed))

    def apply_symmetry(self, k: int, obs: np.ndarray,
                       policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Identity (no symmetry is known for an arbitrary environment); k must be 0."""
        return identity_only(self.info.name, k, obs, policy)

    @staticmethod
    def transform_reward(r: float) -> float:
        """The reward itself.

        Atari clips rewards to their sign because scores differ by orders of
        magnitude between games and one setting must fit all. These rewards are
        of a known, modest scale (CartPole +1 per step, Acrobot -1, LunarLander's
        shaped rewards and +-100 at the end) that the categorical reward and value
        supports cover, and clipping would erase what they say (LunarLander's
        +100 landing and -0.3 of fuel would both become +-1).
        """
        return float(r)

    def __repr__(self) -> str:
        return f"GymGame({self.env_id!r}, max_episode_steps={self.max_episode_steps})"


class GymEnv:
    """One running gymnasium environment.

    Attributes (valid after `reset()`):
      truncated: whether the last `step` ended the episode by the time limit
        (max_episode_steps) rather than by the environment's end: for value
        targets the position after it is unseen, not terminal (CartPole-v1 at
        500 steps: the pole is still up).
      episode_return: reward summed over the episode.
      episode_steps: agent steps in the episode.
    """

    def __init__(self, game: GymGame, seed: int):
        gymnasium = _gymnasium()
        self.game = game
        self._seed: int | None = seed
        self._env = _make(gymnasium, game.env_id, game.max_episode_steps)
        self._obs: np.ndarray | None = None
        self._done = True
        self.truncated = False
        self.episode_return = 0.0
        self.episode_steps = 0

    def reset(self) -> None:
        """Starts a new episode."""
        seed, self._seed = self._seed, None  # seed once; later episodes continue the RNG
        obs, _ = self._env.reset(seed=seed)
        self._obs = np.asarray(obs, np.float32)
        self._done = False
        self.truncated = False
        self.episode_return = 0.0
        self.episode_steps = 0

    def step(self, action: int) -> tuple[float, bool]:
        """Plays `action`.

        Returns:
          (reward, done): the environment's reward, and whether the episode ended
          or was truncated at max_episode_steps.
        Raises:
          GameError: action out of range, or the episode is over (call reset()).
        """
        info = self.game.info
        if self._done:
            raise GameError(f"the {info.name} episode is over (or never started); "
                            "call reset()")
        action = int(action)
        if not 0 <= action < info.num_actions:
            raise GameError(f"action {action} out of range for {info.name} "
                            f"({info.num_actions} actions)")
        obs, reward, terminated, truncated, _ = self._env.step(action + self.game.action_start)
        self._obs = np.asarray(obs, np.float32)
        self.episode_return += float(reward)
        self.episode_steps += 1
        self._done = bool(terminated or truncated)
        self.truncated = bool(truncated and not terminated)
        return float(reward), self._done

    def observation(self) -> np.ndarray:
        """float32[D, 1, 1]: the environment's observation vector as D channels."""
        return self._obs.reshape(self.game.info.observation_shape).copy()

    def legal_mask(self) -> np.ndarray:
        """bool[num_actions]: all True (a Discrete space has no illegal actions)."""
        return np.ones(self.game.info.num_actions, dtype=bool)

    def close(self) -> None:
        """Frees the environment."""
        self._env.close()
