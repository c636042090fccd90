"""Tests for engine.evaluator: backends agree, edge batch sizes, errors."""

import numpy as np
import pytest
import torch

from engine.evaluator import (
    BACKENDS,
    Evaluator,
    OnnxEvaluator,
    TorchEvaluator,
    UniformEvaluator,
    make_evaluator,
)
from engine.networks import NetworkConfig, PolicyValueNet, scalar_value

OBS_SHAPE = (3, 6, 7)
NUM_ACTIONS = 7


def _net(value_head: str = "scalar", seed: int = 0) -> PolicyValueNet:
    torch.manual_seed(seed)
    net = PolicyValueNet(OBS_SHAPE, NUM_ACTIONS,
                         NetworkConfig(blocks=2, channels=16, value_head=value_head,
                                       value_hidden=16))
    # Non-trivial BatchNorm statistics, so that export mistakes in BN show up.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def _batch(b: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = (rng.random((b, *OBS_SHAPE)) < 0.3).astype(np.float32)
    mask = rng.random((b, NUM_ACTIONS)) < 0.7
    return obs, mask


@pytest.fixture(scope="module", params=["scalar", "wdl"])
def evaluators(request):
    net = _net(request.param)
    return net, TorchEvaluator(net), OnnxEvaluator(net, threads=1)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_onnx_matches_torch(evaluators, batch):
    net, torch_ev, onnx_ev = evaluators
    obs, mask = _batch(batch)
    lt, vt = torch_ev.evaluate(obs, mask)
    lo, vo = onnx_ev.evaluate(obs, mask)
    assert lo.shape == (batch, NUM_ACTIONS) and vo.shape == (batch,)
    assert lo.dtype == np.float32 and vo.dtype == np.float32
    np.testing.assert_allclose(lo, lt, atol=1e-4, rtol=0)
    np.testing.assert_allclose(vo, vt, atol=1e-4, rtol=0)
    assert np.all(np.abs(vo) <= 1.0)


def test_torch_evaluator_matches_network(evaluators):
    net, torch_ev, _ = evaluators
    obs, mask = _batch(5)
    with torch.no_grad():
        policy, value_out = net(torch.from_numpy(obs))
        value = scalar_value(value_out, net.config.value_head)
    logits, v = torch_ev.evaluate(obs, mask)
    np.testing.assert_allclose(logits, policy.numpy(), atol=1e-6)
    np.testing.assert_allclose(v, value.numpy(), atol=1e-6)


def test_logits_are_raw_not_masked(evaluators):
    _, torch_ev, onnx_ev = evaluators
    obs, _ = _batch(4)
    all_legal = np.ones((4, NUM_ACTIONS), bool)
    none_legal = np.zeros((4, NUM_ACTIONS), bool)
    for ev in (torch_ev, onnx_ev):
        np.testing.assert_array_equal(ev.evaluate(obs, all_legal)[0],
                                      ev.evaluate(obs, none_legal)[0])


@pytest.mark.parametrize("backend", ["torch", "torch_cl", "onnx", "auto"])
def test_empty_batch(backend):
    ev = make_evaluator(_net(), backend)
    logits, value = ev.evaluate(np.zeros((0, *OBS_SHAPE), np.float32),
                                np.zeros((0, NUM_ACTIONS), bool))
    assert logits.shape == (0, NUM_ACTIONS) and logits.dtype == np.float32
    assert value.shape == (0,) and value.dtype == np.float32


def test_channels_last_matches_torch():
    net = _net()
    obs, mask = _batch(9)
    lt, vt = TorchEvaluator(net).evaluate(obs, mask)
    lc, vc = make_evaluator(net, "torch_cl").evaluate(obs, mask)
    np.testing.assert_allclose(lc, lt, atol=1e-5)
    np.testing.assert_allclose(vc, vt, atol=1e-5)


def test_evaluator_snapshots_weights_and_keeps_train_mode():
    net = _net().train()
    ev = make_evaluator(net, "torch")
    obs, mask = _batch(3)
    before = ev.evaluate(obs, mask)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    after = ev.evaluate(obs, mask)
    assert net.training
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_uniform_evaluator():
    ev = UniformEvaluator(NUM_ACTIONS)
    assert isinstance(ev, Evaluator)
    for b in (0, 1, 13):
        obs, mask = _batch(b)
        logits, value = ev.evaluate(obs, mask)
        assert logits.shape == (b, NUM_ACTIONS) and logits.dtype == np.float32
        assert value.shape == (b,) and value.dtype == np.float32
        assert not logits.any() and not value.any()
    with pytest.raises(ValueError, match="num_actions"):
        UniformEvaluator(0)


def test_evaluators_satisfy_protocol(evaluators):
    _, torch_ev, onnx_ev = evaluators
    assert isinstance(torch_ev, Evaluator) and isinstance(onnx_ev, Evaluator)


def test_bad_shapes_rejected(evaluators):
    _, torch_ev, onnx_ev = evaluators
    obs, mask = _batch(2)
    for ev in (torch_ev, onnx_ev):
        with pytest.raises(ValueError, match="obs"):
            ev.evaluate(obs[:, :2], mask)
        with pytest.raises(ValueError, match="mask"):
            ev.evaluate(obs, mask[:, :3])


def test_unknown_backend_names_valid_ones():
    with pytest.raises(ValueError, match="'tensorrt'.*onnx.*torch_cl.*compile"):
        make_evaluator(_net(), "tensorrt")
    assert set(BACKENDS) == {"auto", "onnx", "torch", "torch_cl", "torch_bf16", "compile"}


def test_float64_input_is_accepted():
    net = _net()
    obs, mask = _batch(3)
    l32, v32 = make_evaluator(net, "onnx").evaluate(obs, mask)
    l64, v64 = make_evaluator(net, "onnx").evaluate(obs.astype(np.float64), mask)
    np.testing.assert_array_equal(l32, l64)
    np.testing.assert_array_equal(v32, v64)


def test_compile_backend_builds_lazily():
    # Compiling takes tens of seconds on a CPU, so only construction is tested;
    # bench_inference exercises the compiled path.
    ev = make_evaluator(_net(), "compile")
    assert isinstance(ev, TorchEvaluator)
    assert type(ev._net).__name__ == "OptimizedModule"


def test_auto_runs_a_measured_candidate_that_agrees_with_torch():
    from engine.backend_choice import candidates

    net = _net()
    ev = make_evaluator(net, "auto", batch=8)
    assert ev.backend in candidates() and ev.choice.backend == ev.backend
    assert set(ev.choice.rates) == set(candidates())
    obs, mask = _batch(8)
    logits, value = ev.evaluate(obs, mask)
    ref_logits, ref_value = make_evaluator(net, "torch").evaluate(obs, mask)
    tol = 3e-2 if ev.backend == "torch_bf16" else 1e-4
    np.testing.assert_allclose(logits, ref_logits, atol=tol)
    np.testing.assert_allclose(value, ref_value, atol=tol)


def test_bf16_backend_is_close_to_fp32_and_returns_float32():
    net = _net("wdl")
    obs, mask = _batch(16)
    logits, value = make_evaluator(net, "torch_bf16").evaluate(obs, mask)
    ref_logits, ref_value = make_evaluator(net, "torch").evaluate(obs, mask)
    assert logits.dtype == np.float32 and value.dtype == np.float32
    # bf16 keeps 8 mantissa bits: relative error up to ~0.4% per operation.
    np.testing.assert_allclose(logits, ref_logits, atol=0.05)
    np.testing.assert_allclose(value, ref_value, atol=0.05)
    assert not np.array_equal(logits, ref_logits)  # it really ran in bf16
