"""Maximum-likelihood Bradley–Terry Elo with error bars (pure functions, NumPy).

Model: P(first beats second) = 1 / (1 + 10**(-(r_first + adv - r_second) / scale)),
a draw counting as half a win and half a loss. At the maximum each player's
expected score equals its actual score, which is what Ordo computes.

Players with an infinite maximum-likelihood rating (a perfect or a zero score
once such players are removed, Ordo's "purge") are fitted afterwards, one at a
time with the others fixed, as if they had dropped (or gained) half a point.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

TOL = 1e-9
"""Newton stops when no rating moves by more than this many Elo."""
MAX_ITER = 100
MAX_LOGIT = 30.0
"""A fit is abandoned (separated data) once a pair that played is predicted at odds
beyond e**MAX_LOGIT (1e13) to 1, far past anything a finite number of games supports."""
PRIOR_SD = 5.0
"""Sd, in units of scale, of the weak Gaussian prior used when data are not connected."""
ALL_WINS, ALL_LOSSES, NOT_CONNECTED = "all wins", "all losses", "not connected"


class EloError(ValueError):
    """Unknown anchor, no rated games or a malformed result."""


@dataclass(frozen=True)
class Rating:
    """One player's rating."""

    name: str
    elo: float
    """Relative to the anchor (whose elo is anchor_elo)."""
    low: float
    """Lower bound of the confidence interval, elo - z * se."""
    high: float
    """Upper bound of the confidence interval, elo + z * se."""
    games: int
    points: float
    """Wins + draws / 2."""
    wins: int
    draws: int
    losses: int
    flag: str | None
    """None, "all wins", "all losses" or "not connected"."""

    @property
    def score(self) -> float:
        return self.points / self.games


@dataclass
class Ratings:
    """The result of `rate`."""

    players: list[Rating]
    """Sorted by elo, descending."""
    anchor: str
    scale: float
    advantage: float | None
    """Fitted first-move advantage in Elo (None when not fitted)."""
    advantage_se: float | None
    los: np.ndarray
    """float64[P, P]: P(row player stronger than column player), order of players; NaN diagonal."""

    def by_name(self) -> dict[str, Rating]:
        return {p.name: p for p in self.players}

    def table(self) -> str:
        """Aligned text table (rank, name, elo, -/+, games, score, W/D/L, flag)."""
        head = ["rank", "name", "elo", "-", "+", "games", "score", "W", "D", "L", "flag"]
        rows = [[str(i + 1), p.name, f"{p.elo:.1f}", f"{p.elo - p.low:.1f}",
                 f"{p.high - p.elo:.1f}", str(p.games), f"{100 * p.score:.1f}%",
                 str(p.wins), str(p.draws), str(p.losses), p.flag or ""]
                for i, p in enumerate(self.players)]
        return _align([head] + rows, left={1, 10})

    def los_table(self) -> str:
        """The likelihood-of-superiority matrix in percent, players in rating order."""
        names = [p.name for p in self.players]
        rows = [[""] + names]
        for name, row in zip(names, self.los):
            rows.append([name] + ["-" if np.isnan(v) else f"{100 * v:.1f}" for v in row])
        return _align(rows, left={0})

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["rank", "name", "elo", "low", "high", "games", "points",
                         "wins", "draws", "losses", "score", "flag"])
        for i, p in enumerate(self.players):
            writer.writerow([i + 1, p.name, f"{p.elo:.4f}", f"{p.low:.4f}", f"{p.high:.4f}",
                             p.games, p.points, p.wins, p.draws, p.losses,
                             f"{p.score:.6f}", p.flag or ""])
        return out.getvalue()


def _align(rows: list[list[str]], left: set[int]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [" ".join(cell.ljust(w) if c in left else cell.rjust(w)
                      for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    return "\n".join(lines) + "\n"


def rate(results, anchor: str | None = None, anchor_elo: float = 0.0,
         scale: float = 400.0, first_move_advantage: bool = False,
         confidence: float = 0.95) -> Ratings:
    """Maximum-likelihood ratings of every player in `results`.

    Args:
      results: iterable of (first, second, score): first moved first; score is
        first's score, 1, 0.5 or 0.
      anchor: player fixed at anchor_elo; default "random" if present, else the
        first player to appear.
      anchor_elo: the anchor's rating.
      scale: Elo per factor of 10 in the odds.
      first_move_advantage: fit a first-move advantage jointly.
      confidence: level of the intervals (low, high).

    Raises:
      EloError: no games, a bad result tuple, an unknown anchor or bad options.
    """
    if not scale > 0 or not 0 < confidence < 1:
        raise EloError(f"need scale > 0 and 0 < confidence < 1, got {scale}, {confidence}")
    names, n, s, wdl = _tally(results)
    if anchor is None:
        anchor = "random" if "random" in names else names[0]
    elif anchor not in names:
        raise EloError(f"anchor {anchor!r} is not a player")
    a_idx = names.index(anchor)
    k = math.log(10) / scale
    num = len(names)
    rounds, flags = _purge(n, s)
    core = rounds == 0
    if core.sum() > 1:  # a kept player whose every game was against purged ones
        lonely = core & ((n + n.T)[:, core].sum(1) == 0)
        for i in np.flatnonzero(lonely):
            flags[i] = NOT_CONNECTED
        core &= ~lonely
    r, cov = np.zeros(num), np.zeros((num, num))
    adv, adv_var = 0.0, math.nan
    rated = core.copy()
    if core.any():
        adv, adv_var = _fit_core(n, s, k, core, a_idx, first_move_advantage, flags, r, cov)
    _rate_rest(n, s, k, adv, r, cov, rated, rounds, a_idx)
    # Re-reference every rating (and its covariance) to the anchor.
    r = r - r[a_idx] + anchor_elo
    c = cov[:, a_idx]
    cov = cov - c[:, None] - c[None, :] + cov[a_idx, a_idx]
    return _assemble(names, n, s, wdl, r, cov, flags, anchor, scale, confidence,
                     (adv, adv_var) if first_move_advantage else None)


def _fit_core(n, s, k, core, a_idx, fit_adv, flags, r, cov) -> tuple[float, float]:
    """Fits the players in core (bool[P]) jointly, writing r[P] and cov[P, P] in place.

    Without a prior when the "scored against" graph is strongly connected and
    the fit converges; otherwise with a weak prior, flagging the players outside
    the reference player's component. Returns (advantage, its variance).
    """
    idx = np.flatnonzero(core)
    ref = a_idx if core[a_idx] else int(idx[0])
    ref_pos = int(np.searchsorted(idx, ref))
    sub = np.ix_(idx, idx)
    in_comp = _strongly_connected(_points(n, s)[sub] > 0, ref_pos)
    fit = _fit(n[sub], s[sub], ref_pos, k, fit_adv, 0.0) if in_comp.all() else None
    if fit is None:
        for i in idx[~in_comp]:
            flags[i] = NOT_CONNECTED
        prior_sd = PRIOR_SD * math.log(10) / k  # PRIOR_SD * scale, in Elo
        fit = _fit(n[sub], s[sub], ref_pos, k, fit_adv, prior_sd ** -2)
    if fit is None:
        raise EloError("the rating fit did not converge")
    r[idx], cov[sub] = fit[0], fit[1]
    return fit[2], fit[3]


def _tally(results) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Players in order of appearance, games[P, P] and first's points[P, P] by
    (first, second), and int64[P, 3] wins, draws, losses."""
    index: dict[str, int] = {}
    firsts, seconds, scores = [], [], []
    for number, item in enumerate(results, 1):
        try:
            first, second, score = item
        except (TypeError, ValueError):
            raise EloError(f"result {number} is not a (first, second, score) triple: {item!r}")
        if score not in (0, 0.5, 1):
            raise EloError(f"result {number}: score {score!r} is not 1, 0.5 or 0")
        if first == second:
            raise EloError(f"result {number}: {first!r} played itself")
        firsts.append(index.setdefault(first, len(index)))
        seconds.append(index.setdefault(second, len(index)))
        scores.append(float(score))
    if not index:
        raise EloError("no rated games")
    num = len(index)
    n = np.zeros((num, num))
    s = np.zeros((num, num))
    np.add.at(n, (firsts, seconds), 1.0)
    np.add.at(s, (firsts, seconds), scores)
    wdl = np.zeros((num, 3), np.int64)
    sc = np.array(scores)
    outcome = np.where(sc == 1, 0, np.where(sc == 0.5, 1, 2))  # first's W/D/L column
    np.add.at(wdl, (firsts, outcome), 1)
    np.add.at(wdl, (seconds, 2 - outcome), 1)
    return list(index), n, s, wdl


def _points(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """float64[P, P]: points of row player against column player, both colours."""
    return s + n.T - s.T


def _purge(n: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Rounds (int[P], 0 = kept) and flags of players with a perfect or zero score."""
    games, pts = n + n.T, _points(n, s)
    active = np.ones(len(n), bool)
    rounds = np.zeros(len(n), int)
    flags: list[str | None] = [None] * len(n)
    for t in range(1, len(n) + 1):
        g, p = games[:, active].sum(1), pts[:, active].sum(1)
        win, loss = active & (g > 0) & (p == g), active & (g > 0) & (p == 0)
        if not (win | loss).any():
            break
        for i in np.flatnonzero(win | loss):
            flags[i] = ALL_WINS if win[i] else ALL_LOSSES
        rounds[win | loss] = t
        active &= ~(win | loss)
    return rounds, flags


def _strongly_connected(adj: np.ndarray, start: int) -> np.ndarray:
    """bool[P]: the strongly connected component of `start` in the graph adj[P, P]."""
    def reach(a):
        seen = np.zeros(len(a), bool)
        seen[start] = True
        frontier = seen.copy()
        while frontier.any():
            frontier = a[frontier].any(0) & ~seen
            seen |= frontier
        return seen
    return reach(adj) & reach(adj.T)


def _model(r, adv, n, s, k):
    """Log-likelihood, residuals e[P, P] = s - n p and weights w[P, P] = k^2 n p (1 - p)."""
    x = k * (r[:, None] + adv - r[None, :])
    logp, logq = -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)
    ll = float(np.sum(s * logp + (n - s) * logq))
    p, q = np.exp(logp), np.exp(logq)
    # s q - (n - s) p == s - n p, but stays exact when p or q rounds to 1.
    return ll, s * q - (n - s) * p, k * k * n * p * q


def _fit(n, s, ref, k, fit_adv, prior):
    """Newton's method with the player `ref` fixed at 0.

    Args:
      n, s: float64[M, M] games and first's points by (first, second).
      prior: precision of a N(0, 1/prior) prior on each free parameter (0: none).

    Returns:
      (r[M], cov[M, M], adv, adv_var), or None if the fit diverged.
    """
    m = len(n)
    free = np.flatnonzero(np.arange(m) != ref)
    theta = np.zeros(len(free) + int(fit_adv))

    def unpack(th):
        r = np.zeros(m)
        r[free] = th[:len(free)]
        return r, (th[-1] if fit_adv else 0.0)

    def evaluate(th):
        r, adv = unpack(th)
        ll, e, w = _model(r, adv, n, s, k)
        g = k * (e.sum(1) - e.sum(0))[free]
        info = np.diag(w.sum(1) + w.sum(0)) - w - w.T
        info = info[np.ix_(free, free)]
        if fit_adv:
            cross = (w.sum(1) - w.sum(0))[free]
            g = np.append(g, k * e.sum())
            info = np.block([[info, cross[:, None]], [cross[None, :], np.full((1, 1), w.sum())]])
        ll -= 0.5 * prior * th @ th
        return ll, g - prior * th, info + prior * np.eye(len(th))

    def separated(th):
        r, adv = unpack(th)
        return prior == 0 and np.any(np.abs(k * (r[:, None] + adv - r[None, :]))[n > 0] > MAX_LOGIT)

    theta = _newton(evaluate, theta, separated)
    if theta is None:
        return None
    info = evaluate(theta)[2]
    try:
        inv = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None
    r, adv = unpack(theta)
    cov = np.zeros((m, m))
    cov[np.ix_(free, free)] = inv[:len(free), :len(free)]
    return r, cov, adv, (inv[-1, -1] if fit_adv else math.nan)


def _newton(evaluate, theta, separated):
    """Maximizes evaluate(theta) -> (ll, gradient, information) with step halving.

    Returns the maximizer (no parameter moves by TOL more), or None if the
    information is singular, `separated(theta)` turns true or MAX_ITER is hit.
    """
    for _ in range(MAX_ITER):
        ll, g, info = evaluate(theta)
        try:
            step = np.linalg.solve(info, g)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)):
            return None
        if np.max(np.abs(step), initial=0.0) < TOL:
            theta = theta + step
            return None if separated(theta) else theta
        t = 1.0
        while evaluate(theta + t * step)[0] < ll - 1e-12 * abs(ll) and t > 1e-8:
            t /= 2
        theta = theta + t * step
        if separated(theta):
            return None
    return None


def _rate_rest(n, s, k, adv, r, cov, rated, rounds, a_idx) -> None:
    """Rates, in place, every player not yet rated, one at a time, others fixed.

    Players flagged last come first (they played the fitted players); a player
    with no rated opponent waits; if nobody can go, the anchor (else the first
    waiting player) is set to 0 to seed the rest.
    """
    order = sorted(np.flatnonzero(~rated), key=lambda i: (-rounds[i], i))
    while order:
        waiting = []
        for i in order:
            if not _rate_one(i, n, s, k, adv, r, cov, rated):
                waiting.append(i)
        if len(waiting) == len(order):
            seed = a_idx if a_idx in waiting else waiting[0]
            rated[seed] = True
            waiting.remove(seed)
        order = waiting


def _rate_one(i, n, s, k, adv, r, cov, rated) -> bool:
    """1-D fit of player i against rated opponents; False if it has none."""
    mask = rated.astype(float)
    nf, ns = n[i] * mask, n[:, i] * mask
    games = nf.sum() + ns.sum()
    if games == 0:
        return False
    target = float((s[i] * mask).sum() + ns.sum() - (s[:, i] * mask).sum())
    # A perfect (or zero) record counts as if half a point had been dropped (or won).
    target += -0.5 if target == games else 0.5 if target == 0 else 0.0
    opp = np.where(rated, r, 0.0)

    def expected(x):
        return float(nf @ _sigmoid(k * (x + adv - opp)) + ns @ _sigmoid(k * (x - adv - opp)))

    lo = hi = float((nf + ns) @ opp / games)
    span = 1.0 / k
    while expected(lo) > target:
        lo, span = lo - span, 2 * span
    span = 1.0 / k
    while expected(hi) < target:
        hi, span = hi + span, 2 * span
    for _ in range(200):  # bisection; bounded in case TOL is below float spacing
        if hi - lo <= TOL:
            break
        mid = 0.5 * (lo + hi)
        if expected(mid) < target:
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    x1, x2 = k * (x + adv - opp), k * (x - adv - opp)
    info = k * k * float(nf @ (_sigmoid(x1) * _sigmoid(-x1)) + ns @ (_sigmoid(x2) * _sigmoid(-x2)))
    r[i], cov[i, i], rated[i] = x, 1.0 / info, True
    return True


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _phi(z: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-z / math.sqrt(2.0))


def _assemble(names, n, s, wdl, r, cov, flags, anchor, scale, confidence, adv) -> Ratings:
    """Builds the sorted Ratings with intervals and the LOS matrix."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    pts = _points(n, s)
    games, points = (n + n.T).sum(1), pts.sum(1)
    order = sorted(range(len(names)), key=lambda i: (-r[i], i))
    players = []
    for i in order:
        players.append(Rating(names[i], float(r[i]), float(r[i] - z * se[i]),
                              float(r[i] + z * se[i]), int(games[i]), float(points[i]),
                              *(int(c) for c in wdl[i]), flags[i]))
    o = np.array(order)
    diff = r[o][:, None] - r[o][None, :]
    var = np.diag(cov)[o][:, None] + np.diag(cov)[o][None, :] - 2 * cov[np.ix_(o, o)]
    sd = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        los = np.where(sd > 0, _phi(diff / np.where(sd > 0, sd, 1.0)),
                       0.5 + 0.5 * np.sign(diff))
    np.fill_diagonal(los, np.nan)
    if adv is None:
        return Ratings(players, anchor, scale, None, None, los)
    return Ratings(players, anchor, scale, float(adv[0]), math.sqrt(max(adv[1], 0.0)), los)
