"""The convolutional stem (icefall/Auden `subsampling.py`: Conv2dSubsampling and ConvNeXt):
fbank (B, T, F) at 100 Hz -> (B, ceil(T/2), D) at 50 Hz.

Layout as upstream, with c = `channels` (upstream: 8):
  conv 3x3 (1 -> c, frequency padded) -> grad x0.2 -> balancer -> SwooshR
  conv 3x3 stride 2 (c -> 4c) -> balancer -> SwooshR
  conv 3x3 stride (1, 2) (4c -> 16c) -> balancer -> SwooshR
  ConvNeXt (depthwise 7x7, pointwise 16c -> 48c -> 16c, residual, per-clip layer drop)
  linear (16c x F' -> D) -> whitening -> BiasNorm -> dropout shared over time,
where F' = ((F - 1) // 2 - 1) // 2 (19 for 80 bins). Same parameters as upstream.

One difference, on purpose: upstream leaves time unpadded, T' = (T - 7) // 2 (10 s -> 496 frames
-> 248 output frames); here each conv pads time by one frame so T' = ceil(T / 2) (10 s -> 500 ->
250), and frames past a clip's end are zeroed after every convolution, so a clip's output does
not depend on how much padding its batch has.
"""

from __future__ import annotations

import torch
from torch import nn

from uts.models.zipformer.activations import swoosh_l, swoosh_r
from uts.models.zipformer.attention import scale_init
from uts.models.zipformer.layers import BiasNorm
from uts.models.zipformer.scaling import (
    Balancer,
    FloatLike,
    ScaleGrad,
    ScheduledFloat,
    SharedDropout,
    Whiten,
)

__all__ = ["ConvNeXt", "Stem", "stem_frequencies"]


def stem_frequencies(num_mel_bins: int) -> int:
    """Frequency bins left after the stem's two stride-2 frequency convolutions."""
    return ((num_mel_bins - 1) // 2 - 1) // 2


def _zero_padding(y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, C, T, F) with frames t >= lengths[b] set to 0."""
    pad = torch.arange(y.shape[2], device=y.device)[None, :] >= lengths[:, None]
    return y.masked_fill(pad[:, None, :, None], 0.0)


class ConvNeXt(nn.Module):
    """x + pointwise(SwooshL(pointwise(depthwise 7x7(x)))) on (B, C, T, F); in training a clip
    skips the residual branch with a scheduled probability (0.2 -> 0.015 over 20k batches), and
    balancers and whitening watch the hidden and output channels."""

    def __init__(self, channels: int, hidden_ratio: int = 3, kernel: int = 7) -> None:
        super().__init__()
        hidden = channels * hidden_ratio
        self.depthwise = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.hidden_balancer = Balancer(
            hidden, 1, min_positive=0.3, max_positive=1.0, min_abs=0.75, max_abs=5.0
        )
        self.project = scale_init(nn.Conv2d(hidden, channels, 1), 0.01)
        self.out_balancer = Balancer(
            channels, 1, min_positive=0.4, max_positive=0.6, min_abs=1.0, max_abs=6.0
        )
        self.out_whiten = Whiten(1, 5.0, (0.025, 0.25), 0.01)
        self.layer_skip = ScheduledFloat((0.0, 0.2), (20000.0, 0.015))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # a 2-4x faster depthwise on CPU
        y = self.depthwise(x)
        y = self.project(swoosh_l(self.hidden_balancer(self.expand(y))))
        rate = float(self.layer_skip) if self.training else 0.0
        if rate > 0.0:
            y = y * (torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= rate).to(y.dtype)
        x = self.out_balancer(x + y)
        return self.out_whiten(x.transpose(1, 3)).transpose(1, 3)  # channels last for whitening


class Stem(nn.Module):
    """(B, T, F) fbank with padding zeroed, (B,) frame counts -> (B, ceil(T/2), D); see the module
    docstring."""

    def __init__(
        self, num_mel_bins: int, channels: int, dim: int, dropout: FloatLike = 0.1
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels, 4 * channels, 16 * channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.scale_grad = ScaleGrad(0.2)  # keeps conv1's gradients within fp16's range
        self.balancer1 = Balancer(c1, 1, max_abs=1.0)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=(1, 0))
        self.balancer2 = Balancer(c2, 1, max_abs=4.0)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=(1, 2), padding=(1, 0))
        self.balancer3 = Balancer(c3, 1, max_abs=4.0)
        self.convnext = ConvNeXt(c3)
        self.out = nn.Linear(c3 * stem_frequencies(num_mel_bins), dim)
        self.out_whiten = Whiten(
            1, ScheduledFloat((0.0, 4.0), (20000.0, 8.0), default=4.0), (0.025, 0.25), 0.02
        )
        self.norm = BiasNorm(dim)
        self.dropout = SharedDropout(dropout, shared_dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        half = (lengths + 1) // 2
        y = self.conv1(x[:, None])  # (B, c, T, F)
        y = _zero_padding(swoosh_r(self.balancer1(self.scale_grad(y))), lengths)
        y = _zero_padding(swoosh_r(self.balancer2(self.conv2(y))), half)  # (B, 4c, T/2, F/2)
        y = _zero_padding(swoosh_r(self.balancer3(self.conv3(y))), half)  # (B, 16c, T/2, F')
        y = self.convnext(y)
        b, c, t, f = y.shape
        y = self.out(y.permute(0, 2, 1, 3).reshape(b, t, c * f))
        return self.dropout(self.norm(self.out_whiten(y)))
