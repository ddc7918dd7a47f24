"""Training targets from a vocabulary: multi-hot tensors for the MTC objective."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from uts.tags.vocab import Vocabulary

__all__ = ["multi_hot"]


def multi_hot(vocab: Vocabulary, clips: Sequence[Iterable[str]]) -> torch.Tensor:
    """(B clips of tags) -> (B, K) float32, 1.0 where the clip carries the vocabulary's tag.

    Tags outside the vocabulary (or beyond its K) are ignored; a clip with none gets a zero row.
    """
    target = torch.zeros(len(clips), len(vocab), dtype=torch.float32)
    for row, tags in enumerate(clips):
        columns = vocab.indices(tags)
        if columns:
            target[row, columns] = 1.0
    return target
