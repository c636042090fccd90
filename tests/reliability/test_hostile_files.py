"""Hostile and broken files on disk against every loader (the corpus of scripts/hostile_files.py).

Each loader gets the empty file, truncations, a seeded sweep of single-bit
flips, garbage, files of other kinds (PNG, gzip, SQLite, the other formats'
files, pickles whose unpickling would create a marker file) and the crafted
files of its format, each in its own directory next to other files. Every
one must be refused with the loader's own error naming the file, or be a
valid file; nothing else in the directory may change, a refused file must be
left as it was, and the marker file must never appear.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLIPS = 30
"""Bit flips per loader here; scripts/hostile_files.py runs 300 by default."""
SEED = 0


def _load_script():
    name = "hostile_files"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "hostile_files.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[name]


hf = _load_script()

LOADERS = [
    "checkpoint/read_metadata", "checkpoint/load_checkpoint", "checkpoint/load_network",
    "muzero-checkpoint/load_muzero_network", "train-state/resume", "shard/read_shard",
    "muzero-shard/read_segments", "muzero-shard-frames/read_segments", "arena-db/read-only",
    "arena-db/read-write", "arena-db/tabula elo", "sgf/gtp loadsgf", "pgn/tabula elo --pgn",
    "config/tabula train --config",
]

_BUILT: dict[str, tuple] = {}


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """(root, {key: Loader}, other formats' files): built once, shared by test_hostile_*.py."""
    if not _BUILT:
        root = tmp_path_factory.mktemp("hostile")
        (root / "build").mkdir()
        loaders = {loader.key: loader for loader in hf.build_loaders(root / "build")}
        _BUILT["workspace"] = root, loaders, hf.others_for(list(loaders.values()), root / "build")
    return _BUILT["workspace"]


@pytest.fixture(scope="module")
def sweep(workspace):
    """sweep(key) -> the results of the loader's whole corpus (run once per key)."""
    root, loaders, others = workspace
    done: dict[str, list] = {}

    def run(key: str) -> list:
        if key not in done:
            loader = loaders[key]
            cases = hf.corpus(loader, FLIPS, SEED, others, root / hf.MARKER)
            done[key] = hf.run_loader(loader, cases, root)
        return done[key]
    return run


def _report(results) -> str:
    return "\n".join(f"{r.case.kind} {r.case.name}: {r.outcome} {r.detail}" for r in results)


def test_every_loader_is_covered(workspace):
    assert sorted(workspace[1]) == sorted(LOADERS)


@pytest.mark.parametrize("key", LOADERS)
def test_loader_refuses_hostile_files(workspace, sweep, key):
    loader = workspace[1][key]
    results = sweep(key)
    assert not hf.failures(loader, results), _report(hf.failures(loader, results))
    counts = Counter(r.case.kind for r in results)
    assert counts["flip"] == FLIPS and counts["crafted"] == len(loader.crafted)
    assert counts["pickle"] == 4 and counts["other-format"] >= 3 and counts["truncated"] >= 5
    refused = Counter(r.case.kind for r in results if r.outcome == "refused")
    if loader.binary:  # text formats may well read a truncated or garbled file
        assert refused["truncated"] == counts["truncated"] and refused["pickle"] == 4


@pytest.mark.parametrize("key", ["checkpoint/load_checkpoint", "checkpoint/load_network",
                                 "muzero-checkpoint/load_muzero_network"])
def test_accepted_checkpoints_have_the_original_weights(workspace, sweep, key):
    """A flip the loader takes is in metadata (a date, a digit): sha256 guards the weights."""
    reference = workspace[1][key].reference
    accepted = [r for r in sweep(key) if r.outcome.startswith("accepted")
                and r.case.kind in ("flip", "truncated")]
    assert all(r.fingerprint[0] == reference[0] for r in accepted), _report(accepted)


def test_flips_give_both_outcomes_where_the_format_has_no_checksum(sweep):
    """The sweep tells refusals from valid files: flips in replay floats are accepted."""
    outcomes = Counter(r.outcome for r in sweep("shard/read_shard") if r.case.kind == "flip")
    assert outcomes["refused"] > 0 and outcomes["accepted-other"] > 0


def test_the_run_fails_when_a_loader_misbehaves(workspace, monkeypatch):
    """The harness itself: a loader that raises KeyError, hangs or writes a neighbour fails."""
    monkeypatch.setattr(hf.runner, "TIME_LIMIT_S", 0.2)  # where run_case reads it
    root, loaders, _ = workspace
    base = loaders["shard/read_shard"]
    junk = hf.Case("junk", b"junk", "garbage")

    def key_error(path):
        raise KeyError("games")

    def writes(path):
        (path.parent.parent / "neighbour.bin").write_bytes(b"changed")
        raise base.errors[0](f"{path}: refused")

    def unnamed(path):
        raise base.errors[0]("refused without saying which file")

    def hangs(path):
        time.sleep(10)

    outcomes = {}
    for name, load in (("key_error", key_error), ("writes", writes), ("unnamed", unnamed),
                       ("hangs", hangs)):
        loader = hf.Loader(base.format, name, base.filename, base.valid, load, base.errors,
                           base.fingerprint, [], reference=base.reference)
        outcomes[name] = hf.run_case(loader, junk, root, 0).outcome
    assert outcomes == {"key_error": "crashed", "writes": "crashed", "unnamed": "unclear",
                        "hangs": "crashed"}
    assert hf.failures(base, [hf.Result(junk, "accepted-other", "")])  # must be refused
