"""Heads on top of the encoder output."""

from __future__ import annotations

import torch
from torch import nn

from uts.models.zipformer.encoder import masked_mean

__all__ = ["MTCHead"]


class MTCHead(nn.Module):
    """Multi-label tag classification: per-frame Dropout(0.1) + Linear(D -> K), then the masked
    mean of the logits over time: (B, T, D), (B,) -> (B, K) clip logits."""

    def __init__(self, dim: int, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, num_tags)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return masked_mean(self.linear(self.dropout(frames)), lengths)
