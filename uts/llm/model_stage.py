"""Book-keeping for a model-backed stage (captioning or tagging with vllm/openai), backend-free.

The rows of all pending shards stream through one pipeline (one model load per round); replies come
back in any order. `Ledger` groups them by shard and commits a shard as soon as all its rows are
back, so a killed job loses at most the shards in flight:

- a shard whose rows are all final is written as `part-NNNNN.parquet` (whole or not at all);
- a shard with rows to retry (unparseable tagger output, first attempt) is parked in
  `_pending/part-NNNNN.parquet`: its final rows plus the rows to retry with their reasons. The next
  round (or the next run, after a kill) sends only those rows again, then writes the part.

`plan_round` decides, from what exists in the output folder, what each shard still needs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from uts.llm.stage import part_name, write_part
from uts.store import join_uri, open_fs

__all__ = ["PENDING", "Ledger", "ShardWork", "StageSpec", "plan_round", "read_table"]

PENDING = "_pending"  # pyarrow and our part-* globs skip "_" folders: readers never see these


@dataclass(frozen=True, kw_only=True)
class StageSpec:
    """What a model stage reads, asks and writes; every callable is a picklable row function.

    plan: source rows (plan_columns) -> in order, (clip_id, a final row, or None: ask the model).
    request: (source row with load_columns, attempt, reason of the failed attempt) -> chat
        messages, or a raw prompt string (no chat template).
    finish: (source row without heavy columns, Reply, attempt) -> output row + "retry" flag.
    carry: small source columns kept beside the request for `finish` (e.g. domain).
    """

    name: str
    schema: pa.Schema
    plan_columns: tuple[str, ...]
    plan: Callable[[pa.Table], list[tuple[str, dict[str, Any] | None]]]
    load_columns: tuple[str, ...]
    request: Callable[[Mapping[str, Any], int, str], list[dict[str, Any]] | str]
    finish: Callable[..., dict[str, Any]]
    carry: tuple[str, ...] = ()


@dataclass(kw_only=True)
class ShardWork:
    """One shard's work this round: the clips to send (attempt 0 or 1) and the rows already final."""

    index: int
    source: str
    target: str
    ask: list[str] = field(default_factory=list)  # clip ids for the model, in order
    attempt: int = 0
    reasons: dict[str, str] = field(default_factory=dict)  # clip id -> why attempt 0 failed
    kept: list[dict[str, Any]] = field(default_factory=list)  # final rows not sent again

    def item(self) -> dict[str, Any]:
        """The pipeline's input item for this shard (plain types: it travels through Ray Data)."""
        return {"shard": self.index, "source": self.source, "ask": self.ask,
                "attempt": self.attempt, "reasons": list(self.reasons.items())}  # fmt: skip


def pending_uri(target: str) -> str:
    head, name = target.rsplit("/", 1)
    return join_uri(head, PENDING, name)


def _exists(uri: str) -> bool:
    fs, path = open_fs(uri)
    return bool(fs.exists(path))


def read_table(uri: str, columns: Sequence[str] | None = None) -> pa.Table:
    """One parquet file (any store URI), optionally some columns."""
    fs, path = open_fs(uri)
    with fs.open(path, "rb") as f:
        return pq.read_table(f, columns=list(columns) if columns else None)


def plan_round(
    spec: StageSpec, sources: Sequence[str], out_uri: str, *, limit: int | None = None
) -> list[ShardWork]:
    """What every unfinished shard needs now. Shards with a part are done; a pending file gives
    the rows to retry; otherwise the source shard is planned from scratch. `limit` keeps the first
    N rows of the corpus (in shard order), the same N on every run."""
    works, seen = [], 0
    for index, source in enumerate(sources):
        target = join_uri(out_uri, part_name(index))
        remaining = None if limit is None else max(limit - seen, 0)
        if _exists(target):
            fs, path = open_fs(target)
            with fs.open(path, "rb") as f:
                seen += pq.ParquetFile(f).metadata.num_rows
            _remove(pending_uri(target))  # left over from a kill between commit and cleanup
            continue
        work = ShardWork(index=index, source=source, target=target)
        pending = pending_uri(target)
        if _exists(pending):
            rows = read_table(pending).to_pylist()
            for row in rows:
                if row.pop("retry"):
                    work.ask.append(row["clip_id"])
                    work.reasons[row["clip_id"]] = row["error"] or ""
                else:
                    work.kept.append(row)
            work.attempt = 1
            seen += len(rows)
        else:
            planned = spec.plan(read_table(source, spec.plan_columns))
            planned = planned if remaining is None else planned[:remaining]
            for clip_id, final in planned:
                if final is None:
                    work.ask.append(clip_id)
                else:
                    work.kept.append(final)
            seen += len(planned)
        works.append(work)
    return works


def _remove(uri: str) -> None:
    fs, path = open_fs(uri)
    if fs.exists(path):
        fs.rm(path)


class Ledger:
    """Collects reply rows by shard and commits each shard when its last row arrives."""

    def __init__(self, works: Iterable[ShardWork], schema: pa.Schema, *, total_shards: int) -> None:
        self.works = {w.index: w for w in works}
        self.schema = schema
        self.rows: dict[int, list[dict[str, Any]]] = {i: [] for i in self.works}
        self.total_shards = total_shards
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        for work in list(self.works.values()):
            if not work.ask:
                self._commit(work.index)

    @property
    def open_shards(self) -> list[int]:
        return sorted(self.works)

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Take reply rows (each with `shard`, `clip_id`, output columns, `retry`, token counts)."""
        for row in rows:
            shard = int(row.pop("shard"))
            work = self.works.get(shard)
            if work is None:
                raise RuntimeError(f"a reply for shard {shard}, which is not open (duplicate row?)")
            for key in ("prompt_tokens", "completion_tokens"):
                self.counts[key] = self.counts.get(key, 0) + int(row.pop(key, 0) or 0)
            self.counts["model_rows"] = self.counts.get("model_rows", 0) + 1
            self.rows[shard].append(row)
            if len(self.rows[shard]) == len(work.ask):
                self._commit(shard)

    def _commit(self, shard: int) -> None:
        work = self.works.pop(shard)
        replies = self.rows.pop(shard)
        returned = sorted(r["clip_id"] for r in replies)
        if returned != sorted(work.ask):
            raise RuntimeError(f"shard {shard}: replies for {returned[:5]}... do not match the "
                               f"clips asked {sorted(work.ask)[:5]}...")  # fmt: skip
        order = {clip_id: i for i, clip_id in enumerate(work.ask)}
        replies.sort(key=lambda r: order[r["clip_id"]])
        retry = [r for r in replies if r.get("retry")]
        names = self.schema.names
        if retry:  # park: final rows + rows to retry (with the failed attempt's raw and reason)
            pending_schema = self.schema.append(pa.field("retry", pa.bool_()))
            rows = [{**{k: r.get(k) for k in names}, "retry": False} for r in work.kept]
            rows += [
                {**{k: r.get(k) for k in names}, "retry": bool(r.get("retry"))} for r in replies
            ]
            write_part(pa.Table.from_pylist(rows, schema=pending_schema), pending_uri(work.target))
            self.counts["parked_rows"] = self.counts.get("parked_rows", 0) + len(retry)
            return
        rows = [{k: r.get(k) for k in names} for r in [*work.kept, *replies]]
        write_part(pa.Table.from_pylist(rows, schema=self.schema), work.target)
        _remove(pending_uri(work.target))
        self.counts["rows"] = self.counts.get("rows", 0) + len(rows)
        self.counts["written_parts"] = self.counts.get("written_parts", 0) + 1
        elapsed = max(time.monotonic() - self.started, 1e-9)
        tokens = self.counts.get("completion_tokens", 0)
        print(
            f"  part {part_name(shard)} committed ({len(rows):,} rows); "
            f"{self.counts.get('model_rows', 0) / elapsed:,.1f} model rows/s, {tokens / elapsed:,.0f} tokens/s, "
            f"{len(self.works)} shard(s) open",
            file=sys.stderr,
        )
