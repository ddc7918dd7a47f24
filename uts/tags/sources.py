"""Reading tag tables: which files, which columns, and errors that name both.

A tag table is parquet with `clip_id` (string) and `tags` (list<string>), optionally `domain`
(string) and `status` (string). It is read in record batches so memory does not grow with the
number of rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from uts.store import full_uri, open_fs

__all__ = ["TagBatch", "TagInputError", "TagSource", "iter_batches", "resolve_sources"]

REQUIRED = ("clip_id", "tags")
OPTIONAL = ("domain", "status")
_GLOB_CHARS = set("*?[")


class TagInputError(ValueError):
    """A tag input is missing, unreadable or malformed; the message names the file and column."""


@dataclass(frozen=True)
class TagSource:
    """One parquet file of tags."""

    uri: str  # as shown to people
    path: str  # inside `fs`
    fs: Any

    def sha256(self) -> str:
        """Content hash of the file (streamed), for the vocabulary's input fingerprint."""
        digest = hashlib.sha256()
        with self.fs.open(self.path, "rb") as f:
            while chunk := f.read(1 << 23):
                digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class TagBatch:
    """The usable rows of one record batch.

    `rows` counts every row read; `clip_ids`, `tags` and `domains` hold only rows whose status is
    absent or `ok` (the clips that count toward N), or every row when read with `all_rows`.
    """

    source: TagSource
    rows: int
    clip_ids: pa.Array
    tags: pa.Array  # list<string>
    domains: pa.Array | None  # string, nulls as "unknown"


def resolve_sources(uris: Sequence[str]) -> list[TagSource]:
    """Expand files, folders (every *.parquet below, skipping `_`/`.` names) and globs.

    Raises:
        TagInputError: an input does not exist or holds no parquet file.
    """
    if not uris:
        raise TagInputError("no tag input given")
    sources: list[TagSource] = []
    for uri in uris:
        fs, path = open_fs(uri)
        if _GLOB_CHARS & set(path):
            paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
        elif fs.isdir(path):
            paths = sorted(
                p
                for p in fs.find(path)
                if p.endswith(".parquet")
                and not any(part.startswith(("_", ".")) for part in p[len(path) :].split("/"))
            )
        elif fs.exists(path):
            paths = [path]
        else:
            raise TagInputError(f"{uri}: no such file or folder")
        if not paths:
            raise TagInputError(f"{uri}: no parquet files found")
        sources.extend(TagSource(uri=full_uri(fs, p), path=p, fs=fs) for p in paths)
    return list({s.uri: s for s in sources}.values())  # an input named twice counts once


def _is_string(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _check_schema(source: TagSource, schema: pa.Schema) -> list[str]:
    names = set(schema.names)
    for column in REQUIRED:
        if column not in names:
            raise TagInputError(
                f"{source.uri}: missing column {column!r} "
                f"(expected clip_id: string, tags: list<string>; found {sorted(names)})"
            )
    clip_type = schema.field("clip_id").type
    if not _is_string(clip_type):
        raise TagInputError(f"{source.uri}: column 'clip_id' must be string, found {clip_type}")
    tags_type = schema.field("tags").type
    if not (pa.types.is_list(tags_type) or pa.types.is_large_list(tags_type)) or not (
        _is_string(tags_type.value_type) or pa.types.is_null(tags_type.value_type)
    ):
        raise TagInputError(f"{source.uri}: column 'tags' must be list<string>, found {tags_type}")
    for column in OPTIONAL:
        if column in names:
            kind = schema.field(column).type
            if not _is_string(kind):
                raise TagInputError(f"{source.uri}: column {column!r} must be string, found {kind}")
    return [*REQUIRED, *(c for c in OPTIONAL if c in names)]


class _open_parquet:
    def __init__(self, source: TagSource) -> None:
        self.source = source
        self.file: Any = None

    def __enter__(self) -> pq.ParquetFile:
        try:
            self.file = self.source.fs.open(self.source.path, "rb")
            pf = pq.ParquetFile(self.file)
            # Read tag strings as dictionary codes straight from the file's dictionary pages:
            # several times faster than materialising millions of strings and hashing them again.
            leaves = [c.path for c in pf.schema if c.path.startswith("tags.")]
            if len(leaves) == 1 and pa.types.is_list(pf.schema_arrow.field("tags").type):
                pf = pq.ParquetFile(self.file, read_dictionary=leaves)
            return pf
        except (OSError, pa.ArrowException) as exc:
            self.__exit__()
            raise TagInputError(f"{self.source.uri}: not a readable parquet file ({exc})") from exc

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def iter_batches(
    sources: Sequence[TagSource],
    *,
    batch_rows: int = 65536,
    with_domain: bool = True,
    all_rows: bool = False,
) -> Iterator[TagBatch]:
    """Yield every source's rows in record batches, rows with a non-`ok` status left out.

    With `all_rows` every row is kept whatever its status, and clip ids are not checked (the
    paper's script counts every document and never looks at ids).

    Raises:
        TagInputError: a file is unreadable or a column is missing or of the wrong type.
    """
    for source in sources:
        with _open_parquet(source) as pf:
            columns = _check_schema(source, pf.schema_arrow)
            try:
                # Row group by row group: dictionary-coded lists cannot span two of them.
                for group in range(pf.num_row_groups):
                    for batch in pf.iter_batches(batch_rows, row_groups=[group], columns=columns):
                        yield _usable(source, batch, with_domain, all_rows)
            except pa.ArrowException as exc:
                raise TagInputError(f"{source.uri}: unreadable parquet data ({exc})") from exc


def _usable(
    source: TagSource, batch: pa.RecordBatch, with_domain: bool, all_rows: bool = False
) -> TagBatch:
    names = batch.schema.names
    if "status" in names and not all_rows:
        status = batch.column("status")
        keep = pc.or_kleene(pc.is_null(status), pc.equal(status, "ok"))
        keep = pc.fill_null(keep, True)
        kept = batch.filter(keep)
    else:
        kept = batch
    domains = None
    if with_domain and "domain" in names:
        domains = pc.fill_null(kept.column("domain"), "unknown")
    clip_ids = kept.column("clip_id")
    if clip_ids.null_count and not all_rows:
        raise TagInputError(f"{source.uri}: column 'clip_id' has {clip_ids.null_count} null values")
    return TagBatch(source, batch.num_rows, clip_ids, kept.column("tags"), domains)
