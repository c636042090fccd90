"""One test per bug the hostile-file corpus found, each with the file that showed it.

Before the fixes: RecursionError, OverflowError, KeyError, TypeError and
AttributeError escaped the loaders, a checkpoint's metadata could make
load_network loop for ever or allocate without bound, crafted optimiser
states and NaN weights were taken, the arena database was switched to WAL
(modified) before it was found damaged, and PGN comments took quadratic time.
"""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib

import msgpack
import pytest

from arena.matches.records import pgn_results
from arena.matches.results import ResultsDB, ResultsError
from checkpoints import CheckpointError, load_checkpoint, read_metadata
from engine.loading import load_network
from games.sgf import SgfError, read_sgf
from selfplay.muzero_replay import read_segments
from selfplay.records import ReplayError
from selfplay.run import RunError
from tests.guards import hang_guard
from tests.reliability.test_hostile_files import hf


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def checkpoint(build) -> bytes:
    return hf.build_checkpoint(build, "alphazero")


@pytest.fixture(scope="module")
def crafted_checkpoint(checkpoint) -> dict[str, bytes]:
    """{case name: bytes}: the crafted checkpoints of scripts/hostile_files.py."""
    return {c.name: c.data for c in hf.checkpoint_cases(checkpoint)}


@pytest.mark.parametrize("name", ["header-depth-bomb", "metadata-json-depth-bomb",
                                  "offsets-infinity", "offsets-nan", "offsets-reversed"])
def test_checkpoint_header_recursion_and_overflow(tmp_path, crafted_checkpoint, name):
    """Was RecursionError (JSON nested 100,000 deep) or OverflowError (Infinity offsets)."""
    path = tmp_path / "step-00000007.safetensors"
    path.write_bytes(crafted_checkpoint[name])
    for load in (read_metadata, load_checkpoint):
        with pytest.raises(CheckpointError, match=str(path)):
            load(path)


@pytest.mark.parametrize("dtype", ["F4", "F8_E8M0"])
def test_checkpoint_dtype_torch_lacks(tmp_path, crafted_checkpoint, dtype):
    """Was KeyError from safetensors.torch for a dtype it parses but torch lacks."""
    path = tmp_path / "c.safetensors"
    path.write_bytes(crafted_checkpoint[f"dtype-{dtype}"])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["network-blocks-1e9", "network-channels-1e9",
                                  "network-channels-2**70", "num-actions-1e12",
                                  "num-actions-2**70", "obs-shape-1e9", "obs-shape-2**70"])
def test_network_metadata_is_bounded_by_the_weights(tmp_path, crafted_checkpoint, name):
    """Was a hang (10**9 blocks), TypeError (2**70) or an allocation of the announced size."""
    path = tmp_path / "c.safetensors"
    path.write_bytes(crafted_checkpoint[name])
    with hang_guard(what="10**9 blocks"), hf.memory_limit(), \
            pytest.raises(CheckpointError, match="does not match its metadata"):
        load_network(path)


@pytest.mark.parametrize("name", ["weights-nan", "weights-infinity"])
def test_non_finite_weights_are_refused(tmp_path, crafted_checkpoint, name):
    path = tmp_path / "c.safetensors"
    path.write_bytes(crafted_checkpoint[name])
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(path)


def test_flip_in_the_date_is_a_valid_checkpoint_flip_in_weights_is_not(tmp_path, checkpoint):
    """How the tally counts: a flip in metadata text is another valid file, same weights."""
    created = json.loads(json.loads(checkpoint[8:8 + struct.unpack("<Q", checkpoint[:8])[0]])[
        "__metadata__"]["tabula"])["created"]
    offset = checkpoint.index(created.encode()) + 3  # a digit of the year: 2 <-> 3
    date, weights = bytearray(checkpoint), bytearray(checkpoint)
    date[offset] ^= 1
    weights[-3] ^= 1
    path = tmp_path / "c.safetensors"
    path.write_bytes(bytes(date))
    net, meta = load_network(path)
    assert meta["created"] != created
    path.write_bytes(checkpoint)
    assert hf._checkpoint_fingerprint((net, meta))[0] == hf._checkpoint_fingerprint(
        load_network(path))[0]
    path.write_bytes(bytes(weights))
    with pytest.raises(CheckpointError, match="hash mismatch"):
        load_checkpoint(path)


# Train state ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_files(build) -> dict[str, bytes]:
    return hf.build_run(build)


@pytest.fixture(scope="module")
def crafted_state(run_files) -> dict[str, bytes]:
    return {c.name: c.data for c in hf.train_state_cases(run_files["train_state.safetensors"])}


def _resume(tmp_path, run_files, state: bytes):
    for rel, data in run_files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(state if rel == "train_state.safetensors" else data)
    return hf.load_train_state(tmp_path / "train_state.safetensors")


@pytest.mark.parametrize("name", [
    "scalars-list",  # was AttributeError
    "step-infinity", "counters-infinity", "rng-2**200", "rng-negative",  # were OverflowError
    "opt-wrong-shape", "opt-nan", "opt-index-huge", "opt-step-vector",  # were taken
    "step-negative", "step-float", "param-groups-lr-string", "param-groups-lr-nan",
    "param-groups-betas-string", "learner-json-depth-bomb"])
def test_resume_refuses_a_crafted_train_state(tmp_path, run_files, crafted_state, name):
    state = crafted_state[name]
    with pytest.raises(RunError, match=rf"{tmp_path}.*train_state\.safetensors is damaged"):
        _resume(tmp_path, run_files, state)


def test_a_refused_state_leaves_the_learner_unchanged(tmp_path, run_files, crafted_state):
    run, _ = _resume(tmp_path, run_files, run_files["train_state.safetensors"])
    learner = run.learner
    before = json.dumps(learner.optimizer.state_dict()["param_groups"]), learner.step
    tensors = {k: v.clone() for k, v in learner.optimizer.state_dict()["state"][0].items()}
    state = crafted_state["opt-nan"]
    with pytest.raises(ValueError, match="NaN"):
        learner.load_state(state)
    assert (json.dumps(learner.optimizer.state_dict()["param_groups"]), learner.step) == before
    after = learner.optimizer.state_dict()["state"][0]
    assert all(bool((after[k] == v).all()) for k, v in tensors.items())


# Replay shards ----------------------------------------------------------------------------


def test_frames_with_data_after_the_zlib_stream_are_refused(tmp_path):
    """Was accepted: bytes after the end of the compressed frames were ignored."""
    raw = msgpack.unpackb(hf.build_segments(frames=True), raw=False)
    raw["segments"][0]["obs"]["data"] += b"junk"
    path = tmp_path / "shard-00000001.msgpack"
    path.write_bytes(msgpack.packb(raw, use_bin_type=True))
    with pytest.raises(ReplayError, match=f"{path}: compressed frames have the wrong size"):
        read_segments(path, "atari/Fake", (4, 8, 8), 4, True)


def test_a_zlib_bomb_is_refused_without_inflating_it(tmp_path):
    raw = msgpack.unpackb(hf.build_segments(frames=True), raw=False)
    raw["segments"][0]["obs"]["data"] = zlib.compress(bytes(64 * 2**20), 9)
    path = tmp_path / "shard-00000001.msgpack"
    path.write_bytes(msgpack.packb(raw, use_bin_type=True))
    tracemalloc.start()
    try:
        with pytest.raises(ReplayError, match=str(path)):
            read_segments(path, "atari/Fake", (4, 8, 8), 4, True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak  # the 64 MiB it would inflate to were never allocated


# Arena database ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arena_db(build) -> bytes:
    return hf.build_arena_db(build)


@pytest.fixture(scope="module")
def crafted_db(build, arena_db) -> dict[str, bytes]:
    return {c.name: c.data for c in hf.arena_db_cases(build, arena_db)}


@pytest.mark.parametrize("readonly", [True, False])
@pytest.mark.parametrize("name", ["truncated-half", "truncated-first-page",
                                  "foreign-schema-version-1", "version-1-no-games",
                                  "games-other-columns", "view-named-games", "extra-trigger",
                                  "page-size-invalid"])
def test_damaged_or_foreign_database_is_refused_untouched(tmp_path, crafted_db, name, readonly):
    """Were sqlite3 errors, or the file switched to WAL (modified) before failing."""
    path = tmp_path / "arena.sqlite"
    data = crafted_db[name]
    path.write_bytes(data)
    with pytest.raises(ResultsError, match=str(path)):
        with ResultsDB(path, readonly=readonly) as db:
            db.players(), db.games(), db.outcomes()
    assert path.read_bytes() == data
    # Nothing else but, for a WAL file read to its schema, SQLite's own index and log.
    assert {p.name for p in tmp_path.iterdir()} <= {"arena.sqlite", "arena.sqlite-wal",
                                                    "arena.sqlite-shm"}


@pytest.mark.parametrize("name", ["row-score-text", "row-score-2", "row-first-blob",
                                  "row-spec-not-json", "row-spec-depth-bomb", "row-step-text",
                                  "row-player-name-blob", "row-plies-text", "row-index-text"])
def test_rows_of_wrong_types_are_refused(tmp_path, crafted_db, name):
    """Were ValueError, JSONDecodeError, RecursionError, TypeError or bytes as names."""
    path = tmp_path / "arena.sqlite"
    path.write_bytes(crafted_db[name])
    with ResultsDB(path, readonly=True) as db, pytest.raises(ResultsError, match=str(path)):
        db.players(), db.games(), db.outcomes()


def test_text_that_is_not_utf8_is_refused(tmp_path, arena_db, build):
    """Was UnicodeDecodeError or sqlite3's 'Could not decode to UTF-8' OperationalError."""
    data = hf.sqlite_bytes(build, ["UPDATE players SET kind = CAST(x'ff' AS TEXT) "
                                   "WHERE name = 'alpha'"], arena_db)
    path = tmp_path / "arena.sqlite"
    path.write_bytes(data)
    with ResultsDB(path, readonly=True) as db, pytest.raises(ResultsError, match=str(path)):
        db.players()


def test_a_damaged_database_is_not_switched_to_wal(tmp_path, build, arena_db):
    """A rollback-journal file gets a quick_check before the first write touches it."""
    data = hf.sqlite_bytes(build, ["PRAGMA journal_mode = DELETE"], arena_db)
    page = struct.unpack(">H", data[16:18])[0]
    data = data[:-page] + bytes(range(256)) * (page // 256)
    path = tmp_path / "arena.sqlite"
    path.write_bytes(data)
    with pytest.raises(ResultsError, match=f"{path}: the database is damaged"):
        ResultsDB(path)
    assert path.read_bytes() == data


# SGF and PGN ------------------------------------------------------------------------------


def test_sgf_nesting_deeper_than_the_stack():
    """Was RecursionError: the reader descended one Python frame per nested tree."""
    deep = "(;SZ[9]" + "(;B[aa]" * 5 + "(;" * 20_000 + ")" * 20_006
    assert read_sgf(deep).moves == [("B", "A9")] * 5
    with pytest.raises(SgfError, match="unbalanced"):
        read_sgf("(;" * 20_000)


@pytest.mark.parametrize("komi", ["1e999", "-inf", "nan"])
def test_sgf_komi_must_be_finite(komi):
    with pytest.raises(SgfError, match="bad komi"):
        read_sgf(f"(;SZ[9]KM[{komi}])")


def test_pgn_unterminated_comments_take_linear_time():
    """Was quadratic: each '{' searched the rest of the file for '}' (20 s for 20 MB). At
    80 MB quadratic is hours, linear a second: the hang guard tells them apart."""
    text = '[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n' + ("{" + " " * 1000 + "\n") * 80_000
    with hang_guard(what="80 MB of unterminated PGN comments"):
        results, problems, _ = pgn_results(text)
    assert not results and len(problems) == 1
    assert problems[0].message.endswith("79997 more problems")  # one line, not 80,000

