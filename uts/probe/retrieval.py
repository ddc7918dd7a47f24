"""Cross-modal retrieval metrics for audio-text embeddings: recall at k and rank statistics.

Each text describes one audio clip (its owner); a clip may own several texts (its canonical tag
string and its description) or none. Similarity is the cosine of the two embeddings.

Ties are broken pessimistically: a wrong item whose similarity equals that of the right one is
counted as ranked above it, so a constant encoder gets the worst rank, never a lucky one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["RetrievalMetrics", "RetrievalRanks", "retrieval_metrics", "retrieval_ranks"]


class RetrievalMetrics(TypedDict):
    """What `retrieval_metrics` returns. The direction dicts hold `R@k` (one per k, a share in
    [0, 1]), `median_rank` and `mean_rank` (1-based)."""

    text_to_audio: dict[str, float]
    audio_to_text: dict[str, float]
    n_audio: int
    n_text: int
    n_audio_without_text: int  # left out of audio_to_text: there is no right answer to rank


@dataclass(frozen=True, kw_only=True)
class RetrievalRanks:
    """1-based ranks of the right answer for every query.

    text_to_audio: (N_t,), rank of text j's owner among all clips.
    audio_to_text: (N_q,), rank of the best-ranked owned text, for the clips that own a text.
    audio_queries: (N_q,), the clip index of each audio_to_text entry (ascending).
    """

    text_to_audio: npt.NDArray[np.int64]
    audio_to_text: npt.NDArray[np.int64]
    audio_queries: npt.NDArray[np.int64]


def _normalised(
    x: npt.ArrayLike, name: str, dtype: np.dtype[np.floating]
) -> npt.NDArray[np.floating]:
    """(N, D) rows scaled to unit length; zero or non-finite rows are refused."""
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} embeddings must have shape (N, D) with N >= 1, got {array.shape}")
    array = array.astype(dtype, copy=False)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} embeddings: row {int(np.argmax(bad))} is not finite")
    norms = np.linalg.norm(array, axis=1, keepdims=True)  # (N, 1)
    if (norms == 0).any():
        raise ValueError(f"{name} embeddings: row {int(np.argmax(norms[:, 0] == 0))} is all zeros")
    unit: npt.NDArray[np.floating] = array / norms
    return unit


def retrieval_ranks(
    audio: npt.ArrayLike,
    text: npt.ArrayLike,
    text_owner: Sequence[int] | npt.NDArray[np.integer],
    *,
    chunk_size: int = 512,
    device: str | torch.device = "cpu",
) -> RetrievalRanks:
    """Rank the right answer of every text->audio and audio->text query (see module for ties).

    Args:
        audio: (N_a, D) clip embeddings.
        text: (N_t, D) text embeddings.
        text_owner: (N_t,) index into `audio` of the clip each text describes.
        chunk_size: queries scored at once; memory is about chunk_size * max(N_a, N_t) * 9 bytes
            (the similarity block and its masks), so 20k x 20k never builds a full matrix.
        device: where the similarities are computed ("cuda" is much faster on 10k+ clips).

    Raises:
        ValueError: shapes that disagree, owners out of range, zero or non-finite embeddings.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    # float32 for float32/float16 inputs, float64 kept when given
    dtype = np.result_type(np.asarray(audio).dtype, np.asarray(text).dtype, np.float32)
    a = _normalised(audio, "audio", dtype)
    t = _normalised(text, "text", dtype)
    if a.shape[1] != t.shape[1]:
        raise ValueError(
            f"audio and text embeddings differ in width: audio is {a.shape}, text is {t.shape}"
        )
    owner = np.asarray(text_owner)
    if owner.shape != (t.shape[0],):
        raise ValueError(
            f"text_owner must hold one clip index per text ({t.shape[0]}), got shape {owner.shape}"
        )
    if not np.issubdtype(owner.dtype, np.integer):
        raise ValueError(f"text_owner must hold integer clip indices, got dtype {owner.dtype}")
    owner = owner.astype(np.int64)
    out_of_range = (owner < 0) | (owner >= a.shape[0])
    if out_of_range.any():
        j = int(np.argmax(out_of_range))
        raise ValueError(
            f"text_owner[{j}] = {owner[j]} is out of range: there are {a.shape[0]} audio clips"
        )

    queries = np.unique(owner)  # clips that own at least one text
    with torch.no_grad():
        a_dev = torch.from_numpy(a).to(device)  # (N_a, D)
        t_dev = torch.from_numpy(t).to(device)  # (N_t, D)
        owner_dev = torch.from_numpy(owner).to(device)  # (N_t,)
        t2a = []
        for start in range(0, t_dev.shape[0], chunk_size):
            sims = t_dev[start : start + chunk_size] @ a_dev.T  # (C, N_a)
            right = sims.gather(1, owner_dev[start : start + chunk_size, None])  # (C, 1)
            # every clip at least as similar as the owner, the owner included: ties count against us
            t2a.append((sims >= right).sum(dim=1).cpu())

        queries_dev = torch.from_numpy(queries).to(device)
        a2t = []
        for start in range(0, queries.size, chunk_size):
            clips = queries_dev[start : start + chunk_size]  # (C,)
            sims = a_dev[clips] @ t_dev.T  # (C, N_t)
            owned = owner_dev[None, :] == clips[:, None]  # (C, N_t)
            best = sims.masked_fill(~owned, -torch.inf).amax(dim=1, keepdim=True)  # (C, 1)
            # 1 + wrong texts at least as similar; other owned texts never push the rank down
            a2t.append(1 + ((sims >= best) & ~owned).sum(dim=1).cpu())
    return RetrievalRanks(
        text_to_audio=torch.cat(t2a).numpy().astype(np.int64),
        audio_to_text=torch.cat(a2t).numpy().astype(np.int64),
        audio_queries=queries,
    )


def _summary(ranks: npt.NDArray[np.int64], ks: Sequence[int]) -> dict[str, float]:
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["mean_rank"] = float(np.mean(ranks))
    return out


def retrieval_metrics(
    audio: npt.ArrayLike,
    text: npt.ArrayLike,
    text_owner: Sequence[int] | npt.NDArray[np.integer],
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = 512,
    device: str | torch.device = "cpu",
) -> RetrievalMetrics:
    """Recall at k, median and mean rank of text->audio and audio->text retrieval.

    Text->audio: each text ranks all clips; the rank is that of its owner. Audio->text: each clip
    that owns a text ranks all texts; the rank is that of the best-ranked text it owns. Clips that
    own no text are left out of audio->text and counted in `n_audio_without_text`.

    Args:
        audio: (N_a, D) clip embeddings (L2-normalised here).
        text: (N_t, D) text embeddings (L2-normalised here).
        text_owner: (N_t,) index into `audio` of the clip each text describes.
        ks: the cut-offs of recall at k.
        chunk_size: queries scored at once (see `retrieval_ranks`).
        device: where the similarities are computed.

    Raises:
        ValueError: shapes that disagree, owners out of range, zero or non-finite embeddings,
            cut-offs below 1.
    """
    ks = list(ks)
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    ranks = retrieval_ranks(audio, text, text_owner, chunk_size=chunk_size, device=device)
    n_audio = int(np.asarray(audio).shape[0])
    return RetrievalMetrics(
        text_to_audio=_summary(ranks.text_to_audio, ks),
        audio_to_text=_summary(ranks.audio_to_text, ks),
        n_audio=n_audio,
        n_text=int(ranks.text_to_audio.size),
        n_audio_without_text=n_audio - int(ranks.audio_queries.size),
    )
