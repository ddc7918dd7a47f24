"""Zipformer building blocks: BiasNorm, bypass, feed-forward and convolution modules, each with the
balancers and whitening the upstream recipe places on it (icefall/Auden `zipformer.py`,
`scaling.py`); the attention modules live in `attention.py` and are re-exported here.

Shapes: B batch, T frames, D channels. `pad` is a (B, T) bool mask, True on padding.
"""

from __future__ import annotations

import torch
from torch import nn

from uts.models.zipformer.activations import swoosh_l, swoosh_r
from uts.models.zipformer.attention import (
    AttentionWeights,
    NonlinearAttention,
    RelPositionalEncoding,
    SelfAttention,
    scale_init,
)
from uts.models.zipformer.scaling import (
    Balancer,
    FloatLike,
    ScheduledFloat,
    SharedDropout,
    Whiten,
    limit_param_value,
    whitening_schedule,
)

__all__ = [
    "AttentionWeights",
    "BiasNorm",
    "Bypass",
    "ConvModule",
    "FeedForward",
    "NonlinearAttention",
    "RelPositionalEncoding",
    "SelfAttention",
]


class BiasNorm(nn.Module):
    """x / RMS(x - b) * exp(g): LayerNorm's replacement that keeps a length signal (no mean removal).
    As upstream: g starts at 1 and is held in [-1.5, 1.5] in training (`limit_param_value`), b
    starts at N(0, 1e-4)."""

    def __init__(
        self,
        dim: int,
        *,
        log_scale: float = 1.0,
        log_scale_min: float = -1.5,
        log_scale_max: float = 1.5,
    ) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(dim) * 1e-4)
        self.log_scale = nn.Parameter(torch.tensor(log_scale))
        self.log_scale_min, self.log_scale_max = log_scale_min, log_scale_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_scale = limit_param_value(
            self.log_scale, self.log_scale_min, self.log_scale_max, training=self.training
        )
        # (1e-8 keeps an all-zero frame finite; upstream has no epsilon.)
        rms = (x - self.bias).pow(2).mean(dim=-1, keepdim=True).add(1e-8).rsqrt()
        return x * rms * log_scale.exp()


class Bypass(nn.Module):
    """out = x + c * (y - x) with a learned per-channel c (initially 0.5).

    Training only, as upstream's BypassModule: c is held in [scale_min, scale_max] by
    `limit_param_value` (the gradient, not the forward, is limited; scale_min goes 0.9 -> 0.2 over
    20k batches, 0 before a batch count is set), and with probability `skip_rate` per clip c is 0
    (the clip skips the layer: out = x). Eval uses c as learned.
    """

    def __init__(
        self, dim: int, *, skip_rate: FloatLike = 0.0, scale_min: FloatLike | None = None,
        scale_max: FloatLike = 1.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), 0.5))
        self.skip_rate = skip_rate
        self.scale_min = (
            scale_min if scale_min is not None else ScheduledFloat((0.0, 0.9), (20000.0, 0.2))
        )
        self.scale_max = scale_max
        self.limit_prob = 0.6  # share of training calls on which the limit acts (upstream's)

    def scale_for(self, batch: int, device: torch.device) -> torch.Tensor:
        """The (D,) scale, or (B, 1, D) in training when clips may skip."""
        if not self.training:
            return self.scale
        scale = limit_param_value(
            self.scale, float(self.scale_min), float(self.scale_max), prob=self.limit_prob
        )
        rate = float(self.skip_rate)
        if rate > 0.0:
            keep = torch.rand(batch, 1, 1, device=device) >= rate
            scale = scale * keep
        return scale

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Under autocast x/y are bf16/fp16 (or one of them fp32) while the scale is an fp32
        # parameter: compute in the wider of x and y (at fp32 every cast is a no-op).
        dtype = torch.promote_types(x.dtype, y.dtype)
        scale = self.scale_for(x.shape[0], x.device).to(dtype)
        return torch.lerp(x.to(dtype), y.to(dtype), scale)  # one fused kernel


class FeedForward(nn.Module):
    """Linear -> (balancer) -> SwooshL -> dropout shared over time -> Linear -> (whitening):
    (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, hidden: int, dropout: FloatLike) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, hidden)
        self.hidden_balancer = Balancer(
            hidden, -1, min_positive=0.3, max_positive=1.0, min_abs=0.75, max_abs=5.0
        )
        self.dropout = SharedDropout(dropout, shared_dim=1)
        self.outer = scale_init(nn.Linear(hidden, dim), 0.1)
        self.out_whiten = Whiten(1, whitening_schedule(7.5), (0.025, 0.25), 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = swoosh_l(self.hidden_balancer(self.inner(x)))
        return self.out_whiten(self.outer(self.dropout(hidden)))


class ConvModule(nn.Module):
    """Gated pointwise conv -> depthwise conv over time -> SwooshR -> pointwise: (B, T, D) -> (B, T, D),
    with upstream's balancers on the gate and on the depthwise output and whitening before the
    last projection.

    Padding frames are zeroed before the depthwise conv so they never leak into real frames.
    """

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, 2 * dim)
        self.gate_balancer = Balancer(
            dim, -1, min_positive=ScheduledFloat((0.0, 0.05), (8000.0, 0.025)), max_positive=1.0,
            min_abs=1.5, max_abs=ScheduledFloat((0.0, 5.0), (8000.0, 10.0), default=1.0),
        )  # fmt: skip
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.depthwise_balancer = Balancer(
            dim, 1, min_positive=ScheduledFloat((0.0, 0.1), (8000.0, 0.05)), max_positive=1.0,
            min_abs=ScheduledFloat((0.0, 0.2), (20000.0, 0.5)), max_abs=10.0,
        )  # fmt: skip
        self.whiten = Whiten(1, whitening_schedule(7.5), (0.025, 0.25), 0.01)
        self.outer = scale_init(nn.Linear(dim, dim), 0.05)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        value, gate = self.inner(x).chunk(2, dim=-1)
        x = (value * torch.sigmoid(self.gate_balancer(gate))).masked_fill(pad[..., None], 0.0)
        x = self.depthwise_balancer(self.depthwise(x.transpose(1, 2))).transpose(1, 2)  # (B, T, D)
        return self.outer(swoosh_r(self.whiten(x)))
