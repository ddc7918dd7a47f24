"""The Zipformer encoder: fbank (B, T, 80) at 100 Hz -> (B, T', D) at 25 Hz with lengths."""

from __future__ import annotations

import torch
from torch import nn

from uts.models.zipformer.activations import SwooshR
from uts.models.zipformer.block import Downsample, Stack, ZipformerBlock, padding_mask
from uts.models.zipformer.config import ZipformerConfig
from uts.models.zipformer.layers import BiasNorm

__all__ = ["Stem", "Zipformer", "masked_mean"]


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B,) -> (B, D): the mean over each clip's real frames only."""
    valid = (~padding_mask(lengths, x.shape[1])).to(x.dtype)[..., None]
    return (x * valid).sum(1) / lengths.clamp(min=1).to(x.dtype)[:, None]


class Stem(nn.Module):
    """Convolutions halving time (100 -> 50 Hz) and shrinking frequency 8x: (B, T, F) -> (B, ceil(T/2), D).

    Frames past a clip's end are zeroed after every convolution, so a clip's output does not
    depend on how much padding its batch has.
    """

    def __init__(self, num_mel_bins: int, channels: int, dim: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(1, channels, 3, stride=(2, 2), padding=1),
                nn.Conv2d(channels, 2 * channels, 3, stride=(1, 2), padding=1),
                nn.Conv2d(2 * channels, 4 * channels, 3, stride=(1, 2), padding=1),
            ]
        )
        self.activation = SwooshR()
        freq = num_mel_bins
        for _ in range(3):
            freq = (freq - 1) // 2 + 1
        self.out = nn.Linear(4 * channels * freq, dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) with padding zeroed, (B,) lengths at 50 Hz -> (B, T/2, D)."""
        y = x[:, None]  # (B, 1, T, F)
        for conv in self.convs:
            y = self.activation(conv(y))  # (B, C, T/2, F')
            pad = padding_mask(lengths, y.shape[2])
            y = y.masked_fill(pad[:, None, :, None], 0.0)
        b, c, t, f = y.shape
        return self.out(y.permute(0, 2, 1, 3).reshape(b, t, c * f))


class Zipformer(nn.Module):
    """Stacks at (1, 2, 4, 8, 4, 2) x the stem's 20 ms frames, each bypassed into a residual stream
    whose width changes between stacks (truncated or zero-padded). The output assembles, for each
    channel, the latest stack that has it, then halves the frame rate: 10 s in -> 250 frames out."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = Stem(config.num_mel_bins, config.stem_channels, config.dims[0])
        self.stacks = nn.ModuleList()
        for i, factor in enumerate(config.downsampling):
            blocks = [
                ZipformerBlock(
                    config.dims[i],
                    config.feedforward[i],
                    config.heads[i],
                    config.conv_kernels[i],
                    query_dim=config.query_head_dim,
                    value_dim=config.value_head_dim,
                    pos_dim=config.pos_head_dim,
                    pos_emb_dim=config.pos_emb_dim,
                    dropout=config.dropout,
                )
                for _ in range(config.num_layers[i])
            ]
            self.stacks.append(
                Stack(blocks, config.dims[i], factor, config.pos_emb_dim, config.layer_skip)
            )
        self.downsample = Downsample(2)
        self.norm = BiasNorm(config.output_dim)
        # Biases start at zero (with SwooshR(0) = 0 nothing adds a constant at init): PyTorch's
        # default bias init makes every clip's pooled output ~99.8% the same vector, which stalls
        # contrastive training from scratch.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d) and module.bias is not None:
                nn.init.zeros_(module.bias)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    @property
    def layer_widths(self) -> dict[str, int]:
        """The parts of `layer_embeddings`, in order: stem, stack1..stackN, final -> width."""
        dims = self.config.dims
        stacks = {f"stack{i}": d for i, d in enumerate(dims, start=1)}
        return {"stem": dims[0], **stacks, "final": self.output_dim}

    @property
    def layers_dim(self) -> int:
        """Width of `layer_embeddings`: the stem's, every stack's and the output's."""
        return sum(self.layer_widths.values())

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 80) fbank, (B,) frame counts -> (B, T', D) frames at 25 Hz, (B,) their counts."""
        out, out_lengths, _ = self.forward_layers(feats, lengths)
        return out, out_lengths

    def forward_layers(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """`forward`, plus the stem's and every stack's output, each (B, T_stem, its width) at the
        stem's 50 Hz, with the (B,) stem frame counts."""
        feats = feats.masked_fill(padding_mask(lengths, feats.shape[1])[..., None], 0.0)
        lengths = (lengths + 1) // 2
        x = self.stem(feats, lengths)
        inner = [(x, lengths)]
        full = x.new_zeros(*x.shape[:2], self.output_dim)
        for dim, stack in zip(self.config.dims, self.stacks, strict=True):
            if x.shape[-1] < dim:
                x = torch.cat(
                    [x, full[..., x.shape[-1] : dim]], dim=-1
                )  # widen with earlier output
            x = stack(x[..., :dim], lengths)
            inner.append((x, lengths))
            full = torch.cat([x, full[..., dim:]], dim=-1)  # this stack owns channels [:dim]
        out = self.downsample(full, padding_mask(lengths, full.shape[1]))
        out_lengths = (lengths + 1) // 2
        out = self.norm(out).masked_fill(padding_mask(out_lengths, out.shape[1])[..., None], 0.0)
        return out, out_lengths, inner

    def embed(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, 80), (B,) -> (B, D) clip embeddings (masked mean of the output frames)."""
        out, out_lengths = self(feats, lengths)
        return masked_mean(out, out_lengths)

    def layer_embeddings(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, 80), (B,) -> (B, layers_dim): the masked means of the stem's output, of every
        stack's and of the final output, concatenated in that order (a probe that reads every
        depth, as SUPERB's weighted layer sum does, without learning the weights)."""
        out, out_lengths, inner = self.forward_layers(feats, lengths)
        pooled = [masked_mean(x, n) for x, n in inner]
        return torch.cat([*pooled, masked_mean(out, out_lengths)], dim=-1)
