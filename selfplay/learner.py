"""The learner: policy cross-entropy + value loss + decoupled weight decay.

Its optimiser and random state round-trip through safetensors (tensors) and
JSON (everything else), so a killed run resumes exactly where its last
checkpoint left it.

On a CUDA device the forward pass and the losses run under autocast (bf16
where the GPU supports it, else fp16 with a GradScaler) and batches are copied
from pinned host memory without blocking. On the CPU nothing of this happens:
float32 throughout, the same numbers as ever.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from checkpoints import strict_json
from games.base import parse_count
from engine.evaluator import host_to_device
from engine.networks import NetworkConfig, PolicyValueNet
from selfplay.config import LearnerConfig


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training on `device`: None (float32) off CUDA.

    bf16 where the GPU has it natively (compute capability 8.0, Ampere, and
    later; ROCm): fp32's range, so no loss scaling. Else fp16 with a
    GradScaler. Not torch.cuda.is_bf16_supported(): by default it also says
    yes where bf16 is only emulated, slower than fp16 (T4, V100).
    """
    if device.type != "cuda":
        return None
    if torch.version.hip or torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16


def scheduled_lr(config: LearnerConfig, progress: float) -> float:
    """The learning rate at `progress` (0 to 1) of the budget: constant, or a half cosine
    from learning_rate down to lr_final * learning_rate."""
    if config.lr_schedule != "cosine":
        return config.learning_rate
    p = min(max(progress, 0.0), 1.0)
    low = config.lr_final * config.learning_rate
    return low + (config.learning_rate - low) * 0.5 * (1.0 + math.cos(math.pi * p))


class Learner:
    """Trains a PolicyValueNet from replay samples.

    Attributes:
      amp_dtype: autocast dtype on CUDA (bf16 or fp16), None on the CPU.
      scaler: the GradScaler of fp16 training, else None. Not saved by
        `save_state`: a resumed run starts again from the default scale,
        which settles within a few (skipped) steps, and checkpoints stay
        the same for every device.
    """

    def __init__(self, game, network: NetworkConfig, config: LearnerConfig,
                 device: str = "cpu"):
        self.game = game
        self.config = config
        self.network_config = network
        self.device = torch.device(device)
        self.net = self._build_net(network).to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.amp_dtype = amp_dtype(self.device)
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16
                       else None)
        self.step = 0
        self.ema_net: torch.nn.Module | None = None
        """The weights' moving average (learner.ema_decay > 0): what plays and is saved."""
        self.aux_heads = bool(getattr(network, "aux_heads", False))
        """Whether the network has ownership and score heads to train (AlphaZero, Go)."""
        if self.aux_heads and not game.info.territory:
            raise ValueError(f"network.aux_heads needs a game that records territory "
                             f"(Go); {game.info.name} does not")
        if config.ema_decay > 0 and type(self) is Learner:
            self.ema_net = copy.deepcopy(self.net).eval()
            self.ema_net.requires_grad_(False)

    @property
    def playing_net(self) -> torch.nn.Module:
        """The network self-play and checkpoints use: the average if there is one."""
        return self.ema_net if self.ema_net is not None else self.net

    def _update_ema(self) -> None:
        decay = self.config.ema_decay
        with torch.no_grad():
            for avg, raw in zip(self.ema_net.parameters(), self.net.parameters()):
                avg.lerp_(raw, 1.0 - decay)
            for avg, raw in zip(self.ema_net.buffers(), self.net.buffers()):
                avg.copy_(raw)  # batch-norm statistics and counts: the latest

    def _build_net(self, network: NetworkConfig) -> torch.nn.Module:
        info = self.game.info
        return PolicyValueNet(tuple(info.observation_shape), info.num_actions, network)

    def _autocast(self):
        """Autocast for the forward pass and losses; a no-op on the CPU."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the learner's device (see host_to_device)."""
        return host_to_device(array, self.device)

    def _optimize(self, loss: torch.Tensor, clip_norm: float | None = None) -> None:
        """Backward pass and one optimiser step (loss-scaled for fp16); counts the step."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip_norm)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if clip_norm is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip_norm)
            self.scaler.step(self.optimizer)  # skipped if a gradient is inf/nan
            self.scaler.update()
        self.step += 1

    def _augment(self, obs, policy, rng, ownership=None):
        """Random symmetries of obs float32[N, C, H, W] and policy float32[N, A], and of
        ownership float32[N, H*W] if given (moved as one more observation plane)."""
        k_max = self.game.info.num_symmetries
        if not self.config.augment or k_max <= 1:
            return obs, policy, ownership
        if ownership is not None:
            obs = np.concatenate([obs, ownership.reshape(len(obs), 1, *obs.shape[-2:])], 1)
        ks = rng.integers(0, k_max, size=len(obs))
        for k in range(1, k_max):
            rows = np.flatnonzero(ks == k)
            if len(rows):
                obs[rows], policy[rows] = self.game.apply_symmetry(k, obs[rows], policy[rows])
        if ownership is not None:
            obs, ownership = obs[:, :-1], obs[:, -1].reshape(len(obs), -1)
        return obs, policy, ownership

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train(self, replay, steps: int, rng: np.random.Generator,
              should_stop=lambda: False, recent: int = 0) -> dict[str, float]:
        """Runs up to `steps` gradient steps on the window (its `recent` newest positions,
        if > 0); returns mean losses. Blocks."""
        self.net.train()
        totals = {"loss/policy": 0.0, "loss/value": 0.0, "loss/total": 0.0}
        if self.aux_heads:
            totals.update({"loss/ownership": 0.0, "loss/score": 0.0})
        done = 0
        for _ in range(steps):
            if should_stop():
                break
            batch = replay.sample_batch(self.config.batch_size, rng, recent)
            ownership = batch.get("ownership") if self.aux_heads else None
            obs, policy, ownership = self._augment(batch["obs"], batch["policy"], rng,
                                                   ownership)
            aux = None
            if ownership is not None:
                side = math.sqrt(ownership.shape[1])
                aux = (self._to_device(np.ascontiguousarray(ownership)),
                       self._to_device(batch["score"] / np.float32(side)),
                       self._to_device(batch["has_territory"].astype(np.float32)))
            losses = self._step(self._to_device(np.ascontiguousarray(obs)),
                                self._to_device(policy), self._to_device(batch["value"]), aux)
            if self.ema_net is not None:
                self._update_ema()
            for key, v in losses.items():
                totals[key] += v
            done += 1
        return {k: v / max(done, 1) for k, v in totals.items()} | {
            "learner/steps": done, "learner/lr": self.optimizer.param_groups[0]["lr"]}

    def _step(self, obs, target_policy, target_value, aux=None) -> dict[str, float]:
        """One gradient step; aux: (ownership float32[N, H*W] in [-1, 1] from the
        mover's side, score float32[N] in points per board side, weight float32[N] 1
        where the position has them) for a network with auxiliary heads."""
        with self._autocast():
            if aux is None:
                logits, value_out = self.net(obs)
            else:
                logits, value_out, own_logits, score_out = self.net.forward_aux(obs)
            # Under autocast log_softmax, cross_entropy and mse_loss run in float32.
            policy_loss = -(target_policy * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            if self.network_config.value_head == "wdl" and not self.config.value_target_q:
                # Outcome +1 / 0 / -1 -> class win 0 / draw 1 / loss 2.
                classes = (1 - torch.round(target_value)).long().clamp(0, 2)
                value_loss = F.cross_entropy(value_out, classes)
            elif self.network_config.value_head == "wdl":
                # A q/z mix v -> (win, draw, loss) = (max(v, 0), 1 - |v|, max(-v, 0)): the
                # distribution of expectation v nearest an outcome (one class at +1, 0, -1).
                v = target_value.float().clamp(-1.0, 1.0)
                soft = torch.stack([v.clamp(min=0.0), 1.0 - v.abs(), (-v).clamp(min=0.0)], 1)
                value_loss = -(soft * F.log_softmax(value_out.float(), dim=1)).sum(1).mean()
            else:
                value_loss = F.mse_loss(value_out, target_value)
            loss = policy_loss + self.config.value_loss_weight * value_loss
            extra = {}
            if aux is not None:
                own_loss, score_loss = self._aux_losses(own_logits, score_out, *aux)
                loss = loss + self.config.ownership_weight * own_loss \
                    + self.config.score_weight * score_loss
                extra = {"loss/ownership": own_loss.item(), "loss/score": score_loss.item()}
        self._optimize(loss)
        return {"loss/policy": policy_loss.item(), "loss/value": value_loss.item(),
                "loss/total": loss.item()} | extra

    @staticmethod
    def _aux_losses(own_logits, score_out, ownership, score, weight):
        """Ownership: binary cross-entropy per point against (1 + ownership) / 2 (a
        neutral point is 1/2), averaged over the board; score: Huber (delta 1). Both
        averaged over the positions that have them (weight 1)."""
        count = weight.sum().clamp(min=1.0)
        own = F.binary_cross_entropy_with_logits(
            own_logits.float(), (1.0 + ownership) / 2.0, reduction="none").mean(dim=1)
        sc = F.huber_loss(score_out.float(), score, reduction="none", delta=1.0)
        return (own * weight).sum() / count, (sc * weight).sum() / count

    def state_dict_cpu(self) -> dict[str, torch.Tensor]:
        """The playing network's weights (the average, if kept) on the CPU."""
        return _cpu(self.playing_net)

    def load_playing_weights(self, state_dict: dict) -> None:
        """A checkpoint's weights into the playing network (RuntimeError if they don't fit)."""
        self.playing_net.load_state_dict(state_dict)

    def save_state(self, extra: dict) -> bytes:
        """Optimiser state, torch RNG and `extra` (JSON-able) as safetensors bytes."""
        opt = self.optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
        if self.ema_net is not None:  # checkpoints hold the average; the raw weights here
            tensors.update({f"weights/{k}": v for k, v in _cpu(self.net).items()})
        scalars: dict[str, dict] = {}
        for index, slots in opt["state"].items():
            for key, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"opt/{index}/{key}"] = value.detach().to("cpu").contiguous()
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta = {"param_groups": opt["param_groups"], "scalars": scalars,
                "step": self.step, "extra": extra}
        return st_save(tensors, metadata={"learner": json.dumps(meta)})

    def load_state(self, data: bytes) -> dict:
        """Restores what `save_state` wrote; returns its `extra`.

        The data is checked whole before anything is restored: the optimiser's
        tensors must fit this network's parameters and be finite, its groups
        hold the current groups' parameters and settings of the same kinds, the
        random state be torch's.

        Raises:
          ValueError: damaged or crafted data, or the state of another network,
            saying what is wrong; the learner is left unchanged.
        """
        tensors, meta = _read_state(data)
        weights = {k.removeprefix("weights/"): tensors.pop(k) for k in list(tensors)
                   if k.startswith("weights/")}
        if (self.ema_net is not None) != bool(weights):
            raise ValueError("the raw weights of a moving-average run are missing" if weights
                             == {} else "raw weights saved, but this learner keeps no average")
        state = self._optimizer_state(tensors, meta["scalars"])
        groups = self._param_groups(meta["param_groups"])
        rng, now = tensors.get("rng/torch"), torch.get_rng_state()
        if rng is None or rng.dtype != now.dtype or rng.shape != now.shape:
            raise ValueError("the torch random state is missing or malformed")
        if weights:
            try:
                self.net.load_state_dict(weights)
            except RuntimeError as e:
                raise ValueError(f"the raw weights do not fit this network "
                                 f"({str(e).splitlines()[0]})") from None
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(rng)
        self.step = meta["step"]
        return meta["extra"]

    def _optimizer_state(self, tensors: dict, scalars) -> dict[int, dict]:
        """The optimiser's per-parameter state from `opt/INDEX/KEY` tensors and JSON scalars."""
        params = list(self.net.parameters())
        state: dict[int, dict] = {}
        for name, value in tensors.items():
            if name == "rng/torch":
                continue
            parts = name.split("/")
            if len(parts) != 3 or parts[0] != "opt" or not parts[2]:
                raise ValueError(f"unexpected tensor {name!r}")
            index, key = _param_index(parts[1], len(params), name), parts[2]
            shape = () if key == "step" else tuple(params[index].shape)
            if tuple(value.shape) != shape or not value.is_floating_point():
                raise ValueError(f"optimiser tensor {name!r} is {value.dtype} of shape "
                                 f"{tuple(value.shape)}, expected float of shape {shape}")
            if not torch.isfinite(value).all():
                raise ValueError(f"optimiser tensor {name!r} holds NaN or infinite values")
            # Left on the CPU: load_state_dict moves each slot to its parameter's
            # device, and keeps Adam's `step` on the CPU as Adam itself does
            # (moving it to CUDA costs a sync per step).
            state.setdefault(index, {})[key] = value
        if not isinstance(scalars, dict):
            raise ValueError("optimiser scalars are not a JSON object")
        for index, slots in scalars.items():
            if not isinstance(slots, dict) or not all(
                    _same_kind(v, 0.0) or v is None or isinstance(v, (bool, str))
                    for v in slots.values()):
                raise ValueError(f"optimiser scalars of parameter {index!r} are malformed")
            state.setdefault(_param_index(index, len(params), "scalars"), {}).update(slots)
        return state

    def _param_groups(self, groups) -> list[dict]:
        """The saved optimiser groups, checked against the current ones."""
        current = self.optimizer.state_dict()["param_groups"]
        if not isinstance(groups, list) or len(groups) != len(current):
            raise ValueError(f"expected {len(current)} optimiser parameter group(s), got "
                             f"{groups!r:.80}")
        for saved, now in zip(groups, current):
            if not isinstance(saved, dict) or saved.get("params") != now["params"]:
                raise ValueError("optimiser parameter groups do not match this network")
            for key, value in saved.items():
                if key in now and key != "params" and not _same_kind(value, now[key]):
                    raise ValueError(f"optimiser setting {key} = {value!r:.40} is not like "
                                     f"{now[key]!r}")
        return groups


def _cpu(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def _read_state(data: bytes) -> tuple[dict, dict]:
    """The tensors and the learner's JSON of a saved state; ValueError if malformed."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    if not 2 <= n <= len(data) - 8:
        raise ValueError("not a safetensors file (bad header length)")
    try:
        meta = strict_json(strict_json(data[8:8 + n])["__metadata__"]["learner"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"no readable learner state in the header ({e or type(e).__name__})") \
            from None
    if not isinstance(meta, dict) or not all(k in meta for k in (
            "param_groups", "scalars", "step", "extra")):
        raise ValueError("the learner state lacks param_groups, scalars, step or extra")
    if isinstance(meta["step"], bool) or not isinstance(meta["step"], int) or meta["step"] < 0:
        raise ValueError(f"learner step must be a non-negative int, got {meta['step']!r:.40}")
    if not isinstance(meta["extra"], dict):
        raise ValueError("the learner state's extra is not a JSON object")
    try:
        tensors = st_load(data)
    except Exception as e:  # noqa: BLE001 (a parser of untrusted bytes; it reads data only)
        raise ValueError(f"not a readable safetensors file ({str(e).strip()[:200] or e!r})") \
            from None
    return tensors, meta


def _param_index(text, count: int, where: str) -> int:
    """A parameter index written as decimal digits, below `count`; else ValueError."""
    index = parse_count(text, count) if isinstance(text, str) else None
    if index is None:
        raise ValueError(f"{where}: {text!r:.40} is not a parameter index below {count}")
    return index


def _same_kind(value, like) -> bool:
    """Whether a JSON value can stand for the optimiser setting `like` (finite, >= 0)."""
    if isinstance(like, bool) or like is None:
        return isinstance(value, bool) or value is None
    if isinstance(like, (int, float)):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0)
    if isinstance(like, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(like)
                and all(_same_kind(v, w) for v, w in zip(value, like)))
    return type(value) is type(like)
