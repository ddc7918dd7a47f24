"""The Zipformer encoder: fbank (B, T, 80) at 100 Hz -> (B, T', D) at 25 Hz with lengths.

As upstream's Zipformer2 (icefall/Auden `zipformer.py`) behind its Conv2dSubsampling stem
(`stem.py`): stacks at (1, 2, 4, 8, 4, 2) x the stem's 20 ms frames, each given the previous
stack's output truncated or zero-padded to its width; the output takes each channel from the latest
stack that has it and halves the frame rate, with no norm after it.

Training schedules (dropout, layer drop, balancer and whitening limits, ...) follow the batch count:
the training loop calls `model.set_batch_count(step)` before each step (`Pretrainer`:
`model.encoder.set_batch_count(step)`). Until it does, the schedules hold their defaults.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from uts.models.zipformer.block import Downsample, Stack, ZipformerBlock, padding_mask
from uts.models.zipformer.config import ZipformerConfig
from uts.models.zipformer.scaling import FloatLike, ScheduledFloat
from uts.models.zipformer.stem import Stem

__all__ = ["Stem", "Zipformer", "masked_mean", "parameter_count"]

_FEATURE_MASK_RATE = 0.125  # upstream's per-clip rate of masking channels beyond unmasked_dims


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B,) -> (B, D): the mean over each clip's real frames only."""
    valid = (~padding_mask(lengths, x.shape[1])).to(x.dtype)[..., None]
    return (x * valid).sum(1) / lengths.clamp(min=1).to(x.dtype)[:, None]


def parameter_count(config: ZipformerConfig) -> int:
    """Parameters of `Zipformer(config)`, counted on the meta device (no memory, no RNG draws)."""
    with torch.device("meta"):
        model = Zipformer(config)
    return sum(p.numel() for p in model.parameters())


def _dropout(config: ZipformerConfig) -> FloatLike:
    if config.dropout is not None:
        return config.dropout
    return ScheduledFloat((0.0, 0.3), (20000.0, 0.1))


def _layer_skip(config: ZipformerConfig, stack: int, layer: int) -> FloatLike:
    """Upstream's layer-drop schedule: stack i (of n) warms up over batches W(i+1)/(n+1) ..
    W(i+2)/(n+1), its blocks one after another, each falling from 0.5 to 0.035 sqrt(factor)."""
    if config.layer_skip is not None:
        return config.layer_skip
    n, w = len(config.downsampling), config.warmup_batches
    span = w / (n + 1) / config.num_layers[stack]
    start = w * (stack + 1) / (n + 1) + layer * span
    final = 0.035 * math.sqrt(config.downsampling[stack])
    if span <= 0:
        return ScheduledFloat((start, final))
    return ScheduledFloat((start, 0.5), (start + span, final))


def _fit(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Truncate or zero-pad the channels of (B, T, D) to `dim`."""
    if x.shape[-1] >= dim:
        return x[..., :dim]
    return nn.functional.pad(x, (0, dim - x.shape[-1]))


class Zipformer(nn.Module):
    """See the module docstring: 10 s in -> 250 frames out."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = Stem(
            config.num_mel_bins, config.stem_channels, config.dims[0], _dropout(config)
        )
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
                    dropout=_dropout(config),
                    layer_skip=_layer_skip(config, i, j),
                )
                for j in range(config.num_layers[i])
            ]
            self.stacks.append(Stack(blocks, config.dims[i], factor, config.pos_emb_dim))
        self.downsample = Downsample(2)
        self.batch_count: float | None = None
        # Biases start at zero (with SwooshR(0) = 0 nothing adds a constant at init): PyTorch's
        # default bias init makes every clip's pooled output ~99.8% the same vector, which stalls
        # contrastive training from scratch. (Upstream keeps the default / +-0.1 x scale biases.)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_batch_count(self, count: float | None) -> None:
        """Move every training schedule to batch `count`; the training loop calls it before each
        step with the optimiser steps taken so far (Auden's trainer passes its global step; icefall
        scales it by the step's audio seconds / 600, and the paper's 640 s steps make that ~1).
        It walks the modules (a few ms for m); every step or every few steps (Auden: every 10)
        both work. None: back to the schedules' defaults."""
        self.batch_count = None if count is None else float(count)
        for module in self.modules():
            if isinstance(module, ScheduledFloat):
                module.batch_count = self.batch_count

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

    def feature_masks(self, x: torch.Tensor) -> list[torch.Tensor | float]:
        """Per stack, a (B, 1, D) 0/1 mask in training (upstream's feature masking: beyond
        `unmasked_dims`, the first half of a stack's channels is off for ~12.5% of clips, the
        rest for those and another ~11%; the same clips in every stack); 1.0 in eval."""
        if not self.training:
            return [1.0] * len(self.stacks)
        b = x.shape[0]
        first = torch.rand(b, 1, 1, device=x.device) >= _FEATURE_MASK_RATE
        second = first & (torch.rand(b, 1, 1, device=x.device) >= _FEATURE_MASK_RATE)
        masks: list[torch.Tensor | float] = []
        for dim, kept in zip(self.config.dims, self.config.unmasked_dims, strict=True):
            middle = kept + (dim - kept) // 2
            mask = torch.ones(b, 1, dim, device=x.device, dtype=x.dtype)
            mask[..., kept:middle] *= first
            mask[..., middle:] *= second
            masks.append(mask)
        return masks

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
        x = self.stem(feats, lengths)
        lengths = (lengths + 1) // 2
        inner = [(x, lengths)]
        for dim, stack, mask in zip(
            self.config.dims, self.stacks, self.feature_masks(x), strict=True
        ):
            x = stack(_fit(x, dim), lengths, mask)
            inner.append((x, lengths))
        # Each channel from the latest stack that has it.
        pieces, width = [x], x.shape[-1]
        for y, _ in reversed(inner[1:-1]):
            if y.shape[-1] > width:
                pieces.append(y[..., width:])
                width = y.shape[-1]
        full = torch.cat(pieces, dim=-1) if len(pieces) > 1 else x
        out = self.downsample(full, lengths)
        out_lengths = (lengths + 1) // 2
        out = out.masked_fill(padding_mask(out_lengths, out.shape[1])[..., None], 0.0)
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
