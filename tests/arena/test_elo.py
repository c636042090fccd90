"""Bradley–Terry Elo: closed forms, hand-solvable tournaments and a slow reference."""

from __future__ import annotations

import csv
import io
import math
from statistics import NormalDist

import numpy as np
import pytest

from arena.matches.elo import EloError, rate

Z95 = 1.959963984540054  # NormalDist().inv_cdf(0.975)


def games(first, second, wins=0, draws=0, losses=0):
    """first's wins, draws and losses as result triples, first always moving first."""
    return ([(first, second, 1)] * wins + [(first, second, 0.5)] * draws
            + [(first, second, 0)] * losses)


def swapped(results):
    """The same games with the colours swapped (second moves first)."""
    return [(b, a, 1 - s) for a, b, s in results]


def elos(ratings):
    return {p.name: p.elo for p in ratings.players}


# --- Two players: closed forms ----------------------------------------------

@pytest.mark.parametrize("results", [
    games("A", "B", wins=75, losses=25),
    games("A", "B", wins=50, draws=50),
    games("A", "B", wins=25, draws=25) + swapped(games("A", "B", wins=25, draws=25)),
])
def test_75_percent_is_400_log10_3(results):
    r = rate(results)
    assert r.anchor == "A"
    assert elos(r) == pytest.approx({"A": 0.0, "B": -400 * math.log10(3)}, abs=1e-6)
    assert -400 * math.log10(3) == pytest.approx(-190.85, abs=0.01)


@pytest.mark.parametrize("scale", [400.0, 173.7])
def test_two_player_standard_error_closed_form(scale):
    # n games at p = 0.8: se = scale / ln(10) / sqrt(n p (1 - p)).
    n, p = 50, 0.8
    r = rate(games("A", "B", wins=40, losses=10), scale=scale).by_name()
    se = scale / math.log(10) / math.sqrt(n * p * (1 - p))
    assert r["B"].elo == pytest.approx(-scale * math.log10(4), abs=1e-6)
    assert r["B"].high - r["B"].elo == pytest.approx(Z95 * se, rel=1e-6)
    assert r["B"].elo - r["B"].low == pytest.approx(Z95 * se, rel=1e-6)
    assert r["A"].low == r["A"].high == r["A"].elo == 0.0


def test_confidence_sets_z():
    r = rate(games("A", "B", wins=30, draws=10, losses=10), confidence=0.5).by_name()
    se = 400 / math.log(10) / math.sqrt(50 * 0.7 * 0.3)
    assert r["B"].high - r["B"].elo == pytest.approx(0.6744897501960817 * se, rel=1e-6)


def test_counts_and_score():
    r = rate(games("A", "B", wins=3, draws=2, losses=1) + games("B", "A", wins=1)).by_name()
    a = r["A"]
    assert (a.games, a.wins, a.draws, a.losses, a.points) == (7, 3, 2, 2, 4.0)
    assert a.score == pytest.approx(4 / 7)
    assert (r["B"].wins, r["B"].draws, r["B"].losses) == (2, 2, 3)


# --- Three players ------------------------------------------------------------

def test_chain_splits_into_pairs():
    # A tree of pairings: each difference is its own two-player answer.
    results = games("A", "B", wins=30, losses=10) + games("C", "B", wins=8, losses=32)
    e = elos(rate(results))
    assert e["B"] == pytest.approx(-400 * math.log10(3), abs=1e-6)
    assert e["C"] - e["B"] == pytest.approx(-400 * math.log10(4), abs=1e-6)


def test_cycle_is_all_equal():
    # Each player scores 2/3 against one and 1/3 against the other: 50% overall.
    results = (games("A", "B", wins=2, losses=1) + games("B", "C", wins=2, losses=1)
               + games("C", "A", wins=2, losses=1))
    assert elos(rate(results)) == pytest.approx({"A": 0, "B": 0, "C": 0}, abs=1e-6)


def test_one_strong_two_equal():
    # A scores 75% against both B and C; B-C even: B = C = A - 400 log10(3).
    results = (games("A", "B", wins=20, draws=5, losses=5) + games("C", "A", wins=5, losses=15)
               + games("B", "C", wins=4, draws=4, losses=4))
    e = elos(rate(results))
    assert e["B"] == pytest.approx(-400 * math.log10(3), abs=1e-6)
    assert e["C"] == pytest.approx(e["B"], abs=1e-6)


def test_swapping_colours_changes_nothing_without_advantage():
    results = random_tournament(np.random.default_rng(3), players=6, games=300)
    assert (elos(rate(swapped(results), anchor="p0"))
            == pytest.approx(elos(rate(results, anchor="p0")), abs=1e-6))


# --- Anchoring ------------------------------------------------------------------

def test_anchor_choice_shifts_by_a_constant():
    results = random_tournament(np.random.default_rng(4), players=5, games=200)
    base = elos(rate(results, anchor="p0"))
    other = elos(rate(results, anchor="p3", anchor_elo=1500.0))
    assert other["p3"] == 1500.0
    shift = other["p0"] - base["p0"]
    assert other == pytest.approx({k: v + shift for k, v in base.items()}, abs=1e-6)


def test_intervals_are_relative_to_the_anchor():
    results = games("A", "B", wins=10, losses=10) + games("B", "C", wins=10, losses=10)
    r = rate(results, anchor="B").by_name()
    assert r["B"].low == r["B"].high == 0.0
    se = 400 / math.log(10) / math.sqrt(20 * 0.25)  # each neighbour: one independent pair
    assert r["A"].high - r["A"].elo == pytest.approx(Z95 * se, rel=1e-6)


def test_default_anchor_is_random_then_first_seen():
    results = games("B", "A", wins=3, losses=1) + games("random", "A", wins=1, losses=3)
    assert rate(results).anchor == "random" and elos(rate(results))["random"] == 0.0
    assert rate(games("B", "A", wins=3, losses=1)).anchor == "B"


@pytest.mark.parametrize("results, kwargs", [
    (games("A", "B", wins=1, losses=1), {"anchor": "nobody"}),
    ([], {}),
    ([("A", "A", 1)], {}),
    ([("A", "B", 2)], {}),
    ([("A", "B", 0.25)], {}),
    ([("A", "B")], {}),
    (games("A", "B", wins=1, losses=1), {"scale": 0}),
    (games("A", "B", wins=1, losses=1), {"confidence": 1.0}),
])
def test_errors(results, kwargs):
    with pytest.raises(EloError) as info:
        rate(results, **kwargs)
    assert "\n" not in str(info.value)


# --- Players with infinite maximum-likelihood ratings ------------------------

def test_all_wins_player_is_finite_and_leaves_others_alone():
    base = random_tournament(np.random.default_rng(5), players=4, games=120)
    champion = games("X", "p0", wins=4) + games("p2", "X", losses=3)
    with_x = rate(base + champion).by_name()
    without = elos(rate(base))
    assert {k: v.elo for k, v in with_x.items() if k != "X"} == pytest.approx(without, abs=1e-6)
    x = with_x["X"]
    assert x.flag == "all wins" and math.isfinite(x.elo) and x.low < x.elo < x.high
    assert x.elo > max(without["p0"], without["p2"])
    # Its expected points against its opponents equal 7 - 1/2.
    expected = 4 * logistic(x.elo - without["p0"]) + 3 * logistic(x.elo - without["p2"])
    assert expected == pytest.approx(6.5, abs=1e-6)
    assert all(p.flag is None for p in with_x.values() if p.name != "X")


def test_all_losses_closed_form():
    base = games("A", "B", wins=5, losses=5)
    r = rate(base + games("A", "Z", wins=10)).by_name()
    # 10 * P(Z beats A) = 0.5  =>  Z = A - 400 log10(19).
    assert r["Z"].flag == "all losses"
    assert r["Z"].elo == pytest.approx(-400 * math.log10(19), abs=1e-6)
    assert r["A"].elo == r["B"].elo == 0.0


def test_purge_is_iterated():
    # Y only loses to X and beats B: after X is purged, Y has a perfect score.
    base = games("A", "B", wins=6, losses=4)
    extra = games("X", "Y", wins=3) + games("Y", "B", wins=2) + games("X", "A", wins=1)
    r = rate(base + extra).by_name()
    assert r["X"].flag == r["Y"].flag == "all wins"
    assert r["X"].elo > r["Y"].elo > r["B"].elo
    assert r["B"].elo - r["A"].elo == pytest.approx(-400 * math.log10(1.5), abs=1e-6)


def test_anchor_with_perfect_score_still_anchors():
    r = rate(games("A", "B", wins=10), anchor="A").by_name()
    assert r["A"].elo == 0.0 and r["A"].flag == "all wins"
    assert r["B"].flag == "all losses"
    assert r["B"].elo == pytest.approx(-400 * math.log10(19), abs=1e-6)


def test_not_connected_is_finite_and_flagged():
    # Two groups; the only game between them is a win for A's group.
    results = (games("A", "B", wins=5, losses=5) + games("C", "D", wins=5, losses=5)
               + games("A", "C", wins=2) + games("C", "A", losses=1))
    r = rate(results, anchor="A")
    flags = {p.name: p.flag for p in r.players}
    assert flags == {"A": None, "B": None, "C": "not connected", "D": "not connected"}
    assert all(math.isfinite(v) for p in r.players for v in (p.elo, p.low, p.high))
    assert np.isfinite(r.los[~np.eye(4, dtype=bool)]).all()


def test_group_cut_off_by_purged_players_is_rated_among_itself():
    # M only played X (lost twice, X: all wins) and Y (won twice, Y: all losses).
    results = games("A", "B", wins=3, losses=3) + games("X", "M", wins=2) + games("M", "Y", wins=2)
    r = rate(results).by_name()
    assert (r["X"].flag, r["M"].flag, r["Y"].flag) == ("all wins", "not connected", "all losses")
    assert r["A"].elo == r["B"].elo == 0.0
    # Each half-point-adjusted pair: 2 games at 1.5 points is 400 log10(3) apart.
    assert r["X"].elo - r["M"].elo == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert r["M"].elo - r["Y"].elo == pytest.approx(400 * math.log10(3), abs=1e-6)


# --- First-move advantage -----------------------------------------------------------

def test_first_move_advantage():
    results = games("A", "B", wins=64, losses=36) + games("B", "A", wins=64, losses=36)
    r = rate(results, first_move_advantage=True)
    assert r.advantage == pytest.approx(400 * math.log10(64 / 36), abs=1e-6)
    assert r.advantage == pytest.approx(99.9, abs=0.1)
    assert r.advantage_se > 0
    assert elos(r) == pytest.approx({"A": 0, "B": 0}, abs=1e-6)
    plain = rate(results)
    assert plain.advantage is None and plain.advantage_se is None


def test_advantage_when_the_first_mover_always_wins_is_finite():
    # Connected, yet the advantage alone explains every game: its MLE is
    # infinite, so the weak prior takes over; by symmetry ratings stay equal.
    results = games("A", "B", wins=3) + games("B", "C", wins=3) + games("C", "A", wins=3)
    r = rate(results, first_move_advantage=True)
    assert 400 < r.advantage < 20000 and math.isfinite(r.advantage_se)
    assert elos(r) == pytest.approx({"A": 0, "B": 0, "C": 0}, abs=1e-6)
    assert all(p.flag is None and math.isfinite(p.high) for p in r.players)


def test_advantage_with_unequal_players():
    # A first: 80% (A + adv - B); B first: 40% (B + adv - A). Solve by hand:
    # A - B + adv = 400 log10 4, B - A + adv = 400 log10(2/3).
    results = games("A", "B", wins=40, losses=10) + games("B", "A", wins=20, losses=30)
    r = rate(results, first_move_advantage=True)
    x, y = 400 * math.log10(4), 400 * math.log10(2 / 3)
    assert r.advantage == pytest.approx((x + y) / 2, abs=1e-6)
    assert elos(r)["B"] == pytest.approx(-(x - y) / 2, abs=1e-6)


# --- Cross-check against an Ordo-style fixed point ----------------------------

def logistic(d, scale=400.0):
    return 1 / (1 + 10 ** (-d / scale))


def reference_ratings(results, anchor, advantage, sweeps=5000, tol=1e-10):
    """Adjusts each rating (and the advantage) in turn until expected == actual score."""
    pairs = {}  # (first, second) -> [games, first's points]
    for a, b, s in results:
        cell = pairs.setdefault((a, b), [0, 0.0])
        cell[0] += 1
        cell[1] += s
    r = {n: 0.0 for pair in pairs for n in pair}
    adv = 0.0

    def solve(x, expected_minus_actual):  # 1-D Newton, steps clipped to 100 Elo
        for _ in range(100):
            f, slope = expected_minus_actual(x)
            step = max(-100.0, min(100.0, f / slope))
            x -= step
            if abs(step) < 1e-12:
                break
        return x

    def player_equation(name):
        def f(x):
            total = slope = 0.0
            for (a, b), (n, s) in pairs.items():
                if name in (a, b):
                    p = logistic(x + adv - r[b]) if a == name else logistic(x - adv - r[a])
                    total += n * p - (s if a == name else n - s)
                    slope += n * p * (1 - p) * math.log(10) / 400
            return total, slope
        return f

    def advantage_equation(v):
        total = slope = 0.0
        for (a, b), (n, s) in pairs.items():
            p = logistic(r[a] + v - r[b])
            total += n * p - s
            slope += n * p * (1 - p) * math.log(10) / 400
        return total, slope

    for _ in range(sweeps):
        old = dict(r, _adv=adv)
        for name in r:
            r[name] = solve(r[name], player_equation(name))
        if advantage:
            adv = solve(adv, advantage_equation)
        if max(abs(v - old[k]) for k, v in dict(r, _adv=adv).items()) < tol:
            break
    return {n: v - r[anchor] for n, v in r.items()}, adv


def random_tournament(rng, players, games, spread=150.0, adv=0.0):
    """Results of random pairings; first's expected score is the model's p."""
    strength = rng.normal(0, spread, players)
    i = rng.integers(0, players, games)
    j = (i + rng.integers(1, players, games)) % players
    p = logistic(strength[i] + adv - strength[j])
    draw = 0.4 * np.minimum(p, 1 - p)
    u = rng.random(games)
    score = np.where(u < p - draw / 2, 1.0, np.where(u < p + draw / 2, 0.5, 0.0))
    return [(f"p{a}", f"p{b}", float(s)) for a, b, s in zip(i, j, score)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("advantage", [False, True])
def test_matches_fixed_point_reference(seed, advantage):
    results = random_tournament(np.random.default_rng(seed), players=8, games=160, adv=60.0)
    r = rate(results, anchor="p0", first_move_advantage=advantage)
    assert all(p.flag is None for p in r.players)
    ref, ref_adv = reference_ratings(results, "p0", advantage)
    assert elos(r) == pytest.approx(ref, abs=0.01)
    if advantage:
        assert r.advantage == pytest.approx(ref_adv, abs=0.01)


# --- LOS and output -------------------------------------------------------------

def test_los_equal_players_and_symmetry():
    r = rate(games("A", "B", wins=10, losses=10))
    assert r.los[0, 1] == pytest.approx(0.5) and r.los[1, 0] == pytest.approx(0.5)
    r = rate(random_tournament(np.random.default_rng(6), players=6, games=200))
    los = r.los
    off = ~np.eye(6, dtype=bool)
    assert np.isnan(np.diag(los)).all()
    assert np.allclose((los + los.T)[off], 1.0)
    assert (los[np.triu_indices(6, 1)] >= 0.5).all()  # rows are in rating order


def test_los_two_players_closed_form():
    r = rate(games("A", "B", wins=12, losses=8))
    se = 400 / math.log(10) / math.sqrt(20 * 0.6 * 0.4)
    assert r.los[0, 1] == pytest.approx(NormalDist().cdf(400 * math.log10(1.5) / se), abs=1e-9)


def test_players_sorted_and_outputs():
    results = games("A", "B", wins=1, losses=3) + games("C", "B", wins=3, losses=1)
    r = rate(results + games("D", "C", wins=2))
    assert [p.name for p in r.players] == ["D", "C", "B", "A"]
    assert [p.elo for p in r.players] == sorted((p.elo for p in r.players), reverse=True)
    rows = list(csv.reader(io.StringIO(r.to_csv())))
    assert rows[0] == ["rank", "name", "elo", "low", "high", "games", "points",
                       "wins", "draws", "losses", "score", "flag"]
    assert [row[1] for row in rows[1:]] == [p.name for p in r.players]
    assert rows[1][-1] == "all wins"
    assert float(rows[1][2]) == pytest.approx(r.players[0].elo, abs=1e-3)
    table = r.table().splitlines()
    assert len(table) == 5 and "all wins" in table[1] and table[1].split()[:2] == ["1", "D"]
    los_lines = r.los_table().splitlines()
    assert len(los_lines) == 5 and los_lines[0].split() == [p.name for p in r.players]


def test_many_players():
    # Size, not speed: 300 players and 100k games fit (about 1.5 s here).
    rng = np.random.default_rng(7)
    results = random_tournament(rng, players=300, games=100_000, spread=200.0)
    r = rate(results, first_move_advantage=True)
    assert len(r.players) == 300 and abs(r.advantage) < 20
