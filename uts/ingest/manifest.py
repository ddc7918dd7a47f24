"""The `lhotse` source: a CutSet manifest (jsonl/jsonl.gz), such as the released UTS/CaptionStew ones.

Each cut becomes a clip (its segment of the recording). What the cut carries in
`supervisions[0].custom` is kept: `audio_tag` (a list, or a comma-separated string) goes to the
shard's `tags` column, so `jobs/build_vocab.py --tags <corpus>/shards` can use it directly;
`caption` is the text (else the first `original_caption`); `original_caption` (a list in the released
manifests) is kept in `labels`; `domain`, when it is one of ours, is the clip's domain.

Where the audio is:
- `audio_template`: a path made from the cut, with the placeholders `{source}` (the recording's
  source string: the dataset name in the released manifests, e.g. `audioset`), `{recording_id}` and
  `{cut_id}`, e.g. `/data/{source}/{recording_id}.flac`;
- `audio_root`: `NEW` joins NEW with the source's file name, `OLD=NEW` replaces the prefix OLD;
- neither: the source string is the path.

Without a `domain`, the clip's domain comes from the source dataset name (uts.ingest.source_domains),
else the `domain` argument. Every cut is accounted for: one that cannot be a clip is a Reject (path
`<manifest>#<cut id>`) with its reason, and the rest of the manifest is ingested.
"""

from __future__ import annotations

import json
import string
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from uts.data import DOMAINS, Reject
from uts.ingest.items import IngestError, Item
from uts.ingest.source_domains import domain_of_source
from uts.store import join_uri, open_fs

__all__ = [
    "PLACEHOLDERS",
    "REASON_DUPLICATE",
    "REASON_MISSING",
    "REASON_NOT_A_CUT",
    "REASON_NOT_ONE_FILE",
    "check_template",
    "manifest_items",
    "missing_files",
    "repoint",
]

PLACEHOLDERS = ("source", "recording_id", "cut_id")
# Reject reasons (the text before ': ' is what the ingest summary counts by).
REASON_MISSING = "audio file not found"
REASON_NOT_ONE_FILE = "not a single-file recording"
REASON_NOT_A_CUT = "not a lhotse cut"
REASON_DUPLICATE = "duplicate cut id"


def _known() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def check_template(template: str) -> None:
    """Raises IngestError for an empty or malformed template, or one with an unknown placeholder."""
    if not template.strip():
        raise IngestError(f"--audio-template is empty; write a path with {_known()}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise IngestError(
            f"--audio-template {template!r} is malformed ({exc}); placeholders: {_known()}"
        ) from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"  # fmt: skip
            raise IngestError(
                f"--audio-template has an unknown placeholder {shown}; the known ones are {_known()}"
            )


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


def _first_text(value: Any) -> str:
    """A caption field's text: the string, or a list's first non-empty string."""
    if isinstance(value, list | tuple):
        return next((str(v) for v in value if v), "")
    return str(value or "")


def _records(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of a .jsonl[.gz] manifest, or of each entry of a .json[.gz] list."""
    fs, inner = open_fs(path)
    try:
        with fs.open(inner, "rt", encoding="utf-8", compression="infer") as f:
            if inner.removesuffix(".gz").endswith(".json"):
                entries = json.load(f)
                if not isinstance(entries, list):
                    raise IngestError(f"{path}: a .json manifest must be a list of cuts")
                yield from enumerate(entries, 1)
                return
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise IngestError(
                            f"{path}: line {number} is not JSON ({exc.msg}); "
                            "not a readable lhotse CutSet manifest"
                        ) from exc
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path}: not a readable lhotse CutSet manifest ({exc})") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: cannot read the manifest ({exc})") from exc


def _cut(record: Any) -> Any:
    """A lhotse cut object from one manifest entry; ValueError when the entry is not a cut."""
    from lhotse.cut import Cut  # lhotse is a dependency; imported here to keep start-up light
    from lhotse.serialization import deserialize_item

    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    try:
        item = deserialize_item(dict(record))
    except (ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(item, Cut):
        raise ValueError(f"a {type(item).__name__}, not a cut")
    return item


def _audio_uri(cut: Any, audio_root: str | None, audio_template: str | None) -> str:
    """Where the cut's audio file is here; ValueError (the reject's detail) when it has no one file."""
    recording = getattr(cut, "recording", None)
    if recording is None:
        raise ValueError(f"the {type(cut).__name__} has no recording")
    if len(recording.sources) != 1:
        raise ValueError(f"recording {recording.id} has {len(recording.sources)} audio sources")
    source = recording.sources[0]
    if source.type != "file" or not isinstance(source.source, str):
        raise ValueError(f"recording {recording.id} has a {source.type!r} source, not a file")
    if audio_template:
        return audio_template.format(source=source.source, recording_id=recording.id, cut_id=cut.id)
    return repoint(source.source, audio_root)


def _item(cut: Any, uri: str, where: str, *, domain: str, license: str) -> Item:
    custom: dict[str, Any] = {}
    if cut.supervisions:
        custom = dict(cut.supervisions[0].custom or {})
    caption = _first_text(custom.get("caption")) or _first_text(custom.get("original_caption"))
    given = str(custom.get("domain") or "")
    if given not in DOMAINS:
        given = domain_of_source(cut.recording.sources[0].source) or domain
    return Item(
        uri=uri,
        clip_id=cut.id,
        stamp=f"{cut.start}:{cut.duration}",
        domain=given,
        source=where,
        license=license,
        text=caption,
        text_kind="caption" if caption else "",
        labels={k: v for k, v in custom.items() if k in ("original_caption",)},
        group=cut.recording.id,
        tags=_tags(custom.get("audio_tag")),
        start_s=float(cut.start),
        duration_s=float(cut.duration),
    )


def _names_in(folder: str) -> set[str] | None:
    """File names in `folder` (empty when it does not exist); None when it cannot be listed."""
    fs, inner = open_fs(folder)
    try:
        return {str(p).rstrip("/").rpartition("/")[2] for p in fs.ls(inner, detail=False)}
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except Exception:  # a store that cannot list (e.g. plain HTTP): ask file by file
        return None


def missing_files(uris: Iterable[str]) -> set[str]:
    """The URIs with no file: one listing per folder, not one request per file."""
    by_folder: dict[str, dict[str, str]] = defaultdict(dict)
    for uri in uris:
        folder, sep, name = uri.rpartition("/")
        by_folder[folder or ("/" if sep else ".")][name] = uri
    missing: set[str] = set()
    for folder, names in by_folder.items():
        present = _names_in(folder)
        for name, uri in names.items():
            if present is None:
                fs, inner = open_fs(uri)
                if not fs.exists(inner):
                    missing.add(uri)
            elif name not in present:
                missing.add(uri)
    return missing


def manifest_items(
    path: str,
    *,
    audio_root: str | None = None,
    audio_template: str | None = None,
    domain: str = "unknown",
    license: str = "",
) -> tuple[list[Item], list[Reject]]:
    """Items for the cuts of a lhotse CutSet manifest, and a Reject for every cut that is not one.

    Raises:
        IngestError: the manifest cannot be read or has no cuts, the template is bad, or not one
            cut's audio file exists (a wrong --audio-template or --audio-root, most likely).
    """
    if audio_template:
        check_template(audio_template)
    found: list[tuple[str, Item | str]] = []  # (reject path, the item or the reject reason)
    seen: set[str] = set()
    cuts = 0
    for number, record in _records(path):
        try:
            cut = _cut(record)
        except ValueError as exc:
            cut_id = record.get("id") if isinstance(record, dict) else None
            found.append((f"{path}#{cut_id or f'line-{number}'}", f"{REASON_NOT_A_CUT}: {exc}"))
            continue
        cuts += 1
        where = f"{path}#{cut.id}"
        if cut.id in seen:
            found.append((where, f"{REASON_DUPLICATE}: an earlier cut is also {cut.id!r}"))
            continue
        seen.add(cut.id)
        try:
            uri = _audio_uri(cut, audio_root, audio_template)
        except ValueError as exc:
            found.append((where, f"{REASON_NOT_ONE_FILE}: {exc}"))
            continue
        found.append((where, _item(cut, uri, where, domain=domain, license=license)))
    if not cuts:
        raise IngestError(f"{path}: the manifest has no cuts")
    uris = [entry.uri for _, entry in found if isinstance(entry, Item)]
    missing = missing_files(uris)
    if uris and len(missing) == len(set(uris)):
        how = "--audio-template" if audio_template else "--audio-root"
        raise IngestError(
            f"{path}: none of the {len(uris):,} cuts' audio files exists (e.g. {uris[0]}); check {how}"
        )
    items: list[Item] = []
    rejects: list[Reject] = []
    for where, entry in found:
        if isinstance(entry, str):
            rejects.append(Reject(where, entry))
        elif entry.uri in missing:
            rejects.append(Reject(where, f"{REASON_MISSING}: {entry.uri}"))
        else:
            items.append(entry)
    return items, rejects
