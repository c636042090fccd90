"""Tournaments over the results database: resumable matches, pairings, gating, the CLI."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.matches.gating import expected_score, sprt_bounds, sprt_llr
from arena.matches.match import MatchSettings
from arena.matches.players import PlayerSpec, PlayerSpecError, parse_player
from arena.matches.results import ResultsDB
from arena.matches.tournament import (Tournament, gauntlet_pairings, match_key,
                              round_robin_pairings)
from tests.conftest import REPO, make_checkpoint
from tests.guards import hang_guard

GATED = Path(__file__).parent / "gated_arena.py"


def _run(tmp_path: Path, game: str = "tictactoe", steps=(0, 10, 20)) -> Path:
    run = tmp_path / "run"
    for i, step in enumerate(steps):
        make_checkpoint(run / "checkpoints" / f"step-{step:08d}.safetensors", game, seed=i,
                        sims=2, step=step)
    return run


def test_a_match_is_completed_not_replayed(tmp_path):
    settings = MatchSettings("tictactoe", seed=0, opening_plies=1)
    a, b = PlayerSpec("random", "random"), PlayerSpec("mcts-4", "mcts", sims=4)
    with ResultsDB(tmp_path / "arena.sqlite") as db:
        t = Tournament(db, settings, progress=False)
        first = t.play(a, b, 4)
        again = t.play(a, b, 4)
        more = t.play(a, b, 6)
        games = db.games(match=match_key(settings, a, b))
    assert (first.played, again.played, more.played) == (4, 0, 2)
    assert more.stored == 6 and len(games) == 6
    assert sorted(g.index for g in games) == list(range(6))
    # Colours alternate and every record names both players and its result.
    assert [g.first for g in sorted(games, key=lambda g: g.index)] == ["random", "mcts-4"] * 3
    for g in games:
        assert "random" in g.record and "mcts-4" in g.record
        assert g.record.rstrip().endswith(("1-0", "0-1", "1/2-1/2"))


def test_a_name_cannot_change_its_settings(tmp_path):
    with ResultsDB(tmp_path / "arena.sqlite") as db:
        t = Tournament(db, MatchSettings("tictactoe"), progress=False)
        t.register(PlayerSpec("mcts", "mcts", sims=4))
        t.register(PlayerSpec("mcts", "mcts", sims=4))  # same settings: fine
        with pytest.raises(PlayerSpecError, match="other settings"):
            t.register(PlayerSpec("mcts", "mcts", sims=8))


def test_pairings():
    c = [PlayerSpec(f"c{i}", "checkpoint") for i in range(4)]
    base = [PlayerSpec("random", "random")]
    names = lambda pairs: [(a.name, b.name) for a, b in pairs]  # noqa: E731
    assert names(gauntlet_pairings(c)) == [("c1", "c0"), ("c2", "c1"), ("c2", "c0"),
                                           ("c3", "c2"), ("c3", "c0")]
    assert ("c0", "random") in names(gauntlet_pairings(c, base))
    assert len(round_robin_pairings(c + base)) == 10


def test_player_specs(tmp_path):
    run = _run(tmp_path)
    ckpts = [run / "checkpoints"]
    assert parse_player("random", "tictactoe").kind == "random"
    assert parse_player("mcts:50", "tictactoe").name == "mcts-50"
    spec = parse_player("sf=uci:stockfish -x", "chess")
    assert (spec.name, spec.kind, spec.target) == ("sf", "uci", "stockfish -x")
    assert parse_player("gtp:gnugo --mode gtp", "go9").name == "gnugo"
    assert parse_player("10", "tictactoe", search_dirs=ckpts).name == "step-00000010"
    assert parse_player("step-00000020", "tictactoe", search_dirs=ckpts).step == 20
    for bad, message in [("nobody", "unknown player"), ("mcts:x", "number"),
                         ("gtp:", "command line"), ("x/none.safetensors", "does not exist")]:
        with pytest.raises(PlayerSpecError, match=message):
            parse_player(bad, "tictactoe", search_dirs=ckpts)
    with pytest.raises(PlayerSpecError, match="tictactoe checkpoint"):
        parse_player(str(run / "checkpoints" / "step-00000010.safetensors"), "connect4")


def test_sprt_llr_by_hand():
    # 60 wins, 40 losses: mean 0.6, per-game variance (60*.16 + 40*.36)/100 = 0.24;
    # s0 = 0.5, s1 = 1/(1+10**(-30/400)) = 1/1.841395 = 0.543066;
    # LLR = 100 * 0.043066 * (1.2 - 1.043066) / 0.48 = 1.40804.
    assert sprt_llr(60, 0, 40, 0, 30) == pytest.approx(1.40804, abs=1e-4)
    assert expected_score(0) == 0.5
    lower, upper = sprt_bounds(0.05, 0.05)
    assert (lower, upper) == pytest.approx((-2.944439, 2.944439), abs=1e-6)
    assert sprt_llr(0, 0, 0, 0, 30) == 0.0
    assert sprt_llr(30, 0, 70, 0, 30) < lower  # clearly weaker: H0


def test_cli_arena_gauntlet_then_elo(tabula, tmp_path):
    run = _run(tmp_path)
    r = tabula("arena", run, "--games", "4", "--sims", "2", "--opponent", "random",
               "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "step-00000020 vs step-00000010" in r.stdout and "step-00000020 vs random" in r.stdout
    assert (run / "elo.csv").exists() and (run / "elo.png").read_bytes()[:4] == b"\x89PNG"
    header = (run / "elo.csv").read_text().splitlines()[0]
    assert header.startswith("rank,name,kind,step,elo,low,high")
    with sqlite3.connect(run / "arena.sqlite") as conn:
        # pairings: c1-c0, c2-c1, c2-c0, and three vs random, 4 games each
        assert conn.execute("select count(*) from games").fetchone()[0] == 24
    again = tabula("arena", run, "--games", "4", "--sims", "2", "--opponent", "random",
                   "--no-progress")
    assert again.returncode == 0 and "arena: 0 games played" in again.stdout
    elo = tabula("elo", run)
    assert elo.returncode == 0, elo.stderr
    assert "random" in elo.stdout and "step-00000010" in elo.stdout and "24 games" in elo.stdout


@pytest.mark.parametrize("args, message", [
    (["--opponent", "nobody"], "unknown player 'nobody'"),
    (["--opponent", "mcts:0"], "at least 1"),
    (["--sims", "0"], "must be at least 1"),
])
def test_cli_arena_bad_input(tabula, tmp_path, args, message):
    run = _run(tmp_path, steps=(0, 10))
    r = tabula("arena", run, "--no-progress", *args)
    assert r.returncode == 2 and message in r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr


def test_cli_arena_refuses_another_games_checkpoint_and_missing_runs(tabula, tmp_path):
    run = _run(tmp_path, steps=(0, 10))
    other = make_checkpoint(tmp_path / "c4.safetensors", "connect4")
    r = tabula("arena", run, "--opponent", str(other), "--no-progress")
    assert r.returncode == 2 and "connect4 checkpoint" in r.stderr
    r = tabula("arena", tmp_path / "nowhere", "--no-progress")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = tabula("elo", tmp_path / "nowhere")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_refuses_a_newer_database_and_keeps_it(tabula, tmp_path):
    run = _run(tmp_path, steps=(0, 10))
    with sqlite3.connect(run / "arena.sqlite") as conn:
        conn.execute("create table future(x)")
        conn.execute("pragma user_version = 99")
    before = (run / "arena.sqlite").read_bytes()
    for args in (["arena", run, "--no-progress"], ["elo", run]):
        r = tabula(*args)
        assert r.returncode == 2 and "newer" in r.stderr and "Traceback" not in r.stderr
    assert (run / "arena.sqlite").read_bytes() == before


def test_a_killed_tournament_loses_no_game_and_resumes(tmp_path):
    """kill -9 while games are in flight: the database stays whole, the stored games stay,
    and the same command completes only the missing ones. The arena stores through a gate
    (tests/arena/gated_arena.py): at most `allowed` games, so a fast machine cannot finish
    the tournament before the kill, and a slow one is simply waited for."""
    from tests.arena.gated_arena import open_gate

    run = _run(tmp_path, steps=(0, 10))
    db_path = run / "arena.sqlite"
    gate = tmp_path / "gate"
    args = ["arena", str(run), "--games", "200", "--sims", "2", "--no-progress"]
    rng = random.Random()
    low, allowed = 10, 10 + rng.randint(1, 20)
    open_gate(gate, allowed)
    child = subprocess.Popen([sys.executable, str(GATED), str(gate), *args], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with hang_guard(what=f"the arena storing {low} games"):
        while _stored(db_path) < low:  # then up to `allowed`: playing, writing, or gated
            assert child.poll() is None, child.stderr.read().decode()
            time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.2))
    assert child.poll() is None, child.stderr.read().decode()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("select count(*) from games").fetchone()[0]
    assert low <= kept <= allowed
    done = subprocess.run([sys.executable, "-m", "tabula", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"arena: {200 - kept} games played" in done.stdout
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("select idx from games").fetchall()
    assert sorted(i for (i,) in rows) == list(range(200))


def _stored(db_path: Path) -> int:
    if not db_path.exists():  # connecting would create it
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as conn:
            return conn.execute("select count(*) from games").fetchone()[0]
    except sqlite3.Error:  # not created yet, or no table yet
        return 0


PGN = """[Event "t"]
[White "Alpha"]
[Black "Beta"]
[Result "1-0"]

1. e4 e5 1-0

[White "Beta"]
[Black "Alpha"]
[Result "1/2-1/2"]

1/2-1/2

[White "Gamma"]
[Result "1-0"]

1-0

[White "Alpha"]
[Black "Beta"]
[Result "0-1"]

0-1

[White "Alpha"]
[Black "Beta"]
[Result "1-0"]

1-0

[White "Beta"]
[Black "Alpha"]
[Result "*"]

*
"""


def test_cli_elo_pgn_rates_and_reports_malformed_games(tabula, tmp_path):
    path = tmp_path / "games.pgn"
    path.write_text(PGN)
    r = tabula("elo", "--pgn", path, "--anchor", "Beta", "--csv", tmp_path / "out.csv")
    assert r.returncode == 0, r.stderr
    assert "game 3 skipped" in r.stderr and "Black" in r.stderr
    # Alpha scores 2.5 of 4 = 62.5% against Beta: 400*log10(0.625/0.375) = 88.7 Elo.
    rows = {line.split(",")[1]: line.split(",") for line in
            (tmp_path / "out.csv").read_text().splitlines()[1:]}
    assert float(rows["Alpha"][4]) == pytest.approx(88.7, abs=0.05)
    assert float(rows["Beta"][4]) == 0.0
    assert "4 games rated, 1 skipped as malformed, 1 unfinished" in r.stdout


@pytest.mark.parametrize("text, message", [
    ("", "no decided games"),
    ('[White "A"]\n[Black "A"]\n[Result "1-0"]\n\n1-0\n', "'A' played itself"),
])
def test_cli_elo_pgn_bad_input(tabula, tmp_path, text, message):
    path = tmp_path / "bad.pgn"
    path.write_text(text)
    r = tabula("elo", "--pgn", path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_cli_elo_pgn_missing_file_and_unknown_anchor(tabula, tmp_path):
    r = tabula("elo", "--pgn", tmp_path / "missing.pgn")
    assert r.returncode == 2 and "missing.pgn" in r.stderr and "Traceback" not in r.stderr
    path = tmp_path / "ok.pgn"
    path.write_text(PGN)
    r = tabula("elo", "--pgn", path, "--anchor", "Nobody")
    assert r.returncode == 2 and "Nobody" in r.stderr and "Traceback" not in r.stderr


def test_a_crashing_external_engine_loses_with_the_reason_stored(tmp_path):
    engine = REPO / "tests" / "arena" / "engines" / "fake_gtp.py"
    crasher = parse_player(f"crasher=gtp:{sys.executable} {engine} connect4 crash 2",
                           "connect4")
    settings = MatchSettings("connect4", opening_plies=0)
    with ResultsDB(tmp_path / "arena.sqlite") as db:
        summary = Tournament(db, settings, progress=False).play(
            PlayerSpec("random", "random"), crasher, 4)
        games = db.games()
    assert summary.played == 4 and summary.points == 4  # the match went on to the end
    assert all(g.reason and "crashed" in g.reason for g in games)
    assert all("Termination" in g.record for g in games)
