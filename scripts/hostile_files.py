"""Hostile and broken files against every file loader: build a corpus, tally what happens.

    python scripts/hostile_files.py                       # every loader, 300 bit flips each
    python scripts/hostile_files.py --flips 2000 --only checkpoint -v

For each kind of file Tabula reads (checkpoints, the train state, replay
shards, the arena database, SGF, PGN, the config TOML) a valid file is built
in a temporary directory, and from it a corpus: the empty file, truncations,
a seeded sweep of single-bit flips, random garbage, files of every other kind
(PNG, gzip, SQLite, the other formats' valid files, and a pickle, a
torch.save file and a NumPy object array whose unpickling would create a
marker file) and crafted ones (sizes announcing gigabytes, wrong types,
depth bombs, ...). Each file is given to its loader in a directory of its
own, next to other files whose hashes are compared before and after.

Outcomes:
  refused         the loader's own error, naming the file (for the CLI: exit
                  status 2 and one line `tabula: error: ...` naming it; for GTP's
                  `loadsgf FILE`: `? cannot load file: ...` or `? unacceptable size`,
                  the protocol's phrases, with the position unchanged);
  accepted-same   the loader returned what the valid file gives (a flip in a
                  byte the format ignores: JSON spacing, an unused SQLite byte);
  accepted-other  the loader returned other, well-formed content: a flip in a
                  float the format has no checksum for (optimiser state, replay
                  targets), in free text (a comment, a name, a date), or in a
                  digit of a move; checkpoint weights are covered by sha256, so
                  an accepted checkpoint always has the original weights;
  unclear         the loader's own error, but the message does not name the file;
  crashed         anything else: another exception (KeyError, RecursionError,
                  MemoryError, ...), no answer within the time limit, a
                  neighbouring file changed or created, a refused file
                  modified, or the pickle marker file created.

Each load runs under a time limit (TIME_LIMIT_S) and, on Linux, an address
space limit (MEMORY_LIMIT beyond the process's size), so a loader that
trusts an announced size fails here instead of swamping the machine.

Exit status 1 if a file was unclear or crashed, or a file that must be
refused was not (a crafted file marked so, or for binary formats a truncated,
empty, garbage, foreign or pickle file). tests/reliability/test_hostile_*.py
run the same corpus with fewer flips.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import io
import json
import os
import pickle  # only to build hostile payloads; the project itself never unpickles
import shlex
import shutil
import signal
import sqlite3
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MARKER = "PWNED"
"""The file the pickle payloads create when unpickled: it must never appear."""
TIME_LIMIT_S = 30.0
"""Seconds a loader may take on one file before it counts as hung."""
MEMORY_LIMIT = 2 * 2**30
"""Bytes of address space a loader may add (Linux): beyond, MemoryError, not a swamped host."""
OUTCOMES = ("refused", "accepted-same", "accepted-other", "unclear", "crashed")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
DROP = object()
"""In a crafted metadata change: remove the key."""
GUARD_RUN = "guard-run"
"""A directory that is not a run directory: `tabula train --run` stops there after the config."""


@dataclass(frozen=True)
class Case:
    """One file of the corpus."""

    name: str
    data: bytes
    kind: str
    """empty, truncated, flip, garbage, other-format, pickle or crafted."""
    expect: str = "refuse"
    """Which loaders must refuse it: refuse (all), weights (those that read the weights),
    network (those that build the network), either (none: it may be a valid file)."""


@dataclass
class Loader:
    """A loader and what it is given: the valid file, its directory and its corpus."""

    format: str
    name: str
    filename: str
    """Path of the file in its directory, e.g. 'train_state.safetensors'."""
    valid: bytes
    load: Callable[[Path], Any]
    """Loads the file; raises to refuse it."""
    errors: tuple[type, ...]
    """The loader's own error types."""
    fingerprint: Callable[[Any], Any]
    """A comparable summary of what `load` returned."""
    crafted: list[Case]
    context: dict[str, bytes] = field(default_factory=dict)
    """Other files of the directory (relative path -> bytes)."""
    binary: bool = True
    """Truncated, empty, garbage and foreign files must be refused (not so for text)."""
    mutable: bool = False
    """An accepted file may be changed (a database opened for writing)."""
    reference: Any = None
    """The fingerprint of the valid file."""
    refuses: tuple[str, ...] = ("refuse",)
    """The `Case.expect` tags this loader must refuse."""
    kin: tuple[str, ...] = ()
    """Formats whose valid files are valid here too (a MuZero checkpoint is a checkpoint)."""

    @property
    def key(self) -> str:
        return f"{self.format}/{self.name}"


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: str
    detail: str
    fingerprint: Any = None
    seconds: float = 0.0


class Hang(BaseException):
    """A loader ran past the time limit (BaseException: no `except Exception` eats it)."""


class CliError(Exception):
    """The CLI exited with status 2; the message is its one line."""


class GtpRefusal(Exception):
    """The GTP engine answered `? message`."""


# ---------------------------------------------------------------------------
# Generic corpus


class _Payload:
    """Unpickling this runs `touch MARKER`: the proof that a loader unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def pickle_cases(marker: Path) -> list[Case]:
    """A raw pickle, a torch.save zip and a NumPy object array, each running `touch marker`."""
    import torch

    saved, npy = io.BytesIO(), io.BytesIO()
    torch.save({"weights": _Payload(marker)}, saved)
    np.save(npy, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return [Case("pickle-protocol-2", pickle.dumps(_Payload(marker), protocol=2), "pickle"),
            Case("pickle-protocol-5", pickle.dumps({"w": _Payload(marker)}, protocol=5), "pickle"),
            Case("torch.save", saved.getvalue(), "pickle"),
            Case("numpy-object-array", npy.getvalue(), "pickle")]


def png_bytes() -> bytes:
    """A 1x1 grey PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def sqlite_bytes(build: Path, statements: list[str], base: bytes = b"") -> bytes:
    """The bytes of a SQLite file: `base` (or a new one) after running `statements`."""
    fd, name = tempfile.mkstemp(dir=build, suffix=".sqlite")
    os.close(fd)
    Path(name).write_bytes(base)
    conn = sqlite3.connect(name, isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()
    data = Path(name).read_bytes()
    for suffix in ("", *SQLITE_COMPANIONS):
        Path(name + suffix).unlink(missing_ok=True)
    return data


def generic_cases(valid: bytes, rng: np.random.Generator, flips: int,
                  others: dict[str, bytes], binary: bool) -> list[Case]:
    """Empty, truncated, bit-flipped, garbage and foreign files made from `valid`."""
    n = len(valid)
    strict = "refuse" if binary else "either"
    cases = [Case("empty", b"", "empty", strict)]
    cuts = sorted({1, 4, 7, 8, 9, 16, 64, 256, n // 4, n // 2, 3 * n // 4, n - 8, n - 1}
                  & set(range(1, n)))
    cases += [Case(f"truncated@{c}", valid[:c], "truncated", strict) for c in cuts]
    for bit in sorted(rng.choice(8 * n, size=min(flips, 8 * n), replace=False).tolist()):
        data = bytearray(valid)
        data[bit // 8] ^= 1 << (bit % 8)
        cases.append(Case(f"flip@{bit // 8}.{bit % 8}", bytes(data), "flip", "either"))
    cases += [Case("garbage-64", rng.bytes(64), "garbage", strict),
              Case(f"garbage-{n}", rng.bytes(n), "garbage", strict),
              Case("zeros", bytes(n), "garbage", strict),
              Case("ones", b"\xff" * n, "garbage", strict)]
    cases += [Case(f"other:{name}", data, "other-format", strict)
              for name, data in others.items() if data != valid]
    return cases


# ---------------------------------------------------------------------------
# Checkpoints


def _st(header: Any, body: bytes = b"") -> bytes:
    """A safetensors file: 8-byte little-endian header length, header, data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _st_split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _resave(tensors: dict, meta: dict, rehash: bool = True, key: str = "tabula") -> bytes:
    """A checkpoint (or train state) of these tensors and metadata, not validated."""
    from safetensors.torch import save

    from checkpoints import weights_sha256

    meta = dict(meta)
    if rehash:
        meta["weights_sha256"] = weights_sha256(tensors)
    return save({k: v.contiguous().clone() for k, v in tensors.items()},
                metadata={key: json.dumps(meta)})


def build_checkpoint(build: Path, algo: str) -> bytes:
    """A tiny random tic-tac-toe network saved as a checkpoint."""
    import torch

    from checkpoints import save_checkpoint

    torch.manual_seed(0)
    if algo == "muzero":
        from engine.muzero_net import MuZeroNet, MuZeroNetConfig
        config = MuZeroNetConfig(blocks=1, channels=4, value_support=2, reward_support=2,
                                 head_channels=2, hidden=4)
        net = MuZeroNet((3, 3, 3), 9, config)
    else:
        from engine.networks import NetworkConfig, PolicyValueNet
        config = NetworkConfig(blocks=1, channels=4, value_hidden=4)
        net = PolicyValueNet((3, 3, 3), 9, config)
    path = build / f"{algo}.safetensors"
    save_checkpoint(path, net.state_dict(), {
        "game": "tictactoe", "algo": algo, "network": config, "observation_shape": [3, 3, 3],
        "num_actions": 9, "step": 7, "extra": {"search": {"num_simulations": 8}}})
    return path.read_bytes()


def _numel(info: dict) -> int:
    return int(np.prod(info["shape"]))


def _header_cases(valid: bytes) -> list[Case]:
    """Crafted safetensors headers: lengths, offsets, shapes, dtypes, JSON bombs."""
    header, body = _st_split(valid)
    names = [k for k in header if k != "__metadata__"]
    first = header[names[0]]
    sizes = {}
    for k in names:
        start, end = header[k]["data_offsets"]
        sizes.setdefault(end - start, []).append(k)
    pair = next(v for v in sizes.values() if len(v) > 1)

    def tensor(**change) -> dict:
        return {**header, names[0]: {**first, **change}}

    overlap = {**header, pair[1]: {**header[pair[1]],
                                   "data_offsets": header[pair[0]]["data_offsets"]}}
    metadata = header["__metadata__"]
    cases = [
        ("header-length-2**62", struct.pack("<Q", 2**62) + valid[8:]),
        ("header-length-2**64-1", b"\xff" * 8 + valid[8:]),
        ("header-length-0", bytes(8) + valid[8:]),
        ("header-length-past-end", struct.pack("<Q", len(valid)) + valid[8:]),
        ("header-depth-bomb", _st(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", body)),
        ("header-invalid-utf8", _st(b'{"\xff\xfe": 1}', body)),
        ("header-list", _st([], body)), ("header-string", _st("x", body)),
        ("header-null", _st(None, body)), ("header-number", _st(7, body)),
        ("offsets-nan", _st(tensor(data_offsets=[0, float("nan")]), body)),
        ("offsets-infinity", _st(tensor(data_offsets=[0, float("inf")]), body)),
        ("offsets-2**62", _st(tensor(data_offsets=[0, 2**62]), body)),
        ("offsets-2**70", _st(tensor(data_offsets=[0, 2**70]), body)),
        ("offsets-past-end", _st(tensor(data_offsets=[0, len(body) + 4]), body)),
        ("offsets-negative", _st(tensor(data_offsets=[-4, 0]), body)),
        ("offsets-reversed", _st(tensor(data_offsets=first["data_offsets"][::-1]), body)),
        ("offsets-three", _st(tensor(data_offsets=[0, 4, 8]), body)),
        ("offsets-string", _st(tensor(data_offsets="0:4"), body)),
        ("offsets-overlapping", _st(overlap, body)),
        ("shape-2**40-squared", _st(tensor(shape=[2**40, 2**40]), body)),
        ("shape-2**64", _st(tensor(shape=[2**64]), body)),
        ("shape-negative", _st(tensor(shape=[-1]), body)),
        ("shape-float", _st(tensor(shape=[1.5]), body)),
        ("dtype-unknown", _st(tensor(dtype="Q99"), body)),
        ("dtype-object", _st(tensor(dtype={"a": 1}), body)),
        ("dtype-F4", _st(tensor(dtype="F4", shape=[2 * _numel(first)]), body)),
        ("dtype-F8_E8M0", _st(tensor(dtype="F8_E8M0", shape=[4 * _numel(first)]), body)),
        ("dtype-F6_E2M3", _st(tensor(dtype="F6_E2M3", shape=[4 * _numel(first)]), body)),
        ("dtype-complex", _st(tensor(dtype="C64", shape=[_numel(first) // 2]), body)),
        ("dtype-bool", _st(tensor(dtype="BOOL", shape=[4 * _numel(first)]), body)),
        ("tensor-not-object", _st({**header, names[0]: [1, 2]}, body)),
        ("metadata-list", _st({**header, "__metadata__": [1]}, body)),
        ("metadata-value-int", _st({**header, "__metadata__": {"tabula": 5}}, body)),
        ("metadata-missing", _st({k: v for k, v in header.items() if k != "__metadata__"}, body)),
        ("metadata-json-invalid", _st({**header, "__metadata__": {"tabula": "{not json"}}, body)),
        ("metadata-json-list", _st({**header, "__metadata__": {"tabula": "[1]"}}, body)),
        ("metadata-json-depth-bomb",
         _st({**header, "__metadata__": {"tabula": "[" * 100_000 + "]" * 100_000}}, body)),
        ("metadata-other-key-only", _st({**header, "__metadata__": {"x": metadata["tabula"]}},
                                        body)),
    ]
    # Layout errors only the safetensors parser sees (not a header-only reader).
    layout = {"offsets-overlapping", "shape-2**40-squared", "shape-2**64", "shape-negative",
              "shape-float", "dtype-unknown", "dtype-object", "dtype-F4", "dtype-F8_E8M0",
              "dtype-F6_E2M3", "dtype-complex", "dtype-bool"}
    return [Case(name, data, "crafted", "weights" if name in layout else "refuse")
            for name, data in cases]


def _meta_cases(valid: bytes) -> list[Case]:
    """Well-formed safetensors with crafted Tabula metadata (the hash matches the weights)."""
    from safetensors.torch import load

    tensors = load(valid)
    meta = json.loads(_st_split(valid)[0]["__metadata__"]["tabula"])
    net = meta["network"]
    other_algo = "alphazero" if meta["algo"] == "muzero" else "muzero"
    changes: list[tuple[str, dict]] = [
        ("step-string", {"step": "7"}), ("step-negative", {"step": -1}),
        ("step-float", {"step": 7.5}), ("step-bool", {"step": True}),
        ("step-nan", {"step": float("nan")}), ("games-infinity", {"games": float("inf")}),
        ("network-list", {"network": [1, 2]}), ("network-string", {"network": "big"}),
        ("network-unknown-key", {"network": {**net, "bogus": 1}}),
        ("network-blocks-string", {"network": {**net, "blocks": "1"}}),
        ("network-blocks-zero", {"network": {**net, "blocks": 0}}),
        ("network-blocks-1e9", {"network": {**net, "blocks": 10**9}}),
        ("network-channels-1e9", {"network": {**net, "channels": 10**9}}),
        ("network-channels-2**70", {"network": {**net, "channels": 2**70}}),
        ("network-channels-mismatch", {"network": {**net, "channels": 8}}),  # 4 in the file
        ("num-actions-negative", {"num_actions": -9}), ("num-actions-zero", {"num_actions": 0}),
        ("num-actions-1e12", {"num_actions": 10**12}),
        ("num-actions-2**70", {"num_actions": 2**70}),
        ("num-actions-string", {"num_actions": "9"}), ("num-actions-float", {"num_actions": 9.0}),
        ("num-actions-mismatch", {"num_actions": 10}),
        ("obs-shape-empty", {"observation_shape": []}),
        ("obs-shape-zero", {"observation_shape": [0, 3, 3]}),
        ("obs-shape-negative", {"observation_shape": [-3, 3, 3]}),
        ("obs-shape-strings", {"observation_shape": ["3", "3", "3"]}),
        ("obs-shape-1d", {"observation_shape": [27]}),
        ("obs-shape-5d", {"observation_shape": [3, 3, 3, 1, 1]}),
        ("obs-shape-1e9", {"observation_shape": [10**9] * 3}),
        ("obs-shape-2**70", {"observation_shape": [3, 2**70, 2**70]}),
        ("obs-shape-string", {"observation_shape": "333"}),
        ("obs-shape-float", {"observation_shape": [3.0, 3, 3]}),
        ("obs-shape-bool", {"observation_shape": [True, 3, 3]}),
        ("format-version-99", {"format_version": 99}), ("format-version-0", {"format_version": 0}),
        ("format-version-string", {"format_version": "1"}),
        ("algo-unknown", {"algo": "alphago"}), ("algo-other", {"algo": other_algo}),
        ("game-number", {"game": 5}), ("extra-list", {"extra": [1]}),
        ("parent-number", {"parent": 5}), ("created-number", {"created": 5}),
    ]
    # Well-formed metadata describing another network: only a loader that builds it can tell.
    network = {"network-unknown-key", "network-blocks-string", "network-blocks-zero",
               "network-blocks-1e9", "network-channels-1e9", "network-channels-2**70",
               "network-channels-mismatch", "num-actions-1e12", "num-actions-2**70",
               "num-actions-mismatch", "obs-shape-1d", "obs-shape-5d", "obs-shape-1e9",
               "obs-shape-2**70", "algo-other"}
    cases = [Case(name, _resave(tensors, {**meta, **change}), "crafted",
                  "network" if name in network else "refuse") for name, change in changes]
    # Another game with weights of its own shape: well-formed; only a caller that
    # expects tic-tac-toe (Player.from_checkpoint(game=...)) can refuse it.
    cases.append(Case("game-other", _resave(tensors, {**meta, "game": "connect4"}), "crafted",
                      "either"))
    missing = {k: v for k, v in meta.items() if k != "step"}
    cases += [Case("missing-step", _resave(tensors, missing), "crafted"),
              Case("sha-zeros", _resave(tensors, {**meta, "weights_sha256": "0" * 64}, False),
                   "crafted", "weights"),
              Case("sha-uppercase",
                   _resave(tensors, {**meta, "weights_sha256": meta["weights_sha256"].upper()},
                           False), "crafted")]
    return cases + _weight_cases(tensors, meta)


def _weight_cases(tensors: dict, meta: dict) -> list[Case]:
    """Weights changed (the hash recomputed): NaN, other shapes, names, dtypes."""
    import torch

    floats = [k for k, v in tensors.items() if v.is_floating_point()]
    name = floats[0]

    def changed(key: str, value) -> dict:
        return {**tensors, key: value}

    out = [
        ("weights-nan", changed(name, torch.full_like(tensors[name], float("nan")))),
        ("weights-infinity", changed(name, torch.full_like(tensors[name], float("inf")))),
        ("weights-reshaped", changed(name, tensors[name].reshape(1, -1))),
        ("weights-missing", {k: v for k, v in tensors.items() if k != name}),
        ("weights-extra", changed("bogus.weight", torch.zeros(3))),
        ("weights-none", {}),
        ("many-tensors", {**tensors, **{f"t{i}": torch.zeros(0) for i in range(5_000)}}),
    ]
    cases = [Case(n, _resave(t, meta), "crafted", "weights" if i < 2 else "network")
             for i, (n, t) in enumerate(out)]
    # float16 weights of the right shapes load as float32: a valid, rounded network.
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
    cases.append(Case("weights-float16", _resave(half, meta), "crafted", "either"))
    cases.append(Case("weights-int8", _resave(changed(name, tensors[name].to(torch.int8)), meta),
                      "crafted", "either"))
    return cases


def checkpoint_cases(valid: bytes) -> list[Case]:
    return _header_cases(valid) + _meta_cases(valid)


def _checkpoint_fingerprint(value) -> tuple:
    from checkpoints import weights_sha256

    net, meta = value if isinstance(value, tuple) else (None, value)
    weights = weights_sha256(net.state_dict()) if net is not None else None
    return weights, json.dumps(meta, sort_keys=True)


# ---------------------------------------------------------------------------
# Train state (a run directory resumed)


def build_run(build: Path) -> dict[str, bytes]:
    """A tiny tic-tac-toe run directory after one gradient step and a save."""
    import torch

    from selfplay import config as cfg
    from selfplay.run import _Run, prepare_run

    run_dir = build / "run"
    config = cfg.merge(cfg.preset("tictactoe"), {
        "network": {"blocks": 1, "channels": 4, "value_hidden": 4},
        "replay": {"window_positions": 1000}})
    prepare_run(run_dir, config)
    rng = torch.get_rng_state()
    try:
        run = _Run(config, run_dir)
        policy = torch.full((4, 9), 1 / 9)
        run.learner._step(torch.rand(4, 3, 3, 3), policy, torch.zeros(4))
        run.save()
    finally:
        torch.set_rng_state(rng)
    return {str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock"}


def load_train_state(path: Path):
    """Resumes the run directory holding `path` (its train_state.safetensors)."""
    import torch

    from selfplay.run import _Run, prepare_run

    rng = torch.get_rng_state()
    try:
        run = _Run(prepare_run(path.parent, None), path.parent)
        return run, hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()
    finally:
        torch.set_rng_state(rng)


def _train_state_fingerprint(value) -> tuple:
    run, torch_rng = value
    h = hashlib.sha256(torch_rng.encode())
    state = run.learner.optimizer.state_dict()
    for index in sorted(state["state"]):
        for key, value in sorted(state["state"][index].items()):
            h.update(f"{index}/{key}".encode())
            h.update(value.detach().cpu().numpy().tobytes() if hasattr(value, "numpy")
                     else repr(value).encode())
    h.update(json.dumps(state["param_groups"], sort_keys=True).encode())
    return (run.learner.step, json.dumps(run.counters, sort_keys=True), run.checkpoint.name,
            json.dumps(run.rng.bit_generator.state, sort_keys=True), h.hexdigest())


def train_state_cases(valid: bytes) -> list[Case]:
    """Crafted train states: the learner's JSON, the run's counters, RNG and checkpoint name."""
    import torch
    from safetensors.torch import load

    tensors = load(valid)
    meta = json.loads(_st_split(valid)[0]["__metadata__"]["learner"])
    extra = meta["extra"]
    group = meta["param_groups"][0]
    opt = sorted(k for k in tensors if k.startswith("opt/"))
    avg = next(k for k in opt if k.endswith("/exp_avg") and tensors[k].dim() > 1)
    pcg = extra["rng"]
    learner = [
        ("scalars-list", {"scalars": [1]}), ("scalars-bad-index", {"scalars": {"x": {}}}),
        ("scalars-slot-number", {"scalars": {"0": 5}}),
        ("param-groups-missing", {"param_groups": DROP}),
        ("param-groups-dict", {"param_groups": {}}),
        ("param-groups-empty", {"param_groups": []}),
        ("param-groups-twice", {"param_groups": [group, group]}),
        ("param-groups-lr-string", {"param_groups": [{**group, "lr": "x"}]}),
        ("param-groups-lr-nan", {"param_groups": [{**group, "lr": float("nan")}]}),
        ("param-groups-betas-string", {"param_groups": [{**group, "betas": "x"}]}),
        ("param-groups-params-out-of-range",
         {"param_groups": [{**group, "params": list(range(len(group["params"]) + 50))}]}),
        ("param-groups-params-strings", {"param_groups": [{**group, "params": ["a"]}]}),
        ("step-string", {"step": "x"}), ("step-infinity", {"step": float("inf")}),
        ("step-negative", {"step": -1}), ("step-float", {"step": 1.5}),
        ("extra-list", {"extra": [1]}), ("extra-missing", {"extra": DROP}),
        ("counters-infinity", {"extra": {**extra, "counters": {**extra["counters"],
                                                               "games": float("inf")}}}),
        ("counters-string", {"extra": {**extra, "counters": {**extra["counters"], "games": "x"}}}),
        ("counters-list", {"extra": {**extra, "counters": [1, 2, 3]}}),
        ("rng-mt19937", {"extra": {**extra, "rng": {**pcg, "bit_generator": "MT19937"}}}),
        ("rng-2**200", {"extra": {**extra, "rng": {**pcg, "state": {"state": 2**200,
                                                                    "inc": 1}}}}),
        ("rng-negative", {"extra": {**extra, "rng": {**pcg, "state": {"state": -1, "inc": 1}}}}),
        ("rng-list", {"extra": {**extra, "rng": [1]}}),
        ("checkpoint-traversal", {"extra": {**extra, "checkpoint": "../../../../../etc/passwd"}}),
        ("checkpoint-absolute", {"extra": {**extra, "checkpoint": "/etc/hostname"}}),
        ("checkpoint-neighbour", {"extra": {**extra, "checkpoint": "../neighbour.bin"}}),
        ("checkpoint-missing", {"extra": {**extra, "checkpoint": "step-99999999.safetensors"}}),
        ("checkpoint-number", {"extra": {**extra, "checkpoint": 5}}),
    ]
    cases = []
    for name, change in learner:
        changed = {k: v for k, v in {**meta, **change}.items() if v is not DROP}
        cases.append(Case(name, _resave(tensors, changed, False, "learner"), "crafted"))
    raw = [
        ("learner-key-missing", _resave(tensors, meta, False, "other")),
        ("learner-json-invalid", _ts_meta(tensors, "{not json")),
        ("learner-json-list", _ts_meta(tensors, "[1]")),
        ("learner-json-depth-bomb", _ts_meta(tensors, "[" * 100_000 + "]" * 100_000)),
        ("learner-json-infinity", _ts_meta(tensors, json.dumps(meta).replace(
            '"step": ' + str(meta["step"]), '"step": Infinity'))),
    ]
    cases += [Case(name, data, "crafted") for name, data in raw]
    shaped = [
        ("opt-wrong-shape", {**tensors, avg: tensors[avg].reshape(-1)}),
        ("opt-nan", {**tensors, avg: torch.full_like(tensors[avg], float("nan"))}),
        ("opt-index-string", {**tensors, "opt/x/exp_avg": tensors[avg]}),
        ("opt-index-huge", {**tensors, "opt/99999/exp_avg": tensors[avg]}),
        ("opt-name-short", {**tensors, "opt/0": tensors[avg]}),
        ("opt-step-vector", {**tensors, avg.replace("exp_avg", "step"): torch.zeros(3)}),
        ("rng-torch-missing", {k: v for k, v in tensors.items() if k != "rng/torch"}),
        ("rng-torch-short", {**tensors, "rng/torch": tensors["rng/torch"][:10]}),
        ("rng-torch-float", {**tensors, "rng/torch": tensors["rng/torch"].float()}),
    ]
    cases += [Case(name, _resave(t, meta, False, "learner"), "crafted") for name, t in shaped]
    return cases


def _ts_meta(tensors: dict, text: str) -> bytes:
    from safetensors.torch import save

    return save({k: v.clone() for k, v in tensors.items()}, metadata={"learner": text})


# ---------------------------------------------------------------------------
# Replay shards (msgpack)


def build_shard(build: Path) -> bytes:
    """Two tic-tac-toe games: one with 0/1 observations (bits), one with floats (f16)."""
    from selfplay.records import GameRecord, encode_shard

    rng = np.random.default_rng(1)
    records = []
    for binary in (True, False):
        t = 5
        obs = rng.integers(0, 2, (t, 3, 3, 3)) if binary else rng.random((t, 3, 3, 3))
        records.append(GameRecord(
            observations=obs.astype(np.float32), actions=np.array([4, 0, 8, 2, 6], np.int32),
            policies=np.full((t, 9), 1 / 9, np.float32),
            root_values=np.linspace(-1, 1, t).astype(np.float32),
            to_play=np.array([0, 1, 0, 1, 0], np.int8), returns=np.array([1, -1], np.float32)))
    return encode_shard("tictactoe", (3, 3, 3), 9, records)


def build_segments(frames: bool) -> bytes:
    """MuZero segments: tic-tac-toe planes, or 8x8 frames stacked 4 (zlib)."""
    from selfplay.muzero_replay import Segment, encode_segments

    rng = np.random.default_rng(2)
    t, a = 6, (4 if frames else 9)
    if frames:
        obs = rng.integers(0, 255, (3 + t, 8, 8)).astype(np.uint8)
    else:
        obs = rng.integers(0, 2, (t, 3, 3, 3)).astype(np.float32)
    seg = Segment(obs=obs, actions=np.arange(t, dtype=np.int32) % a,
                  rewards=rng.random(t).astype(np.float32),
                  policies=np.full((t, a), 1 / a, np.float32),
                  root_values=rng.random(t).astype(np.float32),
                  masks=np.ones((t, a), bool), to_play=np.zeros(t, np.int8), length=4,
                  done=not frames, episode_return=3.0 if frames else float("nan"),
                  returns=None if frames else np.array([1.0, -1.0], np.float32))
    game, shape = ("atari/Fake", (4, 8, 8)) if frames else ("tictactoe", (3, 3, 3))
    return encode_segments(game, shape, a, frames, [seg])


def _records_fingerprint(records: list) -> str:
    h = hashlib.sha256()
    for r in records:
        for value in vars(r).values():
            h.update(np.asarray(value).tobytes() if value is not None else b"-")
    return h.hexdigest()


def _packed(obj: Any) -> bytes:
    import msgpack

    return msgpack.packb(obj, use_bin_type=True)


def _msgpack_bombs() -> list[tuple[str, bytes]]:
    """Raw msgpack announcing huge sizes, nesting deep or using odd types."""
    return [
        ("depth-bomb-arrays", b"\x91" * 200_000 + b"\xc0"),
        ("depth-bomb-maps", b"\x81\xa1a" * 100_000 + b"\xc0"),
        ("array-of-4G", b"\xdd\xff\xff\xff\xff"),
        ("map-of-4G", b"\xdf\xff\xff\xff\xff"),
        ("bin-of-4G", b"\xc6\xff\xff\xff\xff"),
        ("str-of-4G", b"\xdb\xff\xff\xff\xff"),
        ("ext-of-4G", b"\xc9\xff\xff\xff\xff\x01"),
        ("ext-type", b"\xd4\x01\x00"),
        ("timestamp-bad-length", b"\xc7\x03\xff\x00\x00\x00"),
        ("map-int-key", b"\x81\x01\x02"),
        ("map-array-key", b"\x81\x91\x01\x02"),
        ("invalid-utf8-str", b"\x81\xa2\xff\xfe\x01"),
        ("reserved-byte", b"\xc1"),
        ("one-million-empty-maps", b"\xdd\x00\x0f\x42\x40" + b"\x80" * 1_000_000),
    ]


def shard_cases(valid: bytes, entries: str) -> list[Case]:
    """Crafted shards: the valid map with a field changed, and raw msgpack bombs.

    `entries` is the key of the entry list ('games' or 'segments').
    """
    import msgpack

    raw = msgpack.unpackb(valid, raw=False)
    entry = raw[entries][0]

    def top(**change) -> bytes:
        return _packed({**raw, **change})

    def item(**change) -> bytes:
        return _packed({**raw, entries: [{**entry, **change}] + raw[entries][1:]})

    cases = [
        ("top-list", _packed([1, 2])), ("top-string", _packed("tabula")), ("top-nil", b"\xc0"),
        ("format-other", top(format="other")), ("version-2", top(version=2)),
        ("version-string", top(version="1")), ("game-other", top(game="connect4")),
        ("obs-shape-other", top(obs_shape=[3, 3])), ("num-actions-other", top(num_actions=10)),
        ("entries-string", top(**{entries: "x"})), ("entries-missing", _packed(
            {k: v for k, v in raw.items() if k != entries})),
        ("entry-not-map", top(**{entries: [5]})),
        ("trailing-byte", valid + b"\x00"),
        ("length-string", item(length="5")), ("length-negative", item(length=-1)),
        ("length-zero", item(length=0)), ("length-2**40", item(length=2**40)),
        ("length-bool", item(length=True)), ("length-float", item(length=2.5)),
        ("returns-nan", item(returns=[float("nan"), 1.0])),
        ("returns-strings", item(returns=["a", "b"])),
        ("actions-out-of-range", item(actions=np.full(len(entry["actions"]) // 4, 10**6,
                                                      "<i4").tobytes())),
        ("actions-negative", item(actions=np.full(len(entry["actions"]) // 4, -1,
                                                  "<i4").tobytes())),
        ("actions-string", item(actions="4 0 8")),
        ("policy-nan", item(policy=np.full(len(entry["policy"]) // 2, np.nan, "<f2").tobytes())),
        ("policy-negative", item(policy=np.full(len(entry["policy"]) // 2, -1, "<f2").tobytes())),
        ("policy-short", item(policy=entry["policy"][:-2])),
        ("root-value-infinity", item(root_value=np.full(len(entry["root_value"]) // 4, np.inf,
                                                        "<f4").tobytes())),
    ]
    if entries == "games":
        cases += _game_cases(entry, item)
    else:
        cases += _segment_cases(entry, item, raw)
    cases += _msgpack_bombs()
    return [Case(name, data, "crafted") for name, data in cases]


def _game_cases(entry: dict, item: Callable) -> list[tuple[str, bytes]]:
    return [
        ("obs-encoding-unknown", item(obs_encoding="png")),
        ("obs-short", item(obs=entry["obs"][:-1])), ("obs-long", item(obs=entry["obs"] + b"\0")),
        ("obs-string", item(obs="x")), ("returns-200", item(returns=[0.0] * 200)),
        ("returns-empty", item(returns=[])), ("returns-1e300", item(returns=[1e300, 0.0])),
        ("returns-bool", item(returns=[True, False])),
        ("to-play-out-of-range", item(to_play=bytes([5]) * len(entry["to_play"]))),
        ("to-play-negative", item(to_play=bytes([255]) * len(entry["to_play"]))),
    ]


def _segment_cases(entry: dict, item: Callable, raw: dict) -> list[tuple[str, bytes]]:
    obs = entry["obs"]
    cases = [
        ("done-string", item(done="yes")), ("length-past-end", item(length=10**6)),
        ("episode-return-string", item(episode_return="3")),
        ("returns-not-list", item(returns=5)),
        ("masks-short", item(masks=b"")), ("to-play-short", item(to_play=b"")),
        ("actions-empty", item(actions=b"")), ("actions-odd-size", item(actions=b"\0\0\0")),
        ("obs-not-map", item(obs=[1])), ("obs-data-missing", item(obs={**obs, "data": None})),
        ("obs-shape-lie", item(obs={**obs, "shape": [10**9, 8, 8]})),
        ("obs-encoding-unknown", item(obs={**obs, "encoding": "png"})),
    ]
    if raw["frames"]:
        count = int(np.prod(obs["shape"]))
        bomb = zlib.compress(bytes(16 * 1024 * 1024), 9)
        cases += [("zlib-bomb", item(obs={**obs, "data": bomb})),
                  ("zlib-corrupt", item(obs={**obs, "data": b"not zlib data"})),
                  ("zlib-truncated", item(obs={**obs, "data": obs["data"][:20]})),
                  ("zlib-short", item(obs={**obs, "data": zlib.compress(bytes(count - 1))})),
                  ("zlib-trailing", item(obs={**obs, "data": obs["data"] + b"junk"}))]
    return cases


# ---------------------------------------------------------------------------
# Arena database (SQLite)


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
    from arena.results import ResultsDB

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
    from arena.results import _SCHEMA

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
        from arena.results import ResultsDB

        with ResultsDB(path, readonly=readonly) as db:
            return (repr(db.players()), repr(db.games()), repr(db.outcomes()),
                    repr(db.summary()))
    return load


# ---------------------------------------------------------------------------
# Text formats through the real CLI and GTP


VALID_SGF = b"""(;FF[4]GM[1]SZ[9]KM[7.5]PB[Black]PW[White]DT[2024-01-01]RE[B+R]
C[a comment with \\] and an escaped bracket]
;B[ee];W[cc](;B[gc];W[cg]
;B[gg];W[]
)(;B[ge]))
"""

VALID_PGN = b"""[Event "hostile files"]
[Site "?"]
[Date "2024.01.01"]
[Round "1"]
[White "alpha"]
[Black "beta"]
[Result "1-0"]

1. e4 e5 {a comment} 2. Nf3 (2. Bc4 Nf6) Nc6 $1 3. Bb5 1-0

[Event "hostile files"]
[White "beta"]
[Black "gamma"]
[Result "1/2-1/2"]

1. d4 d5 1/2-1/2

[Event "hostile files"]
[White "gamma"]
[Black "alpha"]
[Result "0-1"]

1. c4 ; a line comment
e5 0-1
"""

VALID_TOML = b"""# settings for the hostile files test
game = "tictactoe"

[search]
num_simulations = 16

[learner]
batch_size = 32
learning_rate = 0.002
"""


def _cli(argv: list[str], guard: str | None = None) -> str:
    """Runs `tabula ARGV` in this process; returns stdout or raises CliError (exit 2).

    A second line, a traceback or another exit status raises AssertionError
    (counted as a crash). `guard`: an error containing it means the command got
    past the file (accepted).
    """
    from tabula.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    errors = [line for line in err.getvalue().splitlines() if "warning:" not in line]
    if status == 0:
        return out.getvalue()
    if status != 2 or len(errors) != 1 or not errors[0].startswith("tabula: error: "):
        raise AssertionError(f"exit status {status}, stderr {err.getvalue()[-300:]!r}")
    if guard is not None and guard in errors[0]:
        return "accepted"
    raise CliError(errors[0])


def load_config(path: Path) -> dict:
    """`tabula train --config FILE` into a directory that is not a run: stops after the config."""
    from selfplay import config as cfg

    _cli(["train", "--config", str(path), "--run", str(path.parent / GUARD_RUN),
          "--no-progress"], guard="is not a Tabula run directory")
    return cfg.load_toml(path)


def load_pgn(path: Path) -> str:
    """`tabula elo --pgn FILE`: its output (the file's name left out)."""
    return _cli(["elo", "--pgn", str(path)]).replace(str(path), "FILE")


def load_elo(path: Path) -> str:
    """`tabula elo DB`: its output (the file's name left out)."""
    return _cli(["elo", str(path)]).replace(str(path), "FILE")


def load_sgf_gtp(path: Path) -> tuple:
    """`loadsgf FILE` to a fresh GTP engine; refusals must leave the position unchanged."""
    from arena.gtp import GtpEngine
    from tabula.gtp_cmd import _player

    class Args:
        checkpoint = game = time_per_move = None
        sims, resign_threshold, seed = 2, 0.95, 0

    player, resize = _player(Args)
    engine = GtpEngine(player, resize=resize)
    engine.handle("play b c3")
    before = _gtp_position(engine)
    answer = engine.handle(f"loadsgf {path}").strip()
    if answer.startswith("?"):
        if _gtp_position(engine) != before:
            raise AssertionError(f"refused ({answer}) but the position changed")
        if not answer.startswith(("? cannot load file: ", "? unacceptable size")) \
                or "internal error" in answer:
            raise AssertionError(f"not GTP's refusal of a file: {answer}")
        # GTP's own phrase; the file is the argument of the command it answers.
        raise GtpRefusal(f"{answer} (to loadsgf {path})")
    return _gtp_position(engine)


def _gtp_position(engine) -> tuple:
    s = engine.session
    return (s.game.size, s.game.komi, tuple(s.moves), tuple(s.handicap),
            tuple(s.state.history()))


# ---------------------------------------------------------------------------
# The loaders


def build_loaders(build: Path, only: str | None = None) -> list[Loader]:
    """Every loader with its valid file, context and crafted corpus (built in `build`)."""
    from arena.results import ResultsError
    from checkpoints import CheckpointError, load_muzero_network, load_network, read_metadata
    from selfplay.records import ReplayError, read_shard
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


def sgf_cases() -> list[Case]:
    head = b"(;FF[4]GM[1]SZ[9]"
    cases = [
        ("depth-bomb-unclosed", b"(;" * 100_000),
        ("depth-bomb-variations", head + b"(;B[aa]" * 20_000 + b")" * 20_001),
        ("size-huge", b"(;GM[1]SZ[" + b"9" * 30 + b"])"),
        ("size-5000-digits", b"(;GM[1]SZ[" + b"9" * 5000 + b"])"),
        ("size-zero", b"(;GM[1]SZ[0])"), ("size-26", b"(;GM[1]SZ[26])"),
        ("size-negative", b"(;GM[1]SZ[-9])"), ("size-rectangular", b"(;GM[1]SZ[9:13])"),
        ("komi-infinity", head + b"KM[1e999];B[ee])"), ("komi-nan", head + b"KM[nan];B[ee])"),
        ("komi-text", head + b"KM[seven])"),
        ("move-occupied", head + b";B[ee];W[ee])"), ("move-off-board", head + b";B[zz])"),
        ("move-one-letter", head + b";B[e])"),
        ("setup-white", head + b"AW[ee])"), ("setup-later", head + b";B[ee];AB[cc])"),
        ("not-go", b"(;GM[3]SZ[9];B[ee])"), ("unterminated-value", head + b"C[abc"),
        ("unbalanced", head + b";B[ee]"), ("no-node", b"()"),
    ]
    out = [Case(name, data, "crafted") for name, data in cases]
    # Text the reader may take: a name in Latin-1 under an unknown charset, bad UTF-8, UTF-16.
    # Valid however odd: 20,000 nested trees, a komi of 1e300, play on after two passes
    # (GTP allows it), 20,000 moves.
    out += [Case(name, data, "crafted", "either") for name, data in [
        ("depth-20k", b"(;" * 20_000 + b")" * 20_000),
        ("komi-1e300", head + b"KM[1e300];B[ee])"),
        ("moves-after-two-passes", head + b";B[];W[];B[ee])"),
        ("20k-passes", head + b";B[];W[]" * 10_000 + b")"),
        ("charset-unknown-latin1", head + b"CA[x-klingon]PB[J\xf6rg];B[ee])"),
        ("invalid-utf8", head + b"C[\xff\xfe\xc3\x28];B[ee])"),
        ("utf16", "\ufeff(;FF[4]GM[1]SZ[9];B[ee])".encode("utf-16")),
        ("nul-bytes", head + b"C[\x00\x00];B[ee])"),
        ("comment-1MB", head + b"C[" + b"x" * 1_000_000 + b"];B[ee])"),
        ("properties-50k", head + b"XX[1]" * 50_000 + b")")]]
    return out


def pgn_cases() -> list[Case]:
    tags = b'[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n'
    cases = [
        ("variation-depth-bomb", tags + b"1. e4 " + b"(" * 100_000 + b")" * 100_000 + b" 1-0\n"),
        ("variations-unclosed", tags + b"1. e4 " + b"(" * 200_000 + b" 1-0\n"),
        # Was quadratic: each '{' searched the rest of the file for its '}'.
        ("unterminated-comments", tags + (b"{" + b" " * 1000 + b"\n") * 20_000),
        ("unterminated-tags", b'[White "' * 200_000),
        ("tags-40k", b'[White "a"]\n[Black "b"]\n' * 20_000),
        ("tag-1MB", b'[White "' + b"x" * 1_000_000 + b'"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n'),
        ("move-number-huge", tags + b"9" * 5000 + b". e4 1-0\n"),
        ("illegal-moves", tags + b"1. Zz9 Qx?? 2. O-O-O-O 1-0\n"),
        ("result-mismatch", tags + b"1. e4 0-1\n"),
        ("result-unknown", b'[White "a"]\n[Black "b"]\n[Result "2-0"]\n\n2-0\n'),
        ("latin1-names", b'[White "J\xf6rg"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n'),
        ("invalid-utf8", tags + b"\xff\xfe\xc3\x28 1-0\n"),
        ("utf16", ('[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n1-0\n').encode("utf-16")),
        ("nul-bytes", tags.replace(b"a", b"a\x00") + b"1-0\n"),
        ("percent-escapes", b"%" * 100_000 + b"\n" + tags + b"1-0\n"),
        ("only-comments", b"{just a comment}\n; and a line\n"),
    ]
    return [Case(name, data, "crafted", "either") for name, data in cases]


def toml_cases() -> list[Case]:
    refuse = [
        ("array-depth-bomb", b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
        ("table-depth-bomb", b"a = " + b"{b = " * 50_000 + b"1" + b"}" * 50_000 + b"\n"),
        ("invalid-utf8", b"game = \"tic\xff\"\n"),
        ("utf16", '[search]\nnum_simulations = 16\n'.encode("utf-16")),
        ("unknown-section", b"[bogus]\nx = 1\n"),
        ("unknown-key", b"[search]\nbogus = 1\n"),
        ("wrong-type", b"[search]\nnum_simulations = \"many\"\n"),
        ("section-not-table", b"search = 5\n"),
        ("game-number", b"game = 5\n"),
        ("game-unknown", b"game = \"tictactoc\"\n"),
        ("simulations-negative", b"[search]\nnum_simulations = -5\n"),
        ("simulations-huge", b"[search]\nnum_simulations = 99999999999999999999999\n"),
        ("learning-rate-nan", b"[learner]\nlearning_rate = nan\n"),
        ("batch-size-2**62", b"[learner]\nbatch_size = 4611686018427387904\n"),
        ("window-2**62", b"[replay]\nwindow_positions = 4611686018427387904\n"),
        ("string-1MB", b"game = \"" + b"x" * 1_000_000 + b"\"\n"),
    ]
    return [Case(name, data, "crafted") for name, data in refuse]


# ---------------------------------------------------------------------------
# Running


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _time_limit(seconds: float):
    def hang(signum, frame):
        raise Hang()

    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def memory_limit(extra: int = MEMORY_LIMIT):
    """Caps this process's address space at its current size plus `extra` bytes (Linux only).

    A loader that allocates what a crafted file announces then fails with
    MemoryError (a crash in the tally) instead of exhausting a shared machine.
    """
    try:
        import resource
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        soft = None
    if soft is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
    try:
        yield
    finally:
        if soft is not None:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _line(text: str, limit: int = 160) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit] + "..."


def _names_file(message: str, path: Path) -> bool:
    return str(path) in message or (path.name in message and str(path.parent) in message)


def _attempt(loader: Loader, path: Path) -> tuple[str, str, Any]:
    try:
        with _time_limit(TIME_LIMIT_S), memory_limit():
            value = loader.load(path)
            fingerprint = loader.fingerprint(value)
    except Hang:
        return "crashed", f"no answer within {TIME_LIMIT_S:g} s", None
    except Exception as e:  # noqa: BLE001 (MemoryError and RecursionError included)
        message = str(e)
        if not isinstance(e, loader.errors):
            return "crashed", f"{type(e).__name__}: {_line(message)}", None
        if "Traceback" in message or not _names_file(message, path):
            return "unclear", _line(message), None
        return "refused", _line(message), None
    same = loader.reference is None or fingerprint == loader.reference
    return ("accepted-same" if same else "accepted-other"), "", fingerprint


def _damage(before: dict, after: dict, target: str, outcome: str, mutable: bool) -> str:
    """What changed in the directory that should not have, or ''."""
    changed = [k for k in before if k != target and after.get(k) != before[k]]
    created = [k for k in after if k not in before
               and not any(k == target + s for s in SQLITE_COMPANIONS)]
    if changed or created:
        return f"files changed: {changed}, created: {created}"
    if not (mutable and outcome.startswith("accepted")) and after.get(target) != before[target]:
        return f"{outcome} but the file itself was modified"
    return ""


def run_case(loader: Loader, case: Case, root: Path, index: int) -> Result:
    """Gives `case` to `loader` in a fresh directory under `root`; classifies the outcome."""
    directory = root / f"case-{index:05d}"
    for rel, data in loader.context.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    path = directory / loader.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)
    (directory / "neighbour.bin").write_bytes(b"a neighbouring file\n")
    (directory / "neighbour-valid").write_bytes(loader.valid)
    before = _hashes(directory)
    start = time.perf_counter()
    outcome, detail, fingerprint = _attempt(loader, path)
    seconds = time.perf_counter() - start
    damage = _damage(before, _hashes(directory), loader.filename, outcome, loader.mutable)
    if damage:
        outcome, detail = "crashed", damage
    if (root / MARKER).exists():
        (root / MARKER).unlink()
        outcome, detail = "crashed", "the pickle payload ran (marker file created)"
    shutil.rmtree(directory)
    return Result(case, outcome, detail, fingerprint, seconds)


def corpus(loader: Loader, flips: int, seed: int, others: dict[str, bytes],
           marker: Path) -> list[Case]:
    """The loader's whole corpus: generic mutations, foreign files, pickles, crafted files."""
    rng = np.random.default_rng([seed, zlib.crc32(loader.format.encode())])
    strict = "refuse" if loader.binary else "either"
    cases = generic_cases(loader.valid, rng, flips, others, loader.binary)
    cases = [replace(c, expect="either") if c.name.removeprefix("other:") in loader.kin else c
             for c in cases]
    if loader.mutable:  # a file opened to write to: an empty one is a new database
        cases = [replace(c, expect="either") if c.kind == "empty" else c for c in cases]
    return cases + [replace(c, expect=strict) for c in pickle_cases(marker)] + loader.crafted


def prepare(loader: Loader, root: Path) -> None:
    """Sets the loader's reference fingerprint from its valid file (which it must accept)."""
    result = run_case(loader, Case("valid", loader.valid, "valid", "either"), root, 99999)
    if result.outcome != "accepted-same":
        raise RuntimeError(f"{loader.key}: the valid file is not accepted: "
                           f"{result.outcome} {result.detail}")
    loader.reference = result.fingerprint


def run_loader(loader: Loader, cases: list[Case], root: Path) -> list[Result]:
    if loader.reference is None:
        prepare(loader, root)
    return [run_case(loader, case, root, i) for i, case in enumerate(cases)]


def others_for(loaders: list[Loader], build: Path) -> dict[str, bytes]:
    """Files of other kinds: PNG, gzip, a foreign SQLite database and each format's valid file."""
    others = {"png": png_bytes(), "gzip": gzip.compress(b"hello " * 100, mtime=0),
              "sqlite-foreign": sqlite_bytes(build, ["CREATE TABLE t (x)",
                                                     "INSERT INTO t VALUES (1)"])}
    for loader in loaders:
        others.setdefault(loader.format, loader.valid)
    return others


def failures(loader: Loader, results: list[Result]) -> list[Result]:
    """Unclear or crashed results, and files that must be refused but were not."""
    return [r for r in results if r.outcome in ("unclear", "crashed")
            or (r.case.expect in loader.refuses and r.outcome != "refused")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flips", type=int, default=300, help="bit flips per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="formats whose name starts with this")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every file not refused")
    args = parser.parse_args(argv)
    rows, bad, accepted = [], [], []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp)
        (root / "build").mkdir()
        loaders = build_loaders(root / "build", args.only)
        others = others_for(loaders, root / "build")
        for loader in loaders:
            results = run_loader(loader, corpus(loader, args.flips, args.seed, others,
                                                root / MARKER), root)
            counts = Counter(r.outcome for r in results)
            rows.append((loader.key, len(results), *(counts[o] for o in OUTCOMES)))
            bad += [(loader.key, r) for r in failures(loader, results)]
            kinds = Counter(r.case.kind for r in results if r.outcome.startswith("accepted"))
            accepted.append(f"{loader.key}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
            if args.verbose:
                for r in results:
                    if r.outcome != "refused" or r.seconds > 1:
                        print(f"  {loader.key} {r.case.name}: {r.outcome} {r.detail} "
                              f"({r.seconds:.2f} s)")
            print(f"{loader.key}: {len(results)} files", file=sys.stderr, flush=True)
    _print_table(rows)
    print("\naccepted, by kind of file:")
    print("\n".join(f"  {line}" for line in accepted))
    for key, r in bad:
        print(f"FAIL {key} {r.case.kind} {r.case.name}: {r.outcome} {r.detail}")
    return 1 if bad else 0


def _print_table(rows: list[tuple]) -> None:
    header = ("format/loader", "tried", *OUTCOMES)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths))))
    total = ("total", *(sum(r[i] for r in rows) for i in range(1, len(header))))
    print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                    for i, (v, w) in enumerate(zip(total, widths))))


if __name__ == "__main__":
    sys.exit(main())
