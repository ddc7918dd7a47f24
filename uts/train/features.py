"""From stored clips to training batches.

`featurize` runs on CPU data workers (Ray Data): FLAC -> 16 kHz wave -> 80-dim fbank, and the clip's
tags -> vocabulary columns at K and the canonical tag string. `collate` runs in the training
process: pads a duration-bounded group of examples into the batch dict the objectives read
(see uts.objectives.base), tokenising tag strings for the text objectives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from uts.audio.fbank import NUM_MEL_BINS, Fbank
from uts.audio.io import decode_flac
from uts.tags.vocab import Vocabulary

__all__ = ["Example", "collate", "featurize", "tag_token_ids"]

Example = dict[
    str, Any
]  # clip_id, feats (bytes of float32 (T, 80)), frames, duration_s, targets, tag_string


def featurize(
    rows: Sequence[Mapping[str, Any]], tags: Mapping[str, Sequence[str]], vocab: Vocabulary,
    fbank: Fbank | None = None,
) -> list[Example]:  # fmt: skip
    """Corpus rows (clip_id, audio, duration_s) -> examples, shortest first. `tags` maps clip id ->
    its tags; columns are the vocabulary's (at its K), tags outside it are ignored."""
    fbank = fbank or Fbank()
    rows = sorted(rows, key=lambda r: float(r["duration_s"]))  # similar lengths share a group
    waves = [decode_flac(row["audio"]) for row in rows]
    out = []
    for start in range(0, len(waves), 16):  # fbank in small groups: padding stays small
        feats, lengths = fbank(waves[start : start + 16])
        for offset, (f, n) in enumerate(zip(feats, lengths.tolist(), strict=True)):
            row = rows[start + offset]
            clip_tags = tags.get(row["clip_id"], ())
            out.append({
                "clip_id": row["clip_id"],
                "feats": f[:n].numpy().astype(np.float32).tobytes(),
                "frames": n,
                "duration_s": float(row["duration_s"]),
                "targets": vocab.indices(clip_tags),
                "tag_string": vocab.canonical_string(clip_tags),
            })  # fmt: skip
    return out


def tag_token_ids(
    tokenizer: Any, strings: Sequence[str], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical tag strings -> (B, L) ids without special tokens, right-padded, and (B,) lengths."""
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"][: max_tokens - 1] for s in strings]
    lengths = torch.tensor([max(len(i), 1) for i in ids], dtype=torch.int64)
    out = torch.full((len(ids), int(lengths.max())), tokenizer.pad_token_id, dtype=torch.int64)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.int64)
    return out, lengths


def collate(
    examples: Sequence[Example], *, num_tags: int, text_tokenizer: Any = None, tag_tokenizer: Any = None,
    max_tokens: int = 128,
) -> dict[str, Any]:  # fmt: skip
    """Pad examples into one batch: feats (B, T, 80), feat_lens (B,), targets (B, K) multi-hot,
    clip_ids; plus text_ids/text_mask (contrastive) or tag_ids/tag_lens (ar, par, multitask)."""
    lengths = torch.tensor([int(e["frames"]) for e in examples], dtype=torch.int64)
    feats = torch.zeros(len(examples), int(lengths.max()), NUM_MEL_BINS)
    targets = torch.zeros(len(examples), num_tags)
    for row, example in enumerate(examples):
        frame = np.frombuffer(example["feats"], dtype=np.float32).reshape(-1, NUM_MEL_BINS)
        feats[row, : len(frame)] = torch.from_numpy(frame.copy())
        columns = [c for c in example["targets"] if c < num_tags]
        if columns:
            targets[row, columns] = 1.0
    batch: dict[str, Any] = {"feats": feats, "feat_lens": lengths, "targets": targets,
                             "clip_ids": [e["clip_id"] for e in examples]}  # fmt: skip
    strings = [e["tag_string"] for e in examples]
    if text_tokenizer is not None:
        encoded = text_tokenizer(strings, padding=True, truncation=True, max_length=max_tokens,
                                 return_tensors="pt")  # fmt: skip
        batch["text_ids"], batch["text_mask"] = encoded["input_ids"], encoded["attention_mask"]
    if tag_tokenizer is not None:
        batch["tag_ids"], batch["tag_lens"] = tag_token_ids(tag_tokenizer, strings, max_tokens)
    return batch
