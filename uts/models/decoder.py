"""The tag decoder for the captioning objectives: a Transformer decoder cross-attending to the
projected encoder frames (BART-base sized by default: 6 layers, d=768, 12 heads)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["INIT_STD", "TagDecoder"]

# BART's init_std (transformers BartPreTrainedModel._init_weights: embeddings ~ N(0, 0.02)).
INIT_STD = 0.02


class TagDecoder(nn.Module):
    """tokens (B, L), encoder frames (B, T, D_enc) -> logits (B, L, V).

    `causal=True` is the AR objective (each position sees earlier tokens); `causal=False` with
    all-`<mask>` inputs is PAR (each position predicts its token from the audio and its index).
    """

    def __init__(
        self, vocab_size: int, encoder_dim: int, *, dim: int = 768, layers: int = 6, heads: int = 12,
        max_tokens: int = 128, dropout: float = 0.1, pad_id: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = nn.Embedding(max_tokens, dim)
        self.memory = nn.Linear(encoder_dim, dim)
        layer = nn.TransformerDecoderLayer(
            dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab_size, bias=False)
        self.out.weight = self.tokens.weight  # tied input/output embeddings, as BART
        # torch's nn.Embedding draws N(0, 1); tied to the output, that gives logits of spread
        # sqrt(dim) after the unit-variance final norm (CE ~310 at d=768 against ln V ~10.8).
        # Scaling the same draws to BART's N(0, 0.02) gives spread 0.02 * sqrt(dim) (0.55 at
        # d=768): a near-uniform start, CE ~ ln V. Scaling in place keeps the RNG stream (and so
        # every later module's init) as it was; the padding row stays zero.
        with torch.no_grad():
            self.tokens.weight.mul_(INIT_STD)
            self.positions.weight.mul_(INIT_STD)

    def forward(
        self, tokens: torch.Tensor, frames: torch.Tensor, frame_pad: torch.Tensor, *, causal: bool
    ) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.positions.num_embeddings:
            raise ValueError(
                f"{length} tokens exceed the decoder's {self.positions.num_embeddings}"
            )
        x = self.tokens(tokens) + self.positions(torch.arange(length, device=tokens.device))[None]
        # Bool masks on both sides (True = may not attend), as PyTorch wants them to match.
        future = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        mask = future if causal else None
        y = self.layers(
            x, self.memory(frames), tgt_mask=mask, tgt_is_causal=causal,
            tgt_key_padding_mask=tokens == self.pad_id, memory_key_padding_mask=frame_pad,
        )  # fmt: skip
        return self.out(self.norm(y))
