"""The arena database (SQLite): a valid one, crafted ones, and its loaders."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Callable

from .base import Case, sqlite_bytes


_GAME_VALUES = {"match_key": "'x'", "idx": "9", "game": "'tictactoe'", "first": "'alpha'",
                "second": "'beta'", "score": "1", "reason": "NULL", "record_format": "'moves'",
                "record": "''", "plies": "1", "seconds": "0", "created": "'now'"}
_PLAYER_VALUES = {"name": "'gamma'", "kind": "'random'", "game": "'tictactoe'", "spec": "'{}'",
                  "step": "NULL", "created": "'now'"}


def _insert(table: str, values: dict[str, str], change: dict[str, str]) -> str:
    """INSERT of one row of SQL literals: `values` with `change` applied."""
    row = {**values, **change}
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(row.values())})"


def build_arena_db(build: Path) -> bytes:
    """An arena database with three players and four games (WAL, as the arena writes it)."""
    from arena.matches.results import ResultsDB

    path = build / "arena.sqlite"
    with ResultsDB(path) as db:
        for name in ("alpha", "beta", "random"):
            db.add_player(name, "random", "tictactoe", {"note": name})
        for i, (a, b, score) in enumerate([("alpha", "beta", 1.0), ("beta", "alpha", 0.5),
                                           ("alpha", "random", 1.0), ("random", "beta", 0.0)]):
            db.add_game(match=f"{a}-{b}", index=i, game="tictactoe", first=a, second=b,
                        score=score, record="4 0 8 2 6", plies=5, seconds=0.1)
    return path.read_bytes()


def arena_db_cases(build: Path, valid: bytes) -> list[Case]:
    """Foreign, newer, truncated and ill-typed databases."""
    from arena.matches.results import _SCHEMA

    page = struct.unpack(">H", valid[16:18])[0]
    ours = list(_SCHEMA)
    game_rows = {  # column: SQL value; INSERT bypasses CHECK with ignore_check_constraints
        "score-text": {"score": "'abc'"}, "score-2": {"score": "2.0"},
        "index-negative": {"idx": "-5"}, "index-text": {"idx": "'i'"},
        "record-format-zip": {"record_format": "'zip'"}, "record-blob": {"record": "x'ff00'"},
        "first-blob": {"first": "x'00ff'"}, "plies-text": {"plies": "'many'"},
        "seconds-text": {"seconds": "'x'"}, "match-blob": {"match_key": "x'05'"}}
    player_rows = {
        "spec-not-json": {"spec": "'not json'"}, "spec-list": {"spec": "'[1]'"},
        "spec-depth-bomb": {"spec": "'" + "[" * 100_000 + "'"}, "step-text": {"step": "'x'"},
        "player-name-blob": {"name": "x'00ff'"}, "player-game-blob": {"game": "x'05'"}}
    wrong_rows = {**{k: _insert("games", _GAME_VALUES, v) for k, v in game_rows.items()},
                  **{k: _insert("players", _PLAYER_VALUES, v) for k, v in player_rows.items()}}
    cases = [
        ("not-a-database", b"players,games\nalpha,beta\n" * 50),
        ("sqlite-magic-then-garbage", b"SQLite format 3\x00" + bytes(range(256)) * 16),
        ("foreign-schema", sqlite_bytes(build, ["CREATE TABLE users (id INTEGER, name TEXT)",
                                                "INSERT INTO users VALUES (1, 'x')"])),
        ("foreign-schema-version-1", sqlite_bytes(build, [
            "CREATE TABLE users (id INTEGER)", "PRAGMA user_version = 1"])),
        ("newer-version", sqlite_bytes(build, ["PRAGMA user_version = 2"], valid)),
        ("version-1-empty", sqlite_bytes(build, ["PRAGMA user_version = 1"])),
        ("version-1-no-games", sqlite_bytes(build, [ours[0], "PRAGMA user_version = 1"])),
        ("games-other-columns", sqlite_bytes(build, [
            ours[0], "CREATE TABLE games (id INTEGER PRIMARY KEY, score TEXT)",
            "INSERT INTO games VALUES (1, 'x')", "PRAGMA user_version = 1"])),
        ("extra-trigger", sqlite_bytes(build, [
            "CREATE TRIGGER sneaky AFTER INSERT ON players BEGIN DELETE FROM players; END"],
            valid)),
        ("view-named-games", sqlite_bytes(build, [
            ours[0], "CREATE VIEW games AS SELECT 1 AS id", "PRAGMA user_version = 1"])),
        ("truncated-first-page", valid[:page]),
        ("truncated-half", valid[:len(valid) // 2]),
        ("page-size-invalid", valid[:16] + b"\x00\x03" + valid[18:]),
    ]
    out = [Case(name, data, "crafted") for name, data in cases]
    # Columns `tabula elo` does not read (it rates first, second and score) only matter
    # to the loaders that read whole games.
    unread = {"index-negative", "index-text", "record-format-zip", "record-blob", "plies-text",
              "seconds-text", "match-blob"}
    out += [Case(f"row-{name}", sqlite_bytes(build, ["PRAGMA ignore_check_constraints = ON", sql],
                                            valid), "crafted",
                 "games-column" if name in unread else "refuse")
            for name, sql in wrong_rows.items()]
    return out


def _db_fingerprint(value) -> Any:
    return value


def load_arena_db(readonly: bool) -> Callable[[Path], Any]:
    """What `tabula elo` (read-only) or `tabula arena` (read-write) reads from a database."""
    def load(path: Path):
        from arena.matches.results import ResultsDB

        with ResultsDB(path, readonly=readonly) as db:
            return (repr(db.players()), repr(db.games()), repr(db.outcomes()),
                    repr(db.summary()))
    return load
