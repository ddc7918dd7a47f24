"""Writing and reading corpus shards: parquet parts of at most a few hundred MB.

A corpus folder is `corpora/<name>/` with `shards/part-NNNNN.parquet`, `corpus.json`,
`rejects.parquet` and `_SUCCESS`. Shards are plain parquet: pyarrow, Ray Data or pandas read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from uts.data.schema import REJECT_SCHEMA, SHARD_SCHEMA, Clip, Reject, clips_table
from uts.store import SUCCESS, full_uri, join_uri, open_fs

__all__ = ["ShardWriter", "iter_clip_batches", "list_shards", "load_waves", "write_rejects"]

ROW_GROUP_CLIPS = 64  # ~5 MB of 5 s clips: small enough to stream, large enough to read fast


class ShardWriter:
    """Appends clips to `folder/part-NNNNN.parquet`, starting a new part past `max_bytes` of audio."""

    def __init__(self, folder: Path, *, max_bytes: int = 256 << 20) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.parts: list[Path] = []
        self.clips = 0
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0
        self._pending: list[Clip] = []

    def write(self, clip: Clip) -> None:
        self._pending.append(clip)
        self._bytes += len(clip.audio)
        self.clips += 1
        if len(self._pending) >= ROW_GROUP_CLIPS:
            self._flush()
        if self._bytes >= self.max_bytes:
            self._close_part()

    def close(self) -> list[Path]:
        """Finish the last part; returns every part written."""
        self._close_part()
        return self.parts

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            path = self.folder / f"part-{len(self.parts):05d}.parquet"
            self.folder.mkdir(parents=True, exist_ok=True)
            # FLAC does not compress further: zstd only for the other columns.
            compression = {
                name: "none" if name == "audio" else "zstd" for name in SHARD_SCHEMA.names
            }
            self._writer = pq.ParquetWriter(path, SHARD_SCHEMA, compression=compression)
            self.parts.append(path)
        self._writer.write_table(clips_table(self._pending), row_group_size=ROW_GROUP_CLIPS)
        self._pending = []

    def _close_part(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._bytes = 0


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    table = pa.table(
        {"path": [r.path for r in rejects], "reason": [r.reason for r in rejects]},
        schema=REJECT_SCHEMA,
    )
    pq.write_table(table, path)


def list_shards(corpus_uri: str) -> list[str]:
    """URIs of a published corpus's shards, in order.

    Raises:
        FileNotFoundError: no complete corpus there (missing, or no _SUCCESS marker).
    """
    fs, path = open_fs(corpus_uri)
    if not fs.exists(join_uri(path, SUCCESS)):
        raise FileNotFoundError(
            f"no complete corpus at {corpus_uri} (missing or no _SUCCESS marker)"
        )
    parts = sorted(fs.glob(join_uri(path, "shards", "part-*.parquet")))
    return [full_uri(fs, p) for p in parts]


def iter_clip_batches(
    corpus_uri: str, *, columns: Sequence[str] | None = None, batch_rows: int = ROW_GROUP_CLIPS
) -> Iterator[pa.RecordBatch]:
    """Stream a corpus's rows (all columns unless `columns`), shard by shard."""
    for shard in list_shards(corpus_uri):
        fs, path = open_fs(shard)
        with fs.open(path, "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=columns)


def load_waves(
    corpus_uri: str, clip_ids: set[str]
) -> tuple[list[str], list[npt.NDArray[np.float32]]]:
    """The decoded 16 kHz waves of the given clips, in corpus order (ids, waves)."""
    from uts.audio.io import decode_flac

    ids, waves = [], []
    for batch in iter_clip_batches(corpus_uri, columns=["clip_id", "audio"]):
        for clip_id, audio in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
        ):
            if clip_id in clip_ids:
                ids.append(clip_id)
                waves.append(decode_flac(audio))
    return ids, waves
