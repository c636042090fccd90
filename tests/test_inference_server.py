"""Tests for engine.inference_server: exact results, merged batches, reload, reconnect.

The sources and the actor function live at module level so that the server's
and actors' spawn children can import them (tests/ is a package on sys.path).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.evaluator import make_evaluator
from engine.inference_server import InferenceServer
from engine.networks import NetworkConfig, PolicyValueNet

REPO = Path(__file__).resolve().parents[1]
OBS_SHAPE = (3, 6, 7)  # Connect Four
NUM_ACTIONS = 7
MAX_BATCH = 16
SPAWN = mp.get_context("spawn")


def tiny_evaluator(seed: int):
    """A torch evaluator of a 1x8 PolicyValueNet whose weights depend only on `seed`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = PolicyValueNet(OBS_SHAPE, NUM_ACTIONS,
                             NetworkConfig(blocks=1, channels=8, value_hidden=8))
    return make_evaluator(net.eval(), "torch")


class NetSource:
    """poll(): net `seed` on the first call, net `seed + 1` on call `switch_at`, else None."""

    def __init__(self, seed: int = 0, switch_at: int | None = None):
        self.seed = seed
        self.switch_at = switch_at
        self.calls = 0

    def poll(self):
        self.calls += 1
        if self.calls == 1:
            return tiny_evaluator(self.seed)
        if self.calls == self.switch_at:
            return tiny_evaluator(self.seed + 1)
        return None


class NoneSource:
    """A broken source: never has an evaluator."""

    def poll(self):
        return None


def batch(b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """obs float32[b, 3, 6, 7] of 0/1 planes, mask bool[b, 7]."""
    rng = np.random.default_rng(seed)
    return ((rng.random((b, *OBS_SHAPE)) < 0.3).astype(np.float32),
            rng.random((b, NUM_ACTIONS)) < 0.7)


def busy_actor(client) -> None:
    """Evaluates forever (until killed)."""
    obs, mask = batch(4, seed=99)
    while True:
        client.evaluate(obs, mask)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def direct():
    return tiny_evaluator(0)


@pytest.fixture(scope="module")
def server():
    """One server for the tests that do not stop it: 3 slots, 20 ms gather."""
    srv = InferenceServer(NetSource(0), num_clients=3, obs_shape=OBS_SHAPE,
                          num_actions=NUM_ACTIONS, max_batch=MAX_BATCH, ctx=SPAWN,
                          gather_seconds=0.02)
    srv.start()
    yield srv
    srv.close()


@pytest.mark.parametrize("b", [1, 7, MAX_BATCH])
def test_results_equal_direct_evaluation(server, direct, b):
    client = server.client(0)
    obs, mask = batch(b, seed=b)
    logits, value = client.evaluate(obs, mask)
    want_logits, want_value = direct.evaluate(obs, mask)
    assert logits.shape == (b, NUM_ACTIONS) and value.shape == (b,)
    assert logits.dtype == np.float32 and value.dtype == np.float32
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(value, want_value)
    # Row by row: each row's answer does not depend on its neighbours.
    for i in range(b):
        row_logits, row_value = client.evaluate(obs[i:i + 1], mask[i:i + 1])
        np.testing.assert_allclose(row_logits[0], want_logits[i], atol=1e-5, rtol=0)
        np.testing.assert_allclose(row_value[0], want_value[i], atol=1e-5, rtol=0)


def test_bad_shapes_raise_value_error(server):
    client = server.client(0)
    obs, mask = batch(MAX_BATCH + 1, seed=0)
    with pytest.raises(ValueError, match="max_batch"):
        client.evaluate(obs, mask)
    with pytest.raises(ValueError, match="obs"):
        client.evaluate(obs[:2, :2], mask[:2])
    with pytest.raises(ValueError, match="mask"):
        client.evaluate(obs[:2], mask[:3])
    logits, value = client.evaluate(obs[:0], mask[:0])
    assert logits.shape == (0, NUM_ACTIONS) and value.shape == (0,)


def test_concurrent_clients_get_their_own_answers_in_merged_batches(server, direct):
    b, rounds = 4, 25
    before = server.stats()
    errors = []

    def run(k: int) -> None:
        try:
            client = server.client(k)
            for r in range(rounds):
                obs, mask = batch(b, seed=1000 * k + r)  # different inputs per client
                logits, value = client.evaluate(obs, mask)
                want_logits, want_value = direct.evaluate(obs, mask)
                np.testing.assert_allclose(logits, want_logits, atol=1e-5, rtol=0)
                np.testing.assert_allclose(value, want_value, atol=1e-5, rtol=0)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    after = server.stats()
    evaluations = after["evaluations"] - before["evaluations"]
    batches = after["batches"] - before["batches"]
    assert evaluations == 2 * b * rounds
    assert evaluations / batches > b  # requests of the two clients were merged
    assert after["network_s"] > before["network_s"]


def test_killed_client_does_not_stop_server_and_slot_reconnects(server, direct):
    actor = SPAWN.Process(target=busy_actor, args=(server.client(2),), daemon=True)
    before = server.stats()["evaluations"]
    actor.start()
    try:
        wait_until(lambda: server.stats()["evaluations"] >= before + 8)
    finally:
        actor.kill()
        actor.join(5)
    time.sleep(0.1)
    assert server.is_alive()
    client = server.client(2)
    obs, mask = batch(5, seed=7)
    logits, value = client.evaluate(obs, mask)
    want_logits, want_value = direct.evaluate(obs, mask)
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(value, want_value)


def test_new_weights_from_poll_change_answers(direct):
    newer = tiny_evaluator(1)
    obs, mask = batch(3, seed=3)
    old_logits, _ = direct.evaluate(obs, mask)
    new_logits, new_value = newer.evaluate(obs, mask)
    with InferenceServer(NetSource(0, switch_at=6), num_clients=1, obs_shape=OBS_SHAPE,
                         num_actions=NUM_ACTIONS, max_batch=MAX_BATCH, ctx=SPAWN,
                         poll_seconds=0.0) as srv:
        srv.start()
        client = srv.client(0)
        logits, _ = client.evaluate(obs, mask)
        np.testing.assert_array_equal(logits, old_logits)
        assert srv.stats()["reloads"] == 0
        deadline = time.monotonic() + 60  # a hang guard, not a speed
        while not np.array_equal(logits, new_logits):
            assert time.monotonic() < deadline, "the new weights never arrived"
            logits, value = client.evaluate(obs, mask)
        np.testing.assert_array_equal(value, new_value)
        assert srv.stats()["reloads"] == 1


def test_evaluate_after_close_raises_runtime_error():
    srv = InferenceServer(NetSource(0), num_clients=1, obs_shape=OBS_SHAPE,
                          num_actions=NUM_ACTIONS, max_batch=MAX_BATCH, ctx=SPAWN)
    srv.start()
    client = srv.client(0)
    obs, mask = batch(2, seed=0)
    client.evaluate(obs, mask)
    srv.close()
    assert not srv.is_alive()
    with pytest.raises(RuntimeError, match="inference server stopped"):
        client.evaluate(obs, mask)
    with pytest.raises(RuntimeError, match="inference server stopped"):
        srv.client(0)
    srv.close()  # idempotent


def test_first_poll_without_evaluator_fails_clearly():
    srv = InferenceServer(NoneSource(), num_clients=1, obs_shape=OBS_SHAPE,
                          num_actions=NUM_ACTIONS, max_batch=MAX_BATCH, ctx=SPAWN)
    with pytest.raises(RuntimeError, match="poll\\(\\) returned None at start"):
        srv.start()
    assert not srv.is_alive()
    srv.close()


# Run as a script: numpy-only, so its spawn children start fast.
NO_LEAK_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np
    from engine.inference_server import InferenceServer

    class SumEvaluator:
        num_actions, obs_shape = 3, (2,)

        def evaluate(self, obs, mask):
            return np.repeat(obs.sum(1, keepdims=True), 3, 1), obs[:, 0].copy()

    class Source:
        def poll(self):
            return SumEvaluator()

    def actor(client):
        logits, value = client.evaluate(np.ones((2, 2), np.float32), np.ones((2, 3), bool))
        assert (logits == 2).all() and (value == 1).all()

    if __name__ == "__main__":
        ctx = mp.get_context("spawn")
        server = InferenceServer(Source(), 2, (2,), 3, max_batch=4, ctx=ctx)
        server.start()
        procs = [ctx.Process(target=actor, args=(server.client(k),)) for k in (0, 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0, 0]
        assert server.stats()["evaluations"] == 4
        server.close()
        print("ok")
""")


def test_no_shared_memory_warnings_at_exit(tmp_path):
    script = tmp_path / "no_leak.py"
    script.write_text(NO_LEAK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "leaked" not in done.stderr
    assert "resource_tracker" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stderr == ""
