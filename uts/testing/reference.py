"""A plain-Python reference of the vocabulary computation, written the obvious way.

The paper's own script counts a `Counter` over per-clip tag sets; this does the same, adding our
normalisation (memoised per distinct string) so it computes exactly what uts.tags does. Tests and
the benchmark compare the vectorised builder against it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from uts.tags.normalize import normalize_tag, tag_key

__all__ = ["reference_vocabulary"]


def reference_vocabulary(
    rows: Iterable[Mapping[str, Any]], *, normalize: bool = True, max_k: int = 3000
) -> list[tuple[str, int, float]]:
    """[(tag, df, score)] best first, from rows with `tags` and optionally `status`."""
    cache: dict[str, str | None] = {}

    def form_of(raw: str) -> str | None:
        if not normalize:
            return raw
        if raw not in cache:
            cache[raw] = normalize_tag(raw)
        return cache[raw]

    n_clips = 0
    key_df: Counter[str] = Counter()
    form_df: Counter[str] = Counter()
    forms_of_key: dict[str, set[str]] = {}
    for row in rows:
        status = row.get("status")
        if status is not None and status != "ok":
            continue
        n_clips += 1
        forms = {
            f
            for f in map(form_of, (t for t in row["tags"] or [] if t is not None))
            if f is not None
        }
        keys = {tag_key(f) if normalize else f for f in forms}
        key_df.update(keys)
        form_df.update(forms)
        for f in forms:
            forms_of_key.setdefault(tag_key(f) if normalize else f, set()).add(f)
    entries = []
    for key, df in key_df.items():
        shown = min(forms_of_key[key], key=lambda f: (-form_df[f], f))
        score = df * math.log((n_clips + 1) / (df + 1))
        entries.append((shown, df, score))
    entries.sort(key=lambda e: (-e[2], -e[1], e[0]))
    return entries[:max_k]
