"""Captioning objectives on the canonical tag string: AR (teacher forcing, causal) and PAR (every
input token replaced by `<mask>`, no causal mask, target length given).

AR: inputs `[BOS] + ids`, targets `ids + [EOS]`. PAR: inputs `<mask> x len(ids)`, targets `ids`;
each position predicts its token from the audio and its index alone, so PAR cannot lean on a
language prior. Loss: token cross-entropy averaged over the batch's real target tokens (padding
ignored), the same scale at any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from uts.models.decoder import TagDecoder
from uts.models.zipformer.block import padding_mask
from uts.objectives.base import Batch, Outputs

__all__ = ["IGNORE", "Generative", "SpecialTokens", "ar_io", "par_io"]

IGNORE = -100


@dataclass(frozen=True)
class SpecialTokens:
    pad: int
    bos: int
    eos: int
    mask: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> SpecialTokens:
        """BART's <s> </s> <mask> <pad>, or BERT-style [CLS] [SEP] [MASK] [PAD]."""
        bos = (
            tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        )
        eos = (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        )
        return cls(tokenizer.pad_token_id, bos, eos, tokenizer.mask_token_id, len(tokenizer))


def ar_io(
    ids: torch.Tensor, lengths: torch.Tensor, special: SpecialTokens
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids, (B,) lengths -> inputs [BOS]+ids and targets ids+[EOS], both (B, L+1)."""
    b = ids.shape[0]
    real = ~padding_mask(lengths, ids.shape[1])
    inputs = torch.cat(
        [ids.new_full((b, 1), special.bos), ids.masked_fill(~real, special.pad)], dim=1
    )
    targets = torch.cat([ids.masked_fill(~real, IGNORE), ids.new_full((b, 1), IGNORE)], dim=1)
    targets[torch.arange(b), lengths] = special.eos
    return inputs, targets


def par_io(
    ids: torch.Tensor, lengths: torch.Tensor, special: SpecialTokens
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids, (B,) lengths -> inputs all <mask> (pad beyond the length) and targets ids."""
    real = ~padding_mask(lengths, ids.shape[1])
    inputs = torch.full_like(ids, special.pad).masked_fill(real, special.mask)
    return inputs, ids.masked_fill(~real, IGNORE)


def token_loss_sum(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed token cross-entropy and the number of real target tokens."""
    loss = nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((targets != IGNORE).sum())


class Generative(nn.Module):
    """AR (`mode="ar"`) or PAR (`mode="par"`) captioning of the canonical tag string."""

    def __init__(self, decoder: TagDecoder, special: SpecialTokens, mode: str) -> None:
        super().__init__()
        if mode not in ("ar", "par"):
            raise ValueError(f"mode must be 'ar' or 'par', got {mode!r}")
        self.name = mode
        self.decoder, self.special, self.mode = decoder, special, mode

    def decode(
        self,
        frames: torch.Tensor,
        lengths: torch.Tensor,
        ids: torch.Tensor,
        id_lens: torch.Tensor,
        mode: str,
    ) -> Outputs:
        make = ar_io if mode == "ar" else par_io
        inputs, targets = make(ids, id_lens, self.special)
        frame_pad = padding_mask(lengths, frames.shape[1])
        return {
            "logits": self.decoder(inputs, frames, frame_pad, causal=mode == "ar"),
            "targets": targets,
        }

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> Outputs:
        return self.decode(frames, lengths, batch["tag_ids"], batch["tag_lens"], self.mode)

    @torch.no_grad()
    def greedy(
        self, frames: torch.Tensor, lengths: torch.Tensor, *, max_tokens: int = 64, mode: str = "ar",
        target_lengths: torch.Tensor | None = None,
    ) -> list[list[int]]:  # fmt: skip
        """Greedy token ids per clip, without special tokens.

        AR: from [BOS], the most likely next token until EOS or `max_tokens`. PAR: one pass over
        `target_lengths` masks (PAR has no length model: the caller gives the length, e.g. the
        reference's, and says so); each position's most likely token.
        """
        frame_pad = padding_mask(lengths, frames.shape[1])
        b = frames.shape[0]
        if mode == "par":
            if target_lengths is None:
                raise ValueError("PAR decoding needs target_lengths (PAR has no length model)")
            width = int(target_lengths.max())
            real = ~padding_mask(target_lengths, width)
            inputs = torch.full((b, width), self.special.pad, device=frames.device)
            inputs = inputs.masked_fill(real, self.special.mask)
            best = self.decoder(inputs, frames, frame_pad, causal=False).argmax(-1)
            return [row[: int(n)].tolist() for row, n in zip(best, target_lengths, strict=True)]
        tokens = torch.full((b, 1), self.special.bos, device=frames.device)
        done = torch.zeros(b, dtype=torch.bool, device=frames.device)
        limit = min(max_tokens, self.decoder.positions.num_embeddings - 1)
        for _ in range(limit):
            step = self.decoder(tokens, frames, frame_pad, causal=True)[:, -1].argmax(-1)
            step = step.masked_fill(done, self.special.pad)
            tokens = torch.cat([tokens, step[:, None]], dim=1)
            done |= step == self.special.eos
            if bool(done.all()):
                break
        out = []
        for row in tokens[:, 1:].tolist():
            ids = []
            for token in row:
                if token in (self.special.eos, self.special.pad):
                    break
                ids.append(token)
            out.append(ids)
        return out

    def loss(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, float]]:
        total, count = token_loss_sum(outputs["logits"], outputs["targets"])
        loss = total / max(count, 1)
        return loss, {f"loss_{self.mode}": float(loss.detach())}
