"""Corpus records and shard I/O (parquet via pyarrow and fsspec)."""

from uts.data.schema import DOMAINS, PARTITIONS, SHARD_SCHEMA, TEXT_KINDS, Clip, Reject, clips_table
from uts.data.shards import ShardWriter, iter_clip_batches, list_shards, load_waves, write_rejects

__all__ = [
    "DOMAINS",
    "PARTITIONS",
    "SHARD_SCHEMA",
    "TEXT_KINDS",
    "Clip",
    "Reject",
    "ShardWriter",
    "clips_table",
    "iter_clip_batches",
    "list_shards",
    "load_waves",
    "write_rejects",
]
