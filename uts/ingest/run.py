"""Run an ingest: process inputs (in parallel through a mapper), write shards, rejects, corpus.json."""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from uts import __version__
from uts.audio import ClipPolicy
from uts.data import Clip, Reject, ShardWriter, write_rejects
from uts.ingest.items import Item, check_unique, process_batch

__all__ = ["IngestSummary", "Mapper", "local_mapper", "reason_kind", "run_ingest"]

Batch = Sequence[Item]
Results = list[Clip | Reject]
# A mapper applies a function to every batch and yields the results in input order.
Mapper = Callable[[Callable[[Batch], Results], Sequence[Batch]], Iterator[Results]]


def local_mapper(fn: Callable[[Batch], Results], batches: Sequence[Batch]) -> Iterator[Results]:
    """In-process, one batch after another."""
    return map(fn, batches)


def reason_kind(reason: str) -> str:
    """What a reject reason says without its particulars (the text before ': ' or ' (', numbers as
    N): 'audio file not found: /x.flac' -> 'audio file not found', 'silent (peak -80 dBFS)' -> 'silent'."""
    head = reason.split(": ", 1)[0].split(" (", 1)[0]
    return re.sub(r"\d+(?:\.\d+)?", "N", head).strip() or "unknown"


@dataclass
class IngestSummary:
    clips: int = 0
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)
    domains: Counter[str] = field(default_factory=Counter)
    domain_seconds: dict[str, float] = field(default_factory=dict)
    shards: int = 0
    wall_s: float = 0.0
    skipped: int = 0

    @property
    def reject_fraction(self) -> float:
        total = self.clips + len(self.rejects)
        return len(self.rejects) / total if total else 0.0

    @property
    def reject_reasons(self) -> dict[str, int]:
        """Rejects counted by kind of reason, the most common first."""
        return dict(Counter(reason_kind(r.reason) for r in self.rejects).most_common())

    def as_json(self) -> dict[str, Any]:
        return {
            "clips": self.clips,
            "hours": round(self.seconds / 3600, 4),
            "rejects": len(self.rejects),
            "reject_fraction": round(self.reject_fraction, 4),
            "reject_reasons": self.reject_reasons,
            "skipped_not_audio": self.skipped,
            "domains": dict(sorted(self.domains.items())),
            "domain_hours": {d: round(s / 3600, 4) for d, s in sorted(self.domain_seconds.items())},
            "shards": self.shards,
            "wall_s": round(self.wall_s, 2),
            "clips_per_s": round(self.clips / self.wall_s, 2) if self.wall_s else None,
        }


def _batches(items: Sequence[Item], size: int) -> list[Batch]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_ingest(
    items: Sequence[Item],
    folder: Path,
    *,
    policy: ClipPolicy,
    mapper: Mapper = local_mapper,
    rejects: Iterable[Reject] = (),
    batch_size: int = 50,
    max_shard_bytes: int = 256 << 20,
    meta: dict[str, Any] | None = None,
    skipped: int = 0,
    progress: bool = True,
) -> IngestSummary:
    """Process `items` and write the corpus files into `folder` (a staging folder).

    Writes shards/part-*.parquet (clips in input order), rejects.parquet and corpus.json.
    Raises IngestError when two inputs share a clip id (nothing is processed).
    """
    check_unique(items)
    summary = IngestSummary(rejects=list(rejects), skipped=skipped)
    writer = ShardWriter(folder / "shards", max_bytes=max_shard_bytes)
    started = last_report = time.monotonic()
    done = 0
    for results in mapper(partial(process_batch, policy=policy), _batches(items, batch_size)):
        for result in results:
            if isinstance(result, Reject):
                summary.rejects.append(result)
                continue
            writer.write(result)
            summary.clips += 1
            summary.seconds += result.duration_s
            summary.domains[result.domain] += 1
            seconds = summary.domain_seconds.get(result.domain, 0.0) + result.duration_s
            summary.domain_seconds[result.domain] = seconds
        done += len(results)
        now = time.monotonic()
        if progress and (now - last_report > 2 or done == len(items)):
            last_report = now
            rate = done / max(now - started, 1e-9)
            print(
                f"  {done:,}/{len(items):,} inputs, {summary.clips:,} clips, "
                f"{len(summary.rejects):,} rejects, {rate:,.1f} inputs/s",
                file=sys.stderr,
            )
    summary.shards = len(writer.close())
    summary.wall_s = time.monotonic() - started
    write_rejects(folder / "rejects.parquet", summary.rejects)
    corpus = {
        **(meta or {}),
        **summary.as_json(),
        "policy": policy.fingerprint(),
        "uts_version": __version__,
    }
    (folder / "corpus.json").write_text(
        json.dumps(corpus, indent=2, sort_keys=True) + "\n", "utf-8"
    )
    return summary
