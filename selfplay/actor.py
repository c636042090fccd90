"""The self-play actor: many games at once, one batched search per move.

Every move, the B current positions are searched together (one network call
per simulation step for all of them), each game plays its move, and finished
games are returned as records while a fresh game takes their slot. Games
still in flight are carried over to the next call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from engine.search import SearchConfig, Timings, run_search, sample_actions, sample_rows
from selfplay.config import SelfPlayConfig
from selfplay.records import GameRecord


@dataclass
class _Trajectory:
    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    root_values: list = field(default_factory=list)
    to_play: list = field(default_factory=list)
    full: list = field(default_factory=list)

    def record(self, state, territory: bool = False) -> GameRecord:
        """The finished game; `state` is its final position, whose `final_territory()`
        is recorded if the game declares `territory`."""
        full = np.asarray(self.full, bool)
        ownership, score = state.final_territory() if territory else (None, None)
        return GameRecord(
            observations=np.stack(self.observations).astype(np.float32),
            actions=np.asarray(self.actions, np.int32),
            policies=np.stack(self.policies).astype(np.float32),
            root_values=np.asarray(self.root_values, np.float32),
            to_play=np.asarray(self.to_play, np.int8),
            returns=np.asarray(state.returns(), np.float32),
            full=None if full.all() else full,
            ownership=ownership,
            score=score,
        )


class Actor:
    """Plays `parallel_games` games of `game` at once with the given search."""

    def __init__(self, game, search: SearchConfig, selfplay: SelfPlayConfig,
                 rng: np.random.Generator):
        self.game = game
        self.search = search
        self.selfplay = selfplay
        self.rng = rng
        self.timings = Timings()
        self.moves_played = 0
        self.simulations = 0
        """Simulations run so far (full and fast searches)."""
        fast = selfplay.fast_simulations or max(1, search.num_simulations // 4)
        self.fast_search = dataclasses.replace(search, num_simulations=fast)
        n = selfplay.parallel_games
        self._states = [game.new_initial_state() for _ in range(n)]
        self._trajectories = [_Trajectory() for _ in range(n)]

    def play(self, evaluator, num_moves: int, should_stop=lambda: False) -> list[GameRecord]:
        """Plays `num_moves` moves in every slot; returns the games that finished.

        Blocks. Stops early (between moves) when `should_stop()` is true.
        """
        info = self.game.info
        finished: list[GameRecord] = []
        for _ in range(num_moves):
            if should_stop():
                break
            # Playout cap randomization draws full or fast for the whole batch at once:
            # the same share of positions as KataGo's per-move draw, one search call.
            full = self.selfplay.full_search_fraction >= 1 or \
                self.rng.random() < self.selfplay.full_search_fraction
            search = self.search if full else self.fast_search
            batch = self.game.new_search_batch(self._states, search.num_simulations + 1)
            result = run_search(batch, evaluator, search, info.num_actions,
                                info.observation_shape, self.rng, add_noise=full,
                                timings=self.timings, alternating=info.alternating)
            self.simulations += search.num_simulations * len(self._states)
            actions = self._choose(result)
            if self.selfplay.random_move_fraction > 0:
                actions = self._randomize(actions)
            for i, state in enumerate(self._states):
                traj = self._trajectories[i]
                traj.observations.append(state.observation())
                traj.actions.append(int(actions[i]))
                traj.policies.append(result.policy[i])
                traj.root_values.append(float(result.value[i]))
                traj.to_play.append(state.to_play())
                traj.full.append(full)
                state.apply(int(actions[i]))
                if state.is_terminal():
                    finished.append(traj.record(state, info.territory))
                    self._states[i] = self.game.new_initial_state()
                    self._trajectories[i] = _Trajectory()
            self.moves_played += len(self._states)
        return finished

    def _randomize(self, actions: np.ndarray) -> np.ndarray:
        """Replaces a random_move_fraction share of the moves by uniform legal moves."""
        actions = actions.copy()
        for i in np.flatnonzero(self.rng.random(len(actions))
                                < self.selfplay.random_move_fraction):
            actions[i] = self.rng.choice(np.flatnonzero(self._states[i].legal_mask()))
        return actions

    def _choose(self, result) -> np.ndarray:
        """The search's move, or in the first `temperature_moves` plies a sample.

        PUCT samples from the visit counts, Gumbel from its improved policy:
        varied openings put positions after unusual moves into the replay,
        which the network must also judge (an opponent does not always play
        the moves self-play likes).
        """
        plies = np.array([len(t.actions) for t in self._trajectories])
        return choose_moves(result, plies, self.selfplay.temperature_moves,
                            self.search.root_mode, self.rng)


def choose_moves(result, plies: np.ndarray, temperature_moves: int, root_mode: str,
                 rng: np.random.Generator) -> np.ndarray:
    """The search's moves, sampled where fewer than `temperature_moves` plies were played.

    PUCT samples from the visit counts, Gumbel from its improved policy.
    """
    early = plies < temperature_moves
    if not early.any():
        return result.action
    if root_mode == "gumbel":
        sampled = sample_rows(result.policy.astype(np.float64), rng)
    else:
        sampled = sample_actions(result, 1.0, rng)
    return np.where(early, sampled, result.action)
