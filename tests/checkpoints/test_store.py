"""Tests for the checkpoint store: round trip, verification, atomicity, listing."""

import json
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

import checkpoints.store as store
from checkpoints import (
    FORMAT_VERSION,
    CheckpointError,
    atomic_write_bytes,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    weights_sha256,
)
from checkpoints.format import METADATA_KEY
from engine.loading import load_network
from engine.networks import NetworkConfig, PolicyValueNet

OBS_SHAPE = (3, 6, 7)
NUM_ACTIONS = 7
CONFIG = NetworkConfig(blocks=1, channels=8, value_hidden=8, value_head="wdl")


def _net(seed: int = 0) -> PolicyValueNet:
    torch.manual_seed(seed)
    return PolicyValueNet(OBS_SHAPE, NUM_ACTIONS, CONFIG)


def _meta(step: int = 100, **kw) -> dict:
    meta = dict(game="connect4", network=CONFIG, observation_shape=OBS_SHAPE,
                num_actions=NUM_ACTIONS, step=step, games=12, positions=345,
                parent="step-00000050.safetensors", extra={"lr": 0.01, "note": "x"})
    meta.update(kw)
    return meta


def _save(tmp_path: Path, step: int = 100, **kw):
    path = tmp_path / checkpoint_name(step)
    return path, save_checkpoint(path, _net().state_dict(), _meta(step, **kw))


def _data_offset(path: Path) -> int:
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + n


def test_round_trip(tmp_path):
    net = _net()
    path = tmp_path / checkpoint_name(100)
    info = save_checkpoint(path, net.state_dict(), _meta())
    assert info.path == path and info.size_bytes == path.stat().st_size
    ckpt = load_checkpoint(path)
    sd = net.state_dict()
    assert set(ckpt.state_dict) == set(sd)
    for k, v in sd.items():
        assert ckpt.state_dict[k].dtype == v.dtype
        assert torch.equal(ckpt.state_dict[k], v), k
    m = ckpt.meta
    assert m == info.meta
    assert m["format_version"] == FORMAT_VERSION
    assert (m["game"], m["algo"], m["step"], m["games"], m["positions"]) == (
        "connect4", "alphazero", 100, 12, 345)
    assert m["network"] == CONFIG.to_dict()
    assert m["observation_shape"] == list(OBS_SHAPE) and m["num_actions"] == NUM_ACTIONS
    assert m["parent"] == "step-00000050.safetensors"
    assert m["extra"] == {"lr": 0.01, "note": "x"}
    assert m["weights_sha256"] == weights_sha256(sd)
    assert "T" in m["created"]
    assert read_metadata(path) == m


def test_defaults_filled(tmp_path):
    path = tmp_path / "a.safetensors"
    meta = dict(game="connect4", network=CONFIG.to_dict(), observation_shape=[3, 6, 7],
                num_actions=7, step=0)
    info = save_checkpoint(path, _net().state_dict(), meta)
    m = read_metadata(path)
    assert m == info.meta
    assert (m["algo"], m["games"], m["positions"], m["parent"], m["extra"]) == (
        "alphazero", 0, 0, None, {})


def test_load_network(tmp_path):
    path, _ = _save(tmp_path)
    net, meta = load_network(path)
    ref = _net().eval()
    x = torch.randn(4, *OBS_SHAPE)
    with torch.no_grad():
        for a, b in zip(net(x), ref(x)):
            assert torch.equal(a, b)
    assert not net.training and net.config == CONFIG and meta["step"] == 100


def test_load_network_mismatched_config(tmp_path):
    path = tmp_path / "x.safetensors"
    save_checkpoint(path, _net().state_dict(),
                    _meta(network=NetworkConfig(blocks=2, channels=8)))
    with pytest.raises(CheckpointError, match="does not match"):
        load_network(path)


def test_hash_is_sensitive_to_names_shapes_dtypes_and_bytes():
    t = torch.arange(6, dtype=torch.float32)
    base = weights_sha256({"a": t})
    assert weights_sha256({"a": t.clone()}) == base
    assert weights_sha256({"b": t}) != base
    assert weights_sha256({"a": t.reshape(2, 3)}) != base
    assert weights_sha256({"a": t.to(torch.int32)}) != base
    u = t.clone()
    u[3] = -1.0
    assert weights_sha256({"a": u}) != base
    assert weights_sha256({"a": t, "b": t}) == weights_sha256({"b": t, "a": t})


def test_tamper_detected(tmp_path):
    path, _ = _save(tmp_path)
    data = bytearray(path.read_bytes())
    start = _data_offset(path)
    i = start + (len(data) - start) // 2
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    read_metadata(path)  # The header is intact; only the weights changed.
    with pytest.raises(CheckpointError, match="hash mismatch.*tampered"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [4, 20, -10])
def test_truncated_file(tmp_path, keep):
    path, _ = _save(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep > 0 else data[:keep])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "truncated" in msg or "not a safetensors" in msg
    assert "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        read_metadata(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, this is not a checkpoint at all",
                                     b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
                                     b"\x02\x00\x00\x00\x00\x00\x00\x00[]"])
def test_garbage_file(tmp_path, content):
    path = tmp_path / "g.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a safetensors|truncated"):
        load_checkpoint(path)


def _raw_checkpoint(path: Path, meta_map) -> None:
    """A valid safetensors file with arbitrary __metadata__ (bypassing save_checkpoint)."""
    path.write_bytes(st_save({"w": torch.zeros(2)}, metadata=meta_map))


def test_plain_safetensors_without_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    _raw_checkpoint(path, None)
    with pytest.raises(CheckpointError, match="no Tabula metadata"):
        load_checkpoint(path)
    _raw_checkpoint(path, {METADATA_KEY: "{oops"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_metadata(path)


def _good_meta_dict() -> dict:
    m = _meta()
    m.update(network=CONFIG.to_dict(), observation_shape=list(OBS_SHAPE), algo="alphazero",
             created="2025-01-01T00:00:00+00:00", format_version=FORMAT_VERSION,
             weights_sha256=weights_sha256({"w": torch.zeros(2)}))
    return m


@pytest.mark.parametrize("key,value", [
    ("step", "100"), ("step", -1), ("step", 1.5), ("step", True), ("games", None),
    ("game", 7), ("network", "blocks=5"), ("parent", 3), ("extra", []),
    ("observation_shape", [3, 0, 7]), ("observation_shape", "3x6x7"),
    ("num_actions", 0), ("weights_sha256", None), ("weights_sha256", "abc"),
    ("algo", "alphago"), ("algo", 1),
])
def test_wrong_metadata_types(tmp_path, key, value):
    path = tmp_path / "m.safetensors"
    m = _good_meta_dict()
    m[key] = value
    _raw_checkpoint(path, {METADATA_KEY: json.dumps(m)})
    with pytest.raises(CheckpointError, match=key):
        load_checkpoint(path)
    if key == "weights_sha256":
        return  # save_checkpoint computes it.
    # save_checkpoint refuses the same metadata before writing anything.
    path2 = tmp_path / "s.safetensors"
    with pytest.raises(CheckpointError, match=key):
        save_checkpoint(path2, {"w": torch.zeros(2)}, {**_meta(), key: value})
    assert not path2.exists()


def test_good_raw_metadata_loads(tmp_path):
    path = tmp_path / "m.safetensors"
    _raw_checkpoint(path, {METADATA_KEY: json.dumps(_good_meta_dict())})
    assert load_checkpoint(path).meta["step"] == 100


def test_missing_metadata_key(tmp_path):
    path = tmp_path / "m.safetensors"
    m = _good_meta_dict()
    del m["positions"]
    _raw_checkpoint(path, {METADATA_KEY: json.dumps(m)})
    with pytest.raises(CheckpointError, match="lacks.*positions"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="lacks.*game"):
        save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(2)},
                        {k: v for k, v in _meta().items() if k != "game"})


def test_newer_format_version(tmp_path):
    path = tmp_path / "m.safetensors"
    # A future format may change anything else; the version check comes first.
    _raw_checkpoint(path, {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION + 1})})
    with pytest.raises(CheckpointError, match="newer.*upgrade"):
        load_checkpoint(path)


def test_save_rejects_unknown_keys_and_non_json(tmp_path):
    with pytest.raises(CheckpointError, match="unknown.*'lr'.*extra"):
        save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(2)}, _meta(lr=0.1))
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(2)},
                        _meta(extra={"f": object()}))
    with pytest.raises(CheckpointError, match="tensors"):
        save_checkpoint(tmp_path / "a.safetensors", {"w": [1.0]}, _meta())
    assert list(tmp_path.iterdir()) == []


def test_shared_storage_tensors_are_saved(tmp_path):
    t = torch.arange(4.0)
    path = tmp_path / "s.safetensors"
    save_checkpoint(path, {"a": t, "b": t}, _meta())
    sd = load_checkpoint(path).state_dict
    assert torch.equal(sd["a"], t) and torch.equal(sd["b"], t)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failed_write_keeps_old_checkpoint(tmp_path, monkeypatch):
    path, info = _save(tmp_path)

    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(store.os, "fsync", boom)
    torch.manual_seed(1)
    other = PolicyValueNet(OBS_SHAPE, NUM_ACTIONS, CONFIG).state_dict()
    with pytest.raises(OSError, match="fsync failed"):
        save_checkpoint(path, other, _meta())
    monkeypatch.undo()
    assert load_checkpoint(path).meta == info.meta
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_atomic_write_rejects_non_bytes(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, {"not": "bytes"})
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_checkpoint_name():
    assert checkpoint_name(0) == "step-00000000.safetensors"
    assert checkpoint_name(1234) == "step-00001234.safetensors"
    assert checkpoint_name(123456789) == "step-123456789.safetensors"
    for bad in (-1, 1.0, "3", True):
        with pytest.raises(ValueError, match="step"):
            checkpoint_name(bad)


def test_list_and_latest(tmp_path):
    assert list_checkpoints(tmp_path / "missing") == []
    assert latest_checkpoint(tmp_path) is None
    for step in (1000, 5, 123456789, 20):
        (tmp_path / checkpoint_name(step)).write_bytes(b"x")
    for other in ("step-7.safetensors", ".step-00000009.safetensors.abc.tmp",
                  "notes.txt", "step-00000010.safetensors.bak"):
        (tmp_path / other).write_bytes(b"x")
    (tmp_path / checkpoint_name(99)).mkdir()
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == [checkpoint_name(s) for s in (5, 20, 1000, 123456789)]
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(123456789)
    assert all(isinstance(p, Path) for p in list_checkpoints(str(tmp_path)))


def test_never_unpickles(tmp_path, monkeypatch):
    import pickle

    def forbidden(*a, **k):
        raise AssertionError("unpickling is forbidden")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    path, _ = _save(tmp_path)
    load_network(path)
    assert os.path.getsize(path) > 0
