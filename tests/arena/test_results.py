"""The results database: round trips, refusals that leave files untouched, real writer processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.matches.results import (DEFAULT_NAME, SCHEMA_VERSION, GameRow, PlayerRow, ResultsDB,
                           ResultsError)

REPO = Path(__file__).resolve().parents[2]

# A writer process: registers two players, then adds games `start, start+1, ...` of
# `match` one transaction each (forever if count < 0), printing each committed index.
WRITER = """
import sys
from arena.matches.results import ResultsDB
path, match, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with ResultsDB(path) as db:
    db.add_player("a", "random", "tictactoe")
    db.add_player("b", "random", "tictactoe")
    i = start
    while count < 0 or i < start + count:
        db.add_game(match=match, index=i, game="tictactoe", first="a", second="b",
                    score=(1, 0.5, 0)[i % 3], record="b2 a1 c3 " * 3, plies=9, seconds=0.01)
        print(i, flush=True)
        i += 1
"""


def writer(path: Path, match: str, start: int, count: int) -> subprocess.Popen:
    args = [sys.executable, "-c", WRITER, str(path), match, str(start), str(count)]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def game(index: int, match: str = "m", score: float = 1, **kw) -> dict:
    fields = dict(match=match, index=index, game="tictactoe", first="a", second="b",
                  score=score, record=f"game {index}")
    return fields | kw


@pytest.fixture
def db(tmp_path):
    with ResultsDB(tmp_path) as db:
        spec = {"path": "a.safetensors", "sims": 8}
        db.add_player("a", "checkpoint", "tictactoe", spec, step=100)
        db.add_player("b", "random", "tictactoe")
        yield db


def test_round_trip_in_run_directory(tmp_path, db):
    assert db.path == tmp_path / DEFAULT_NAME
    assert db.add_game(match="a-b", index=0, game="tictactoe", first="a", second="b", score=1,
                       record="b2 a1 c3", plies=3, seconds=1.5)
    assert db.add_game(match="a-b", index=1, game="tictactoe", first="b", second="a", score=0.5,
                       record="(;GM[1])", record_format="sgf",
                       reason="second forfeits: engine crashed (exit code -9)")
    assert db.add_games([game(0, match="x"), game(1, match="x", score=0)]) == 2
    db.close()

    with ResultsDB(tmp_path / DEFAULT_NAME, readonly=True) as ro:
        assert ro.players() == [
            PlayerRow("a", "checkpoint", "tictactoe", {"path": "a.safetensors", "sims": 8}, 100),
            PlayerRow("b", "random", "tictactoe", {}, None)]
        assert ro.players("chess") == []
        rows = ro.games(match="a-b")
        assert [r.index for r in rows] == [0, 1]
        first = rows[0]
        assert isinstance(first, GameRow)
        assert (first.match, first.game, first.first, first.second, first.score, first.reason,
                first.record_format, first.record, first.plies, first.seconds) == (
                    "a-b", "tictactoe", "a", "b", 1.0, None, "moves", "b2 a1 c3", 3, 1.5)
        assert first.created.endswith("+00:00")
        assert rows[1].reason == "second forfeits: engine crashed (exit code -9)"
        assert [r.match for r in ro.games("tictactoe")] == ["a-b", "a-b", "x", "x"]
        assert ro.games("chess") == []
        assert ro.played("a-b") == {0, 1} and ro.played("nope") == set()
        assert ro.outcomes() == [("a", "b", 1.0), ("b", "a", 0.5), ("a", "b", 1.0), ("a", "b", 0.0)]
        assert ro.outcomes(players={"a", "c"}) == []
        assert ro.summary() == {"players": 2, "games": 4, "matches": 2}
        with pytest.raises(ResultsError, match="read-only"):
            ro.add_player("c", "random", "tictactoe")


def test_duplicate_game_is_a_no_op(db):
    assert db.add_game(**game(0, record="original"))
    assert not db.add_game(**game(0, record="replayed", score=0))
    assert db.add_games([game(0), game(1), game(2), game(1)]) == 2
    rows = db.games(match="m")
    assert [(r.index, r.record) for r in rows][0] == (0, "original")
    assert [r.index for r in rows] == [0, 1, 2]
    assert db.played("m") == {0, 1, 2}


def test_player_rules_and_invalid_games_store_nothing(db):
    db.add_player("a", "checkpoint", "tictactoe", {"path": "other"})  # same (name, game): no-op
    assert db.players()[0].spec == {"path": "a.safetensors", "sims": 8}
    with pytest.raises(ResultsError, match="already registered for tictactoe"):
        db.add_player("a", "checkpoint", "connect4")
    db.add_player("c4", "random", "connect4")
    with pytest.raises(ResultsError, match="unknown player 'z'"):
        db.add_game(**game(0, second="z"))
    with pytest.raises(ResultsError, match="plays connect4"):
        db.add_game(**game(0, second="c4"))
    with pytest.raises(ResultsError, match="score"):
        db.add_game(**game(0, score=0.25))
    with pytest.raises(ResultsError, match="record_format"):
        db.add_game(**game(0, record_format="fen"))
    with pytest.raises(ResultsError, match="unknown player"):  # one bad game: none stored
        db.add_games([game(0), game(1, first="z")])
    with pytest.raises(ResultsError, match="JSON"):
        db.add_player("d", "random", "tictactoe", {"x": object()})
    assert db.summary() == {"players": 3, "games": 0, "matches": 0}


def test_games_are_append_only_in_the_file_itself(db):
    db.add_game(**game(0))
    raw = sqlite3.connect(db.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM games")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("UPDATE games SET score = 0")
    raw.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_is_refused_and_untouched(tmp_path, readonly):
    path = tmp_path / DEFAULT_NAME
    ResultsDB(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(ResultsError) as err:
        ResultsDB(path, readonly=readonly)
    assert str(err.value) == (f"{path} was written by a newer Tabula "
                              f"(schema 99; this one reads up to {SCHEMA_VERSION})")
    assert path.read_bytes() == before


def test_files_that_are_not_arena_databases_are_refused_and_untouched(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(4096))
    other = tmp_path / "other.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    for path in (junk, other):
        before = path.read_bytes()
        with pytest.raises(ResultsError, match="is not an arena database"):
            ResultsDB(path)
        assert path.read_bytes() == before


def test_readonly_missing_file_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        ResultsDB(tmp_path / "missing.sqlite", readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_two_writer_processes_creating_the_same_file_lose_nothing(tmp_path):
    path = tmp_path / DEFAULT_NAME
    procs = [writer(path, "a-b", 0, 200), writer(path, "b-a", 0, 200)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(out.split()) == 200
    with ResultsDB(path) as db:
        assert db.played("a-b") == set(range(200)) == db.played("b-a")
        assert db.summary() == {"players": 2, "games": 400, "matches": 2}
        assert db._db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_killed_writer_loses_no_committed_game(tmp_path):
    path = tmp_path / DEFAULT_NAME
    proc = writer(path, "m", 0, -1)
    printed = []
    deadline = time.monotonic() + 60  # a hang guard, not a speed
    while len(printed) < 50 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        printed.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    printed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL and len(printed) >= 50

    with ResultsDB(path) as db:
        assert db._db().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        played = db.played("m")
        assert set(printed) <= played
        assert played == set(range(len(played)))  # the one in flight is in or out, never torn
        nxt = max(played) + 1
        assert not db.add_game(**game(0))
        assert db.add_game(**game(nxt))
        assert db.played("m") == set(range(nxt + 1))
