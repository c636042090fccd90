"""A match against open_spiel's rollout MCTS (the classic baseline).

The opponent is open_spiel's C++ `MCTSBot` with a `RandomRolloutEvaluator`
(n_rollouts=1), uct_c=2 and MCTS-Solver on (open_spiel's default), seeded.
All games run in lockstep: at every step the positions where the engine is
to move are searched as one batch, then the bot answers in each other game.
Colours alternate: the engine plays first in the even-numbered games.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from games.base import SpielBacked

UCT_C = 2.0
N_ROLLOUTS = 1
MAX_MEMORY_MB = 1000
Z95 = 1.959964


@dataclass
class MatchResult:
    """Results from the engine's point of view."""

    wins: int = 0
    draws: int = 0
    losses: int = 0
    seconds: float = 0.0
    scores: list = field(default_factory=list)
    """Per game: 1 win, 0.5 draw, 0 loss, in game order."""

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    def score_interval(self) -> tuple[float, float, float]:
        """(score, low, high): the mean score and its 95% Wilson interval.

        Wilson's interval assumes win/loss outcomes; draws only lower the true
        variance, so with draws the interval is conservative. Unlike the normal
        approximation it stays sensible at scores of 0 and 1.
        """
        n = len(self.scores)
        if n == 0:
            return 0.0, 0.0, 1.0
        p = sum(self.scores) / n
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        return p, max(0.0, centre - half), min(1.0, centre + half)

    def line(self, opponent: str) -> str:
        score, low, high = self.score_interval()
        rate = self.games / self.seconds if self.seconds > 0 else float("nan")
        return (f"vs {opponent}: {self.games} games, W {self.wins} D {self.draws} "
                f"L {self.losses}; score {score:.3f} (95% CI {low:.3f}-{high:.3f}); "
                f"{rate:.2f} games/s")


def make_bot(game, max_simulations: int, seed: int):
    """open_spiel's C++ rollout MCTSBot for `game` (a SpielGame)."""
    import pyspiel

    spiel_game = game.spiel_game if isinstance(game, SpielBacked) else None
    if spiel_game is None:
        raise ValueError(f"{game.info.name} is not an open_spiel game; the mcts baseline "
                         "needs one")
    if max_simulations < 1:
        raise ValueError(f"--mcts-sims must be at least 1, got {max_simulations}")
    evaluator = pyspiel.RandomRolloutEvaluator(N_ROLLOUTS, seed)
    return pyspiel.MCTSBot(spiel_game, evaluator, UCT_C, max_simulations, MAX_MEMORY_MB,
                           True, seed, False)


def spiel_state_of(game, state):
    """The pyspiel state of `state`: its own where it keeps one, else `history()` replayed."""
    if getattr(state, "spiel_state", None) is not None:  # chess and Go states keep theirs
        return state.spiel_state
    spiel_state = game.spiel_game.new_initial_state()
    for action in state.history():
        spiel_state.apply_action(action)
    return spiel_state


def play_match(game, player, bot, num_games: int, progress: bool = True) -> MatchResult:
    """Plays `num_games` games between `player` and `bot`; blocks.

    Args:
      game: an open_spiel-backed Game.
      player: an object with `analyze(states) -> [Analysis]` (temperature 0).
      bot: an object with `step(pyspiel_state) -> action` (e.g. make_bot()).
      num_games: games to play; the engine plays first in games 0, 2, 4, ...
      progress: show a tqdm bar.
    """
    from tqdm import tqdm

    if num_games < 1:
        raise ValueError(f"--games must be at least 1, got {num_games}")
    states = [game.new_initial_state() for _ in range(num_games)]
    engine_side = [i % 2 for i in range(num_games)]  # 0: engine moves first
    finished = [False] * num_games
    result = MatchResult(scores=[0.0] * num_games)
    start = time.perf_counter()
    with tqdm(total=num_games, disable=not progress, unit="game", desc="vs mcts",
              dynamic_ncols=True) as bar:
        while not all(finished):
            ours = [i for i in range(num_games)
                    if not finished[i] and states[i].to_play() == engine_side[i]]
            if ours:
                for i, a in zip(ours, player.analyze([states[i] for i in ours])):
                    states[i].apply(a.action)
            for i in range(num_games):
                s = states[i]
                if not s.is_terminal() and s.to_play() != engine_side[i]:
                    s.apply(int(bot.step(spiel_state_of(game, s))))
            for i in range(num_games):
                if not finished[i] and states[i].is_terminal():
                    finished[i] = True
                    _record(result, i, float(states[i].returns()[engine_side[i]]))
                    bar.update(1)
                    bar.set_postfix_str(f"W {result.wins} D {result.draws} L {result.losses}")
    result.seconds = time.perf_counter() - start
    return result


def _record(result: MatchResult, index: int, outcome: float) -> None:
    if outcome > 0:
        result.wins += 1
    elif outcome < 0:
        result.losses += 1
    else:
        result.draws += 1
    result.scores[index] = (outcome + 1.0) / 2.0
