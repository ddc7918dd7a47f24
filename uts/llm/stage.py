"""Resumable, sharded stages (captioning, tagging): one output part per input shard.

A part is written whole (a temporary name then a rename on local disk; a single PUT on object
stores) and a part that exists is never redone, so killing a stage at any moment and rerunning it
yields every clip exactly once. When every part exists, `stage.json` and `_SUCCESS` are written.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from uts.store import SUCCESS, is_local, join_uri, open_fs

__all__ = [
    "ShardTask",
    "count_statuses",
    "fingerprint",
    "finish_stage",
    "part_name",
    "read_parts",
    "run_shard",
    "run_stage",
    "versions",
    "write_part",
]


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """Hash of everything that changes a stage's output (stage, backend, model, prompt, parser...)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict[str, str | None]:
    """Versions of the packages that shape a stage's output (None: not installed here)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("uts-cluster", "ray", "vllm", "transformers", "pyarrow", "aiohttp"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_part(table: pa.Table, uri: str) -> None:
    """Write one output part so that it appears whole or not at all."""
    fs, path = open_fs(uri)
    if is_local(fs):
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
        pq.write_table(table, temporary)
        temporary.replace(final)  # atomic on one filesystem
    else:
        with fs.open(path, "wb") as f:  # an object store PUT is atomic
            pq.write_table(table, f)


ShardTask = tuple[str, str]  # (input shard URI, output part URI)


def run_shard(
    task: ShardTask, process: Callable[[pa.Table], pa.Table], columns: Sequence[str] | None
) -> dict[str, int]:
    """Read one input shard, process it, write its part; returns status counts. Skips a done part."""
    source, target = task
    fs, path = open_fs(target)
    if fs.exists(path):
        return {"skipped_parts": 1}
    in_fs, in_path = open_fs(source)
    with in_fs.open(in_path, "rb") as f:
        table = pq.read_table(f, columns=list(columns) if columns else None)
    out = process(table)
    write_part(out, target)
    counts: dict[str, int] = {"rows": out.num_rows, "written_parts": 1}
    for status in out.column("status").to_pylist():
        counts[status] = counts.get(status, 0) + 1
    return counts


def read_parts(folder_uri: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of every part of a stage folder (captions, tags), in part order, some columns."""
    fs, path = open_fs(folder_uri)
    rows: list[dict[str, Any]] = []
    for part in sorted(fs.glob(join_uri(path, "part-*.parquet"))):
        with fs.open(part, "rb") as f:
            rows += pq.read_table(f, columns=list(columns)).to_pylist()
    return rows


def count_statuses(folder_uri: str) -> dict[str, int]:
    """Rows per status over every part of a stage folder."""
    counts: dict[str, int] = {}
    for row in read_parts(folder_uri, ["status"]):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


Mapper = Callable[[Callable[[ShardTask], dict[str, int]], Sequence[ShardTask]], Any]


def run_stage(
    inputs: Sequence[str],
    out_uri: str,
    process: Callable[[pa.Table], pa.Table],
    *,
    columns: Sequence[str] | None,
    mapper: Mapper,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """Process every input shard into `out_uri/part-NNNNN.parquet` (done parts are skipped), then
    write stage.json (fingerprint inputs, counts over all parts, throughput) and _SUCCESS."""
    import functools
    import sys
    import time

    tasks = [(source, join_uri(out_uri, part_name(i))) for i, source in enumerate(inputs)]
    started = time.monotonic()
    totals: dict[str, int] = {}
    work = functools.partial(run_shard, process=process, columns=columns)
    for done, counts in enumerate(mapper(work, tasks), start=1):
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        rate = totals.get("rows", 0) / max(time.monotonic() - started, 1e-9)
        print(
            f"  {done}/{len(tasks)} shards, {totals.get('rows', 0):,} rows this run, {rate:,.0f} rows/s",
            file=sys.stderr,
        )
    wall = time.monotonic() - started
    return finish_stage(
        out_uri,
        {
            **meta,
            "parts": len(tasks),
            "parts_written_this_run": totals.get("written_parts", 0),
            "parts_skipped_this_run": totals.get("skipped_parts", 0),
            "wall_s_this_run": round(wall, 2),
            "rows_per_s_this_run": round(totals.get("rows", 0) / wall, 1) if wall else None,
        },
    )


def finish_stage(out_uri: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Write stage.json (the given summary plus row counts per status over every part) and then
    _SUCCESS, which marks the stage complete; returns what was written."""
    statuses = count_statuses(out_uri)
    written = {**summary, "rows": sum(statuses.values()), "statuses": statuses}
    fs, path = open_fs(out_uri)
    with fs.open(join_uri(path, "stage.json"), "w") as f:
        f.write(json.dumps(written, indent=2, sort_keys=True) + "\n")
    with fs.open(join_uri(path, SUCCESS), "w") as f:
        f.write("")
    return written
