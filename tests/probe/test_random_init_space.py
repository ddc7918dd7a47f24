"""The random-init baseline's cache key follows the architecture, not only the preset's name:
cached embeddings of an older Zipformer must not stand in for the current one's."""

from __future__ import annotations

import pytest
import torch

import uts.models.zipformer as zipformer
from uts.probe import embeddings
from uts.train.config import preset


def test_the_space_changes_with_seed_and_with_the_architecture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = preset("smoke")
    space = embeddings.random_init_source(config).space
    assert space == embeddings.random_init_source(preset("smoke")).space  # deterministic
    assert space != embeddings.random_init_source(preset("smoke", seed=config.seed + 1)).space

    class Changed(zipformer.Zipformer):  # the same preset, one more weight: another architecture
        def __init__(self, cfg: zipformer.ZipformerConfig) -> None:
            super().__init__(cfg)
            self.extra = torch.nn.Parameter(torch.zeros(3))

    monkeypatch.setattr(zipformer, "Zipformer", Changed)
    embeddings._initial_weights_digest.cache_clear()
    try:
        assert embeddings.random_init_source(config).space != space
    finally:
        embeddings._initial_weights_digest.cache_clear()
