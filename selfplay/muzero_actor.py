"""The MuZero self-play actor: many games or episodes at once, searched with the learned model.

Board games (two players, rewards for the mover, discount -1) and environments
(Atari, gym/: one player, discount gamma, min-max normalised values) share the loop:
every move the B current positions are searched together (one recurrent
inference per simulation step for all), each slot plays its move, and
finished games (or segments of long episodes) come out as `Segment`s. The
same search re-runs stored positions for reanalyze.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.muzero_search import run_muzero_search
from engine.search import SearchConfig, Timings
from selfplay.actor import choose_moves
from selfplay.config import MuZeroConfig, SelfPlayConfig
from selfplay.muzero_replay import Segment


def is_environment(game) -> bool:
    return game.info.kind == "environment"


def value_bounds(game) -> tuple[float, float] | None:
    """Known for board games ([-1, 1]); None in environments (min-max normalised)."""
    return None if is_environment(game) else (-1.0, 1.0)


@dataclass
class _Trajectory:
    obs: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    root_values: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    to_play: list = field(default_factory=list)
    episode_return: float = 0.0

    def segment(self, length: int, done: bool, frames: bool, stack: int,
                returns=None, truncated: bool = False) -> Segment:
        total = len(self.actions)
        obs = self.obs[: stack - 1 + total] if frames else self.obs[:total]
        return Segment(
            obs=np.stack(obs).astype(np.uint8 if frames else np.float32),
            actions=np.asarray(self.actions, np.int32),
            rewards=np.asarray(self.rewards, np.float32),
            policies=np.stack(self.policies).astype(np.float32),
            root_values=np.asarray(self.root_values, np.float32),
            masks=np.stack(self.masks).astype(bool),
            to_play=np.asarray(self.to_play, np.int8), length=length, done=done,
            truncated=truncated,
            episode_return=float(self.episode_return) if done else float("nan"),
            returns=None if returns is None else np.asarray(returns, np.float32))

    def drop(self, count: int, frames: bool) -> None:
        """Forgets the first `count` positions (frames keep the stack's history)."""
        for name in ("actions", "rewards", "policies", "root_values", "masks", "to_play"):
            del getattr(self, name)[:count]
        del self.obs[:count]


class MuZeroActor:
    """Plays `parallel_games` games (or episodes) at once with the MuZero search."""

    def __init__(self, game, search: SearchConfig, selfplay: SelfPlayConfig,
                 muzero: MuZeroConfig, rng: np.random.Generator, seed: int = 0):
        self.game = game
        self.search = search
        self.selfplay = selfplay
        self.muzero = muzero
        self.rng = rng
        self.timings = Timings()
        self.moves_played = 0
        self.env = is_environment(game)
        info = game.info
        # Stacked screens are stored once per frame; other observations whole.
        self.frames = info.frame_stack > 0
        self.stack = info.frame_stack if self.frames else 1
        self.value_bounds = value_bounds(game)
        n = selfplay.parallel_games
        if self.env:
            self._slots = [game.new_env(seed * 1_000_003 + i) for i in range(n)]
            for env in self._slots:
                env.reset()
        else:
            self._slots = [game.new_initial_state() for _ in range(n)]
        self._trajectories = [self._new_trajectory(s) for s in self._slots]
        self.episode_returns: list[float] = []

    def _new_trajectory(self, slot) -> _Trajectory:
        traj = _Trajectory()
        if self.frames:
            traj.obs.extend([slot.frame()] * (self.stack - 1))
        return traj

    def _observe(self):
        obs = np.stack([s.observation() for s in self._slots]).astype(np.float32)
        masks = np.stack([s.legal_mask() for s in self._slots]).astype(bool)
        return obs, masks

    def play(self, model, num_moves: int, should_stop=lambda: False) -> list[Segment]:
        """Plays `num_moves` moves in every slot; returns finished games and full segments."""
        out: list[Segment] = []
        extra = self.muzero.unroll_steps + self.muzero.td_steps
        seg_len = self.muzero.segment_length
        for _ in range(num_moves):
            if should_stop():
                break
            obs, masks = self._observe()
            result = run_muzero_search(model, obs, masks, self.search, self.rng, add_noise=True,
                                       timings=self.timings, value_bounds=self.value_bounds)
            actions = self._choose(result)
            for i, slot in enumerate(self._slots):
                traj = self._trajectories[i]
                a = int(actions[i])
                traj.obs.append(slot.frame() if self.frames else obs[i])
                traj.actions.append(a)
                traj.policies.append(result.policy[i])
                traj.root_values.append(float(result.value[i]))
                traj.masks.append(masks[i])
                if self.env:
                    traj.to_play.append(0)
                    raw, done = slot.step(a)
                    traj.episode_return += raw
                    traj.rewards.append(self.game.transform_reward(raw))
                else:
                    mover = slot.to_play()
                    traj.to_play.append(mover)
                    slot.apply(a)
                    done = slot.is_terminal()
                    traj.rewards.append(float(slot.returns()[mover]) if done else 0.0)
                if done:
                    returns = None if self.env else slot.returns()
                    # An episode cut by the time limit is not over for the targets.
                    truncated = self.env and slot.truncated
                    out.append(traj.segment(len(traj.actions), True, self.frames, self.stack,
                                            returns, truncated))
                    if self.env:
                        self.episode_returns.append(traj.episode_return)
                        slot.reset()
                    else:
                        self._slots[i] = slot = self.game.new_initial_state()
                    self._trajectories[i] = self._new_trajectory(slot)
                elif self.env and len(traj.actions) >= seg_len + extra:
                    out.append(traj.segment(seg_len, False, self.frames, self.stack))
                    traj.drop(seg_len, self.frames)
            self.moves_played += len(self._slots)
        return out

    def _choose(self, result) -> np.ndarray:
        """As the AlphaZero actor: sampled in the first `temperature_moves` plies."""
        plies = np.array([len(t.actions) for t in self._trajectories])
        return choose_moves(result, plies, self.selfplay.temperature_moves,
                            self.search.root_mode, self.rng)


def reanalyze(replay, model, search: SearchConfig, count: int, rng: np.random.Generator,
              value_bounds, batch: int = 256, timings: Timings | None = None) -> int:
    """Re-searches stored segments with `model` (MuZero Reanalyze); returns the positions
    searched.

    Whole segments, drawn at random until they hold `count` positions: every position
    of a chosen segment gets the new search policy and root value, so the n-step value
    targets z_t = sum d^j r_{t+j} + d^n v_{t+n} take their bootstrap value v_{t+n}
    from the new search too (re-searching single positions would leave the v_{t+n}
    of their targets stale), and the segments' priorities are recomputed from the new
    targets and values.
    """
    chosen = replay.pick_segments(count, rng)
    if not chosen:
        return 0
    parts = [replay.segment_positions(s) for s in chosen]
    obs = np.concatenate([o for o, _ in parts])
    masks = np.concatenate([m for _, m in parts])
    policies = np.empty((len(obs), masks.shape[1]), np.float32)
    values = np.empty(len(obs), np.float32)
    for start in range(0, len(obs), batch):
        part = slice(start, start + batch)
        result = run_muzero_search(model, obs[part], masks[part], search, rng,
                                   add_noise=False, timings=timings,
                                   value_bounds=value_bounds)
        policies[part] = result.policy
        values[part] = result.value
    bounds = np.cumsum([0] + [len(o) for o, _ in parts])
    replay.refresh_segments(chosen, [policies[a:b] for a, b in zip(bounds, bounds[1:])],
                            [values[a:b] for a, b in zip(bounds, bounds[1:])])
    return len(obs)
