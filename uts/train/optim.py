"""Optimisers and schedules: ScaledAdam with Eden (the Zipformer paper's pair), or AdamW.

ScaledAdam follows icefall's (egs/librispeech/ASR/zipformer/optim.py; Auden ships a copy) update
for update. Per tensor, with t the number of steps it has taken and g its (clipped) gradient:

* v = beta2 v + (1 - beta2) g^2; while 1 - beta2^(t+1) < 0.99, v is divided by that for the
  step (Adam's second-moment bias correction, dropped once it is nearly 1). u = g / (sqrt(v) + eps).
* Scalars (numel 1): u *= -lr * scale_lr. Others: u *= -lr * max(rms, min_rms), with rms the
  tensor's RMS as last recorded (at its first step, then every `size_update_period` steps).
* The tensor's size is learnt on its own: every step records s_t = sum(p * g), the gradient of
  a log-scale. Every `size_update_period` (P) steps (t = P-1, 2P-1, ..., not t = 0) rms is
  re-measured before the update and w = beta2^P w + (1 - beta2^P) mean(s^2) over the window;
  the log-scale step is -lr * scale_lr * sqrt(1 - beta2^(P k)) * sum(s) / (sqrt(w) + eps)
  (k = (t+1)/P windows seen), 0 while rms < min_rms, clamped to [-0.1, 0.1] and to at most
  (max_rms - rms) / rms so the RMS never grows past max_rms; u += p * that step.
* Momentum is on the update, not on the gradient: d = beta1 d + (1 - beta1) u, p += d (no
  first-moment bias correction). Scalars are then clamped to [-scalar_max, scalar_max].

Our `scale_lr`, `min_rms` and `max_rms` are icefall's `scalar_lr_scale`, `param_min_rms` and
`param_max_rms`; lr defaults to Auden's 0.045 (icefall: 0.03). Icefall stacks tensors of one
shape to launch fewer kernels and steps every tensor of a group, a missing gradient counting as
zero (momentum keeps moving it); here tensors are stepped one by one (the same arithmetic) and
with zero gradients likewise, except that a group in which no tensor has a gradient is skipped,
as torch's optimisers do. State per tensor: step, exp_avg_sq, delta, and for non-scalars
param_rms, scale_grads (P,) and scale_exp_avg_sq.

Adaptive clipping (`clipping_scale`; Auden's trainer passes 2.0, None turns it off): the
group's gradient norm is taken with each tensor's gradient times its recorded rms (scalars' times
scale_lr), as that is what the update moves. From the second step on the norms of the last
`clipping_update_period` steps are kept; every period (and at steps 10, 20 and 40 when shorter
than the period, with the threshold doubled) the threshold becomes `clipping_scale` times
element (n // 4) * 2 of the n sorted norms (icefall's "median"), and a step whose norm is above
it has its gradient scaled down to it. A non-finite norm zeroes the gradient once a threshold
exists. The statistics live in the state of the group's first tensor (clip_norms, clip_count,
clip_threshold), so they are saved and resumed with the rest.

State saved by the earlier, paper-based ScaledAdam (per tensor step, m, v, scale_m, scale_v)
is converted on load: v is exactly exp_avg_sq (the same average of the same squared clipped
gradient) and scale_v becomes scale_exp_avg_sq (the second moment of the same log-scale
gradient with the same per-step decay); m and scale_m have no counterpart (momentum now acts on
the update), so delta starts at zero as on a fresh optimiser; param_rms is measured from the
tensor and the scale_grads window starts empty. Groups saved without newer keys get defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["Eden", "ScaledAdam", "build_optimizer", "load_optimizer_state"]


_GROUP_DEFAULTS: dict[str, Any] = {
    "clipping_scale": None,
    "clipping_update_period": 100,
    "scalar_max": 10.0,
    "size_update_period": 4,
}
_EARLY_ESTIMATES = (10, 20, 40)  # steps at which a first threshold is set before a full period
_MAX_SCALE_STEP = 0.1  # the most a tensor's log-scale moves in one size update


class ScaledAdam(torch.optim.Optimizer):
    """ScaledAdam as icefall's; see the module docstring. `clipping_scale` (e.g. 2.0) turns on
    adaptive clipping against the recent gradient norms."""

    def __init__(
        self, params: Iterable[nn.Parameter], lr: float = 0.045, *, betas: tuple[float, float] = (0.9, 0.98),
        scale_lr: float = 0.1, eps: float = 1e-8, min_rms: float = 1e-5, max_rms: float = 3.0,
        scalar_max: float = 10.0, size_update_period: int = 4,
        clipping_scale: float | None = None, clipping_update_period: int = 100,
    ) -> None:  # fmt: skip
        defaults = {
            "lr": lr,
            "betas": betas,
            "scale_lr": scale_lr,
            "eps": eps,
            "min_rms": min_rms,
            "max_rms": max_rms,
            "scalar_max": scalar_max,
            "size_update_period": size_update_period,
            "clipping_scale": clipping_scale,
            "clipping_update_period": clipping_update_period,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # load_state_dict comes through here: fill in group keys and convert per-tensor state
        # saved by earlier versions (see the module docstring).
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in _GROUP_DEFAULTS.items():
                group.setdefault(key, value)
            for p in group["params"]:
                if "m" in self.state.get(p, {}):
                    self.state[p] = _from_legacy(p, self.state[p], group["size_update_period"])

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if all(p.grad is None for p in group["params"]):
                continue
            factor = self._clip_factor(group)
            for p in group["params"]:
                grad = _grad(p)
                if factor != 1.0:  # 0.0 for a non-finite norm: drop the gradient, not NaN it
                    grad = grad * factor if factor > 0.0 else torch.zeros_like(grad)
                state = self.state[p]
                if "delta" not in state:  # (the first tensor's state may hold clipping stats)
                    _init_state(p, state, group["size_update_period"])
                delta = self._update(group, p, state, grad)
                p.add_(delta.to(p.dtype))
                if p.numel() == 1:
                    p.clamp_(-group["scalar_max"], group["scalar_max"])
                state["step"] += 1
        return loss

    @staticmethod
    def _update(
        group: dict[str, Any], p: torch.Tensor, state: dict[str, Any], grad: torch.Tensor
    ) -> torch.Tensor:
        """The momentum-smoothed change of `p` for this step (icefall's basic_step, scaling_step
        and momentum_step); updates the state except `step`."""
        beta1, beta2 = group["betas"]
        t: int = state["step"]
        exp_avg_sq: torch.Tensor = state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        correction = 1 - beta2 ** (t + 1)
        second = exp_avg_sq / correction if correction < 0.99 else exp_avg_sq
        update = grad / (second.sqrt() + group["eps"])
        if p.numel() == 1:
            update = update * (-group["lr"] * group["scale_lr"])
        else:
            period: int = group["size_update_period"]
            value = p.to(grad.dtype)
            state["scale_grads"][t % period] = (value * grad).sum()
            rms: torch.Tensor = state["param_rms"]
            if t % period == period - 1:
                rms.copy_(value.pow(2).mean().sqrt())
            update = update * (-group["lr"] * rms.clamp(min=group["min_rms"]))
            if t % period == period - 1 and t > 0:
                update = update + value * _scale_step(group, state, t)
        delta: torch.Tensor = state["delta"]
        return delta.mul_(beta1).add_(update, alpha=1 - beta1)

    def _clip_factor(self, group: dict[str, Any]) -> float:
        """The factor (<= 1) this step's gradients are scaled by; 1.0 without clipping."""
        scale = group["clipping_scale"]
        first = self.state[group["params"][0]]
        if scale is None or "delta" not in first:
            return 1.0  # off, or the first step (no rms recorded yet, as icefall)
        period = int(group["clipping_update_period"])
        sumsq = torch.zeros((), device=group["params"][0].device)
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.numel() == 1:  # scalars move by lr * scale_lr * direction
                sumsq += (p.grad.float() * group["scale_lr"]).pow(2).sum()
            else:  # tensors by lr * rms * direction, rms as recorded
                state = self.state.get(p, {})  # (state converted from an old save may lack it)
                rms = state["param_rms"] if "param_rms" in state else p.float().pow(2).mean().sqrt()
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
            n = min(count, period)
            ranked = norms[:n].sort().values
            median = float(ranked[min(n - 1, (n // 4) * 2)])
            if median != median or median == float("inf"):
                raise FloatingPointError(
                    f"ScaledAdam clipping: the median of the last {n} gradient norms is not "
                    "finite; too many non-finite gradients"
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


def _grad(p: torch.Tensor) -> torch.Tensor:
    """The gradient in the optimiser's precision (fp32, fp64 for fp64 tensors); zero if none."""
    if p.grad is not None and p.grad.is_sparse:
        raise RuntimeError("ScaledAdam does not support sparse gradients")
    dtype = torch.promote_types(p.dtype, torch.float32)
    return torch.zeros_like(p, dtype=dtype) if p.grad is None else p.grad.to(dtype)


def _init_state(p: torch.Tensor, state: dict[str, Any], period: int) -> None:
    dtype = torch.promote_types(p.dtype, torch.float32)
    state["step"] = 0
    state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype)
    state["delta"] = torch.zeros_like(p, dtype=dtype)
    if p.numel() != 1:
        state["param_rms"] = p.to(dtype).pow(2).mean().sqrt()
        state["scale_grads"] = torch.zeros(period, dtype=dtype, device=p.device)
        state["scale_exp_avg_sq"] = torch.zeros((), dtype=dtype, device=p.device)


def _scale_step(group: dict[str, Any], state: dict[str, Any], t: int) -> torch.Tensor:
    """The change of the tensor's log-scale at the end of a size-update window (icefall's
    size update in scaling_step)."""
    beta2 = group["betas"][1]
    scale_grads: torch.Tensor = state["scale_grads"]
    rms: torch.Tensor = state["param_rms"]
    decay = beta2 ** scale_grads.shape[0]
    second: torch.Tensor = state["scale_exp_avg_sq"]
    second.mul_(decay).add_(scale_grads.pow(2).mean(), alpha=1 - decay)
    correction = 1 - decay ** ((t + 1) // scale_grads.shape[0])
    size_lr = group["lr"] * group["scale_lr"]
    step = -size_lr * correction**0.5 * scale_grads.sum() / (second.sqrt() + group["eps"])
    if rms < group["min_rms"]:  # too small already: leave its size alone
        step = torch.zeros_like(step)
    step = step.clamp(-_MAX_SCALE_STEP, _MAX_SCALE_STEP)
    return torch.minimum(step, (group["max_rms"] - rms) / rms)


def _from_legacy(p: torch.Tensor, old: dict[str, Any], period: int) -> dict[str, Any]:
    """Per-tensor state of the earlier ScaledAdam (step, m, v, scale_m, scale_v) in today's
    layout; clipping statistics carry over unchanged."""
    new = {k: v for k, v in old.items() if k not in ("m", "v", "scale_m", "scale_v")}
    _init_state(p, new, period)
    new["step"] = int(old["step"])
    new["exp_avg_sq"].copy_(old["v"])
    if p.numel() != 1:
        new["scale_exp_avg_sq"].copy_(old["scale_v"])
    return new


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
    head_lr_scale: float = 1.0,
    stem_lr_scale: float = 1.0,
    **schedule: Any,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """`scaled_adam` (default lr 0.045) with Eden, or `adamw` (default lr 1e-3) with Eden too.
    `clipping_scale` (scaled_adam only; icefall and Auden use 2.0) turns on adaptive clipping.
    `head_lr_scale` and `stem_lr_scale` (adamw only) multiply the learning rate of every tag
    classifier (MTCHead), and of the encoder's convolutional stem, each in a parameter group of its
    own; at 1.0 there is no such group (both 1: one group, as before, so older checkpoints resume).

    Raises:
        ValueError: an unknown optimiser name, or a scale other than 1 with scaled_adam.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "scaled_adam":
        if head_lr_scale != 1.0 or stem_lr_scale != 1.0:
            raise ValueError("head_lr_scale and stem_lr_scale are for adamw: ScaledAdam already "
                             "sizes each update by its parameter's scale, and clips over one "
                             "group")  # fmt: skip
        optimizer: torch.optim.Optimizer = ScaledAdam(
            params, lr=lr if lr is not None else 0.045, clipping_scale=clipping_scale
        )
    elif name == "adamw":
        base = lr if lr is not None else 1e-3
        optimizer = torch.optim.AdamW(
            _scaled_groups(model, params, base, head=head_lr_scale, stem=stem_lr_scale),
            lr=base,
            weight_decay=weight_decay,
        )
    else:
        raise ValueError(f"unknown optimiser {name!r}; choose scaled_adam or adamw")
    return optimizer, Eden(optimizer, **schedule)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: Mapping[str, Any], source: str
) -> None:
    """Load a saved optimiser state into `optimizer`, first checking that it was saved by an
    optimiser with the same parameter groups (count and size of each, in order).

    Raises:
        ValueError: the groups differ (a run resumed under other head_lr_scale / stem_lr_scale,
            another optimiser or another model), naming `source` and both layouts; torch's own
            message would say only that the number or size of the groups does not match.
    """
    saved = [len(group["params"]) for group in state["param_groups"]]
    built = [len(group["params"]) for group in optimizer.param_groups]
    if saved != built:
        raise ValueError(
            f"{source}: its optimiser state has parameter groups of {saved} tensors, this "
            f"configuration builds {built}: the run was trained with other optimiser settings "
            "(head_lr_scale, stem_lr_scale, the optimiser or the model); resume it with the "
            "settings it was trained with, or start a new run (--name)"
        )
    optimizer.load_state_dict(dict(state))


def _scaled_groups(model: nn.Module, params: list[nn.Parameter], lr: float, *, head: float,
                   stem: float) -> list[nn.Parameter] | list[dict[str, Any]]:  # fmt: skip
    """`params` as they are (both scales 1), or groups: the rest at lr, then the MTC heads'
    parameters at lr x head and the encoder stem's (zipformer.stem.Stem) at lr x stem, each only
    where its scale is not 1 and the model has such a module (the group order is fixed, so a
    checkpoint's optimiser state resumes into the same configuration).

    Why (the demo preset; README, the optimiser paragraph): Adam moves a weight by about lr per
    step whatever its gradient, so in a run of a few hundred steps a randomly initialised linear
    head cannot travel far enough to fit its tags (head > 1); and the stem, the first map from
    80 mel bands to 48 channels, is where a short run on tags that barely name pitch throws fine
    frequency detail away (stem < 1)."""
    from uts.models.heads import MTCHead
    from uts.models.zipformer.stem import Stem

    groups: list[dict[str, Any]] = []
    taken: set[int] = set()
    for kind, scale in ((MTCHead, head), (Stem, stem)):
        if scale == 1.0:
            continue
        ids = {id(p) for m in model.modules() if isinstance(m, kind) for p in m.parameters()}
        chosen = [p for p in params if id(p) in ids]
        if chosen:
            groups.append({"params": chosen, "lr": lr * scale})
            taken |= ids
    if not groups:  # both scales 1, or no such module (contrastive, ar, par have no tag head)
        return params
    return [{"params": [p for p in params if id(p) not in taken], "lr": lr}, *groups]
