"""The hostile-file corpus and its runner, behind `scripts/hostile_files.py`.

base.py (Case, Loader, Result, the generic corpus and the pickle payloads) ·
checkpoints.py (checkpoints and the train state) · shards.py (replay shards) ·
arena_db.py (the arena database) · text.py (SGF, PGN and TOML through the
CLI and GTP) · loaders.py (every loader with its files) · runner.py (running a
corpus and classifying each outcome).

Loaders import the project's packages when called: the repository must be on
`sys.path` (scripts/hostile_files.py puts it there).
"""

from .arena_db import arena_db_cases, build_arena_db, load_arena_db
from .base import (MARKER, SQLITE_COMPANIONS, Case, Loader, Result, generic_cases,
                   pickle_cases, png_bytes, sqlite_bytes)
from .checkpoints import (DROP, build_checkpoint, build_run, checkpoint_cases,
                          load_train_state, train_state_cases)
from .loaders import build_loaders
from .runner import (MEMORY_LIMIT, OUTCOMES, TIME_LIMIT_S, Hang, corpus, failures,
                     memory_limit, others_for, prepare, run_case, run_loader)
from .shards import build_segments, build_shard, shard_cases
from .text import (GUARD_RUN, VALID_PGN, VALID_SGF, VALID_TOML, CliError, GtpRefusal,
                   load_config, load_elo, load_pgn, load_sgf_gtp, pgn_cases, sgf_cases,
                   toml_cases)

__all__ = [
    "DROP", "GUARD_RUN", "MARKER", "MEMORY_LIMIT", "OUTCOMES", "SQLITE_COMPANIONS",
    "TIME_LIMIT_S", "VALID_PGN", "VALID_SGF", "VALID_TOML",
    "Case", "CliError", "GtpRefusal", "Hang", "Loader", "Result",
    "arena_db_cases", "build_arena_db", "build_checkpoint", "build_loaders", "build_run",
    "build_segments", "build_shard", "checkpoint_cases", "corpus", "failures",
    "generic_cases", "load_arena_db", "load_config", "load_elo", "load_pgn", "load_sgf_gtp",
    "load_train_state", "memory_limit", "others_for", "pgn_cases", "pickle_cases",
    "png_bytes", "prepare", "run_case", "run_loader", "shard_cases", "sgf_cases",
    "sqlite_bytes", "toml_cases", "train_state_cases",
]
