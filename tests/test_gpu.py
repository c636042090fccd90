"""CUDA training and inference, and the CPU paths they must leave unchanged.

Tests marked `needs_cuda` skip on machines without a CUDA GPU. The others run
everywhere: `cuda_problem`'s reasons (with torch's CUDA queries faked), the
CPU learners against a plain hand-written training step (bitwise), and the
mixed-precision step (autocast + GradScaler) exercised with CPU autocast.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.evaluator import TorchEvaluator, cuda_problem, make_evaluator
from engine.muzero_net import MuZeroNet, MuZeroNetConfig
from engine.muzero_search import MuZeroInference, run_muzero_search
from engine.networks import NetworkConfig, PolicyValueNet
from engine.search import SearchConfig
from games import get_game
from selfplay.config import LearnerConfig, MuZeroConfig
from selfplay.learner import Learner
from selfplay.muzero_learner import MuZeroLearner
from selfplay.muzero_replay import Segment, SegmentReplay
from selfplay.replay import ReplayBuffer
from tests.selfplay.util import TTT_ACTIONS, TTT_SHAPE, random_record

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY_NET = NetworkConfig(blocks=1, channels=8, value_hidden=8)
TINY_MZ = MuZeroNetConfig(blocks=1, channels=8, head_channels=4, hidden=16,
                          value_support=5, reward_support=5)
MZ = MuZeroConfig(unroll_steps=3, td_steps=9)
# The tolerance of fp16 inference against float32 on these tiny random nets.
ATOL = 2e-2


# One torch thread for tiny steps on a busy 2-core machine, as in tests/selfplay.
from tests.selfplay.conftest import _one_torch_thread  # noqa: E402,F401  (autouse fixture)


def _buffer(size=48, seed=0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(size, TTT_SHAPE, TTT_ACTIONS)
    while buffer.size < size:
        buffer.add(random_record(rng, 6))
    return buffer


def _segments(count=6, seed=0) -> SegmentReplay:
    """Random tic-tac-toe games of 7 moves as finished MuZero segments."""
    rng = np.random.default_rng(seed)
    replay = SegmentReplay(1000, TTT_SHAPE, TTT_ACTIONS, frames=False,
                           unroll_steps=MZ.unroll_steps, td_steps=MZ.td_steps, discount=-1.0)
    for _ in range(count):
        r = random_record(rng, 7)
        rewards = np.zeros(7, np.float32)
        rewards[-1] = rng.integers(-1, 2)
        replay.add(Segment(obs=r.observations, actions=r.actions, rewards=rewards,
                           policies=r.policies, root_values=r.root_values,
                           masks=np.ones((7, TTT_ACTIONS), bool), to_play=r.to_play,
                           length=7, done=True))
    return replay


def _learner(device="cpu", seed=0, value_head="scalar") -> Learner:
    torch.manual_seed(seed)
    config = LearnerConfig(batch_size=16, learning_rate=1e-2, augment=False)
    return Learner(get_game("tictactoe"), dataclasses.replace(TINY_NET, value_head=value_head),
                   config, device)


def _muzero_learner(device="cpu", seed=0) -> MuZeroLearner:
    torch.manual_seed(seed)
    config = LearnerConfig(batch_size=16, learning_rate=1e-2, augment=False)
    return MuZeroLearner(get_game("tictactoe"), TINY_MZ, config, MZ, device)


def _params(net) -> list[torch.Tensor]:
    return [p.detach().cpu().clone() for p in net.parameters()]


def _random_muzero_net(seed=0) -> MuZeroNet:
    """A MuZeroNet whose zero-initialised last layers are made random (non-trivial outputs)."""
    torch.manual_seed(seed)
    net = MuZeroNet(TTT_SHAPE, TTT_ACTIONS, TINY_MZ)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


# ---------------------------------------------------------------------------
# cuda_problem: runs everywhere, torch's answers faked where needed.


def test_cuda_problem_on_this_machine():
    assert cuda_problem("cpu") is None
    if torch.cuda.is_available():
        assert cuda_problem("cuda") is None
        assert cuda_problem(f"cuda:{torch.cuda.device_count()}") is not None
        return
    reason = cuda_problem("cuda")
    assert reason is not None and "\n" not in reason
    assert reason.startswith("run.device is 'cuda' but torch finds no CUDA device")
    assert reason.endswith("use --device cpu")
    if torch.version.cuda is None:
        assert "this torch build has no CUDA support: torch.version.cuda is None" in reason
    assert cuda_problem("cuda:1") is not None


def test_cuda_problem_tells_a_cpu_build_from_a_hidden_gpu(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "torch.version.cuda is None" in cuda_problem("cuda")

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    reason = cuda_problem("cuda:0")
    assert "no CUDA device" in reason
    assert "built with CUDA 12.4 but no GPU is visible" in reason
    assert "CUDA_VISIBLE_DEVICES=''" in reason
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert "nvidia-smi" in cuda_problem("cuda")


def test_cuda_problem_names_the_devices_there_are(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cuda_problem("cuda") is None and cuda_problem("cuda:0") is None
    reason = cuda_problem("cuda:3")
    assert "only 1 CUDA device(s)" in reason and "cuda:0 to cuda:0" in reason
    assert "cuda:x" in cuda_problem("cuda:x")


# ---------------------------------------------------------------------------
# The CPU learners against a plain step written out here: bitwise the same.


def _plain_step(net, optimizer, obs, policy, value, value_head):
    logits, value_out = net(obs)
    policy_loss = -(policy * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    if value_head == "wdl":
        value_loss = F.cross_entropy(value_out, (1 - torch.round(value)).long().clamp(0, 2))
    else:
        value_loss = F.mse_loss(value_out, value)
    loss = policy_loss + LearnerConfig().value_loss_weight * value_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss/policy": policy_loss.item(), "loss/value": value_loss.item(),
            "loss/total": loss.item()}


@pytest.mark.parametrize("value_head", ["scalar", "wdl"])
def test_cpu_learner_matches_a_plain_step_bitwise(value_head):
    buffer = _buffer()
    learner = _learner(seed=3, value_head=value_head)
    assert learner.amp_dtype is None and learner.scaler is None
    torch.manual_seed(3)
    net = PolicyValueNet(TTT_SHAPE, TTT_ACTIONS, dataclasses.replace(TINY_NET,
                                                                      value_head=value_head))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2,
                                  weight_decay=LearnerConfig().weight_decay)
    net.train()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(4):
        got = learner.train(buffer, 1, rng_a)
        obs, policy, value = buffer.sample(16, rng_b)
        want = _plain_step(net, optimizer, torch.from_numpy(obs), torch.from_numpy(policy),
                           torch.from_numpy(value), value_head)
        assert got == want | {"learner/steps": 1, "learner/lr": 1e-2}
    for (name, x), y in zip(learner.net.state_dict().items(), net.state_dict().values()):
        assert torch.equal(x, y), name


def test_cpu_muzero_learner_matches_a_plain_step_bitwise():
    replay = _segments()
    learner = _muzero_learner(seed=4)
    assert learner.amp_dtype is None and learner.scaler is None
    # The reference: the same loss function, the tensors made and the step taken by hand.
    torch.manual_seed(4)
    ref = copy.copy(learner)
    ref.net = MuZeroNet(TTT_SHAPE, TTT_ACTIONS, TINY_MZ)
    ref._to_device = lambda v: torch.from_numpy(np.ascontiguousarray(v))
    optimizer = torch.optim.AdamW(ref.net.parameters(), lr=1e-2,
                                  weight_decay=LearnerConfig().weight_decay)
    ref.net.train()
    rng_a, rng_b = np.random.default_rng(6), np.random.default_rng(6)
    for _ in range(3):
        got = learner.train(replay, 1, rng_a)
        total, parts, _ = MuZeroLearner.losses(ref, replay.sample(16, rng_b))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(ref.net.parameters(), 5.0)
        optimizer.step()
        assert got == parts | {"loss/total": float(total.detach()), "learner/steps": 1,
                               "learner/lr": 1e-2}
    for (name, x), y in zip(learner.net.state_dict().items(), ref.net.state_dict().values()):
        assert torch.equal(x, y), name


# ---------------------------------------------------------------------------
# The mixed-precision step, exercised on the CPU (bf16 autocast, a CPU GradScaler).


@pytest.mark.parametrize("make", [_learner, _muzero_learner])
def test_mixed_precision_step_with_loss_scaling_trains(make):
    learner = make()
    learner.amp_dtype = torch.bfloat16
    learner.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    before = _params(learner.net)
    data = _segments() if isinstance(learner, MuZeroLearner) else _buffer()
    stats = learner.train(data, 3, np.random.default_rng(0))
    assert stats["learner/steps"] == 3 and learner.step == 3
    assert all(np.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(learner.net)))
    assert learner.scaler.get_scale() > 0


# ---------------------------------------------------------------------------
# On a CUDA GPU.


@needs_cuda
@pytest.mark.parametrize("make", [_learner, _muzero_learner])
def test_cuda_learner_trains(make):
    learner = make("cuda")
    assert learner.amp_dtype in (torch.bfloat16, torch.float16)
    assert (learner.scaler is not None) == (learner.amp_dtype == torch.float16)
    before = _params(learner.net)
    data = _segments() if isinstance(learner, MuZeroLearner) else _buffer()
    stats = learner.train(data, 3, np.random.default_rng(0))
    assert stats["learner/steps"] == 3
    assert all(np.isfinite(v) for v in stats.values()), stats
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(learner.net)))
    assert all(v.device.type == "cpu" for v in learner.state_dict_cpu().values())


@needs_cuda
def test_cuda_learner_state_loads_into_a_cpu_learner():
    a = _learner("cuda", seed=1)
    a.train(_buffer(), 2, np.random.default_rng(0))
    b = _learner("cpu", seed=2)
    assert b.load_state(a.save_state({"x": 1})) == {"x": 1} and b.step == 2
    b.train(_buffer(), 1, np.random.default_rng(0))
    c = _learner("cuda", seed=3)
    c.load_state(b.save_state({}))
    c.train(_buffer(), 1, np.random.default_rng(0))
    assert c.step == 4


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "torch", "torch_cl"])
def test_cuda_evaluator_matches_cpu(backend):
    torch.manual_seed(0)
    net = PolicyValueNet(TTT_SHAPE, TTT_ACTIONS, dataclasses.replace(TINY_NET, value_head="wdl"))
    net.eval()
    obs = (np.random.default_rng(0).random((32,) + TTT_SHAPE) < 0.4).astype(np.float32)
    mask = np.ones((32, TTT_ACTIONS), bool)
    want_logits, want_value = TorchEvaluator(net).evaluate(obs, mask)
    gpu = make_evaluator(copy.deepcopy(net).cuda(), backend)
    assert isinstance(gpu, TorchEvaluator) and gpu.device.type == "cuda"
    logits, value = gpu.evaluate(obs, mask)
    assert logits.dtype == np.float32 and value.dtype == np.float32
    assert logits.shape == (32, TTT_ACTIONS) and value.shape == (32,)
    np.testing.assert_allclose(logits, want_logits, atol=ATOL)
    np.testing.assert_allclose(value, want_value, atol=ATOL)
    assert next(net.parameters()).device.type == "cpu"


@needs_cuda
def test_cuda_muzero_inference_matches_cpu():
    net = _random_muzero_net()
    rng = np.random.default_rng(0)
    obs = (rng.random((8,) + TTT_SHAPE) < 0.4).astype(np.float32)
    actions = rng.integers(0, TTT_ACTIONS, 8)
    cpu, gpu = MuZeroInference(net), MuZeroInference(net, device="cuda")
    assert next(net.parameters()).device.type == "cpu"  # the caller's net stays put
    want_latent, want_logits, want_value = cpu.initial(obs)
    latent, logits, value = gpu.initial(obs)
    assert latent.device.type == "cuda"
    assert logits.dtype == np.float32 and value.dtype == np.float32
    np.testing.assert_allclose(latent.float().cpu().numpy(), want_latent.numpy(), atol=ATOL)
    np.testing.assert_allclose(logits, want_logits, atol=ATOL)
    np.testing.assert_allclose(value, want_value, atol=ATOL)
    want = cpu.recurrent(want_latent, actions)
    got = gpu.recurrent(latent, actions)
    assert got[0].device.type == "cuda"
    np.testing.assert_allclose(got[0].float().cpu().numpy(), want[0].numpy(), atol=ATOL)
    for g, w in zip(got[1:], want[1:]):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, atol=ATOL)


@needs_cuda
def test_cuda_muzero_search_runs():
    net = _random_muzero_net()
    rng = np.random.default_rng(0)
    obs = (rng.random((4,) + TTT_SHAPE) < 0.4).astype(np.float32)
    mask = np.ones((4, TTT_ACTIONS), bool)
    config = SearchConfig(num_simulations=8, root_mode="puct", discount=-1.0)
    result = run_muzero_search(MuZeroInference(net, device="cuda"), obs, mask, config,
                               value_bounds=(-1.0, 1.0))
    cpu = run_muzero_search(MuZeroInference(net), obs, mask, config, value_bounds=(-1.0, 1.0))
    np.testing.assert_array_equal(result.visits.sum(1), cpu.visits.sum(1))
    np.testing.assert_allclose(result.raw_value, cpu.raw_value, atol=ATOL)
