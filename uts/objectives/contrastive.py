"""Contrastive: symmetric InfoNCE between pooled audio and the text tower, both projected.

Text is the clip's canonical tag string (or its description), tokenized into `text_ids`. With
world size > 1, embeddings are gathered from every rank (`gather` is passed in: for DDP an
all-gather that keeps this rank's gradient) so each clip meets B x world negatives; row i of this
rank is global row rank * B + i. In eval mode the negatives are the rank's own batch. The temperature is learned, starting at 0.07 (CLIP's choice), as
a log-scale clamped to at most 100.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from uts.models.text import TextTower
from uts.models.zipformer import masked_mean
from uts.objectives.base import Batch, Outputs

__all__ = ["Contrastive"]

Gather = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class Contrastive(nn.Module):
    name = "contrastive"

    def __init__(
        self, encoder_dim: int, text: TextTower, *, dim: int = 512, rank: int = 0, world_size: int = 1,
        gather: Gather = _identity,
    ) -> None:  # fmt: skip
        super().__init__()
        self.text = text
        self.audio_proj = nn.Linear(encoder_dim, dim)
        self.text_proj = nn.Linear(text.dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.rank, self.world_size, self.gather = rank, world_size, gather

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> Outputs:
        audio = nn.functional.normalize(self.audio_proj(masked_mean(frames, lengths)), dim=-1)
        pooled = self.text(batch["text_ids"], batch["text_mask"])
        text = nn.functional.normalize(self.text_proj(pooled), dim=-1)
        return {"audio": audio, "text": text}  # (B, dim) each, unit length

    def loss(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, float]]:
        audio, text = outputs["audio"], outputs["text"]
        # Training: (N, dim) with N = B_max * world: ranks with fewer clips are padded with zero
        # rows (real rows are unit vectors, so a zero row is padding and is masked out of the
        # softmax). Eval: this rank's batch alone, so evaluation calls no collective and ranks
        # with different numbers of validation batches never wait on each other.
        distributed = self.training and self.world_size > 1
        all_audio, all_text = (
            (self.gather(audio), self.gather(text)) if distributed else (audio, text)
        )
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()
        offset = self.rank * (all_audio.shape[0] // self.world_size) if distributed else 0
        labels = torch.arange(audio.shape[0], device=audio.device) + offset
        padding = all_text.abs().sum(-1) == 0  # (N,)
        audio_to_text = nn.functional.cross_entropy(
            (scale * audio @ all_text.T).masked_fill(padding, float("-inf")), labels
        )
        text_to_audio = nn.functional.cross_entropy(
            (scale * text @ all_audio.T).masked_fill(all_audio.abs().sum(-1) == 0, float("-inf")),
            labels,
        )
        loss = (audio_to_text + text_to_audio) / 2
        return loss, {
            "loss_contrastive": float(loss.detach()),
            "temperature": float(1 / scale.detach()),
        }
