"""Ingest: turn audio from folders, lhotse manifests or the demo packages into corpus shards."""

from uts.ingest.folder import folder_items, read_metadata
from uts.ingest.items import (
    AUDIO_EXTENSIONS,
    IngestError,
    Item,
    check_unique,
    items_fingerprint,
    process_item,
)
from uts.ingest.run import IngestSummary, Mapper, local_mapper, run_ingest

__all__ = [
    "AUDIO_EXTENSIONS",
    "IngestError",
    "IngestSummary",
    "Item",
    "Mapper",
    "check_unique",
    "folder_items",
    "items_fingerprint",
    "local_mapper",
    "process_item",
    "read_metadata",
    "run_ingest",
]
