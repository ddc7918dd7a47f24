"""Build a UTS vocabulary from tag tables: count, rank, measure coverage, write.

`build_vocabulary` does all the computing and writes nothing; `write_vocabulary` writes the result
into a folder (the job stages it and publishes it whole).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from uts import __version__
from uts.tags.counting import Progress, TagCounts, count_tags, min_rank_histogram
from uts.tags.normalize import NORMALIZER_VERSION
from uts.tags.sources import TagInputError, TagSource
from uts.tags.vocab import Vocabulary, rank_tags, write_vocab_files

__all__ = [
    "STANDARD_K",
    "VocabBuild",
    "build_vocabulary",
    "input_fingerprint",
    "vocab_fingerprint",
    "write_vocabulary",
]

STANDARD_K = (800, 1000, 1500, 2000, 3000)  # the paper's sweep
REPORT_K = (50, 100, 200, 400, *STANDARD_K)  # small ones too, for small corpora


@dataclass(frozen=True)
class VocabBuild:
    """A built vocabulary at max-k, with what the report needs."""

    vocab: Vocabulary
    domains: tuple[str, ...]  # empty without a domain column
    domain_clips: tuple[int, ...]
    coverage: npt.NDArray[np.float64]  # (size, D): fraction of a domain's clips carrying each tag
    min_rank: npt.NDArray[np.int64]  # (max(D,1), size+2) clips by their best tag's rank
    all_df: npt.NDArray[np.int64]  # df of every ranked tag, best first (for the score/df curve)
    all_scores: npt.NDArray[np.float64]
    meta: dict[str, Any]

    def kept_at(self, k: int) -> npt.NDArray[np.int64]:
        """Clips (per domain) that keep at least one tag at K: (max(D,1),)."""
        kept: npt.NDArray[np.int64] = self.min_rank[:, 1 : min(k, self.vocab.k) + 1].sum(axis=1)
        return kept


def input_fingerprint(
    source_hashes: Sequence[str], *, normalize: bool, max_k: int, paper_compat: bool = False
) -> str:
    """Hash of everything that determines the vocabulary: input contents and options."""
    payload: dict[str, Any] = {
        "stage": "vocab",
        "inputs": sorted(source_hashes),
        "normalize": normalize,
        "normalizer_version": NORMALIZER_VERSION if normalize else None,
        "max_k": max_k,
        "score": "df*ln((N+1)/(df+1))",
    }
    if paper_compat:  # only when on, so the default mode's fingerprints stay as they were
        payload["paper_compat"] = True
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def rank_counts(counts: TagCounts) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Key ids of every tag that some clip carries, best first, and their scores.

    Tags seen only in left-out rows (a file's dictionary can hold them) have df 0 and no rank.
    Counts made with `paper_compat` (they carry `first_seen`) keep the paper script's tie order.
    """
    present = np.flatnonzero(counts.df > 0)
    shown = [counts.display[i] for i in present.tolist()]
    first = counts.first_seen[present] if counts.first_seen is not None else None
    order, scores = rank_tags(shown, counts.df[present], counts.n_clips, first_seen=first)
    return present[order], scores[order]


def vocab_fingerprint(tags: Sequence[str], *, paper_compat: bool = False) -> str:
    """Hash of the ranked tags; a paper-compatible vocabulary never shares one with ours."""
    text = "\n".join(tags)
    if paper_compat:
        text = "paper_compat\n" + text
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_vocabulary(
    sources: Sequence[TagSource],
    *,
    name: str,
    max_k: int = 3000,
    normalize: bool = True,
    source_hashes: Sequence[str] | None = None,
    batch_rows: int = 65536,
    progress: Progress | None = None,
    paper_compat: bool = False,
) -> VocabBuild:
    """Count tags over `sources`, rank them, keep the top `max_k`, and measure coverage.

    `paper_compat` reproduces the paper's build_labelsys.py (see count_tags and rank_tags): tags
    as written, every row a document, ties in first-seen order; it implies normalize=False.

    Raises:
        TagInputError: an input is unreadable or malformed, or holds no usable clip.
        ValueError: max_k is not positive.
    """
    if max_k < 1:
        raise ValueError(f"max_k must be positive, got {max_k}")
    normalize = normalize and not paper_compat
    counts, interner = count_tags(
        sources,
        normalize=normalize,
        batch_rows=batch_rows,
        progress=progress,
        paper_compat=paper_compat,
    )
    order, ordered_scores = rank_counts(counts)
    top = order[:max_k]
    size = len(top)
    if size == 0:
        names = ", ".join(s.uri for s in sources)
        raise TagInputError(f"{names}: {counts.n_clips} usable clips but not one usable tag")
    vocab = Vocabulary(
        tags=tuple(counts.display[i] for i in top.tolist()),
        df=tuple(counts.df[top].tolist()),
        score=tuple(ordered_scores[:max_k].tolist()),
        n_clips=counts.n_clips,
        normalized=normalize,
        name=name,
    )
    rank_of_key = np.full(len(counts.keys), size + 1, np.int64)
    rank_of_key[top] = np.arange(1, size + 1)
    min_rank = min_rank_histogram(
        sources,
        interner,
        rank_of_key,
        size,
        counts.domains,
        batch_rows=batch_rows,
        all_rows=paper_compat,
    )
    domain_clips = counts.domain_clips.astype(np.float64)
    coverage = counts.domain_df[top] / np.maximum(domain_clips, 1.0)
    hashes = list(source_hashes) if source_hashes is not None else [s.sha256() for s in sources]
    meta: dict[str, Any] = {
        "name": name,
        "n_clips": counts.n_clips,
        "n_rows": counts.n_rows,
        "n_skipped_status": counts.n_skipped,
        "n_distinct_tags": len(order),
        "n_spellings": counts.n_forms,
        "size": size,
        "max_k": max_k,
        "normalize": normalize,
        "normalizer_version": NORMALIZER_VERSION if normalize else None,
        "score": "df * ln((N + 1) / (df + 1))",
        "paper_compat": paper_compat,
        "ties": "first seen first" if paper_compat else "df (higher first), then tag",
        "input_fingerprint": input_fingerprint(
            hashes, normalize=normalize, max_k=max_k, paper_compat=paper_compat
        ),
        "vocab_fingerprint": vocab_fingerprint(vocab.tags, paper_compat=paper_compat),
        "sources": [
            {"uri": s.uri, "sha256": h, "rows": counts.source_rows.get(s.uri, 0)}
            for s, h in zip(sources, hashes, strict=True)
        ],
        "domains": dict(zip(counts.domains, counts.domain_clips.tolist(), strict=True)),
        "uts_version": __version__,
    }
    build = VocabBuild(
        vocab=vocab,
        domains=tuple(counts.domains),
        domain_clips=tuple(int(c) for c in counts.domain_clips.tolist()),
        coverage=coverage,
        min_rank=min_rank,
        all_df=counts.df[order],
        all_scores=ordered_scores,
        meta=meta,
    )
    meta["cutoffs"] = cutoffs(build)
    return build


def cutoffs(build: VocabBuild) -> dict[str, dict[str, Any]]:
    """Statistics at the paper's K values (those the vocabulary reaches) and at its full size."""
    vocab = build.vocab
    ks = sorted({k for k in REPORT_K if k <= vocab.k} | {vocab.k})
    names = build.domains or ("all",)
    clips = build.domain_clips or (vocab.n_clips,)
    out: dict[str, dict[str, Any]] = {}
    for k in ks:
        kept = build.kept_at(k)
        out[str(k)] = {
            "score_at_k": vocab.score[k - 1],
            "df_at_k": vocab.df[k - 1],
            "clips_without_tag": int(vocab.n_clips - kept.sum()),
            "coverage": {
                d: (int(kept[i]) / clips[i] if clips[i] else 0.0) for i, d in enumerate(names)
            },
        }
    return out


def write_vocabulary(build: VocabBuild, folder: Path) -> None:
    """Write vocab.parquet, vocab.json and the report (markdown + PNG) into `folder`."""
    from uts.tags.report import write_report  # matplotlib is only needed here

    table = build.vocab.to_table()
    for i, domain in enumerate(build.domains):
        table = table.append_column(
            f"coverage_{domain}", pa.array(build.coverage[:, i], pa.float64())
        )
    write_vocab_files(folder, table, build.meta)
    write_report(build, folder)
