"""The Zipformer block and a stack of blocks running at a lower frame rate.

Block (Zipformer paper, fig. 2): FF -> NLA -> SA -> Conv -> FF -> mid bypass -> SA -> Conv -> FF
-> BiasNorm -> bypass, the attention weights computed once and shared by NLA and both SAs.
"""

from __future__ import annotations

import torch
from torch import nn

from uts.models.zipformer.layers import (
    AttentionWeights,
    BiasNorm,
    Bypass,
    ConvModule,
    FeedForward,
    NonlinearAttention,
    RelPositionalEncoding,
    SelfAttention,
)

__all__ = ["Downsample", "Stack", "ZipformerBlock", "padding_mask"]


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on padding frames."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths[:, None]


class ZipformerBlock(nn.Module):
    def __init__(
        self, dim: int, feedforward: int, heads: int, kernel: int, *, query_dim: int, value_dim: int,
        pos_dim: int, pos_emb_dim: int, dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.ff1 = FeedForward(dim, feedforward * 3 // 4, dropout)
        self.ff2 = FeedForward(dim, feedforward, dropout)
        self.ff3 = FeedForward(dim, feedforward * 5 // 4, dropout)
        self.weights = AttentionWeights(dim, heads, query_dim, pos_dim, pos_emb_dim)
        self.nla = NonlinearAttention(dim, dim * 3 // 4)
        self.sa1 = SelfAttention(dim, heads, value_dim)
        self.sa2 = SelfAttention(dim, heads, value_dim)
        self.conv1 = ConvModule(dim, kernel)
        self.conv2 = ConvModule(dim, kernel)
        self.norm = BiasNorm(dim)
        self.mid_bypass = Bypass(dim)
        self.bypass = Bypass(dim)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (2T-1, E), (B, T) -> (B, T, D)."""
        start = x
        x = x + self.ff1(x)
        weights = self.weights(x, pos_emb, pad)  # (B, H, T, T), shared below
        x = x + self.nla(x, weights)
        x = x + self.sa1(x, weights)
        x = x + self.conv1(x, pad)
        x = x + self.ff2(x)
        x = self.mid_bypass(start, x)
        x = x + self.sa2(x, weights)
        x = x + self.conv2(x, pad)
        x = x + self.ff3(x)
        return self.bypass(start, self.norm(x))


class Downsample(nn.Module):
    """Learned weighted average of every `factor` frames, over real frames only:
    (B, T, D), (B, T) pad -> (B, ceil(T / factor), D)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.logits = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        b, t, d = x.shape
        extra = -t % self.factor
        x = nn.functional.pad(x, (0, 0, 0, extra))
        valid = (
            nn.functional.pad(~pad, (0, extra), value=False).view(b, -1, self.factor).to(x.dtype)
        )
        weights = self.logits.softmax(0)[None, None, :] * valid  # padding gets no weight
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-8)
        return torch.einsum("bgf,bgfd->bgd", weights, x.view(b, -1, self.factor, d))


class Stack(nn.Module):
    """Blocks at 1/factor of the input rate; the result is upsampled and bypassed with the input."""

    def __init__(
        self,
        blocks: list[ZipformerBlock],
        dim: int,
        factor: int,
        pos_emb_dim: int,
        layer_skip: float,
    ) -> None:
        super().__init__()
        self.factor = factor
        self.layer_skip = layer_skip
        self.downsample = Downsample(factor)
        self.blocks = nn.ModuleList(blocks)
        self.positions = RelPositionalEncoding(pos_emb_dim)
        self.bypass = Bypass(dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) at the stem's rate, (B,) lengths -> (B, T, D)."""
        t = x.shape[1]
        y = self.downsample(x, padding_mask(lengths, t))
        low_lengths = (lengths + self.factor - 1) // self.factor
        pad = padding_mask(low_lengths, y.shape[1])
        pos_emb = self.positions(y.shape[1], y.device, y.dtype)
        for block in self.blocks:
            if self.training and self.layer_skip > 0 and torch.rand(()) < self.layer_skip:
                continue  # stochastic layer skipping, training only
            y = block(y, pos_emb, pad)
        up = y.repeat_interleave(self.factor, dim=1)[:, :t]
        return self.bypass(x, up)
