"""Document frequencies of tags over a stream of record batches, vectorised.

Per batch: the batch's distinct raw strings are normalised once (and cached across batches), each
(clip, tag) pair is made unique with one integer sort, and counts are a `bincount`. Memory holds the
counts and an 8-byte hash per clip (to catch a clip listed twice), never the rows.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from uts.tags.normalize import normalize_tag, tag_key
from uts.tags.sources import TagBatch, TagInputError, TagSource, iter_batches

__all__ = ["TagCounts", "count_tags", "min_rank_histogram"]

IntArray = npt.NDArray[np.int64]
Progress = Callable[[int, int], None]  # (rows read so far, clips kept so far)


class Interner:
    """Maps raw tag strings to form ids and forms to identity (key) ids, normalising each once."""

    def __init__(self, normalize: bool) -> None:
        self.normalize = normalize
        self._form_ids: dict[str, int] = {}
        self.forms: list[str] = []
        self._key_ids: dict[str, int] = {}
        self.keys: list[str] = []
        self._form_key: list[int] = []
        self._seen = pa.array([], pa.string())  # raw strings met so far, and their form ids
        self._seen_forms = np.zeros(0, np.int64)

    def form_ids(self, raws: pa.Array) -> IntArray:
        """Form id per distinct raw string of a batch (-1: dropped); normalises unseen ones."""
        # Strings seen before are matched in Arrow (one hash join), not one dict lookup each.
        position = pc.fill_null(pc.index_in(raws, value_set=self._seen), -1)
        position = position.to_numpy(zero_copy_only=False).astype(np.int64)
        out = np.full(len(position), -1, np.int64)
        hit = position >= 0
        out[hit] = self._seen_forms[position[hit]]
        unseen = np.flatnonzero(position < 0)
        if len(unseen):
            new_raws = raws.take(pa.array(unseen))
            new_forms = np.asarray([self._add(r) for r in new_raws.to_pylist()], dtype=np.int64)
            out[unseen] = new_forms
            self._seen = pa.concat_arrays([self._seen, new_raws.cast(pa.string())])
            self._seen_forms = np.concatenate([self._seen_forms, new_forms])
        return out

    def form_key(self) -> IntArray:
        return np.asarray(self._form_key, dtype=np.int64)

    def _add(self, raw: str) -> int:
        form = normalize_tag(raw) if self.normalize else raw
        if form is None:
            return -1
        form_id = self._form_ids.get(form)
        if form_id is None:
            key = tag_key(form) if self.normalize else form
            key_id = self._key_ids.setdefault(key, len(self.keys))
            if key_id == len(self.keys):
                self.keys.append(key)
            form_id = len(self.forms)
            self._form_ids[form] = form_id
            self.forms.append(form)
            self._form_key.append(key_id)
        return form_id


@dataclass
class TagCounts:
    """Counts over every usable clip. Key ids index `keys`, `display`, `df` and `domain_df` rows."""

    n_clips: int = 0
    n_rows: int = 0
    n_skipped: int = 0  # rows whose status was present and not ok
    keys: list[str] = field(default_factory=list)
    display: list[str] = field(default_factory=list)  # each key's most frequent form
    df: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_forms: int = 0
    domains: list[str] = field(default_factory=list)
    domain_clips: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    domain_df: IntArray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (keys, D)
    source_rows: dict[str, int] = field(default_factory=dict)
    # paper_compat only: each key's first appearance (position in the stream of tags in written
    # order: sources, rows, list position); None otherwise.
    first_seen: IntArray | None = None


def _grow(acc: IntArray, add: IntArray) -> IntArray:
    if add.shape[0] > acc.shape[0]:
        acc = np.concatenate(
            [acc, np.zeros((add.shape[0] - acc.shape[0], *acc.shape[1:]), np.int64)]
        )
    acc[: add.shape[0]] += add
    return acc


def _unique_pairs(parents: IntArray, ids: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct (row, id) pairs, sorted by row: (B*L,), (B*L,) -> (P,), (P,)."""
    # Sort + neighbour compare: many times faster here than np.unique (hash-based in numpy 2.4).
    packed = np.sort((parents << 32) | ids)
    first = np.empty(len(packed), dtype=bool)
    first[:1] = True
    np.not_equal(packed[1:], packed[:-1], out=first[1:])
    packed = packed[first]
    return packed >> 32, packed & 0xFFFFFFFF


def _flat_forms(batch: TagBatch, interner: Interner) -> tuple[IntArray, IntArray]:
    """Row and form id of every kept tag of a batch, in written order (row, then list position)."""
    tags = batch.tags
    flat = pc.list_flatten(tags)
    parents = pc.list_parent_indices(tags).to_numpy(zero_copy_only=False).astype(np.int64)
    if flat.null_count:
        valid = pc.is_valid(flat)
        flat = flat.filter(valid)
        parents = parents[valid.to_numpy(zero_copy_only=False)]
    if len(flat) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    encoded = flat if pa.types.is_dictionary(flat.type) else pc.dictionary_encode(flat)
    lut = interner.form_ids(encoded.dictionary)
    forms = lut[encoded.indices.to_numpy(zero_copy_only=False)]
    keep = forms >= 0
    return parents[keep], forms[keep]


def _batch_pairs(
    batch: TagBatch,
    interner: Interner,
    *,
    with_forms: bool = True,
    flat: tuple[IntArray, IntArray] | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """Return (pair rows, pair key ids, form ids of the distinct (row, form) pairs) of one batch.

    The third array (for choosing each tag's displayed spelling) is empty unless `with_forms`.
    `flat` is the batch's `_flat_forms`, when the caller already has it.
    """
    parents, forms = flat if flat is not None else _flat_forms(batch, interner)
    pair_forms = _unique_pairs(parents, forms)[1] if with_forms else np.zeros(0, np.int64)
    pair_rows, pair_keys = _unique_pairs(parents, interner.form_key()[forms])
    return pair_rows, pair_keys, pair_forms


def _note_first_seen(first: IntArray, keys: IntArray, start: int) -> IntArray:
    """Record where keys not seen before first appear; `keys` lists a batch's tags in written order
    and `start` is the stream position of its first one. Stored as position + 1 (0: not yet)."""
    first = _grow(np.zeros(int(keys.max()) + 1 if len(keys) else 0, np.int64), first)
    distinct, at = np.unique(keys, return_index=True)
    current = first[distinct]
    first[distinct] = np.where(current == 0, start + at + 1, current)
    return first


def _domain_ids(domains: pa.Array, ids: dict[str, int]) -> IntArray:
    """Per-row domain ids, numbering domains not seen before in `ids` (updated in place)."""
    encoded = pc.dictionary_encode(domains)
    names = encoded.dictionary.to_pylist()
    lut = np.asarray([ids.setdefault(d, len(ids)) for d in names], dtype=np.int64)
    row_ids: IntArray = lut[encoded.indices.to_numpy(zero_copy_only=False)]
    return row_ids


_HASH_BASE = np.uint64(0x100000001B3)


def hash_strings(values: pa.Array) -> npt.NDArray[np.uint64]:
    """A 64-bit polynomial hash per string, vectorised over the Arrow buffers: (n,) -> (n,)."""
    values = values.cast(pa.large_string())
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[
        values.offset : values.offset + n + 1
    ]
    data_buffer = values.buffers()[2]
    lengths = np.diff(offsets)
    out = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # mix in the length
    if n == 0 or data_buffer is None or offsets[-1] == offsets[0]:
        return out
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]].astype(np.uint64)
    owner = np.repeat(np.arange(n), lengths)
    from_end = offsets[1:][owner] - np.arange(offsets[0], offsets[-1]) - 1
    powers = np.cumprod(np.full(int(lengths.max()), _HASH_BASE, dtype=np.uint64))  # wraps mod 2^64
    terms = (data + np.uint64(1)) * powers[from_end]
    nonempty = lengths > 0
    starts = offsets[:-1][nonempty] - offsets[0]
    out[nonempty] += np.add.reduceat(terms, starts)
    return out


def count_tags(
    sources: Sequence[TagSource],
    *,
    normalize: bool = True,
    batch_rows: int = 65536,
    progress: Progress | None = None,
    paper_compat: bool = False,
) -> tuple[TagCounts, Interner]:
    """Count, for every tag identity, the clips that carry it.

    `paper_compat` counts as the paper's build_labelsys.py does: tags exactly as written (no
    normalisation), every row a document whatever its status or clip id, and each tag's first
    appearance recorded (`TagCounts.first_seen`) for the script's tie order.

    Raises:
        TagInputError: unreadable or malformed input, no usable clip, or a clip id listed twice
            (not checked with `paper_compat`).
    """
    interner = Interner(normalize and not paper_compat)
    first = np.zeros(0, np.int64)
    stream_position = 0
    domain_ids: dict[str, int] = {}
    counts = TagCounts()
    form_df = np.zeros(0, np.int64)
    domain_df: list[IntArray] = []
    hashes: list[npt.NDArray[np.uint64]] = []
    for batch in iter_batches(sources, batch_rows=batch_rows, all_rows=paper_compat):
        counts.n_rows += batch.rows
        kept = len(batch.clip_ids)
        counts.n_clips += kept
        counts.n_skipped += batch.rows - kept
        counts.source_rows[batch.source.uri] = (
            counts.source_rows.get(batch.source.uri, 0) + batch.rows
        )
        flat = _flat_forms(batch, interner)
        rows, keys, forms = _batch_pairs(batch, interner, flat=flat)
        if paper_compat:
            flat_keys = interner.form_key()[flat[1]]
            first = _note_first_seen(first, flat_keys, stream_position)
            stream_position += len(flat_keys)
        else:
            hashes.append(hash_strings(batch.clip_ids))
        counts.df = _grow(counts.df, np.bincount(keys, minlength=len(interner.keys)))
        form_df = _grow(form_df, np.bincount(forms, minlength=len(interner.forms)))
        if batch.domains is not None:
            row_domain = _domain_ids(batch.domains, domain_ids)
            counts.domain_clips = _grow(counts.domain_clips, np.bincount(row_domain))
            pair_domain = row_domain[rows]
            while len(domain_df) < len(domain_ids):
                domain_df.append(np.zeros(0, np.int64))
            for d in range(len(domain_ids)):
                domain_df[d] = _grow(domain_df[d], np.bincount(keys[pair_domain == d]))
        if progress is not None:
            progress(counts.n_rows, counts.n_clips)
    if counts.n_clips == 0:
        names = ", ".join(s.uri for s in sources)
        raise TagInputError(f"{names}: no usable clips (empty input, or every status is not 'ok')")
    if not paper_compat:
        _refuse_duplicates(sources, np.concatenate(hashes), batch_rows)
    else:  # keys never seen (df 0) sort last; they are never ranked anyway
        first = _grow(np.zeros(len(interner.keys), np.int64), first)
        counts.first_seen = np.where(first > 0, first - 1, np.iinfo(np.int64).max)
    counts.keys = interner.keys
    counts.n_forms = int(np.count_nonzero(form_df))
    counts.df = _grow(np.zeros(len(interner.keys), np.int64), counts.df)
    counts.display = _display_forms(interner, form_df)
    counts.domains = list(domain_ids)
    counts.domain_df = np.zeros((len(interner.keys), len(domain_ids)), np.int64)
    for d, column in enumerate(domain_df):
        counts.domain_df[: len(column), d] = column
    return counts, interner


def _display_forms(interner: Interner, form_df: IntArray) -> list[str]:
    """Each key shown by its most frequent form; ties to the alphabetically first (`8-bit`<`8bit`)."""
    best: list[tuple[int, str] | None] = [None] * len(interner.keys)
    form_key = interner.form_key()
    for form_id, form in enumerate(interner.forms):
        key_id = int(form_key[form_id])
        candidate = (-int(form_df[form_id]) if form_id < len(form_df) else 0, form)
        current = best[key_id]
        if current is None or candidate < current:
            best[key_id] = candidate
    return [b[1] if b is not None else "" for b in best]


def _refuse_duplicates(
    sources: Sequence[TagSource], hashes: npt.NDArray[np.uint64], batch_rows: int
) -> None:
    ordered = np.sort(hashes)
    suspects = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not suspects:
        return
    # Confirm with the real ids (a hash collision is not a duplicate) and say where they are.
    seen: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    for batch in iter_batches(sources, batch_rows=batch_rows, with_domain=False):
        hit = np.isin(hash_strings(batch.clip_ids), np.asarray(sorted(suspects), dtype=np.uint64))
        for clip_id in batch.clip_ids.filter(pa.array(hit)).to_pylist():
            seen[clip_id] += 1
            where.setdefault(clip_id, []).append(batch.source.uri)
    duplicated = sorted(c for c, n in seen.items() if n > 1)
    if duplicated:
        shown = "; ".join(f"{c!r} in {', '.join(sorted(set(where[c])))}" for c in duplicated[:5])
        raise TagInputError(
            f"{len(duplicated)} clip id(s) appear more than once, so N and df would count them "
            f"twice: {shown}"
        )


def min_rank_histogram(
    sources: Sequence[TagSource],
    interner: Interner,
    rank_of_key: IntArray,
    size: int,
    domains: Sequence[str],
    *,
    batch_rows: int = 65536,
    all_rows: bool = False,
) -> IntArray:
    """For each domain, how many clips have their best-ranked tag at each rank.

    `rank_of_key[k]` is key k's 1-based rank, or size+1 when it is outside the vocabulary.
    Returns (D, size+2) counts indexed by the clip's minimum rank; column size+1 holds clips that
    keep no tag at any K <= size. A clip keeps a tag at K iff its minimum rank is <= K, so the
    clips kept at every K are one cumulative sum. With no domain column, D = 1 ("all").
    `all_rows` counts every row, as count_tags does with `paper_compat`.
    """
    domain_ids = {d: i for i, d in enumerate(domains)} if domains else {}
    hist = np.zeros((max(len(domains), 1), size + 2), np.int64)
    batches = iter_batches(
        sources, batch_rows=batch_rows, with_domain=bool(domains), all_rows=all_rows
    )
    for batch in batches:
        n = len(batch.clip_ids)
        best = np.full(n, size + 1, np.int64)
        rows, keys, _ = _batch_pairs(batch, interner, with_forms=False)
        if len(rows):
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            best[rows[starts]] = np.minimum.reduceat(rank_of_key[keys], starts)
        if batch.domains is not None and domain_ids:
            row_domain = _domain_ids(batch.domains, domain_ids)
        else:
            row_domain = np.zeros(n, np.int64)
        flat = np.bincount(row_domain * (size + 2) + best, minlength=hist.size)
        hist += flat.reshape(hist.shape)
    return hist


def print_progress(every_s: float = 2.0) -> Progress:
    """A progress callback that prints a rate line to stderr at most every `every_s` seconds."""
    start = last = time.monotonic()

    def report(rows: int, clips: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            rate = rows / max(now - start, 1e-9)
            print(f"  read {rows:,} rows ({clips:,} clips) at {rate:,.0f} rows/s", file=sys.stderr)

    return report
