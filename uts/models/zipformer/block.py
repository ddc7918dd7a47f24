"""The Zipformer block and a stack of blocks running at a lower frame rate (icefall/Auden
`zipformer.py`: Zipformer2EncoderLayer, Zipformer2Encoder, DownsampledZipformer2Encoder,
SimpleDownsample, SimpleUpsample).

Block (Zipformer paper, fig. 2): FF -> NLA -> SA -> Conv -> FF -> mid bypass -> SA -> Conv -> FF
-> BiasNorm -> bypass, the attention weights computed once from the block's input and shared by NLA
and both SAs. Training-time behaviour as upstream: per-clip skipping of the attention, convolution
and FF2/FF3 modules and of the whole block (through its bypass), constant attention for NLA now and
then, and balancers/whitening on the outputs; all on schedules over the batch count.
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
from uts.models.zipformer.scaling import (
    Balancer,
    FloatLike,
    ScheduledFloat,
    Whiten,
    uniform,
    whitening_schedule,
)

__all__ = ["Downsample", "Stack", "ZipformerBlock", "padding_mask"]


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on padding frames."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths[:, None]


def _module_skip() -> ScheduledFloat:
    return ScheduledFloat((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0))


def _ff_skip() -> ScheduledFloat:
    return ScheduledFloat((0.0, 0.1), (4000.0, 0.01), (50000.0, 0.0))


def _balancer(dim: int, low: float, high: float, min_abs: FloatLike, max_abs: float, prob: float | None = None) -> Balancer:  # fmt: skip
    return Balancer(
        dim, -1, min_positive=low, max_positive=high, min_abs=min_abs, max_abs=max_abs, prob=prob
    )


class ZipformerBlock(nn.Module):
    def __init__(
        self, dim: int, feedforward: int, heads: int, kernel: int, *, query_dim: int, value_dim: int,
        pos_dim: int, pos_emb_dim: int, dropout: FloatLike, layer_skip: FloatLike = 0.0,
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
        self.bypass = Bypass(dim, skip_rate=layer_skip)  # layer drop: a skipped clip keeps x
        # Per-clip skip rates of the sub-modules and the rate of constant NLA attention.
        self.attention_skip_rate = _module_skip()
        self.conv_skip_rate = _module_skip()
        self.ff2_skip_rate, self.ff3_skip_rate = _ff_skip(), _ff_skip()
        self.const_attention_rate = ScheduledFloat((0.0, 0.25), (4000.0, 0.025))
        self.nla_balancer = _balancer(dim, 0.3, 0.7, ScheduledFloat((0.0, 0.004), (4000.0, 0.02)), 100.0, 0.05)  # fmt: skip
        self.ff2_balancer = _balancer(dim, 0.3, 0.7, ScheduledFloat((0.0, 0.0), (4000.0, 0.1)), 2.0, 0.05)  # fmt: skip
        self.ff3_balancer = _balancer(dim, 0.3, 0.7, ScheduledFloat((0.0, 0.0), (4000.0, 0.2)), 4.0, 0.05)  # fmt: skip
        self.pre_norm_balancer = _balancer(dim, 0.45, 0.55, 0.2, 4.0)
        self.out_balancer = _balancer(dim, 0.45, 0.55, 0.1, 4.0)
        self.out_whiten = Whiten(1, whitening_schedule(4.0, ratio=3.0), (0.025, 0.25), 0.01)

    def _keep(self, x: torch.Tensor, rate: ScheduledFloat) -> torch.Tensor | None:
        """(B, 1, 1) per-clip 0/1 multiplier, or None when nothing is skipped."""
        p = float(rate) if self.training else 0.0
        if p == 0.0:
            return None
        return (torch.rand(x.shape[0], 1, 1, device=x.device) >= p).to(x.dtype)

    def _nla_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """The first head's weights (B, T, T), in training sometimes made uniform over the real keys."""
        first = weights[:, 0]
        rate = float(self.const_attention_rate) if self.training else 0.0
        if rate > 0.0 and uniform() < rate:
            real = (first > 0.0).to(first.dtype)
            first = real / real.sum(dim=-1, keepdim=True)
        return first

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (2T-1, E), (B, T) -> (B, T, D)."""
        start = x
        weights = self.weights(x, pos_emb, pad)  # (B, H, T, T), shared below
        x = x + self.ff1(x)
        attend = self._keep(x, self.attention_skip_rate)
        nla = self.nla_balancer(self.nla(x, self._nla_weights(weights)))
        x = x + (nla if attend is None else nla * attend)
        sa = self.sa1(x, weights)
        x = x + (sa if attend is None else sa * attend)
        x = self._residual(x, self.conv1(x, pad), self.conv_skip_rate)
        x = self._residual(x, self.ff2_balancer(self.ff2(x)), self.ff2_skip_rate)
        x = self.mid_bypass(start, x)
        sa = self.sa2(x, weights)
        x = x + (sa if attend is None else sa * attend)
        x = self._residual(x, self.conv2(x, pad), self.conv_skip_rate)
        x = self._residual(x, self.ff3_balancer(self.ff3(x)), self.ff3_skip_rate)
        x = self.norm(self.pre_norm_balancer(x))
        return self.out_whiten(self.out_balancer(self.bypass(start, x)))

    def _residual(self, x: torch.Tensor, y: torch.Tensor, rate: ScheduledFloat) -> torch.Tensor:
        keep = self._keep(x, rate)
        return x + (y if keep is None else y * keep)


class Downsample(nn.Module):
    """Learned weighted average (softmax of `logits`) of every `factor` frames:
    (B, T, D), (B,) lengths -> (B, ceil(T / factor), D).

    Upstream pads the last group by repeating the batch's last frame; here each clip's padding is
    filled with that clip's own last real frame, which gives a clip the output it has alone
    (upstream's) whatever padding its batch adds.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.logits = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        b, t, d = x.shape
        groups = -(-t // self.factor)
        frames = torch.arange(groups * self.factor, device=x.device)
        last = (lengths - 1).clamp(min=0)[:, None]
        source = torch.minimum(frames[None, :], last)  # (B, groups * factor)
        filled = x.gather(1, source[..., None].expand(b, -1, d))
        weights = self.logits.softmax(0).to(x.dtype)
        return torch.einsum("f,bgfd->bgd", weights, filled.view(b, groups, self.factor, d))


class Stack(nn.Module):
    """Blocks at 1/factor of the input rate. With factor > 1 the result is upsampled (repeated) and
    bypassed with the input; with factor 1 (upstream's plain encoder) it is the blocks' output.
    A (B, 1, D) `feature_mask` (training) multiplies the input and every block's output."""

    def __init__(
        self, blocks: list[ZipformerBlock], dim: int, factor: int, pos_emb_dim: int
    ) -> None:
        super().__init__()
        self.factor = factor
        self.downsample = Downsample(factor) if factor > 1 else None
        self.blocks = nn.ModuleList(blocks)
        self.positions = RelPositionalEncoding(pos_emb_dim)
        self.bypass = Bypass(dim) if factor > 1 else None

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, feature_mask: torch.Tensor | float = 1.0
    ) -> torch.Tensor:
        """(B, T, D) at the stem's rate, (B,) lengths -> (B, T, D)."""
        t = x.shape[1]
        y = x if self.downsample is None else self.downsample(x, lengths)
        low_lengths = (lengths + self.factor - 1) // self.factor
        pad = padding_mask(low_lengths, y.shape[1])
        pos_emb = self.positions(y.shape[1], y.device, y.dtype)
        masked = isinstance(feature_mask, torch.Tensor)
        y = y * feature_mask if masked else y
        for block in self.blocks:
            y = block(y, pos_emb, pad)
            y = y * feature_mask if masked else y
        if self.bypass is None:
            return y
        up = y.repeat_interleave(self.factor, dim=1)[:, :t]
        return self.bypass(x, up)
