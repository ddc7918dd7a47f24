"""MTC: multi-label tag classification over the first K tags of the UTS vocabulary.

Loss: binary cross-entropy with logits, averaged over clips and tags (PyTorch's "mean"): the same
scale at any batch size; lambda in the multi-task loss is relative to this.
"""

from __future__ import annotations

import torch
from torch import nn

from uts.models.heads import MTCHead
from uts.objectives.base import Batch, Outputs

__all__ = ["MTC"]


class MTC(nn.Module):
    name = "mtc"

    def __init__(self, encoder_dim: int, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.head = MTCHead(encoder_dim, num_tags, dropout)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> Outputs:
        return {"logits": self.head(frames, lengths)}  # (B, K)

    def loss(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, float]]:
        targets = batch["targets"].to(outputs["logits"].dtype)
        loss = nn.functional.binary_cross_entropy_with_logits(outputs["logits"], targets)
        return loss, {"loss_mtc": float(loss.detach())}
