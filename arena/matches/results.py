"""The arena's results database: players and finished games in one SQLite file.

The file (`arena.sqlite` in a run directory, or any path) is append-only and
shared by several writer processes: WAL journal, a 30 s busy timeout, and
each write in one short `BEGIN IMMEDIATE` transaction. A game is identified by
(match key, index) under a UNIQUE constraint, so a tournament killed half-way
resumes by asking `played(match)` and re-adding a game is a harmless no-op.
The schema version lives in `PRAGMA user_version`; a newer file or a file that
is not ours is refused before anything in it is touched.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from checkpoints import strict_json

SCHEMA_VERSION = 1
DEFAULT_NAME = "arena.sqlite"

RECORD_FORMATS = ("moves", "pgn", "sgf")
SCORES = (0.0, 0.5, 1.0)
BUSY_TIMEOUT_S = 30.0
# busy_timeout covers ordinary lock waits; these retries cover the SQLITE_BUSY
# cases SQLite reports without calling the busy handler (e.g. WAL recovery).
LOCK_RETRIES = 5
LOCK_RETRY_SLEEP_S = 0.2
_SQLITE_MAGIC = b"SQLite format 3\x00"

# One statement per item: executescript() would commit the open transaction.
_SCHEMA = (
    """CREATE TABLE players (
    name    TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,              -- e.g. 'checkpoint', 'random', 'gtp'
    game    TEXT NOT NULL,              -- registry name of the game
    spec    TEXT NOT NULL,              -- JSON object: how to rebuild the player
    step    INTEGER,                    -- training step of a checkpoint, else NULL
    created TEXT NOT NULL               -- ISO-8601 UTC
)""",
    """CREATE TABLE games (
    id            INTEGER PRIMARY KEY,  -- insertion order (rows are never deleted)
    match_key     TEXT NOT NULL,
    idx           INTEGER NOT NULL CHECK (idx >= 0),
    game          TEXT NOT NULL,
    first         TEXT NOT NULL REFERENCES players(name),
    second        TEXT NOT NULL REFERENCES players(name),
    score         REAL NOT NULL CHECK (score IN (0, 0.5, 1)),  -- first's score
    reason        TEXT,                 -- forfeit/adjudication reason, NULL if normal
    record_format TEXT NOT NULL CHECK (record_format IN ('moves', 'pgn', 'sgf')),
    record        TEXT NOT NULL,
    plies         INTEGER NOT NULL,
    seconds       REAL NOT NULL,
    created       TEXT NOT NULL,
    UNIQUE (match_key, idx)
)""",
    """CREATE INDEX games_by_game ON games (game)""",
    """CREATE TRIGGER games_no_update BEFORE UPDATE ON games
    BEGIN SELECT RAISE(ABORT, 'arena games are append-only'); END""",
    """CREATE TRIGGER games_no_delete BEFORE DELETE ON games
    BEGIN SELECT RAISE(ABORT, 'arena games are append-only'); END""",
)
_OWN_OBJECTS = {"players", "games", "games_by_game", "games_no_update", "games_no_delete"}
# Statements that upgrade a file from schema version v to v + 1; none exist yet.
_MIGRATIONS: dict[int, tuple[str, ...]] = {}

# What to do when a write fails for want of a writable disk (by SQLite's primary result code).
_WRITE_ERRORS = {
    sqlite3.SQLITE_FULL: "No space left on device (database or disk is full); free space on "
                         "that disk (or move the database to a larger one) and run the same "
                         "command again: stored games are kept, only missing ones are played",
    sqlite3.SQLITE_READONLY: "cannot write (read-only file or file system); make it writable "
                             "(or copy the database to a writable disk) and run the same "
                             "command again",
    sqlite3.SQLITE_IOERR: "disk I/O error while writing; check the disk, then run the same "
                          "command again: stored games are kept",
}

_GAME_COLUMNS = ("id, match_key, idx, game, first, second, score, reason, record_format, "
                 "record, plies, seconds, created")
# What a file of the current schema holds, checked before it is used.
_OWN_TYPES = {"players": "table", "games": "table", "games_by_game": "index",
              "games_no_update": "trigger", "games_no_delete": "trigger"}
_COLUMNS = {"players": ("name", "kind", "game", "spec", "step", "created"),
            "games": tuple(_GAME_COLUMNS.split(", "))}


class ResultsError(Exception):
    """The results file cannot be used (wrong kind, too new, locked) or a write is invalid."""


@dataclass(frozen=True)
class PlayerRow:
    """A registered player; `spec` is the JSON object it was registered with."""

    name: str
    kind: str
    game: str
    spec: dict
    step: int | None


@dataclass(frozen=True)
class GameRow:
    """A finished game; `score` is the first mover's (1, 0.5 or 0)."""

    id: int
    match: str
    index: int
    game: str
    first: str
    second: str
    score: float
    reason: str | None
    record_format: str
    record: str
    plies: int
    seconds: float
    created: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _write_error(path: Path, exc: sqlite3.OperationalError) -> ResultsError | None:
    """A ResultsError naming `path` if `exc` says the disk is full or read-only, else None."""
    advice = _WRITE_ERRORS.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF)
    return None if advice is None else ResultsError(f"{path}: {advice}")


def _check_header(path: Path) -> None:
    """Raises ResultsError unless `path` is empty or a whole SQLite file (by its header).

    Checks the magic, the page size, and that the file holds every page its
    header counts: a truncated copy is refused before SQLite touches it.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(100)
    if not head:
        return
    if not head.startswith(_SQLITE_MAGIC):
        raise ResultsError(f"{path} is not an arena database")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if len(head) < 100 or page < 512 or page & (page - 1):
        raise ResultsError(f"{path}: damaged SQLite header (page size); the file is corrupt")
    pages, valid = int.from_bytes(head[28:32], "big"), head[24:28] == head[92:96]
    # Mid-checkpoint the header may count pages still in the log: trust it without one.
    wal = path.with_name(path.name + "-wal")
    valid = valid and not (wal.exists() and wal.stat().st_size > 0)
    if size % page or (valid and pages * page > size):
        raise ResultsError(f"{path}: the database is truncated ({size} bytes; its header "
                           f"counts {pages} pages of {page}); the file is incomplete")


@contextlib.contextmanager
def _reading(path: Path):
    """Turns SQLite's report of a damaged or foreign file into a ResultsError naming it."""
    try:
        yield
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # text that is not UTF-8
        if getattr(exc, "sqlite_errorcode", None) is not None and isinstance(
                exc, sqlite3.OperationalError):  # SQLite's locks, a full disk: for the callers
            raise
        raise ResultsError(f"{path}: cannot read the arena database ({exc}); the file is "
                           "damaged or not an arena database") from exc


class ResultsDB:
    """A connection to one results file; open it per process (blocking calls, not thread-shared).

    Args:
      path: the SQLite file, or a run directory holding `arena.sqlite`.
      readonly: open without writing; the file must exist.

    Raises:
      ResultsError: missing (read-only), not an arena database, or written by
        a newer Tabula. The file is left untouched in these cases.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        path = Path(path)
        self.path = path / DEFAULT_NAME if path.is_dir() else path
        self.readonly = readonly
        if self.path.exists():
            _check_header(self.path)
        elif readonly:
            raise ResultsError(f"{self.path} does not exist")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = self._connect()
        try:
            self._retry(self._open_schema)
        except sqlite3.OperationalError as exc:  # e.g. no room for the WAL index
            self.close()
            if (error := _write_error(self.path, exc)) is None:
                raise
            raise error from exc
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        target, uri = str(self.path), False
        if self.readonly:
            target, uri = self.path.resolve().as_uri() + "?mode=ro", True
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _version(self) -> int:
        try:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_locked(exc):
                raise
            raise ResultsError(f"{self.path} is not an arena database") from exc

    def _open_schema(self) -> None:
        """Checks the version, then (read-write) switches to WAL and creates or migrates."""
        with _reading(self.path):
            self._check_schema()

    def _check_schema(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise ResultsError(f"{self.path} was written by a newer Tabula (schema {version}; "
                               f"this one reads up to {SCHEMA_VERSION})")
        names = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")
                 if not r[0].startswith("sqlite_")}
        if version == 0 and (names - _OWN_OBJECTS or self.readonly):
            raise ResultsError(f"{self.path} is not an arena database")
        if version == SCHEMA_VERSION:
            self._check_objects()
        if self.readonly:
            if version < SCHEMA_VERSION:
                raise ResultsError(f"{self.path} has the older schema {version}; "
                                   "open it read-write once to upgrade it")
            return
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # The first write to the file: check all of it, so a damaged file is left as it is.
            problem = " ".join(str(self._conn.execute("PRAGMA quick_check(1)").fetchone()[0])
                               .split())
            if problem != "ok":
                raise ResultsError(f"{self.path}: the database is damaged ({problem})")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            self._transaction(self._create_or_migrate)

    def _check_objects(self) -> None:
        """Raises ResultsError unless the tables, index and triggers are exactly ours."""
        objects = {name: kind for kind, name in self._conn.execute(
            "SELECT type, name FROM sqlite_master") if not name.startswith("sqlite_")}
        columns = {table: tuple(r[1] for r in self._conn.execute(
            f"PRAGMA table_info({table})")) for table in _COLUMNS}
        if objects != _OWN_TYPES or columns != _COLUMNS:
            raise ResultsError(f"{self.path} is not an arena database of schema "
                               f"{SCHEMA_VERSION} (its tables, columns or triggers differ)")

    def _create_or_migrate(self, conn: sqlite3.Connection) -> None:
        # Re-read under the write lock: another process may have just created it.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            for sql in _SCHEMA:
                conn.execute(sql)
        else:
            for v in range(version, SCHEMA_VERSION):
                for sql in _MIGRATIONS[v]:
                    conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- plumbing --------------------------------------------------------------------------

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ResultsError(f"{self.path} is closed")
        return self._conn

    def _retry(self, fn: Callable[[], Any]) -> Any:
        """Runs `fn`, retrying a few times when SQLite reports the database locked."""
        for attempt in range(LOCK_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                if attempt == LOCK_RETRIES - 1:
                    raise ResultsError(f"{self.path}: {exc} (gave up after "
                                       f"{LOCK_RETRIES} attempts)") from exc
                time.sleep(LOCK_RETRY_SLEEP_S * (attempt + 1))

    def _transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Runs `fn(conn)` in one BEGIN IMMEDIATE transaction (blocks while another writes)."""
        conn = self._db()
        if self.readonly:
            raise ResultsError(f"{self.path} is open read-only")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if (error := _write_error(self.path, exc)) is None:
                raise
            # The transaction is rolled back: every game stored before is whole.
            raise error from exc
        return result

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._retry(lambda: self._transaction(fn))

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        def fetch() -> list[tuple]:
            with _reading(self.path):
                return self._db().execute(sql, params).fetchall()
        return self._retry(fetch)

    def _checked(self, table: str, rows: list[tuple], checks: tuple) -> list[tuple]:
        """`rows` if every value passes its column's check, else ResultsError naming the file."""
        for row in rows:
            for value, (column, ok) in zip(row, checks):
                if not ok(value):
                    raise ResultsError(f"{self.path}: {table}.{column} holds {value!r:.60}, "
                                       "which Tabula never writes; the database was damaged "
                                       "or changed by another program")
        return rows

    # -- writes ----------------------------------------------------------------------------

    def add_player(self, name: str, kind: str, game: str, spec: dict | None = None,
                   step: int | None = None) -> None:
        """Registers a player; a no-op if `name` is already registered for `game`.

        Raises:
          ResultsError: `name` is registered for a different game, or `spec`
            is not a JSON-serialisable dict.
        """
        try:
            spec_text = json.dumps(spec or {}, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ResultsError(f"player {name!r}: spec is not JSON-serialisable ({exc})") from exc

        def insert(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT game FROM players WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if row[0] != game:
                    raise ResultsError(f"player {name!r} is already registered for {row[0]}, "
                                       f"not {game}")
                return
            conn.execute("INSERT INTO players (name, kind, game, spec, step, created) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (name, kind, game, spec_text, step, _now()))

        self._write(insert)

    def add_game(self, *, match: str, index: int, game: str, first: str, second: str,
                 score: float, record: str, record_format: str = "moves",
                 reason: str | None = None, plies: int = 0, seconds: float = 0.0) -> bool:
        """Stores one finished game in its own transaction (blocks while another process writes).

        Returns:
          True if inserted, False if (match, index) was already stored.

        Raises:
          ResultsError: unknown player, player of another game, bad score or format.
        """
        values = _game_values(match=match, index=index, game=game, first=first, second=second,
                              score=score, record=record, record_format=record_format,
                              reason=reason, plies=plies, seconds=seconds)
        return self._write(lambda conn: _insert_games(conn, [values])) == 1

    def add_games(self, games: list[dict]) -> int:
        """Stores several games (dicts of `add_game`'s arguments) in one transaction.

        Returns:
          How many were inserted (already stored (match, index) pairs are skipped).
        """
        rows = [_game_values(**g) for g in games]
        return self._write(lambda conn: _insert_games(conn, rows)) if rows else 0

    # -- reads -----------------------------------------------------------------------------

    def played(self, match: str) -> set[int]:
        """Indices of the games of `match` already stored."""
        return {r[0] for r in self._read("SELECT idx FROM games WHERE match_key = ?", (match,))}

    def players(self, game: str | None = None) -> list[PlayerRow]:
        """Registered players (of `game`, if given) in registration order."""
        sql = "SELECT name, kind, game, spec, step FROM players"
        rows = self._read(sql + " WHERE game = ? ORDER BY rowid", (game,)) if game is not None \
            else self._read(sql + " ORDER BY rowid")
        return [PlayerRow(name, kind, g, strict_json(spec), step) for name, kind, g, spec, step
                in self._checked("players", rows, _PLAYER_CHECKS)]

    def games(self, game: str | None = None, match: str | None = None) -> list[GameRow]:
        """Stored games, filtered by game and/or match, in insertion order."""
        where, params = _filters(game=game, match_key=match)
        rows = self._read(f"SELECT {_GAME_COLUMNS} FROM games{where} ORDER BY id", params)
        return [GameRow(*row) for row in self._checked("games", rows, _GAME_CHECKS)]

    def outcomes(self, game: str | None = None,
                 players: set[str] | None = None) -> list[tuple[str, str, float]]:
        """(first, second, first's score) of every game, for rating.

        Args:
          game: only games of this game.
          players: only games whose two players are both in this set.
        """
        where, params = _filters(game=game)
        rows = self._read(f"SELECT first, second, score FROM games{where} ORDER BY id", params)
        self._checked("games", rows, _GAME_CHECKS[4:7])
        if players is not None:
            rows = [r for r in rows if r[0] in players and r[1] in players]
        return [(first, second, float(score)) for first, second, score in rows]

    def summary(self) -> dict:
        """{"players": n, "games": n, "matches": n}."""
        (n_players,), = self._read("SELECT COUNT(*) FROM players")
        (n_games, n_matches), = self._read("SELECT COUNT(*), COUNT(DISTINCT match_key) FROM games")
        return {"players": n_players, "games": n_games, "matches": n_matches}


def _is_text(v) -> bool:
    return isinstance(v, str)


def _is_count(v) -> bool:
    return isinstance(v, int) and v >= 0


def _is_spec(v) -> bool:
    """A JSON object as text."""
    try:
        return isinstance(v, str) and isinstance(strict_json(v), dict)
    except ValueError:
        return False


# (column, check) in the order of the SELECTs above.
_PLAYER_CHECKS = (("name", _is_text), ("kind", _is_text), ("game", _is_text),
                  ("spec", _is_spec), ("step", lambda v: v is None or isinstance(v, int)))
_GAME_CHECKS = (
    ("id", _is_count), ("match_key", _is_text), ("idx", _is_count), ("game", _is_text),
    ("first", _is_text), ("second", _is_text),
    ("score", lambda v: isinstance(v, (int, float)) and v in SCORES),
    ("reason", lambda v: v is None or isinstance(v, str)),
    ("record_format", lambda v: v in RECORD_FORMATS), ("record", _is_text),
    ("plies", _is_count),
    ("seconds", lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v >= 0),
    ("created", _is_text))


def _filters(**equal: str | None) -> tuple[str, tuple]:
    """A WHERE clause of `column = ?` for every non-None keyword, and its parameters."""
    used = {k: v for k, v in equal.items() if v is not None}
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k in used), tuple(used.values())


def _game_values(*, match: str, index: int, game: str, first: str, second: str, score: float,
                 record: str, record_format: str = "moves", reason: str | None = None,
                 plies: int = 0, seconds: float = 0.0) -> tuple:
    """Validates one game's fields; returns the row for `games` (without id)."""
    if isinstance(score, bool) or score not in SCORES:
        raise ResultsError(f"game {match}#{index}: score must be 0, 0.5 or 1, not {score!r}")
    if record_format not in RECORD_FORMATS:
        raise ResultsError(f"game {match}#{index}: record_format must be one of "
                           f"{', '.join(RECORD_FORMATS)}, not {record_format!r}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ResultsError(f"game {match}: index must be a non-negative int, not {index!r}")
    return (match, index, game, first, second, float(score), reason, record_format, record,
            int(plies), float(seconds), _now())


def _insert_games(conn: sqlite3.Connection, rows: list[tuple]) -> int:
    """Inserts validated rows inside the caller's transaction; returns how many were new."""
    registered: dict[str, str | None] = {}
    inserted = 0
    for row in rows:
        match, index, game, first, second = row[:5]
        for name in (first, second):
            if name not in registered:
                found = conn.execute("SELECT game FROM players WHERE name = ?", (name,)).fetchone()
                registered[name] = found[0] if found else None
            if registered[name] is None:
                raise ResultsError(f"game {match}#{index}: unknown player {name!r} "
                                   "(add_player first)")
            if registered[name] != game:
                raise ResultsError(f"game {match}#{index}: player {name!r} plays "
                                   f"{registered[name]}, not {game}")
        cursor = conn.execute(
            "INSERT OR IGNORE INTO games (match_key, idx, game, first, second, score, reason, "
            "record_format, record, plies, seconds, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        inserted += cursor.rowcount
    return inserted
