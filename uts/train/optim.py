"""Optimisers and schedules: ScaledAdam with Eden (the Zipformer paper's pair), or AdamW.

ScaledAdam (Yao et al. 2024, sec. 3.5), written from the paper: Adam's normalised direction is
scaled by each parameter tensor's RMS, so an update changes a tensor by a relative amount whatever
its scale, and the tensor's scale itself is learned by a separate Adam on the gradient of a
scalar log-scale. RMS is kept within [min_rms, max_rms]; scalars and vectors of size 1 use plain
Adam. Eden: lr_t = lr * ((t^2 + S^2) / S^2)^-0.25 * ((e^2 + E^2) / E^2)^-0.25 * warmup(t), with
t the step, e the (fractional) epoch and warmup rising linearly from 0.5 to 1 over the first
`warmup_steps`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["Eden", "ScaledAdam", "build_optimizer"]


class ScaledAdam(torch.optim.Optimizer):
    def __init__(
        self, params: Iterable[nn.Parameter], lr: float = 0.045, *, betas: tuple[float, float] = (0.9, 0.98),
        scale_lr: float = 0.1, eps: float = 1e-8, min_rms: float = 1e-5, max_rms: float = 3.0,
    ) -> None:  # fmt: skip
        defaults = {
            "lr": lr,
            "betas": betas,
            "scale_lr": scale_lr,
            "eps": eps,
            "min_rms": min_rms,
            "max_rms": max_rms,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                if not state:
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
    **schedule: Any,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """`scaled_adam` (default lr 0.045) with Eden, or `adamw` (default lr 1e-3) with Eden too.

    Raises:
        ValueError: an unknown optimiser name.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "scaled_adam":
        optimizer: torch.optim.Optimizer = ScaledAdam(params, lr=lr if lr is not None else 0.045)
    elif name == "adamw":
        optimizer = torch.optim.AdamW(
            params, lr=lr if lr is not None else 1e-3, weight_decay=weight_decay
        )
    else:
        raise ValueError(f"unknown optimiser {name!r}; choose scaled_adam or adamw")
    return optimizer, Eden(optimizer, **schedule)
