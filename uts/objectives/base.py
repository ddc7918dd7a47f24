"""One interface for every objective, and the model that wires encoder + objective together.

A batch is a dict of tensors (and texts). Keys by objective:
- all: `feats` (B, T, 80) fbank, `feat_lens` (B,) frames;
- mtc, multitask: `targets` (B, K) multi-hot over the first K tags of the vocabulary;
- contrastive: `text_ids`, `text_mask` (B, L) from the text tower's tokenizer;
- ar, par, multitask: `tag_ids` (B, L) token ids of the canonical tag string (no special tokens),
  right-padded with the tokenizer's pad id, and `tag_lens` (B,).
An objective is an nn.Module (it owns its heads): `forward(frames, lengths, batch) -> outputs` and
`loss(batch, outputs) -> (scalar, metrics)`. Rank and world size are arguments, never globals.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from uts.models.specaug import SpecAugment
from uts.models.zipformer import Zipformer

__all__ = ["Batch", "Objective", "Pretrainer"]

Batch = dict[str, Any]
Outputs = dict[str, torch.Tensor]


class Objective(Protocol):
    name: str

    def __call__(self, frames: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> Outputs: ...

    def loss(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, float]]: ...


class Pretrainer(nn.Module):
    """SpecAugment (training only) -> Zipformer -> objective."""

    def __init__(
        self, encoder: Zipformer, objective: nn.Module, specaug: SpecAugment | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.specaug = specaug if specaug is not None else SpecAugment()

    def forward(self, batch: Batch, with_loss: bool = False) -> Any:
        """Outputs, or (loss, metrics) with `with_loss`: under DDP the loss must be computed inside
        forward, so that parameters used only by the loss (contrastive's temperature) are seen as
        used, not marked ready before the backward pass reaches them."""
        feats = self.specaug(batch["feats"], batch["feat_lens"])
        frames, lengths = self.encoder(feats, batch["feat_lens"])
        outputs: Outputs = self.objective(frames, lengths, batch)
        if with_loss:
            return self.objective.loss(batch, outputs)  # type: ignore[operator]
        return outputs

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        loss: tuple[torch.Tensor, dict[str, float]] = self(batch, with_loss=True)
        return loss
