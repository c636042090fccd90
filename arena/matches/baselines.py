"""Baseline players that need no checkpoint: a random mover and open_spiel's rollout MCTS.

The rollout-MCTS opponent is open_spiel's C++ `MCTSBot` with a
`RandomRolloutEvaluator` (n_rollouts=1), uct_c=2 and MCTS-Solver on
(open_spiel's default), seeded. Both players have the arena player interface
(arena.matches.players.ArenaPlayer); build them from a PlayerSpec with
arena.matches.players.build_player.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from games.base import SpielBacked

UCT_C = 2.0
N_ROLLOUTS = 1
MAX_MEMORY_MB = 1000


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


class RandomPlayer:
    """A uniformly random legal move.

    The draw is seeded by the seed and the position's move history, so a
    game's moves do not depend on which process played it or in what order.
    """

    def __init__(self, seed: int = 0, name: str = "random"):
        self.seed = seed
        self.name = name

    def select(self, states: Sequence) -> list[int]:
        return [int(np.random.default_rng([self.seed, len(s.history()), *s.history()])
                    .choice(np.flatnonzero(s.legal_mask()))) for s in states]

    def new_game(self) -> None:
        pass

    def close(self) -> None:
        pass


class RolloutMCTSPlayer:
    """An open_spiel bot as an arena player: usually make_bot()'s rollout MCTSBot.

    Args:
      name: the player's name in results.
      game: the open_spiel-backed Game the bot plays.
      bot: an object with `step(pyspiel_state) -> action`; it is asked once
        per position, in the order select() receives them.
    """

    def __init__(self, name: str, game, bot):
        self.name = name
        self.game = game
        self.bot = bot

    def select(self, states: Sequence) -> list[int]:
        return [int(self.bot.step(spiel_state_of(self.game, s))) for s in states]

    def new_game(self) -> None:
        pass

    def close(self) -> None:
        pass
