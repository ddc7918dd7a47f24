"""Ingest audio into corpus shards.

The corpus's fingerprint hashes the listed inputs (paths, stamps, metadata), the clip policy and the
listing's rejects, so a rerun on unchanged inputs is a no-op and changed inputs never overwrite
a corpus silently.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.parallel import mapper_for
from stages.base import StageError, spec_argv
from uts.audio import ClipPolicy
from uts.data import Reject
from uts.ingest import IngestError, Item, check_unique, folder_items, items_fingerprint, run_ingest
from uts.ingest.demo import PACKAGES, DemoError, demo_items
from uts.ingest.manifest import check_template, manifest_items
from uts.store import Store

__all__ = ["SCRIPT", "IngestResult", "IngestSpec", "add_arguments", "collect", "run", "spec_from_args", "verdict"]  # fmt: skip

SCRIPT = "jobs/ingest.py"
SOURCES = ("folder", "lhotse", "demo")
# Demo counts that must not be negative (a negative count would silently sample nothing).
DEMO_COUNTS = ("per_speaker", "programs_per_family", "extra_per_speaker", "extra_programs")
TRIM_DB = -50.0  # near-silence trimmed from both ends unless no_trim


@dataclass(frozen=True, kw_only=True)
class IngestSpec:
    corpus: str  # corpus name: <store>/corpora/<corpus>
    source: str  # one of SOURCES
    path: str | None = None  # folder: audio folder or URI prefix; lhotse: the manifest
    metadata: str | None = None  # folder: CSV or JSONL keyed by 'path'
    audio_root: str | None = None  # lhotse: NEW or OLD=NEW
    audio_template: str | None = None  # lhotse: e.g. /data/{source}/{recording_id}.flac
    domain: str = "unknown"  # domain of clips without one in metadata
    license: str = ""  # license recorded with every clip
    min_s: float = 1.0  # seconds; shorter clips are padded to this
    max_s: float = 10.0  # seconds; longer clips are cropped to this
    max_source_s: float = 3600.0  # seconds; longer sources are refused
    no_trim: bool = False  # keep leading/trailing near-silence
    max_reject_fraction: float = 0.05  # share of inputs; above it the stage exits 1
    workers: int | None = None  # 0: in this process, no Ray; None: Ray tasks
    batch_size: int = 50  # inputs per task
    max_shard_mb: int = 256  # MB of audio per shard
    overwrite: bool = False  # replace a corpus ingested from other inputs
    cache: str = "./.uts-cache/demo"  # demo: downloaded packages and renders
    seed: int = 0  # demo: sampling seed
    per_speaker: int = 60  # demo: clips per voice of large packs
    programs_per_family: int = 4  # demo: GM programs rendered per family
    extra_per_speaker: int = 0  # demo: more clips per pretraining voice, pretraining only
    extra_programs: int = 0  # demo: more GM programs per family, pretraining only

    def policy(self) -> ClipPolicy:
        """How every input becomes a clip (part of the fingerprint)."""
        return ClipPolicy(
            min_s=self.min_s,
            max_s=self.max_s,
            max_source_s=self.max_source_s,
            trim_db=None if self.no_trim else TRIM_DB,
        )

    def fingerprint(self, items: list[Item], rejects: list[Reject]) -> str:
        """The corpus's content address: inputs, policy and the paths rejected while listing."""
        extra = {"rejects": [r.path for r in rejects]}
        return items_fingerprint(self.source, items, self.policy(), extra)


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    fingerprint: str
    uri: str  # the corpus folder
    summary: str = ""
    exit_code: int = 0


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(IngestSpec)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    add = parser.add_argument
    add("--corpus", required=True, help="corpus name: <store>/corpora/<name>")
    add("--source", required=True, choices=list(SOURCES), help="kind of source")
    add("--path", help="folder: the audio folder or URI prefix; lhotse: the manifest")
    add("--metadata", help="folder: CSV or JSONL keyed by 'path' (text, labels, domain, group)")
    add("--audio-root", help="lhotse: NEW (NEW/<file name>) or OLD=NEW (prefix replaced)")
    add("--audio-template", help="lhotse: each cut's audio file, from {source} {recording_id} "
        "{cut_id}, e.g. /data/{source}/{recording_id}.flac")  # fmt: skip
    add("--domain", default=d["domain"], help="domain of clips without one in metadata")
    add("--license", default=d["license"], help="license recorded with every clip")
    add("--min-s", type=float, default=d["min_s"], help="pad shorter clips to this (default 1)")
    add("--max-s", type=float, default=d["max_s"], help="crop longer clips to this (default 10)")
    add("--max-source-s", type=float, default=d["max_source_s"], help="refuse longer sources (default 3600)")  # fmt: skip
    add("--no-trim", action="store_true", help="keep leading/trailing near-silence")
    add("--max-reject-fraction", type=float, default=d["max_reject_fraction"],
        help="exit 1 above this share of rejects (default 0.05)")  # fmt: skip
    add("--workers", type=int, default=d["workers"], help="0: in this process, no Ray (default: Ray tasks)")  # fmt: skip
    add("--batch-size", type=int, default=d["batch_size"], help="inputs per task (default 50)")
    add("--max-shard-mb", type=int, default=d["max_shard_mb"], help="audio per shard (default 256 MB)")  # fmt: skip
    add("--overwrite", action="store_true", help="replace a corpus ingested from other inputs")
    add("--cache", default=d["cache"], help="demo: packages and renders")
    add("--seed", type=int, default=d["seed"], help="demo: sampling seed (default 0)")
    add("--per-speaker", type=int, default=d["per_speaker"], help="demo: clips per voice of large packs (60)")  # fmt: skip
    add("--programs-per-family", type=int, default=d["programs_per_family"],
        help="demo: GM programs rendered per family (4)")  # fmt: skip
    add("--extra-per-speaker", type=int, default=d["extra_per_speaker"],
        help="demo: more clips per pretraining voice of the large packs, pretraining only (0)")  # fmt: skip
    add("--extra-programs", type=int, default=d["extra_programs"],
        help="demo: more GM programs per family, pretraining only (0)")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> IngestSpec:
    for flag in DEMO_COUNTS:
        if getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.source != "demo" and not args.path:
        parser.error(f"--path is required with --source {args.source}")
    if args.audio_template is not None:
        if args.source != "lhotse":
            parser.error("--audio-template is for --source lhotse")
        if args.audio_root:
            parser.error(
                "--audio-root and --audio-template both say where the audio is: give one "
                "(--audio-template /data/{source}/{recording_id}.flac for the released manifests)"
            )
        try:
            check_template(args.audio_template)
        except IngestError as exc:
            parser.error(str(exc))
    return IngestSpec(**{f.name: getattr(args, f.name) for f in fields(IngestSpec)})


def collect(spec: IngestSpec) -> tuple[list[Item], list[Reject], int, dict[str, Any]]:
    """Inputs of the chosen source: (items, rejects found while listing, skipped files, provenance).

    Raises IngestError or DemoError when the source is unusable or empty."""
    rejects: list[Reject] = []
    skipped = 0
    provenance: dict[str, Any]
    if spec.source == "demo":
        items = demo_items(
            Path(spec.cache),
            seed=spec.seed,
            per_speaker=spec.per_speaker,
            programs_per_family=spec.programs_per_family,
            extra_per_speaker=spec.extra_per_speaker,
            extra_programs=spec.extra_programs,
        )
        packages = {p.name: {"license": p.license, "why": p.why} for p in PACKAGES}
        provenance = {"source": "demo", "packages": packages, "seed": spec.seed}
    elif spec.source == "folder":
        assert spec.path is not None  # spec_from_args requires it
        items, rejects, skipped = folder_items(
            spec.path, metadata=spec.metadata, domain=spec.domain, license=spec.license
        )
        provenance = {"source": "folder", "path": spec.path, "metadata": spec.metadata}
    else:
        assert spec.path is not None
        items, rejects = manifest_items(
            spec.path,
            audio_root=spec.audio_root,
            audio_template=spec.audio_template,
            domain=spec.domain,
            license=spec.license,
        )
        provenance = {
            "source": "lhotse",
            "manifest": spec.path,
            "audio_root": spec.audio_root,
            "audio_template": spec.audio_template,
        }
    check_unique(items)
    if not items and not rejects:
        raise IngestError(
            f"{spec.path}: no audio inputs found (extensions: wav flac ogg opus mp3 aiff au)"
        )
    return items, rejects, skipped, provenance


def verdict(reject_fraction: float, limit: float) -> int:
    """1 (and a message on stderr) when more inputs were rejected than the limit allows; else 0."""
    if reject_fraction > limit:
        print(
            f"error: {reject_fraction:.1%} of inputs were rejected (limit {limit:.1%})",
            file=sys.stderr,
        )
        return 1
    return 0


def run(spec: IngestSpec, store: Store) -> IngestResult:
    """Ingest the source into <store>/corpora/<corpus>, or nothing when it is up to date.

    Raises StageError (code 2) for an unusable source or a corpus made from other inputs."""
    where = ("corpora", spec.corpus)
    try:
        items, rejects, skipped, provenance = collect(spec)
    except (IngestError, DemoError) as exc:
        raise StageError(str(exc), 2) from exc
    fingerprint = spec.fingerprint(items, rejects)
    if store.is_complete(*where) and not spec.overwrite:
        existing = store.read_json(*where, "corpus.json")
        if existing.get("fingerprint") == fingerprint:
            return IngestResult(
                fingerprint=fingerprint,
                uri=store.uri(*where),
                summary=f"{store.uri(*where)} is up to date (fingerprint {fingerprint}); nothing to do",
                exit_code=verdict(existing["reject_fraction"], spec.max_reject_fraction),
            )
        raise StageError(
            f"{store.uri(*where)} exists and was ingested from other inputs (fingerprint "
            f"{existing.get('fingerprint')}, now {fingerprint}); pass --overwrite or another --corpus",
            2,
        )
    mapper = mapper_for(spec.workers)
    print(
        f"ingesting {len(items):,} inputs ({spec.source}) into {store.uri(*where)}",
        file=sys.stderr,
    )
    meta = {
        "name": spec.corpus,
        "fingerprint": fingerprint,
        **provenance,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", SCRIPT, "--store", store.root_uri, *spec_argv(spec)]),
    }
    with store.staging() as staged:
        summary = run_ingest(
            items,
            staged,
            policy=spec.policy(),
            mapper=mapper,
            rejects=rejects,
            batch_size=spec.batch_size,
            max_shard_bytes=spec.max_shard_mb << 20,
            meta=meta,
            skipped=skipped,
        )
        uri = store.publish(staged, *where, overwrite=True)
    report = summary.as_json()
    domains = ", ".join(f"{d} {n:,}" for d, n in report["domains"].items())
    lines = [
        f"corpus {spec.corpus}: {summary.clips:,} clips, {report['hours']:.2f} h ({domains}); "
        f"{len(summary.rejects):,} rejects, {skipped:,} non-audio files skipped; "
        f"{summary.shards} shard(s); {report['clips_per_s'] or 0:.1f} clips/s"
    ]
    if summary.rejects:
        reasons = ", ".join(f"{kind} {n:,}" for kind, n in summary.reject_reasons.items())
        lines.append(f"  ingested {summary.clips:,}, rejected {len(summary.rejects):,}: {reasons}")
    lines += [f"  reject {reject.path}: {reject.reason}" for reject in summary.rejects[:10]]
    if len(summary.rejects) > 10:
        lines.append(f"  ... {len(summary.rejects) - 10} more in {uri}/rejects.parquet")
    lines.append(f"wrote {uri}")
    return IngestResult(
        fingerprint=fingerprint,
        uri=uri,
        summary="\n".join(lines),
        exit_code=verdict(summary.reject_fraction, spec.max_reject_fraction),
    )
