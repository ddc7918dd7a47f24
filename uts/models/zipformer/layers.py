"""Zipformer building blocks: BiasNorm, bypass, feed-forward, convolution, relative-position
attention weights shared by self-attention and non-linear attention.

Shapes: B batch, T frames, D channels, H heads. `pad` is a (B, T) bool mask, True on padding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from uts.models.zipformer.activations import swoosh_l, swoosh_r

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
    """x / RMS(x - b) * exp(g): LayerNorm's replacement that keeps a length signal (no mean removal)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = (x - self.bias).pow(2).mean(dim=-1, keepdim=True).add(1e-8).rsqrt()
        return x * rms * self.log_scale.exp()


class Bypass(nn.Module):
    """out = x + c * (y - x) with a learned per-channel c in [0, 1] (initially 0.5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # lerp wants one dtype for all three; under autocast x/y are bf16/fp16 (or one of them still
        # fp32) while the scale is an fp32 parameter, so compute in the wider of x and y (at fp32
        # every cast is a no-op). icefall's BypassModule writes it as x + (y - x) * c instead.
        dtype = torch.promote_types(x.dtype, y.dtype)
        scale = self.scale.clamp(0.0, 1.0).to(dtype)
        return torch.lerp(x.to(dtype), y.to(dtype), scale)  # one fused kernel


class FeedForward(nn.Module):
    """Linear -> SwooshL -> dropout -> Linear: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.dropout(swoosh_l(self.inner(x))))


class ConvModule(nn.Module):
    """Gated pointwise conv -> depthwise conv over time -> SwooshR -> pointwise: (B, T, D) -> (B, T, D).

    Padding frames are zeroed before the depthwise conv so they never leak into real frames.
    """

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.outer = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        value, gate = self.inner(x).chunk(2, dim=-1)
        x = (value * torch.sigmoid(gate)).masked_fill(pad[..., None], 0.0)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        return self.outer(swoosh_r(x))


class RelPositionalEncoding(nn.Module):
    """Sinusoidal embeddings of relative offsets -(T-1)..(T-1), compressed so far offsets stay
    distinguishable but coarse (atan of the offset): (T,) -> (2T-1, E)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"positional embedding dim must be even, got {dim}")
        self.dim = dim

    def forward(self, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        offsets = torch.arange(-(length - 1), length, device=device, dtype=torch.float32)
        compressed = torch.atan(offsets / 16.0) * 16.0  # near offsets linear, far ones squashed
        freqs = torch.exp(
            torch.arange(0, self.dim, 2, device=device, dtype=torch.float32)
            * (-math.log(1000.0) / self.dim)
        )
        angles = compressed[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


class AttentionWeights(nn.Module):
    """Multi-head attention weights with a relative-position term, computed once per block and
    shared by its two self-attentions and its non-linear attention: (B, T, D) -> (B, H, T, T)."""

    def __init__(
        self, dim: int, heads: int, query_dim: int, pos_dim: int, pos_emb_dim: int
    ) -> None:
        super().__init__()
        self.heads, self.query_dim, self.pos_dim = heads, query_dim, pos_dim
        self.project = nn.Linear(dim, heads * (2 * query_dim + pos_dim))
        self.position = nn.Linear(pos_emb_dim, heads * pos_dim, bias=False)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, q, p = self.heads, self.query_dim, self.pos_dim
        projected = self.project(x).view(b, t, h, 2 * q + p)
        query, key, query_pos = projected.split([q, q, p], dim=-1)
        scores = torch.einsum("bihd,bjhd->bhij", query, key)  # (B, H, T, T) content term
        positions = self.position(pos_emb).view(2 * t - 1, h, p)  # offset i-j at row (i-j)+T-1
        by_offset = torch.einsum("bihd,rhd->bhir", query_pos, positions)  # (B, H, T, 2T-1)
        index = (
            (torch.arange(t, device=x.device)[:, None] - torch.arange(t, device=x.device)[None, :])
            + t
            - 1
        )
        scores = scores + by_offset.gather(-1, index.expand(b, h, t, t))
        scores = scores / math.sqrt(q + p)
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        return scores.softmax(dim=-1)


class SelfAttention(nn.Module):
    """Values mixed by given attention weights: (B, T, D), (B, H, T, T) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, value_dim: int) -> None:
        super().__init__()
        self.heads, self.value_dim = heads, value_dim
        self.values = nn.Linear(dim, heads * value_dim)
        self.out = nn.Linear(heads * value_dim, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        v = self.values(x).view(b, t, self.heads, self.value_dim)
        mixed = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(b, t, -1)
        return self.out(mixed)


class NonlinearAttention(nn.Module):
    """Non-linear attention (Zipformer paper): a tanh-gated input is mixed over time with the first
    head's attention weights, then gated again: (B, T, D), (B, H, T, T) -> (B, T, D)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, 3 * hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gate_in, value, gate_out = self.inner(x).chunk(3, dim=-1)
        mixed = torch.bmm(weights[:, 0], value * torch.tanh(gate_in))  # (B, T, hidden)
        return self.out(mixed * gate_out)
