"""Optimisers and schedules: ScaledAdam with Eden (the Zipformer paper's pair), or AdamW.

ScaledAdam (Yao et al. 2024, sec. 3.5), written from the paper: Adam's normalised direction is
scaled by each parameter tensor's RMS, so an update changes a tensor by a relative amount whatever
its scale, and the tensor's scale itself is learned by a separate Adam on the gradient of a
scalar log-scale. RMS is kept within [min_rms, max_rms]; scalars and vectors of size 1 use plain
Adam. Eden: lr_t = lr * ((t^2 + S^2) / S^2)^-0.25 * ((e^2 + E^2) / E^2)^-0.25 * warmup(t), with
t the step, e the (fractional) epoch and warmup rising linearly from 0.5 to 1 over the first
`warmup_steps`.

Adaptive gradient clipping (icefall egs/librispeech/ASR/zipformer/optim.py, ScaledAdam
`clipping_scale`; Auden's trainer passes 2.0): the whole group's gradient norm is measured after
weighting each tensor's gradient by its RMS (scalars by `scale_lr`), because that is how much the
update moves it. The norms of the last `clipping_update_period` steps are kept; every period (and
early, at steps 10, 20 and 40, with a doubled threshold while the norms settle) the threshold
becomes `clipping_scale` times their median, and a step whose norm exceeds it has its gradient
scaled down to the threshold. A non-finite norm zeroes the gradient. `clipping_scale=None` (the
default) keeps the unclipped optimiser exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["Eden", "ScaledAdam", "build_optimizer"]


_CLIP_DEFAULTS: dict[str, Any] = {"clipping_scale": None, "clipping_update_period": 100}
_EARLY_ESTIMATES = (10, 20, 40)  # steps at which a first threshold is set before a full period


class ScaledAdam(torch.optim.Optimizer):
    """ScaledAdam; see the module docstring. `clipping_scale` (e.g. 2.0) turns on adaptive
    clipping against the median of the last `clipping_update_period` gradient norms."""

    def __init__(
        self, params: Iterable[nn.Parameter], lr: float = 0.045, *, betas: tuple[float, float] = (0.9, 0.98),
        scale_lr: float = 0.1, eps: float = 1e-8, min_rms: float = 1e-5, max_rms: float = 3.0,
        clipping_scale: float | None = None, clipping_update_period: int = 100,
    ) -> None:  # fmt: skip
        defaults = {
            "lr": lr,
            "betas": betas,
            "scale_lr": scale_lr,
            "eps": eps,
            "min_rms": min_rms,
            "max_rms": max_rms,
            "clipping_scale": clipping_scale,
            "clipping_update_period": clipping_update_period,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Optimiser state saved before clipping existed has groups without its keys.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in _CLIP_DEFAULTS.items():
                group.setdefault(key, value)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            factor = self._clip_factor(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                if factor != 1.0:  # 0.0 for a non-finite norm: drop the gradient, not NaN it
                    grad = grad * factor if factor > 0.0 else torch.zeros_like(grad)
                state = self.state[p]
                if "step" not in state:  # (the first tensor's state may hold clipping stats)
                    state["step"] = 0
                    state["m"] = torch.zeros_like(grad)
                    state["v"] = torch.zeros_like(grad)
                    state["scale_m"] = torch.zeros((), device=p.device)
                    state["scale_v"] = torch.zeros((), device=p.device)
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                direction = (state["m"] / (1 - beta1**t)) / (
                    (state["v"] / (1 - beta2**t)).sqrt() + group["eps"]
                )
                if p.numel() == 1:
                    p.add_(
                        direction.to(p.dtype), alpha=-group["lr"] * 0.1
                    )  # scalars: plain Adam, small steps
                    continue
                rms = p.float().pow(2).mean().sqrt().clamp(group["min_rms"], group["max_rms"])
                # The tensor's log-scale: d loss / d log s = sum(grad * p).
                scale_grad = (grad * p.float()).sum()
                state["scale_m"].mul_(beta1).add_(scale_grad, alpha=1 - beta1)
                state["scale_v"].mul_(beta2).addcmul_(scale_grad, scale_grad, value=1 - beta2)
                scale_step = (state["scale_m"] / (1 - beta1**t)) / (
                    (state["scale_v"] / (1 - beta2**t)).sqrt() + group["eps"]
                )
                delta = -group["lr"] * rms * direction
                delta -= (
                    group["lr"] * group["scale_lr"] * scale_step * p.float()
                )  # p *= 1 - lr' * step
                p.add_(delta.to(p.dtype))
                if p.float().pow(2).mean().sqrt() > group["max_rms"]:  # keep the scale bounded
                    p.mul_(group["max_rms"] / p.float().pow(2).mean().sqrt())
        return loss

    def _clip_factor(self, group: dict[str, Any]) -> float:
        """The factor (<= 1) this step's gradients are scaled by; 1.0 without clipping.

        Statistics live in the state of the group's first tensor (so they are saved and resumed
        with the optimiser): `clip_norms` (period,), `clip_count` (norms seen) and
        `clip_threshold` (absent until the first estimate). The median is torch's (the lower of
        the two middle values for an even count)."""
        scale = group["clipping_scale"]
        params = [p for p in group["params"] if p.grad is not None]
        if scale is None or not params or "step" not in self.state[params[0]]:
            return 1.0  # nothing to clip, or the first step (no RMS history yet, as icefall)
        period = int(group["clipping_update_period"])
        first = self.state[group["params"][0]]
        sumsq = torch.zeros((), device=params[0].device)
        for p in params:
            if p.numel() == 1:  # scalars move by lr * scale_lr * direction
                sumsq += (p.grad.float() * group["scale_lr"]).pow(2).sum()
            else:  # tensors move by lr * rms * direction
                rms = p.float().pow(2).mean().sqrt().clamp(group["min_rms"], group["max_rms"])
                sumsq += (p.grad.float() * rms).pow(2).sum()
        norm = sumsq.sqrt()
        if "clip_norms" not in first:
            first["clip_norms"] = torch.zeros(period, device=norm.device)
            first["clip_count"] = 0
        norms: torch.Tensor = first["clip_norms"]
        norms[first["clip_count"] % period] = norm
        first["clip_count"] += 1
        count = first["clip_count"]
        early = count in _EARLY_ESTIMATES and count < period
        if count % period == 0 or early:
            median = float(norms[: min(count, period)].median())
            if median != median or median == float("inf"):
                raise FloatingPointError(
                    f"ScaledAdam clipping: the median of the last {min(count, period)} gradient "
                    "norms is not finite; too many non-finite gradients"
                )
            first["clip_threshold"] = scale * median * (2.0 if early else 1.0)
        if "clip_threshold" not in first:
            return 1.0
        value = float(norm)
        if value != value or value == float("inf"):
            return 0.0
        threshold: float = first["clip_threshold"]
        return min(1.0, threshold / (value + 1e-20))

    def clip_threshold(self, group: int = 0) -> float | None:
        """The current clipping threshold of a parameter group; None before the first estimate."""
        state = self.state.get(self.param_groups[group]["params"][0], {})
        return float(state["clip_threshold"]) if "clip_threshold" in state else None


class Eden(torch.optim.lr_scheduler.LRScheduler):
    """The Eden schedule; call `step()` per batch and `set_epoch(e)` per epoch (fractional is fine)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        lr_steps: float = 7500,
        lr_epochs: float = 3.5,
        warmup_steps: int = 500,
    ) -> None:
        self.lr_steps, self.lr_epochs, self.warmup_steps = lr_steps, lr_epochs, warmup_steps
        self.epoch = 0.0
        super().__init__(optimizer)

    def set_epoch(self, epoch: float) -> None:
        self.epoch = epoch

    def factor(self, step: int) -> float:
        steps = ((step**2 + self.lr_steps**2) / self.lr_steps**2) ** -0.25
        epochs = ((self.epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        warmup = 1.0 if step >= self.warmup_steps else 0.5 + 0.5 * step / self.warmup_steps
        return float(steps * epochs * warmup)

    def get_lr(self) -> list[float | torch.Tensor]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


def build_optimizer(
    model: nn.Module,
    name: str,
    *,
    lr: float | None = None,
    weight_decay: float = 0.01,
    clipping_scale: float | None = None,
    **schedule: Any,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """`scaled_adam` (default lr 0.045) with Eden, or `adamw` (default lr 1e-3) with Eden too.
    `clipping_scale` (scaled_adam only; icefall and Auden use 2.0) turns on adaptive clipping.

    Raises:
        ValueError: an unknown optimiser name.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "scaled_adam":
        optimizer: torch.optim.Optimizer = ScaledAdam(
            params, lr=lr if lr is not None else 0.045, clipping_scale=clipping_scale
        )
    elif name == "adamw":
        optimizer = torch.optim.AdamW(
            params, lr=lr if lr is not None else 1e-3, weight_decay=weight_decay
        )
    else:
        raise ValueError(f"unknown optimiser {name!r}; choose scaled_adam or adamw")
    return optimizer, Eden(optimizer, **schedule)
