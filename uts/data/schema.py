"""The corpus shard schema (one row per clip) and its vocabularies of domains and text kinds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

__all__ = [
    "DOMAINS",
    "REJECT_SCHEMA",
    "SHARD_SCHEMA",
    "TEXT_KINDS",
    "Clip",
    "Reject",
    "clips_table",
]

DOMAINS = ("speech", "music", "environment", "mixed", "unknown")
PARTITIONS = ("pretrain", "probe")
# transcript: real words spoken in the clip; object_text: real text about the depicted object, not
# the sound; templated: written by us from metadata; caption: a description of the audio itself.
TEXT_KINDS = ("", "transcript", "object_text", "templated", "caption")

SHARD_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("audio", pa.binary()),  # FLAC, 16 kHz mono, PCM 16
        ("duration_s", pa.float32()),
        ("domain", pa.string()),
        ("source", pa.string()),  # where it came from (package, path or manifest)
        ("license", pa.string()),
        ("text", pa.string()),  # existing caption/transcript; may be empty
        ("text_kind", pa.string()),
        ("labels", pa.string()),  # JSON object of downstream labels
        ("group", pa.string()),  # clips that must stay on one side of every split
        ("tags", pa.list_(pa.string())),  # tags that came with the source (lhotse manifests)
        ("partition", pa.string()),  # pretrain | probe: probe clips never enter pretraining
    ]
)

REJECT_SCHEMA = pa.schema([("path", pa.string()), ("reason", pa.string())])


@dataclass(frozen=True, kw_only=True)
class Clip:
    """One stored clip. Raises ValueError on a domain or text kind outside the schema."""

    clip_id: str
    audio: bytes
    duration_s: float
    domain: str = "unknown"
    source: str = ""
    license: str = ""
    text: str = ""
    text_kind: str = ""
    labels: Mapping[str, Any] = field(default_factory=dict)
    group: str = ""
    tags: tuple[str, ...] = ()
    partition: str = "pretrain"

    def __post_init__(self) -> None:
        if self.partition not in PARTITIONS:
            raise ValueError(
                f"clip {self.clip_id}: partition {self.partition!r} is not one of {PARTITIONS}"
            )
        if self.domain not in DOMAINS:
            raise ValueError(f"clip {self.clip_id}: domain {self.domain!r} is not one of {DOMAINS}")
        if self.text_kind not in TEXT_KINDS:
            raise ValueError(
                f"clip {self.clip_id}: text_kind {self.text_kind!r} is not one of {TEXT_KINDS}"
            )

    def row(self) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "audio": self.audio,
            "duration_s": self.duration_s,
            "domain": self.domain,
            "source": self.source,
            "license": self.license,
            "text": self.text,
            "text_kind": self.text_kind,
            "labels": json.dumps(dict(self.labels), sort_keys=True, ensure_ascii=False),
            "group": self.group or self.clip_id,
            "tags": list(self.tags),
            "partition": self.partition,
        }


@dataclass(frozen=True)
class Reject:
    """An input that did not become a clip, and why."""

    path: str
    reason: str


def clips_table(clips: list[Clip]) -> pa.Table:
    return pa.Table.from_pylist([c.row() for c in clips], schema=SHARD_SCHEMA)
