"""The UTS vocabulary: score, rank, and the API that training and serving use.

score(t) = df(t) * ln((N + 1) / (df(t) + 1)), exactly as the paper. Ranked by score descending,
then df descending, then tag ascending, so a ranking is reproducible and any K is a prefix of it.
(The paper-compatible build instead keeps the paper script's tie order: first seen first.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from uts.store import SUCCESS, join_uri, open_fs
from uts.tags.normalize import normalize_tag, tag_key

__all__ = ["Vocabulary", "VocabularyError", "load_vocab", "rank_tags", "tag_scores"]


class VocabularyError(ValueError):
    """A vocabulary is missing, incomplete, or asked for at a K it does not have."""


def tag_scores(df: npt.NDArray[np.int64], n_clips: int) -> npt.NDArray[np.float64]:
    """The paper's score per tag: df * ln((N+1)/(df+1)); (T,) -> (T,).

    Computed once per distinct df with math.log, so the values are bit-identical to a plain
    Python computation of the formula.
    """
    distinct, inverse = np.unique(df, return_inverse=True)
    per_df = [d * math.log((n_clips + 1) / (d + 1)) for d in distinct.tolist()]
    return np.asarray(per_df, dtype=np.float64)[inverse.reshape(-1)]


def rank_tags(
    tags: Sequence[str],
    df: npt.NDArray[np.int64],
    n_clips: int,
    *,
    first_seen: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return (order, scores): `order` lists tag indices best first (score, df desc; tag asc).

    With `first_seen` (each tag's first appearance in the input), equal scores keep that order
    and nothing else breaks ties: what a stable sort on score over a Counter filled in input order
    gives, as the paper's build_labelsys.py does.
    """
    scores = tag_scores(df, n_clips)
    if first_seen is not None:
        by_first: npt.NDArray[np.int64] = np.lexsort((first_seen, -scores)).astype(np.int64)
        return by_first, scores
    alphabetical = np.empty(len(tags), np.int64)
    alphabetical[sorted(range(len(tags)), key=tags.__getitem__)] = np.arange(len(tags))
    order = np.lexsort((alphabetical, -df, -scores))  # last key is the primary one
    return order.astype(np.int64), scores


@dataclass(frozen=True)
class Vocabulary:
    """A ranked tag vocabulary at one K (`tags[i]` has rank i + 1).

    Lookups go through the same normalisation the vocabulary was built with, so `Drums`, `drums`
    and `drum` all find the tag `drum`, and `8bit` finds `8-bit`.
    """

    tags: tuple[str, ...]
    df: tuple[int, ...]
    score: tuple[float, ...]
    n_clips: int
    normalized: bool = True
    name: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def k(self) -> int:
        return len(self.tags)

    def at(self, k: int) -> Vocabulary:
        """The top-k prefix.

        Raises:
            VocabularyError: k is not positive or larger than this vocabulary.
        """
        if not 0 < k <= len(self.tags):
            raise VocabularyError(
                f"vocabulary {self.name or '(unnamed)'} has {len(self.tags)} tags; K={k} is not in "
                f"1..{len(self.tags)} (rebuild with a larger --max-k)"
            )
        return Vocabulary(
            self.tags[:k],
            self.df[:k],
            self.score[:k],
            self.n_clips,
            self.normalized,
            self.name,
            self.meta,
        )

    def prior(self) -> npt.NDArray[np.float64]:
        """Each tag's share of the clips it was counted on (df / N): (K,)."""
        return np.asarray(self.df, np.float64) / max(self.n_clips, 1)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {self._key(t): i for i, t in enumerate(self.tags)}

    def _key(self, tag: str) -> str:
        if not self.normalized:
            return tag
        form = normalize_tag(tag)
        return tag_key(form) if form is not None else ""

    def index(self, tag: str) -> int | None:
        """0-based index of a tag (any spelling the normaliser folds to it), or None."""
        return self._index.get(self._key(tag))

    def indices(self, tags: Iterable[str]) -> list[int]:
        """Sorted distinct indices of the tags that are in the vocabulary; others are ignored."""
        found = {self.index(t) for t in tags}
        return sorted(i for i in found if i is not None)

    def canonical_string(self, tags: Iterable[str]) -> str:
        """The clip's tags in vocabulary-rank order: `"tag_a, tag_d, tag_k"` (empty if none)."""
        return ", ".join(self.tags[i] for i in self.indices(tags))

    def to_table(self) -> pa.Table:
        return pa.table(
            {
                "rank": pa.array(range(1, len(self.tags) + 1), pa.int32()),
                "tag": pa.array(self.tags, pa.string()),
                "df": pa.array(self.df, pa.int64()),
                "score": pa.array(self.score, pa.float64()),
            }
        )


VOCAB_FILE = "vocab.parquet"
META_FILE = "vocab.json"


def write_vocab_files(folder: Path, table: pa.Table, meta: Mapping[str, Any]) -> None:
    """Write vocab.parquet and vocab.json into a (staging) folder."""
    pq.write_table(table, folder / VOCAB_FILE)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")


def load_vocab(location: str, k: int | None = None) -> Vocabulary:
    """Load a vocabulary folder (local path or URI), optionally at its top-k prefix.

    Raises:
        VocabularyError: the folder is missing or was not published completely.
    """
    fs, path = open_fs(location)
    if not fs.exists(join_uri(path, SUCCESS)):
        what = "does not exist" if not fs.exists(path) else "is incomplete (no _SUCCESS marker)"
        raise VocabularyError(f"vocabulary {location} {what}")
    with fs.open(join_uri(path, META_FILE), "r", encoding="utf-8") as f:
        meta = json.load(f)
    with fs.open(join_uri(path, VOCAB_FILE), "rb") as f:
        table = pq.read_table(f, columns=["rank", "tag", "df", "score"])
    vocab = Vocabulary(
        tags=tuple(table.column("tag").to_pylist()),
        df=tuple(table.column("df").to_pylist()),
        score=tuple(table.column("score").to_pylist()),
        n_clips=int(meta["n_clips"]),
        normalized=bool(meta["normalize"]),
        name=str(meta.get("name", "")),
        meta=meta,
    )
    return vocab if k is None else vocab.at(k)
