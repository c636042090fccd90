"""Player-like fakes for front-end tests: no network, deterministic, instant."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def fake_analysis(state, action: int, value: float = 0.25, sims: int = 1):
    """An Analysis-like object that puts all `sims` visits on `action`."""
    n = len(state.legal_mask())
    visits = np.zeros(n, np.int32)
    visits[action] = sims
    q = np.full(n, np.nan, np.float32)
    q[action] = value
    prior = state.legal_mask().astype(np.float32) / state.legal_mask().sum()
    return SimpleNamespace(action=int(action), value=value, raw_value=0.0, visits=visits,
                           prior=prior, q=q, policy=visits / max(sims, 1))


class ScriptedPlayer:
    """Plays moves chosen by `pick(state) -> action` (default: the lowest legal action).

    Records every analyze call as (number of states, num_simulations).
    """

    def __init__(self, pick=None):
        self.pick = pick or (lambda s: int(np.flatnonzero(s.legal_mask())[0]))
        self.calls: list[tuple[int, int | None]] = []

    def analyze(self, states, num_simulations=None, add_noise=False):
        self.calls.append((len(states), num_simulations))
        return [fake_analysis(s, self.pick(s), sims=num_simulations or 1) for s in states]


class BrokenPlayer:
    """A player whose search always fails."""

    def analyze(self, states, num_simulations=None, add_noise=False):
        raise RuntimeError("network exploded")
