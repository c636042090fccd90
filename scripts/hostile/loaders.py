"""The loaders: each with its valid file, its directory's other files and its crafted corpus."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

from .arena_db import _db_fingerprint, arena_db_cases, build_arena_db, load_arena_db
from .base import Loader
from .checkpoints import (_checkpoint_fingerprint, _train_state_fingerprint, build_checkpoint,
                          build_run, checkpoint_cases, load_train_state, train_state_cases)
from .shards import _records_fingerprint, build_segments, build_shard, shard_cases
from .text import (GUARD_RUN, VALID_PGN, VALID_SGF, VALID_TOML, CliError, GtpRefusal,
                   load_config, load_elo, load_pgn, load_sgf_gtp, pgn_cases, sgf_cases,
                   toml_cases)


def build_loaders(build: Path, only: str | None = None) -> list[Loader]:
    """Every loader with its valid file, context and crafted corpus (built in `build`)."""
    from arena.matches.results import ResultsError
    from checkpoints import CheckpointError, read_metadata
    from engine.loading import load_muzero_network, load_network
    from selfplay.run import RunError

    def wanted(name: str) -> bool:
        return only is None or name.startswith(only) or only.startswith(name)

    loaders = []
    if wanted("checkpoint"):
        az = build_checkpoint(build, "alphazero")
        crafted = checkpoint_cases(az)
        for name, fn, refuses in (
                ("read_metadata", read_metadata, ("refuse",)),
                ("load_checkpoint", _load_checkpoint, ("refuse", "weights")),
                ("load_network", load_network, ("refuse", "weights", "network"))):
            loaders.append(Loader("checkpoint", name, "step-00000007.safetensors", az, fn,
                                  (CheckpointError,), _checkpoint_fingerprint, crafted,
                                  refuses=refuses, kin=("muzero-checkpoint",)))
    if wanted("muzero-checkpoint"):
        mz = build_checkpoint(build, "muzero")
        loaders.append(Loader("muzero-checkpoint", "load_muzero_network",
                              "step-00000007.safetensors", mz, load_muzero_network,
                              (CheckpointError,), _checkpoint_fingerprint, checkpoint_cases(mz),
                              refuses=("refuse", "weights", "network")))
    if wanted("train-state"):
        run = build_run(build)
        state = run.pop("train_state.safetensors")
        loaders.append(Loader("train-state", "resume", "train_state.safetensors", state,
                              load_train_state, (RunError,), _train_state_fingerprint,
                              train_state_cases(state), context=run))
    loaders += _shard_loaders(build, wanted)
    if wanted("arena-db"):
        db = build_arena_db(build)
        crafted = arena_db_cases(build, db)
        loaders += [
            Loader("arena-db", "read-only", "arena.sqlite", db, load_arena_db(True),
                   (ResultsError,), _db_fingerprint, crafted, refuses=("refuse", "games-column")),
            Loader("arena-db", "read-write", "arena.sqlite", db, load_arena_db(False),
                   (ResultsError,), _db_fingerprint, crafted, mutable=True,
                   refuses=("refuse", "games-column")),
            Loader("arena-db", "tabula elo", "arena.sqlite", db, load_elo, (CliError,),
                   _db_fingerprint, crafted)]
    loaders += _text_loaders(wanted)
    return loaders


def _shard_loaders(build: Path, wanted: Callable[[str], bool]) -> list[Loader]:
    from selfplay.records import ReplayError, read_shard

    loaders = []
    if wanted("shard"):
        shard = build_shard(build)
        loaders.append(Loader("shard", "read_shard", "replay/shard-00000003.msgpack", shard,
                              lambda p: read_shard(p, "tictactoe", (3, 3, 3), 9), (ReplayError,),
                              _records_fingerprint, shard_cases(shard, "games")))
    for frames in (False, True):
        name = "muzero-shard" + ("-frames" if frames else "")
        if not wanted(name):
            continue
        seg = build_segments(frames)
        game, shape, a = (("atari/Fake", (4, 8, 8), 4) if frames
                          else ("tictactoe", (3, 3, 3), 9))
        load = functools.partial(_read_segments, game=game, shape=shape, actions=a, frames=frames)
        loaders.append(Loader(name, "read_segments", "replay/shard-00000003.msgpack", seg, load,
                              (ReplayError,), _records_fingerprint, shard_cases(seg, "segments")))
    return loaders


def _read_segments(path: Path, game: str, shape: tuple, actions: int, frames: bool) -> list:
    from selfplay.muzero_replay import read_segments

    return read_segments(path, game, shape, actions, frames)


class _Weights:
    """A loaded Checkpoint's weights, shaped like a network for the fingerprint."""

    def __init__(self, state_dict: dict):
        self._state_dict = state_dict

    def state_dict(self) -> dict:
        return self._state_dict


def _load_checkpoint(path: Path) -> tuple:
    from checkpoints import load_checkpoint

    ckpt = load_checkpoint(path)
    return _Weights(ckpt.state_dict), ckpt.meta


def _text_loaders(wanted: Callable[[str], bool]) -> list[Loader]:
    loaders = []
    if wanted("sgf"):
        loaders.append(Loader("sgf", "gtp loadsgf", "game.sgf", VALID_SGF, load_sgf_gtp,
                              (GtpRefusal,), lambda v: v, sgf_cases(), binary=False))
    if wanted("pgn"):
        loaders.append(Loader("pgn", "tabula elo --pgn", "games.pgn", VALID_PGN, load_pgn,
                              (CliError,), lambda v: v, pgn_cases(), binary=False))
    if wanted("config"):
        loaders.append(Loader("config", "tabula train --config", "settings.toml", VALID_TOML,
                              load_config, (CliError,), lambda v: json.dumps(v, sort_keys=True),
                              toml_cases(), binary=False, context={f"{GUARD_RUN}/x": b"x"}))
    return loaders
