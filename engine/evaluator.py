"""Batched position evaluators: the only way the search reaches a network.

An `Evaluator` maps a batch of observations and legal masks to raw policy
logits and a scalar value. The search applies the mask itself, so logits of
illegal actions are returned as the network computed them. Values are from
the point of view of the player to move, in [-1, 1].

Backends (`tabula bench inference` times them all):
  * 'onnx'       - the network exported to ONNX, run by onnxruntime (CPU).
  * 'torch'      - eager PyTorch under inference_mode.
  * 'torch_cl'   - eager PyTorch with channels_last memory format.
  * 'torch_bf16' - torch_cl under bf16 autocast on the CPU: fast only where
                   the CPU has native bf16 (AVX512_BF16, AMX); outputs differ
                   from fp32 in the third significant digit.
  * 'compile'    - torch.compile (inductor); the first call of each new batch
                   shape compiles for tens of seconds on a CPU.
  * 'auto'       - on the CPU, the fastest candidate measured on this machine
                   at the caller's batch size (engine.backend_choice, cached
                   per machine); torch for a CUDA net.

Every evaluator snapshots the network at construction (a deep copy in eval
mode), so training the original afterwards does not change it; build a new
evaluator to pick up new weights.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings

import numpy as np
import torch
from torch import nn

from engine.networks import PolicyValueNet, ScalarValueNet
from engine.search import Evaluator  # the one protocol; search itself must not import torch

BACKENDS = ("auto", "onnx", "torch", "torch_cl", "torch_bf16", "compile")
DEFAULT_AUTO_BATCH = 32
"""The batch 'auto' measures at when the caller does not say."""
ONNX_OPSET = 17
CUDA_INFERENCE_DTYPE = torch.float16
"""Autocast dtype of inference on CUDA. fp16 rather than bf16: 3 more mantissa
bits, and inference has no gradients to overflow; BatchNorm keeps activations
far below fp16's 65504."""


def _check_batch(obs: np.ndarray, mask: np.ndarray, obs_shape: tuple[int, ...] | None,
                 num_actions: int) -> np.ndarray:
    """Validates shapes; returns obs as a C-contiguous float32 array."""
    obs = np.ascontiguousarray(obs, dtype=np.float32)
    if obs_shape is not None and tuple(obs.shape[1:]) != tuple(obs_shape):
        raise ValueError(
            f"obs must have shape [B, {', '.join(map(str, obs_shape))}], got {obs.shape}")
    if mask.shape != (obs.shape[0], num_actions):
        raise ValueError(
            f"mask must have shape [{obs.shape[0]}, {num_actions}], got {mask.shape}")
    return obs


def _empty(num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, num_actions), np.float32), np.zeros((0,), np.float32)


class UniformEvaluator:
    """Zero logits (a uniform prior over legal moves) and zero value.

    For tests and for benchmarks of the search without a network.
    """

    def __init__(self, num_actions: int, obs_shape: tuple[int, ...] | None = None):
        if num_actions <= 0:
            raise ValueError(f"num_actions must be positive, got {num_actions}")
        self.num_actions = int(num_actions)
        self.obs_shape = None if obs_shape is None else tuple(obs_shape)

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See Evaluator.evaluate; returns zeros float32[B, A] and float32[B]."""
        obs = _check_batch(obs, mask, self.obs_shape, self.num_actions)
        b = obs.shape[0]
        return np.zeros((b, self.num_actions), np.float32), np.zeros((b,), np.float32)


def _snapshot(net: PolicyValueNet) -> PolicyValueNet:
    """A deep copy of `net` in eval mode with gradients off."""
    if not isinstance(net, PolicyValueNet):
        raise TypeError(f"expected a PolicyValueNet, got {type(net).__name__}")
    snap = copy.deepcopy(net).eval()
    snap.requires_grad_(False)
    return snap


def host_to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor on `device`, sharing memory on the CPU.

    To CUDA the copy goes through pinned memory and does not block the host;
    work queued after it on the current stream sees the data. Elsewhere this
    is torch.from_numpy(...).to(device), nothing more.
    """
    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def inference_autocast(device: torch.device):
    """Autocast to CUDA_INFERENCE_DTYPE on a CUDA device; a no-op context elsewhere."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=CUDA_INFERENCE_DTYPE)


class TorchEvaluator:
    """Runs a PolicyValueNet with PyTorch under inference_mode.

    Runs on the device the network's parameters are on (CPU by default);
    inputs and outputs are NumPy arrays on the host. On CUDA the network runs
    under autocast (CUDA_INFERENCE_DTYPE) and the outputs come back float32.

    Args:
      net: the network; a snapshot is taken.
      channels_last: convert weights and inputs to channels_last memory format.
      compile: wrap the network with torch.compile (slow first call per shape).
      bf16: on the CPU, run under bf16 autocast (outputs come back float32).
    """

    def __init__(self, net: PolicyValueNet, channels_last: bool = False,
                 compile: bool = False, bf16: bool = False):
        snap = _snapshot(net)
        self.obs_shape = snap.obs_shape
        self.num_actions = snap.num_actions
        self.channels_last = channels_last
        self.device = next(snap.parameters()).device
        self.bf16 = bool(bf16) and self.device.type == "cpu"
        if channels_last:
            snap = snap.to(memory_format=torch.channels_last)
        self._net: nn.Module = ScalarValueNet(snap).eval()
        if compile:
            with warnings.catch_warnings():
                # torch's own imports on first use of torch.compile warn about jit.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._net = torch.compile(self._net)

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See Evaluator.evaluate. Blocks until the batch is done."""
        obs = _check_batch(obs, mask, self.obs_shape, self.num_actions)
        if obs.shape[0] == 0:
            return _empty(self.num_actions)
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16
                    else inference_autocast(self.device))
        with torch.inference_mode(), autocast:
            x = host_to_device(obs, self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits, value = self._net(x)
            logits = logits.float().cpu().numpy()
            value = value.float().cpu().numpy()
        return np.ascontiguousarray(logits), np.ascontiguousarray(value)


def export_onnx(net: PolicyValueNet) -> bytes:
    """Exports `net` (scalar value output) to an in-memory ONNX model.

    The graph has input 'obs' float32[B, C, H, W] and outputs 'logits'
    float32[B, A] and 'value' float32[B] (for 'wdl' nets, P(win) - P(loss)
    computed inside the graph), with a dynamic batch axis B.

    Uses the TorchScript exporter (dynamo=False): the dynamo exporter needs
    onnxscript, which is not a dependency, and this one exports in well under
    a second.
    """
    wrapped = ScalarValueNet(_snapshot(net).cpu()).eval()
    dummy = torch.zeros((2, *net.obs_shape), dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo; see docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            wrapped, (dummy,), buf,
            dynamo=False,
            input_names=["obs"],
            output_names=["logits", "value"],
            dynamic_axes={"obs": {0: "batch"}, "logits": {0: "batch"},
                          "value": {0: "batch"}},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )
    return buf.getvalue()


class OnnxEvaluator:
    """Runs a PolicyValueNet exported to ONNX with onnxruntime on the CPU.

    Args:
      net: the network; exported once at construction.
      threads: onnxruntime intra-op threads; default os.cpu_count().
      spin: let idle worker threads busy-wait for the next call. Off by
        default: spinning threads take the CPU from the search kernels and
        other processes. Measured on a loaded 2-core machine: spinning was
        ~25-40% slower at batches 1-32 and ~15% faster at 128-512.
    """

    def __init__(self, net: PolicyValueNet, threads: int | None = None,
                 spin: bool = False):
        import onnxruntime as ort  # Imported here: only this backend needs it.

        self.obs_shape = net.obs_shape
        self.num_actions = net.num_actions
        self.onnx_model = export_onnx(net)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if spin else "0")
        self._session = ort.InferenceSession(
            self.onnx_model, sess_options=options, providers=["CPUExecutionProvider"])

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See Evaluator.evaluate. Blocks until the batch is done."""
        obs = _check_batch(obs, mask, self.obs_shape, self.num_actions)
        if obs.shape[0] == 0:
            return _empty(self.num_actions)
        logits, value = self._session.run(["logits", "value"], {"obs": obs})
        return (np.ascontiguousarray(logits, dtype=np.float32),
                np.ascontiguousarray(value, dtype=np.float32))


def build_evaluator(net: PolicyValueNet, backend: str, threads: int | None = None) -> Evaluator:
    """Builds an evaluator for `net` with one named backend (not 'auto').

    Raises:
      ValueError: unknown backend, or 'auto'.
    """
    if backend not in BACKENDS or backend == "auto":
        raise ValueError(f"unknown evaluator backend {backend!r}; valid: "
                         f"{', '.join(b for b in BACKENDS if b != 'auto')}")
    if backend == "onnx":
        ev = OnnxEvaluator(net, threads=threads)
    else:
        ev = TorchEvaluator(net, channels_last=backend in ("torch_cl", "torch_bf16"),
                            compile=(backend == "compile"), bf16=(backend == "torch_bf16"))
    ev.backend = backend
    return ev


def make_evaluator(net: PolicyValueNet, backend: str = "auto",
                   threads: int | None = None, batch: int | None = None) -> Evaluator:
    """Builds an evaluator for `net` with the named backend.

    Args:
      net: the network (snapshotted; later training does not affect the evaluator).
      backend: one of BACKENDS; 'auto' on the CPU picks the fastest candidate
        measured here at `batch` (engine.backend_choice; the first call per
        network shape and batch measures for about a second, later ones read
        the cache), and torch for a CUDA network.
      threads: onnxruntime intra-op threads (onnx only); default os.cpu_count().
      batch: the batch size the caller will mostly send ('auto' only; default
        DEFAULT_AUTO_BATCH).
    The evaluator's `backend` attribute names the backend it runs; after
    'auto' on the CPU its `choice` attribute holds the measurement.
    Raises:
      ValueError: unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown evaluator backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend != "auto":
        return build_evaluator(net, backend, threads)
    if next(net.parameters()).device.type != "cpu":
        return build_evaluator(net, "torch", threads)  # onnxruntime here is CPU-only
    from engine.backend_choice import choose_backend

    choice = choose_backend(net, batch or DEFAULT_AUTO_BATCH, build_evaluator, threads)
    ev = build_evaluator(net, choice.backend, threads)
    ev.choice = choice
    return ev


def cuda_problem(device: str) -> str | None:
    """Why torch cannot run on `device` here, in one line, or None if it can.

    Only 'cuda' and 'cuda:N' are checked; any other device gives None. The
    reason tells a CPU-only torch build from a CUDA build that sees no GPU,
    and names the devices there are when N is out of range.
    """
    kind, _, index = str(device).partition(":")
    if kind != "cuda":
        return None
    if index and not index.isdigit():
        return f"run.device {device!r} is not a device: use cpu, cuda or cuda:N"
    start = f"run.device is {device!r} but torch finds no CUDA device"
    fix = "; use --device cpu"
    if torch.version.cuda is None:
        return (f"{start} (this torch build has no CUDA support: torch.version.cuda is "
                f"None; torch {torch.__version__}){fix}")
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = (f"CUDA_VISIBLE_DEVICES={visible!r}?" if visible is not None
                else "is the NVIDIA driver loaded? see nvidia-smi")
        return (f"{start} (torch was built with CUDA {torch.version.cuda} but no GPU is "
                f"visible: {hint}){fix}")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        return (f"run.device is {device!r} but torch sees only {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}; use one of those")
    return None


__all__ = [
    "BACKENDS",
    "DEFAULT_AUTO_BATCH",
    "CUDA_INFERENCE_DTYPE",
    "Evaluator",
    "OnnxEvaluator",
    "TorchEvaluator",
    "UniformEvaluator",
    "build_evaluator",
    "cuda_problem",
    "export_onnx",
    "host_to_device",
    "inference_autocast",
    "make_evaluator",
]
