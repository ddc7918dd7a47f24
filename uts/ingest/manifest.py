"""The `lhotse` source: a CutSet manifest (jsonl/jsonl.gz), such as the released UTS/CaptionStew ones.

Each cut becomes a clip (its segment of the recording). Tags and captions that the cut carries in
`supervisions[0].custom` (`audio_tag`, `caption`, `original_caption`) are kept: the tags go to the
shard's `tags` column, so `jobs/build_vocab.py --tags <corpus>/shards` can use them directly.
Recording paths are re-pointed with `audio_root`: `NEW` joins NEW with the file name, and
`OLD=NEW` replaces the prefix OLD.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from uts.data import DOMAINS
from uts.ingest.items import IngestError, Item
from uts.store import join_uri

__all__ = ["manifest_items", "repoint"]


def repoint(source: str, audio_root: str | None) -> str:
    """Where a manifest's recording path lives here."""
    if not audio_root:
        return source
    old, sep, new = audio_root.partition("=")
    if sep:
        if not source.startswith(old):
            return source
        return join_uri(new, source[len(old) :])
    return join_uri(audio_root, PurePosixPath(source).name)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return tuple(str(t) for t in value)


def manifest_items(path: str, *, audio_root: str | None = None, license: str = "") -> list[Item]:
    """Items for every cut of a lhotse CutSet manifest.

    Raises:
        IngestError: the manifest cannot be read, or a cut has no single-file recording.
    """
    from lhotse import CutSet  # lhotse is a dependency; imported here to keep start-up light

    try:
        cuts = CutSet.from_file(path)
        items = []
        for cut in cuts:
            recording = getattr(cut, "recording", None)
            if (
                recording is None
                or len(recording.sources) != 1
                or recording.sources[0].type != "file"
            ):
                raise IngestError(f"{path}: cut {cut.id} does not have one file-backed recording")
            custom: dict[str, Any] = {}
            if cut.supervisions:
                custom = dict(cut.supervisions[0].custom or {})
            caption = str(custom.get("caption") or custom.get("original_caption") or "")
            domain = str(custom.get("domain") or "unknown")
            items.append(
                Item(
                    uri=repoint(recording.sources[0].source, audio_root),
                    clip_id=cut.id,
                    stamp=f"{cut.start}:{cut.duration}",
                    domain=domain if domain in DOMAINS else "unknown",
                    source=f"{path}#{cut.id}",
                    license=license,
                    text=caption,
                    text_kind="caption" if caption else "",
                    labels={k: v for k, v in custom.items() if k in ("original_caption",)},
                    group=recording.id,
                    tags=_tags(custom.get("audio_tag")),
                    start_s=float(cut.start),
                    duration_s=float(cut.duration),
                )
            )
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError(f"{path}: not a readable lhotse CutSet manifest ({exc})") from exc
    if not items:
        raise IngestError(f"{path}: the manifest has no cuts")
    return items
