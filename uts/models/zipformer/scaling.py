"""Training-time helpers of the Zipformer recipe (icefall/Auden `scaling.py`), written for this project.

- `ScheduledFloat`: a number that follows a piecewise-linear schedule over training batches (dropout
  rates, layer-skip rates, constraint limits); `Zipformer.set_batch_count(n)` moves every schedule.
  Before any count is set, and in eval, it holds its `default`.
- `Balancer`: keeps each channel's sign balance and RMS within limits by adding to the gradient.
- `Whiten`: keeps a feature's covariance from collapsing onto few directions, by adding the gradient
  of a whiteness metric when it passes a limit.
- `limit_param_value`: keeps a parameter within [min, max] by flipping gradients that push it out.
- `ScaleGrad`, `penalize_abs_values_gt`: scale a gradient; penalise values beyond a limit.
- `SharedDropout`: dropout with one mask shared along a dimension (time).

All but the dropout are the identity in the forward pass and act on gradients in training only.
Their random choices draw from torch's CPU generator on every training call, with or without
gradients, so `torch.manual_seed` replays a step exactly and turning gradients off does not shift
the random draws of a forward pass (dropout, layer drop). `Whiten` adapts how often it acts; that
state is saved in the state_dict (one scalar per module), so a resumed run continues it exactly.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn

__all__ = [
    "Balancer",
    "FloatLike",
    "ScaleGrad",
    "ScheduledFloat",
    "SharedDropout",
    "Whiten",
    "limit_param_value",
    "penalize_abs_values_gt",
    "uniform",
    "whitening_metric",
    "whitening_schedule",
]


class ScheduledFloat(nn.Module):
    """float(self): piecewise linear in `batch_count` through `points` (x = batch, y = value),
    constant before the first and after the last point; `default` in eval or while no batch count
    has been set. A module (without parameters) so that `model.modules()` finds every schedule."""

    def __init__(self, *points: tuple[float, float], default: float = 0.0) -> None:
        super().__init__()
        if not points or any(b[0] <= a[0] for a, b in itertools.pairwise(points)):
            raise ValueError(f"ScheduledFloat needs points with increasing x, got {points}")
        self.points = tuple((float(x), float(y)) for x, y in points)
        self.default = float(default)
        self.batch_count: float | None = None

    def value_at(self, count: float) -> float:
        (x0, y0), (xn, yn) = self.points[0], self.points[-1]
        if count <= x0:
            return y0
        if count >= xn:
            return yn
        for (xa, ya), (xb, yb) in itertools.pairwise(self.points):
            if count <= xb:
                return ya + (yb - ya) * (count - xa) / (xb - xa)
        return yn  # unreachable: count < xn

    def __float__(self) -> float:
        if self.batch_count is None or not self.training:
            return self.default
        return self.value_at(self.batch_count)

    def extra_repr(self) -> str:
        return f"points={self.points}, default={self.default}, batch_count={self.batch_count}"


FloatLike = float | ScheduledFloat


def whitening_schedule(limit: float, ratio: float = 2.0) -> ScheduledFloat:
    """A whitening limit that loosens from `limit` to `ratio * limit` over 20k batches."""
    return ScheduledFloat((0.0, limit), (20000.0, ratio * limit), default=limit)


def uniform() -> float:
    """One draw in [0, 1) from torch's CPU generator (seeded by torch.manual_seed; no GPU sync)."""
    return float(torch.rand(()))


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32 if it is in a half type, else as it is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _no_autocast(device: torch.device) -> Any:
    return torch.autocast(device_type=device.type, enabled=False)


# ---------------------------------------------------------------------------------------- Balancer


def _sign_balance_to_mean(p: float) -> float:
    """Proportion of positive values -> limit on mean / stddev. Upstream maps it with a scaled atanh
    of 2p - 1 (a rough inverse error function); the same map keeps the same limits."""
    z = min(max(2.0 * p - 1.0, -1.0 + 1e-10), 1.0 - 1e-10)
    return 0.8139535143 * math.atanh(z)


_ABS_TO_RMS = math.sqrt(math.pi / 2.0)  # for Gaussian data, RMS = sqrt(pi / 2) * mean |x|


class _BalancerGrad(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, limits: tuple[float, float, float, float], scale: float, dim: int
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.limits, ctx.scale, ctx.dim = limits, scale, dim
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        min_mean, max_mean, min_rms, max_rms = ctx.limits
        reduce = [i for i in range(x.ndim) if i != ctx.dim]
        with _no_autocast(x.device):
            xf = _wide(x.detach())
            var, mean = torch.var_mean(xf, dim=reduce, correction=0, keepdim=True)
            with torch.enable_grad():
                # The excess over the limits is a function of each channel's mean and mean square
                # only, so its gradient in x is d/dmean / N + d/dsquare * 2x / N: two numbers per
                # channel (the 1/N cancels in the normalisation below).
                m = mean.detach().requires_grad_(True)
                sq = (var + mean.pow(2)).detach().requires_grad_(True)
                rms = sq.clamp(min=1e-20).sqrt()
                ratio = m / (sq - m.pow(2)).clamp(min=1e-20).sqrt()
                # Zero (with zero gradient) wherever a channel keeps its limits.
                excess = (ratio - ratio.clamp(min=min_mean, max=max_mean)).abs()
                excess = excess + (rms.clamp(min=min_rms, max=max_rms) / rms).log().abs()
                d_mean, d_square = torch.autograd.grad(excess.sum(), (m, sq))
            a, b = d_mean, 2.0 * d_square  # push = a + b x per channel
            norm_sq = a.pow(2) + 2.0 * a * b * m.detach() + b.pow(2) * sq.detach()  # mean push^2
            size = ctx.scale / norm_sq.clamp(min=0.0).sqrt().clamp(min=1e-20)
            push = torch.addcmul(a * size, b * size, xf)  # RMS `scale` in each channel
            g = _wide(grad)
            # Each element's push is sized by its own gradient's magnitude.
            out = torch.addcmul(g, g.abs(), push)
        return out.to(grad.dtype), None, None, None


class Balancer(nn.Module):
    """Identity forward. In training, with probability `prob` per call, adds to the gradient a push
    that brings each channel (along `channel_dim`) back within its limits: the proportion of
    positive values in [min_positive, max_positive] and the mean absolute value in
    [min_abs, max_abs] (as limits on mean/stddev and RMS). Channels within limits get their
    gradient unchanged."""

    def __init__(
        self, channels: int, channel_dim: int, *, min_positive: FloatLike = 0.05,
        max_positive: FloatLike = 0.95, min_abs: FloatLike = 0.2, max_abs: FloatLike = 100.0,
        grad_scale: FloatLike = 0.04, prob: FloatLike | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.channels, self.channel_dim = channels, channel_dim
        self.min_positive, self.max_positive = min_positive, max_positive
        self.min_abs, self.max_abs = min_abs, max_abs
        self.grad_scale = grad_scale
        self.prob = (
            prob if prob is not None else ScheduledFloat((0.0, 0.5), (8000.0, 0.125), default=0.4)
        )

    def limits(self) -> tuple[float, float, float, float]:
        """(min mean/std, max mean/std, min RMS, max RMS) at the current batch count."""
        return (
            _sign_balance_to_mean(float(self.min_positive)),
            _sign_balance_to_mean(float(self.max_positive)),
            _ABS_TO_RMS * float(self.min_abs),
            _ABS_TO_RMS * float(self.max_abs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or uniform() >= float(self.prob) or not x.requires_grad:
            return x
        dim = self.channel_dim % x.ndim
        if x.shape[dim] != self.channels:
            raise ValueError(f"Balancer: {self.channels} channels, got shape {tuple(x.shape)}")
        out: torch.Tensor = _BalancerGrad.apply(x, self.limits(), float(self.grad_scale), dim)  # type: ignore[no-untyped-call]
        return out


# ------------------------------------------------------------------------------------------ Whiten


def whitening_metric(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(..., C) -> scalar >= 1: mean squared eigenvalue over squared mean eigenvalue of each group's
    centred covariance (1 when white, with the same variance in every group; C/groups at most)."""
    x = x.reshape(-1, x.shape[-1])
    frames, channels = x.shape
    x = x.reshape(frames, groups, channels // groups).transpose(0, 1)  # (G, N, C/G)
    x = x - x.mean(dim=1, keepdim=True)
    covar = x.transpose(1, 2) @ x  # (G, C/G, C/G)
    mean_eig = covar.diagonal(dim1=1, dim2=2).mean()
    mean_sq_eig = covar.pow(2).sum() / channels  # trace(C @ C) per channel, C symmetric
    return mean_sq_eig / (mean_eig.pow(2) + 1e-20)


class _WhitenGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, module: Whiten) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.module = module
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        (x,) = ctx.saved_tensors
        module: Whiten = ctx.module
        with torch.enable_grad(), _no_autocast(x.device):
            xf = _wide(x.detach()).requires_grad_(True)
            metric = whitening_metric(xf, module.num_groups)
            if float(metric.detach()) < float(module.whitening_limit):
                module.prob = module.min_prob  # within the limit: check less often
                return grad, None
            module.prob = module.max_prob
            (push,) = torch.autograd.grad(metric, xf)
            g = _wide(grad)
            push = push * (float(module.grad_scale) * g.norm() / (push.norm() + 1e-20))
            return (g + push).to(grad.dtype), None


class Whiten(nn.Module):
    """Identity forward on (..., C). In training, with probability `prob` per call (`max_prob`
    after a call that found the limit passed, `min_prob` after one that did not), measures
    `whitening_metric` of the input in backward; above `whitening_limit` it adds the metric's
    gradient, sized `grad_scale` times the incoming gradient's norm."""

    def __init__(
        self,
        num_groups: int,
        whitening_limit: FloatLike,
        prob: tuple[float, float],
        grad_scale: float,
    ) -> None:
        super().__init__()
        if num_groups < 1 or float(whitening_limit) < 1.0 or grad_scale < 0:
            raise ValueError("Whiten: num_groups >= 1, whitening_limit >= 1, grad_scale >= 0")
        self.num_groups = num_groups
        self.whitening_limit = whitening_limit
        self.grad_scale = grad_scale
        self.min_prob, self.max_prob = prob
        self.prob = self.max_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or uniform() >= self.prob or not x.requires_grad:
            return x
        if self.grad_scale == 0:
            return x
        out: torch.Tensor = _WhitenGrad.apply(x, self)  # type: ignore[no-untyped-call]
        return out

    # `prob` is training state: saved and loaded with the weights, as a float64 scalar.
    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "prob"] = torch.tensor(self.prob, dtype=torch.float64)

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
        missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str],
    ) -> None:  # fmt: skip
        key = prefix + "prob"
        if key in state_dict:
            self.prob = float(state_dict[key])
        elif strict:
            missing_keys.append(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if key in unexpected_keys:
            unexpected_keys.remove(key)


# ---------------------------------------------------------------------------- small gradient tools


class _LimitValue(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        # A descent step moves x against its gradient: below `low` the gradient must be negative,
        # above `high` positive; flip the ones that would push further out.
        wrong = ((grad > 0) & (x < ctx.low)) | ((grad < 0) & (x > ctx.high))
        return torch.where(wrong, -grad, grad), None, None


def limit_param_value(
    x: torch.Tensor, low: float, high: float, *, prob: float = 0.6, training: bool = True
) -> torch.Tensor:
    """x unchanged; in training (with probability `prob`) its gradient never pushes an element that
    is outside [low, high] further out, so the optimiser brings it back."""
    if low > high:
        raise ValueError(f"limit_param_value: low {low} > high {high}")
    if training and uniform() < prob:
        out: torch.Tensor = _LimitValue.apply(x, low, high)  # type: ignore[no-untyped-call]
        return out
    return x


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.alpha, None


class ScaleGrad(nn.Module):
    """Identity forward; in training the gradient is multiplied by `alpha`."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        out: torch.Tensor = _ScaleGrad.apply(x, self.alpha)  # type: ignore[no-untyped-call]
        return out


class _Penalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, limit: float, penalty: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.limit, ctx.penalty = limit, penalty
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        over = (x.abs() > ctx.limit).to(grad.dtype) * x.sign().to(grad.dtype)
        return grad + ctx.penalty * over, None, None


def penalize_abs_values_gt(x: torch.Tensor, limit: float, penalty: float) -> torch.Tensor:
    """x unchanged; the gradient is as if `penalty * sum(relu(|x| - limit))` were added to the loss."""
    out: torch.Tensor = _Penalize.apply(x, limit, penalty)  # type: ignore[no-untyped-call]
    return out


class SharedDropout(nn.Module):
    """Dropout (rate `p`, possibly scheduled) whose mask has size 1 along `shared_dim`: with time as
    that dimension, a clip loses the same channels in every frame."""

    def __init__(self, p: FloatLike, shared_dim: int) -> None:
        super().__init__()
        self.p = p
        self.shared_dim = shared_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if not self.training or p == 0.0:
            return x
        shape = list(x.shape)
        shape[self.shared_dim] = 1
        keep = torch.rand(shape, device=x.device) >= p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - p))
