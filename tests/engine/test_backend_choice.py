"""Tests for engine.backend_choice: 'auto' runs the fastest backend measured here."""

import json
import time

import numpy as np
import pytest
import torch

from engine import backend_choice as bc
from engine.networks import NetworkConfig, PolicyValueNet

OBS_SHAPE = (2, 3, 3)
NUM_ACTIONS = 9
SLOW_FAST = ("slow", "fast")


def _net(channels: int = 8) -> PolicyValueNet:
    torch.manual_seed(0)
    return PolicyValueNet(OBS_SHAPE, NUM_ACTIONS,
                          NetworkConfig(blocks=1, channels=channels, value_hidden=8)).eval()


class _Fake:
    """An evaluator that takes `delay` seconds a call."""

    def __init__(self, delay: float):
        self.delay = delay

    def evaluate(self, obs, mask):
        if self.delay:
            time.sleep(self.delay)
        return np.zeros((len(obs), NUM_ACTIONS), np.float32), np.zeros(len(obs), np.float32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TABULA_CACHE_DIR", str(tmp_path))
    bc.forget()
    yield tmp_path / bc.CACHE_FILE
    bc.forget()


@pytest.fixture
def fakes():
    """Backends 'slow' (5 ms a call), 'fast' (no delay), 'broken' (cannot be built)."""
    built = []

    def build(net, name, threads=None):
        built.append(name)
        if name == "broken":
            raise RuntimeError("no such library")
        return _Fake(0.005 if name == "slow" else 0.0)

    build.built = built
    return build


def test_measure_ranks_a_slow_evaluator_below_a_fast_one():
    rates = bc.measure({"slow": lambda: _Fake(0.005), "fast": lambda: _Fake(0.0)},
                       OBS_SHAPE, NUM_ACTIONS, batch=4, seconds=0.2)
    assert set(rates) == {"slow", "fast"}
    # 5 ms a call at batch 4 is at most 800 positions/s, whatever the machine.
    assert rates["slow"] <= 4 / 0.005
    assert rates["fast"] > rates["slow"]


def test_choice_is_the_fastest_and_skips_backends_that_fail(cache, fakes):
    choice = bc.choose_backend(_net(), batch=4, build=fakes, names=("slow", "broken", "fast"))
    assert choice.backend == "fast" and not choice.cached
    assert set(choice.rates) == {"slow", "fast"}
    assert "fast" in choice.describe() and "batch 4" in choice.describe()


def test_no_backend_runs_is_an_error(cache, fakes):
    with pytest.raises(RuntimeError, match="broken"):
        bc.choose_backend(_net(), batch=4, build=fakes, names=("broken",))


def test_choice_is_cached_per_machine_network_and_batch(cache, fakes):
    net = _net()
    first = bc.choose_backend(net, batch=4, build=fakes, names=SLOW_FAST)
    assert fakes.built.count("fast") == 1
    bc.forget()  # a new process: only the file remains
    again = bc.choose_backend(net, batch=4, build=fakes, names=SLOW_FAST)
    assert again.cached and again.backend == first.backend and again.rates == first.rates
    assert fakes.built.count("fast") == 1  # nothing measured
    bc.choose_backend(net, batch=16, build=fakes, names=SLOW_FAST)  # another batch: measured
    bc.choose_backend(_net(channels=16), batch=4, build=fakes, names=SLOW_FAST)  # another shape
    assert fakes.built.count("fast") == 3
    entries = json.loads(cache.read_text())["choices"]
    assert len(entries) == 3
    assert all(bc.cpu_model() in key for key in entries)


def test_damaged_cache_is_measured_over_and_rewritten(cache, fakes):
    cache.write_text("{not json")
    choice = bc.choose_backend(_net(), batch=4, build=fakes, names=SLOW_FAST)
    assert choice.backend == "fast" and not choice.cached
    data = json.loads(cache.read_text())
    assert data["version"] == bc.CACHE_VERSION and len(data["choices"]) == 1


def test_cached_choice_of_a_backend_no_longer_offered_is_ignored(cache, fakes):
    net = _net()
    bc.choose_backend(net, batch=4, build=fakes, names=SLOW_FAST)
    data = json.loads(cache.read_text())
    for entry in data["choices"].values():
        entry["backend"] = "tensorrt"
    cache.write_text(json.dumps(data))
    bc.forget()
    choice = bc.choose_backend(net, batch=4, build=fakes, names=SLOW_FAST)
    assert choice.backend == "fast" and not choice.cached


def test_unwritable_cache_still_chooses(tmp_path, monkeypatch, fakes):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TABULA_CACHE_DIR", str(blocker / "sub"))  # under a file: unwritable
    bc.forget()
    assert bc.choose_backend(_net(), batch=4, build=fakes, names=SLOW_FAST).backend == "fast"
    bc.forget()


@pytest.mark.parametrize("flags, allow, has_bf16", [
    ({"avx512f"}, True, False),
    ({"avx512f", "avx512_bf16"}, True, True),
    ({"amx_bf16"}, True, True),
    ({"avx512f", "avx512_bf16"}, False, False),
])
def test_bf16_is_a_candidate_only_where_native_and_allowed(monkeypatch, flags, allow, has_bf16):
    monkeypatch.setattr(bc, "cpu_flags", lambda: set(flags))
    names = bc.candidates(allow_bf16=allow)
    assert ("torch_bf16" in names) == has_bf16
    assert {"onnx", "torch_cl"} <= set(names)


def test_real_backends_are_measured_at_the_callers_batch(cache):
    from engine.evaluator import make_evaluator

    ev = make_evaluator(_net(), "auto", batch=3)
    assert ev.choice.batch == 3 and ev.backend == ev.choice.backend
    assert ev.choice.rates[ev.backend] == max(ev.choice.rates.values())
    assert set(ev.choice.rates) == set(bc.candidates())


def test_bench_inference_prints_every_backend_and_what_auto_picks(tabula):
    r = tabula("bench", "inference", "--game", "tictactoe", "--blocks", "1", "--channels", "8",
               "--batch-sizes", "2", "--backends", "torch", "onnx", "--seconds", "0.1",
               "--rounds", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("cpu: ")
    assert any(line.startswith("onnx ") for line in lines)
    assert any(line.startswith("torch ") for line in lines)
    auto = [line for line in lines if line.startswith("auto at batch 2: inference backend ")]
    assert len(auto) == 1
    assert auto[0].split("inference backend ")[1].split()[0] in bc.candidates()
