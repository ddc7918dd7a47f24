"""The `folder` source: a folder (or URI prefix) of audio files, with optional CSV/JSONL metadata.

Metadata rows are keyed by `path`, relative to the folder, and may carry `text`, `text_kind`,
`labels` (a JSON object, or a plain value stored as {"label": value}), `domain`, `group`,
`license`. A metadata row whose file does not exist becomes a reject.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from uts.data import DOMAINS, TEXT_KINDS, Reject
from uts.ingest.items import AUDIO_EXTENSIONS, IngestError, Item
from uts.store import full_uri, open_fs

__all__ = ["folder_items", "read_metadata"]


def read_metadata(uri: str) -> dict[str, dict[str, Any]]:
    """Metadata rows by relative path, from a .csv or .jsonl file.

    Raises:
        IngestError: unreadable, unknown format, or no `path` column.
    """
    fs, path = open_fs(uri)
    try:
        with fs.open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise IngestError(f"{uri}: cannot read metadata ({exc})") from exc
    if path.endswith(".csv"):
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    elif path.endswith((".jsonl", ".json")):
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise IngestError(f"{uri}: line {exc.lineno} is not JSON ({exc.msg})") from exc
    else:
        raise IngestError(f"{uri}: metadata must be .csv or .jsonl")
    if rows and not all(isinstance(r, dict) and r.get("path") for r in rows):
        raise IngestError(
            f"{uri}: every metadata row needs a 'path' column (relative to the folder)"
        )
    return {str(r["path"]).removeprefix("./"): r for r in rows}


def _labels(value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"label": value}
        return parsed if isinstance(parsed, dict) else {"label": parsed}
    return {"label": value}


def folder_items(
    root: str, *, metadata: str | None = None, domain: str = "unknown", license: str = ""
) -> tuple[list[Item], list[Reject], int]:
    """Inputs under `root`: (items, rejects from metadata, files skipped for a non-audio extension).

    Raises:
        IngestError: the folder does not exist or the metadata is unusable.
    """
    fs, base = open_fs(root)
    if not fs.isdir(base):
        raise IngestError(f"{root}: no such folder")
    rows = read_metadata(metadata) if metadata else {}
    found = fs.find(base, detail=True)
    items: list[Item] = []
    rejects: list[Reject] = []
    skipped = 0
    seen: set[str] = set()
    for path in sorted(found):
        rel = path[len(base.rstrip("/")) + 1 :]
        if not rel.lower().endswith(AUDIO_EXTENSIONS):
            skipped += 1
            continue
        seen.add(rel)
        info = found[path]
        stamp = f"{info.get('size')}:{info.get('ETag') or info.get('mtime') or info.get('LastModified')}"
        row = rows.get(rel, {})
        item_domain = str(row.get("domain") or domain)
        text_kind = str(row.get("text_kind") or ("caption" if row.get("text") else ""))
        problem = None
        if item_domain not in DOMAINS:
            problem = f"metadata domain {item_domain!r} is not one of {', '.join(DOMAINS)}"
        elif text_kind not in TEXT_KINDS:
            problem = f"metadata text_kind {text_kind!r} is not one of {', '.join(TEXT_KINDS[1:])}"
        if problem:
            rejects.append(Reject(full_uri(fs, path), problem))
            continue
        items.append(
            Item(
                uri=full_uri(fs, path),
                clip_id=rel,
                stamp=stamp,
                domain=item_domain,
                source=root.rstrip("/") + "/" + rel,
                license=str(row.get("license") or license),
                text=str(row.get("text") or ""),
                text_kind=text_kind,
                labels=_labels(row.get("labels")),
                group=str(row.get("group") or ""),
            )
        )
    for rel in sorted(set(rows) - seen):
        rejects.append(Reject(f"{root.rstrip('/')}/{rel}", "metadata row has no file"))
    return items, rejects, skipped
