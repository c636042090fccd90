"""A match against open_spiel's rollout MCTS (the classic baseline), summed up from our side.

`tabula eval --vs mcts`: the opponent is usually baselines.make_bot()'s C++
`MCTSBot`. The games go through the one match loop (match.play_games), with
the engine as a players.SearchPlayer and the bot as a
baselines.RolloutMCTSPlayer, all of them in lockstep and from the initial
position (no random opening): at every step the positions where the engine is
to move are searched as one batch, then the bot answers in each other game,
in game order. Colours alternate: the engine plays first in the even-numbered
games.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from arena.matches.baselines import RolloutMCTSPlayer
from arena.matches.match import GameResult, MatchSettings, play_games
from arena.matches.players import SearchPlayer

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

    def add(self, game: GameResult) -> None:
        """Counts a finished game of a match the engine played as player A (first in even games)."""
        score = game.score if game.index % 2 == 0 else 1.0 - game.score
        if score > 0.5:
            self.wins += 1
        elif score < 0.5:
            self.losses += 1
        else:
            self.draws += 1
        self.scores[game.index] = score

    def line(self, opponent: str) -> str:
        score, low, high = self.score_interval()
        rate = self.games / self.seconds if self.seconds > 0 else float("nan")
        return (f"vs {opponent}: {self.games} games, W {self.wins} D {self.draws} "
                f"L {self.losses}; score {score:.3f} (95% CI {low:.3f}-{high:.3f}); "
                f"{rate:.2f} games/s")


def play_match(game, player, bot, num_games: int, progress: bool = True) -> MatchResult:
    """Plays `num_games` games between `player` and `bot`; blocks.

    Args:
      game: an open_spiel-backed Game.
      player: an object with `analyze(states) -> [Analysis]` (temperature 0).
      bot: an object with `step(pyspiel_state) -> action` (e.g. baselines.make_bot()).
      num_games: games to play; the engine plays first in games 0, 2, 4, ...
      progress: show a tqdm bar.
    """
    from tqdm import tqdm

    if num_games < 1:
        raise ValueError(f"--games must be at least 1, got {num_games}")
    result = MatchResult(scores=[0.0] * num_games)
    engine = SearchPlayer("engine", player)
    opponent = RolloutMCTSPlayer("mcts", game, bot)
    settings = MatchSettings(game.info.name, opening_plies=0)
    start = time.perf_counter()
    with tqdm(total=num_games, disable=not progress, unit="game", desc="vs mcts",
              dynamic_ncols=True) as bar:

        def on_result(game_result: GameResult) -> None:
            result.add(game_result)
            bar.update(1)
            bar.set_postfix_str(f"W {result.wins} D {result.draws} L {result.losses}")

        # Every game at once (lockstep = num_games): the bot is asked in game order.
        play_games(game, engine, opponent, range(num_games), settings, on_result,
                   lockstep=num_games)
    result.seconds = time.perf_counter() - start
    return result
