"""One input becomes one clip or one reject: read, decode, shape, encode."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from uts.audio import SAMPLE_RATE, AudioError, ClipPolicy, decode, encode_flac, prepare_clip
from uts.data import Clip, Reject
from uts.store import open_fs

__all__ = [
    "AUDIO_EXTENSIONS",
    "IngestError",
    "Item",
    "items_fingerprint",
    "process_batch",
    "process_item",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au")


class IngestError(ValueError):
    """An ingest cannot start: a missing source, or metadata without its key column."""


@dataclass(frozen=True, kw_only=True)
class Item:
    """An audio input (a file, or a segment of one) and what is known about it."""

    uri: str
    clip_id: str
    stamp: str = ""  # size + modification time or ETag: changes when the file does
    domain: str = "unknown"
    source: str = ""
    license: str = ""
    text: str = ""
    text_kind: str = ""
    labels: Mapping[str, Any] = field(default_factory=dict)
    group: str = ""
    tags: tuple[str, ...] = ()
    partition: str = "pretrain"
    start_s: float = 0.0
    duration_s: float | None = None  # None: to the end of the file


def check_unique(items: Sequence[Item]) -> None:
    """Raises IngestError when two inputs would get one clip id."""
    counts = Counter(item.clip_id for item in items)
    duplicated = sorted(clip for clip, n in counts.items() if n > 1)
    if duplicated:
        raise IngestError(f"{len(duplicated)} clip ids are not unique, e.g. {duplicated[:3]}")


def process_item(item: Item, policy: ClipPolicy) -> Clip | Reject:
    """Read, decode and shape one input. Never raises for bad audio: that is a Reject."""
    try:
        fs, path = open_fs(item.uri)
        with fs.open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return Reject(item.uri, f"unreadable: {exc}")
    if not data:
        return Reject(item.uri, "empty file (0 bytes)")
    try:
        wave, rate = decode(data)
        if item.start_s or item.duration_s is not None:
            first = round(item.start_s * rate)
            last = None if item.duration_s is None else first + round(item.duration_s * rate)
            wave = wave[:, first:last]
            if wave.shape[1] == 0:
                raise AudioError(f"segment at {item.start_s} s is past the end of the file")
        shaped = prepare_clip(wave, rate, policy)
    except AudioError as exc:
        segment = f"#{item.start_s:g}s" if item.start_s or item.duration_s is not None else ""
        return Reject(item.uri + segment, str(exc))
    return Clip(
        clip_id=item.clip_id,
        audio=encode_flac(shaped),
        duration_s=len(shaped) / SAMPLE_RATE,
        domain=item.domain,
        source=item.source,
        license=item.license,
        text=item.text,
        text_kind=item.text_kind,
        labels=item.labels,
        group=item.group,
        tags=item.tags,
        partition=item.partition,
    )


def process_batch(items: Sequence[Item], policy: ClipPolicy) -> list[Clip | Reject]:
    """The unit of parallel work (a Ray task, or a plain call in-process)."""
    return [process_item(item, policy) for item in items]


def items_fingerprint(
    kind: str, items: Sequence[Item], policy: ClipPolicy, extra: Mapping[str, Any]
) -> str:
    """Hash of everything that determines the corpus: inputs (with their stamps), metadata, policy."""
    digest = hashlib.sha256()
    header = {"stage": "ingest", "kind": kind, "policy": policy.fingerprint(), **extra}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for item in items:
        fields = {k: getattr(item, k) for k in item.__dataclass_fields__}
        digest.update(json.dumps(fields, sort_keys=True, default=list).encode())
    return digest.hexdigest()[:16]
