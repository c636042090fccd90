"""Watching an agent play an environment game (Atari, gym/): episodes, returns, a GIF.

`tabula play --game atari/<Name>` (or gym/<EnvId>) lands here. Several episodes are played at
once: every step, the live environments are searched together in one
`analyze` call (temperature 0, no noise), so N episodes cost about as many
network calls as the longest one. Episode i runs on an environment seeded
seed + i; the same seed gives the same episodes.

The agent is a MuZero checkpoint behind `engine.player.Player`, or
`RandomAgent`, the uniform random baseline; both have the `analyze(envs)`
interface of `Player`.
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

GIF_EVERY = 2
"""A GIF frame every GIF_EVERY agent steps (plus the first and the last screen)."""
GIF_MAX_FRAMES = 1500
"""GIF frames at most (3,000 agent steps, about 3 minutes of play at GIF_FRAME_MS)."""
GIF_FRAME_MS = 130
"""Display time of a GIF frame: GIF_EVERY steps x 4 emulator frames at 60 Hz is
133 ms (real speed); GIF stores centiseconds, so a multiple of 10 keeps the
total exact when Pillow merges identical frames."""
Z_95 = 1.959964
"""Two-sided 95% quantile of the normal distribution."""


@dataclass(frozen=True)
class WatchConfig:
    """What `tabula play` does with an environment game."""

    checkpoint: str | None = None
    """MuZero checkpoint that plays (exclusive with agent)."""
    agent: str | None = None
    """'random': uniformly random legal actions instead of a checkpoint."""
    sims: int | None = None
    """Simulations per step (default: the checkpoint's training setting)."""
    episodes: int = 1
    """Episodes, played at once."""
    seed: int = 0
    """Episode i's environment is seeded seed + i; also seeds the agent."""
    max_steps: int | None = None
    """Agent steps per episode at most (default: the game's own limit)."""
    gif: str | None = None
    """GIF of the first episode (default: <checkpoint stem or 'random'>-<game>.gif, for
    games with a screen, GameInfo.screen)."""
    no_gif: bool = False
    """Write no GIF (games without a screen never write one)."""
    json: str | None = None
    """Write the episodes and the summary to this JSON file."""
    noise: bool = False
    """Search with the root noise self-play uses (Gumbel or Dirichlet) instead of the
    noise-free search: a greedy agent can get stuck in a state that never changes
    (Breakout without FIRE), a noisy one cannot."""
    progress: bool = True
    """Show a progress bar on stderr."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"--episodes must be at least 1, got {self.episodes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.agent not in (None, "random"):
            raise ValueError(f"unknown --agent {self.agent!r}; known: random")
        if (self.checkpoint is None) == (self.agent is None):
            raise ValueError("give --checkpoint PATH or --agent random"
                             + ("" if self.checkpoint is None else ", not both"))
        if self.agent is not None and self.sims is not None:
            raise ValueError("--sims is for a checkpoint; the random agent does not search")
        if self.agent is not None and self.noise:
            raise ValueError("--noise is for a checkpoint; the random agent does not search")
        if self.gif is not None and self.no_gif:
            raise ValueError("--gif FILE and --no-gif contradict each other")


@dataclass(frozen=True)
class Episode:
    """One finished episode."""

    ret: float
    """Raw game score summed over the episode."""
    steps: int
    """Agent steps."""


class RandomAgent:
    """Uniformly random legal actions, from one seeded generator; the baseline."""

    name = "random"

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def analyze(self, envs: Sequence, num_simulations: int | None = None,
                add_noise: bool = False) -> list["_Choice"]:
        """One random legal action per environment; blocks for no time."""
        return [_Choice(int(self.rng.choice(np.flatnonzero(env.legal_mask())))) for env in envs]


@dataclass(frozen=True)
class _Choice:
    action: int


def load_agent(game, config: WatchConfig):
    """The agent of `config` for `game`: a RandomAgent or a MuZero `Player`.

    Raises:
      CheckpointError: missing or bad file, a checkpoint of another game, or
        not a MuZero checkpoint (only MuZero plays environments).
    """
    if config.agent == "random":
        return RandomAgent(config.seed)
    from checkpoints import CheckpointError, read_metadata
    from engine.player import Player

    meta = read_metadata(config.checkpoint)
    name = game.info.name
    if meta["game"] != name:
        raise CheckpointError(f"{config.checkpoint}: checkpoint is for {meta['game']} "
                              f"({meta['algo']}), not {name}")
    if meta["algo"] != "muzero":
        raise CheckpointError(f"{config.checkpoint}: an {meta['algo']} checkpoint cannot play "
                              f"{name}; environments need a MuZero one (tabula train --game "
                              f"{name} --algo muzero)")
    overrides = {} if config.sims is None else {"num_simulations": int(config.sims)}
    player = Player.from_checkpoint(config.checkpoint, game=game, **overrides)
    player.rng = np.random.default_rng(config.seed)
    return player


class GifRecorder:
    """Full-colour screens of one episode, kept as palette images for a GIF."""

    def __init__(self, every: int = GIF_EVERY, max_frames: int = GIF_MAX_FRAMES):
        self.every = every
        self.max_frames = max_frames
        self.frames: list = []  # PIL 'P' images, 210 x 160
        self.cut = False  # some screens were left out to respect max_frames
        self.steps = 0  # agent steps the frames cover

    def capture(self, env, done: bool) -> None:
        """Keeps env's screen after reset (step 0), every `every` steps and at the end."""
        from PIL import Image

        steps = env.episode_steps
        if steps % self.every and not done:
            return
        if len(self.frames) >= self.max_frames:
            self.cut = True
            return
        # Atari screens have at most 128 colours, so the adaptive palette is exact.
        image = Image.fromarray(env.rgb()).convert("P", palette=Image.Palette.ADAPTIVE)
        self.frames.append(image)
        self.steps = steps

    def encode(self) -> bytes:
        """The frames as an animated GIF, looping forever."""
        buffer = io.BytesIO()
        first, *rest = self.frames
        first.save(buffer, format="GIF", save_all=True, append_images=rest,
                   duration=GIF_FRAME_MS, loop=0)
        return buffer.getvalue()


def play_episodes(game, agent, config: WatchConfig, recorder: GifRecorder | None = None,
                  on_episode: Callable[[int, Episode], None] = lambda i, e: None
                  ) -> list[Episode]:
    """Plays config.episodes episodes at once; blocks.

    Args:
      game: an environment game (kind 'environment', `new_env(seed, render=)`).
      agent: `analyze(envs) -> [analysis with .action]`; searched in one batch.
      config: episodes, seed, max_steps and progress.
      recorder: captures the screens of episode 0, if given.
      on_episode: called with (index, Episode) as each episode ends.
    Returns:
      The episodes, in index order.
    """
    from tqdm import tqdm

    n = config.episodes
    cap = config.max_steps or math.inf
    envs = [game.new_env(config.seed + i, render=(i == 0 and recorder is not None))
            for i in range(n)]
    results: list[Episode | None] = [None] * n
    try:
        for env in envs:
            env.reset()
        if recorder is not None:
            recorder.capture(envs[0], done=False)
        live = list(range(n))
        with tqdm(disable=not config.progress, unit="step", desc=game.info.name,
                  dynamic_ncols=True) as bar:
            while live:
                analyses = agent.analyze([envs[i] for i in live], add_noise=config.noise)
                still = []
                for i, analysis in zip(live, analyses):
                    env = envs[i]
                    _, done = env.step(analysis.action)
                    done = done or env.episode_steps >= cap
                    if i == 0 and recorder is not None:
                        recorder.capture(env, done)
                    if not done:
                        still.append(i)
                        continue
                    results[i] = Episode(float(env.episode_return), int(env.episode_steps))
                    on_episode(i, results[i])
                if len(still) < len(live):
                    bar.set_postfix_str(f"episodes {n - len(still)}/{n}", refresh=False)
                live = still
                bar.update(len(analyses))
    finally:
        for env in envs:
            env.close()
    return results


def mean_ci95(returns: Sequence[float]) -> tuple[float, float | None]:
    """(mean, half-width of its normal 95% confidence interval; None for one episode)."""
    x = np.asarray(returns, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), None
    return float(x.mean()), float(Z_95 * x.std(ddof=1) / math.sqrt(len(x)))


def summary_line(game_name: str, episodes: Sequence[Episode], agent_name: str) -> str:
    """'atari/Breakout: mean return 4.2 ± 1.1 (95% CI) over 30 episodes, min 0, max 11; NAME'."""
    returns = [e.ret for e in episodes]
    mean, ci = mean_ci95(returns)
    spread = "" if ci is None else f" ± {ci:.1f} (95% CI)"
    count = f"{len(returns)} episode{'s' if len(returns) != 1 else ''}"
    return (f"{game_name}: mean return {mean:.1f}{spread} over {count}, "
            f"min {min(returns):g}, max {max(returns):g}; {agent_name}")


def default_gif_path(game_name: str, config: WatchConfig) -> Path:
    """<checkpoint stem or 'random'>-<game, '/' -> '_'>.gif in the current directory."""
    stem = Path(config.checkpoint).stem if config.checkpoint is not None else "random"
    return Path(f"{stem}-{game_name.replace('/', '_')}.gif")


def _agent_name(agent) -> str:
    if isinstance(agent, RandomAgent):
        return "random agent (uniform legal actions)"
    return f"{agent.name} (MuZero, {agent.search.num_simulations} simulations)"


def run_watch(game, config: WatchConfig) -> int:
    """The `tabula play` front-end for environments: play, print, write files. Blocks.

    Everything that can be the user's fault (game, checkpoint, settings,
    Pillow missing) is checked before the first step, so a bad input
    writes no file. Returns the exit status (0).
    """
    from checkpoints.files import atomic_write_bytes

    agent = load_agent(game, config)
    name = game.info.name
    if config.gif is not None and not game.info.screen:
        raise ValueError(f"--gif: {name} has no screen to record")
    gif_path = (None if config.no_gif or not game.info.screen
                else Path(config.gif or default_gif_path(name, config)))
    if gif_path is not None:
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise ValueError("GIFs need Pillow (pip install pillow), or pass --no-gif") from None
    recorder = GifRecorder() if gif_path is not None else None

    def report(i: int, episode: Episode) -> None:
        _print(f"episode {i + 1}: return {episode.ret:g} in {episode.steps} steps")

    episodes = play_episodes(game, agent, config, recorder, report)
    print(summary_line(name, episodes, _agent_name(agent)))
    if recorder is not None:
        atomic_write_bytes(gif_path, recorder.encode())
        cut = (f", cut at {len(recorder.frames)} frames ({recorder.steps} of "
               f"{episodes[0].steps} steps)" if recorder.cut else "")
        print(f"GIF of episode 1 written to {gif_path}{cut}")
    if config.json is not None:
        atomic_write_bytes(config.json, _json_bytes(name, agent, config, episodes))
        print(f"results written to {config.json}")
    return 0


def _json_bytes(game_name: str, agent, config: WatchConfig, episodes: list[Episode]) -> bytes:
    mean, ci = mean_ci95([e.ret for e in episodes])
    sims = None if isinstance(agent, RandomAgent) else agent.search.num_simulations
    doc = {"game": game_name, "agent": agent.name, "checkpoint": config.checkpoint,
           "episodes": [{"return": e.ret, "steps": e.steps} for e in episodes],
           "mean": mean, "ci95": ci, "seed": config.seed, "simulations": sims,
           "max_steps": config.max_steps, "noise": config.noise}
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def _print(line: str) -> None:
    """A stdout line that does not tear the progress bar on stderr."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
