"""SpecAugment: time and frequency masks on fbank features, in training mode only."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SpecAugment"]


class SpecAugment(nn.Module):
    """Zero `freq_masks` bands of up to `freq_width` bins and `time_masks` spans of up to
    `time_width_ratio` of each clip's length (at most `time_width` frames): (B, T, F) -> (B, T, F).
    Identity in eval mode."""

    def __init__(
        self, *, freq_masks: int = 2, freq_width: int = 27, time_masks: int = 10, time_width: int = 100,
        time_width_ratio: float = 0.05,
    ) -> None:  # fmt: skip
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width, self.time_width_ratio = (
            time_masks,
            time_width,
            time_width_ratio,
        )

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        b, t, f = feats.shape
        keep = torch.ones(b, t, f, dtype=torch.bool, device=feats.device)
        bins = torch.arange(f, device=feats.device)
        frames = torch.arange(t, device=feats.device)
        for _ in range(self.freq_masks):
            width = torch.randint(0, self.freq_width + 1, (b, 1), device=feats.device)
            start = (torch.rand(b, 1, device=feats.device) * (f - width + 1)).long()
            keep &= ~((bins >= start) & (bins < start + width))[:, None, :]
        widest = torch.clamp((lengths.float() * self.time_width_ratio).long(), max=self.time_width)[
            :, None
        ]
        for _ in range(self.time_masks):
            width = (torch.rand(b, 1, device=feats.device) * (widest + 1).float()).long()
            start = (
                torch.rand(b, 1, device=feats.device)
                * (lengths[:, None] - width + 1).clamp(min=1).float()
            ).long()
            keep &= ~((frames >= start) & (frames < start + width))[:, :, None]
        return feats * keep
