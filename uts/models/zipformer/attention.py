"""Zipformer attention: compact relative positions, multi-head attention weights computed once per
block, and the self-attention and non-linear attention that share them (icefall/Auden
`zipformer.py`: CompactRelPositionalEncoding, RelPositionMultiheadAttentionWeights, SelfAttention,
NonlinAttention), with their balancers, whitening and training-time schedules.

Shapes: B batch, T frames, D channels, H heads. `pad` is a (B, T) bool mask, True on padding.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn

from uts.models.zipformer.scaling import (
    Balancer,
    ScheduledFloat,
    Whiten,
    penalize_abs_values_gt,
    uniform,
    whitening_schedule,
)

__all__ = [
    "AttentionWeights",
    "NonlinearAttention",
    "RelPositionalEncoding",
    "SelfAttention",
    "scale_init",
]

_Module = TypeVar("_Module", nn.Linear, nn.Conv2d)
_MASKED = -1000.0  # upstream's fill: exp(-1000) is exactly 0, even for an all-masked row


def scale_init(module: _Module, scale: float) -> _Module:
    """Upstream's ScaledLinear/ScaledConv2d: the default weight init times `scale`. (Biases are
    zeroed later by the encoder, as everywhere in this model.)"""
    with torch.no_grad():
        module.weight.mul_(scale)
    return module


class RelPositionalEncoding(nn.Module):
    """Embeddings of the relative offsets -(T-1)..(T-1): (T,) -> (2T-1, E), row r for offset r-(T-1).

    As upstream's compact encoding: the offset is compressed logarithmically beyond sqrt(E), mapped
    through atan onto a finite interval, and expanded into E/2 cosine/sine pairs of frequencies
    1..E/2; the last column is a constant 1 (a bias). Dropout 0.15 in training.
    """

    def __init__(self, dim: int, dropout: float = 0.15) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"positional embedding dim must be even, got {dim}")
        self.dim = dim
        self.dropout = nn.Dropout(dropout)

    def forward(self, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        offsets = torch.arange(-(length - 1), length, device=device, dtype=torch.float32)
        knee = math.sqrt(self.dim)  # slope 1 near 0, logarithmic beyond about `knee`
        compressed = knee * offsets.sign() * ((offsets.abs() + knee).log() - math.log(knee))
        angle = torch.atan(compressed * (2.0 * math.pi / self.dim))  # in (-pi/2, pi/2)
        phases = angle[:, None] * torch.arange(1, self.dim // 2 + 1, device=device)[None, :]
        pe = torch.stack([phases.cos(), phases.sin()], dim=-1).reshape(len(offsets), self.dim)
        pe[:, -1] = 1.0
        return self.dropout(pe.to(dtype))


class AttentionWeights(nn.Module):
    """Multi-head attention weights with a relative-position term, computed once per block and
    shared by its two self-attentions and its non-linear attention: (B, T, D) -> (B, H, T, T).

    No 1/sqrt(d) in the forward: as upstream, the projection starts at (query_dim)^-0.25 of the
    default init, so query.key starts at the usual 1/sqrt(query_dim) scale and ScaledAdam keeps the
    scale learnable. Training only: keys get a balancer (mean near 0) and whitening per head; the
    position term is dropped with a scheduled probability (0.5 -> 0 over 4k batches); on 10% of
    calls scores beyond +-25 are penalised.
    """

    def __init__(
        self, dim: int, heads: int, query_dim: int, pos_dim: int, pos_emb_dim: int
    ) -> None:
        super().__init__()
        self.heads, self.query_dim, self.pos_dim = heads, query_dim, pos_dim
        # [queries | keys | position queries], each head's channels contiguous within a part.
        self.project = scale_init(
            nn.Linear(dim, heads * (2 * query_dim + pos_dim)), query_dim**-0.25
        )
        self.position = scale_init(nn.Linear(pos_emb_dim, heads * pos_dim, bias=False), 0.05)
        self.whiten_keys = Whiten(heads, whitening_schedule(3.0), (0.025, 0.25), 0.025)
        self.balance_keys = Balancer(
            heads * query_dim, -1, min_positive=0.4, max_positive=0.6, min_abs=0.0, max_abs=100.0,
            prob=0.025,
        )  # fmt: skip
        self.pos_emb_skip_rate = ScheduledFloat((0.0, 0.5), (4000.0, 0.0))

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, q, p = self.heads, self.query_dim, self.pos_dim
        query, key, query_pos = self.project(x).split([h * q, h * q, h * p], dim=-1)
        key = self.whiten_keys(self.balance_keys(key))
        scores = torch.einsum(
            "bihd,bjhd->bhij", query.reshape(b, t, h, q), key.reshape(b, t, h, q)
        )  # (B, H, T, T) content term
        positions = self.position(pos_emb).view(2 * t - 1, h, p)  # row r: offset r - (T-1)
        by_offset = torch.einsum("bihd,rhd->bhir", query_pos.reshape(b, t, h, p), positions)
        # Query i, key j reads the row of offset j - i (upstream's orientation).
        steps = torch.arange(t, device=x.device)
        index = (steps[None, :] - steps[:, None] + t - 1).expand(b, h, t, t)
        by_position = by_offset.gather(-1, index)
        skip_rate = float(self.pos_emb_skip_rate) if self.training else 0.0
        if skip_rate > 0.0 and uniform() < skip_rate:
            # Dropped, but through a zero multiplier: every parameter still gets a (zero)
            # gradient, so DDP needs no find_unused_parameters.
            by_position = by_position * 0.0
        scores = scores + by_position
        if self.training and uniform() < 0.1:
            scores = penalize_abs_values_gt(scores, 25.0, 1e-4)
        scores = scores.masked_fill(pad[:, None, None, :], _MASKED)
        return scores.softmax(dim=-1)


class SelfAttention(nn.Module):
    """Values mixed by given attention weights: (B, T, D), (B, H, T, T) -> (B, T, D), whitened
    (in training) at the output."""

    def __init__(self, dim: int, heads: int, value_dim: int) -> None:
        super().__init__()
        self.heads, self.value_dim = heads, value_dim
        self.values = nn.Linear(dim, heads * value_dim)
        self.out = scale_init(nn.Linear(heads * value_dim, dim), 0.05)
        self.whiten = Whiten(1, whitening_schedule(7.5, ratio=3.0), (0.025, 0.25), 0.01)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        v = self.values(x).view(b, t, self.heads, self.value_dim)
        mixed = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(b, t, -1)
        return self.whiten(self.out(mixed))


class NonlinearAttention(nn.Module):
    """Non-linear attention (Zipformer paper): a tanh-gated input is mixed over time with one head's
    attention weights, then gated again: (B, T, D), (B, T, T) -> (B, T, D). Training only: a
    balancer on the tanh gate's input, whitening of the mixed values and of the output."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, 3 * hidden)
        self.gate_balancer = Balancer(
            hidden, -1, min_positive=ScheduledFloat((0.0, 0.25), (20000.0, 0.05)),
            max_positive=ScheduledFloat((0.0, 0.75), (20000.0, 0.95)), min_abs=0.5, max_abs=5.0,
        )  # fmt: skip
        self.whiten_values = Whiten(1, whitening_schedule(5.0), (0.025, 0.25), 0.01)
        self.out = scale_init(nn.Linear(hidden, dim), 0.05)
        self.whiten_out = Whiten(1, whitening_schedule(5.0, ratio=3.0), (0.025, 0.25), 0.01)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gate_in, value, gate_out = self.inner(x).chunk(3, dim=-1)
        value = self.whiten_values(value) * torch.tanh(self.gate_balancer(gate_in))
        mixed = torch.bmm(weights, value)  # (B, T, hidden)
        return self.whiten_out(self.out(mixed * gate_out))
