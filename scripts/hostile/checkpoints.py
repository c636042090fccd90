"""Checkpoints and the train state: valid files built by the project, crafted ones."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .base import Case

DROP = object()
"""In a crafted metadata change: remove the key."""


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


_LAYOUT_ERRORS = {"offsets-overlapping", "shape-2**40-squared", "shape-2**64", "shape-negative",
                  "shape-float", "dtype-unknown", "dtype-object", "dtype-F4", "dtype-F8_E8M0",
                  "dtype-F6_E2M3", "dtype-complex", "dtype-bool"}
"""Crafted headers whose layout error only the safetensors parser sees (not a header-only
reader): only loaders that read the weights must refuse them."""
_NETWORK_CHANGES = {"network-unknown-key", "network-blocks-string", "network-blocks-zero",
                    "network-blocks-1e9", "network-channels-1e9", "network-channels-2**70",
                    "network-channels-mismatch", "num-actions-1e12", "num-actions-2**70",
                    "num-actions-mismatch", "obs-shape-1d", "obs-shape-5d", "obs-shape-1e9",
                    "obs-shape-2**70", "algo-other"}
"""Crafted metadata that is well-formed but describes another network: only a loader that
builds it can tell."""


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
    return [Case(name, data, "crafted", "weights" if name in _LAYOUT_ERRORS else "refuse")
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
    cases = [Case(name, _resave(tensors, {**meta, **change}), "crafted",
                  "network" if name in _NETWORK_CHANGES else "refuse")
             for name, change in changes]
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


def _other_shape(t):
    """The same values in another shape: (1, n), or (n,) where the tensor is (1, n) already
    (the first float tensor of a state dict can be; reshaping it to itself was no case)."""
    flat = t.reshape(1, -1)
    return flat if tuple(flat.shape) != tuple(t.shape) else t.reshape(-1)


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
        ("weights-reshaped", changed(name, _other_shape(tensors[name]))),
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
    from selfplay.run import RunState, prepare_run

    run_dir = build / "run"
    config = cfg.merge(cfg.preset("tictactoe"), {
        "network": {"blocks": 1, "channels": 4, "value_hidden": 4},
        "replay": {"window_positions": 1000}})
    prepare_run(run_dir, config)
    rng = torch.get_rng_state()
    try:
        run = RunState(config, run_dir)
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

    from selfplay.run import RunState, prepare_run

    rng = torch.get_rng_state()
    try:
        run = RunState(prepare_run(path.parent, None), path.parent)
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
    from safetensors.torch import load

    tensors = load(valid)
    meta = json.loads(_st_split(valid)[0]["__metadata__"]["learner"])
    cases = []
    for name, change in _learner_changes(meta):
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
    cases += [Case(name, _resave(t, meta, False, "learner"), "crafted")
              for name, t in _tensor_changes(tensors)]
    return cases


def _learner_changes(meta: dict) -> list[tuple[str, dict]]:
    """Changes to the learner's JSON (DROP: remove the key)."""
    extra = meta["extra"]
    group = meta["param_groups"][0]
    pcg = extra["rng"]
    return [
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


def _tensor_changes(tensors: dict) -> list[tuple[str, dict]]:
    """The train state's tensors changed: optimiser state and the torch RNG."""
    import torch

    opt = sorted(k for k in tensors if k.startswith("opt/"))
    avg = next(k for k in opt if k.endswith("/exp_avg") and tensors[k].dim() > 1)
    return [
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


def _ts_meta(tensors: dict, text: str) -> bytes:
    from safetensors.torch import save

    return save({k: v.clone() for k, v in tensors.items()}, metadata={"learner": text})
