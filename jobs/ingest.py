"""Ingest audio into corpus shards in the store.

    python jobs/ingest.py --store ./uts-store --corpus mine --source folder --path ./audio --metadata meta.csv
    python jobs/ingest.py --store ./uts-store --corpus captionstew --source lhotse \\
        --path cuts.jsonl.gz --audio-root /old/prefix=/data/audio
    ray job submit -- python jobs/ingest.py --store s3://bucket/uts --corpus mine --source folder --path s3://bucket/raw

Writes <store>/corpora/<corpus>/: shards/part-NNNNN.parquet (clip_id, audio as 16 kHz mono FLAC,
duration_s, domain, source, license, text, text_kind, labels, group, tags), rejects.parquet
(path, reason) and corpus.json (counts, hours, per-domain figures, fingerprint, policy). The folder
appears whole or not at all; rerunning with the same inputs is a no-op.
Exit codes: 0 done; 1 more rejects than --max-reject-fraction (the corpus is still written);
2 bad arguments or unusable source (nothing written).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.parallel import mapper_for
from uts.audio import ClipPolicy
from uts.data import Reject
from uts.ingest import (
    IngestError,
    Item,
    check_unique,
    folder_items,
    items_fingerprint,
    run_ingest,
)
from uts.ingest.demo import PACKAGES, DemoError, demo_items
from uts.ingest.manifest import manifest_items
from uts.store import Store


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ingest.py", description="Ingest audio into corpus shards."
    )
    parser.add_argument(
        "--store", default="./uts-store", help="store root: folder or URI (default ./uts-store)"
    )
    parser.add_argument("--corpus", required=True, help="corpus name: <store>/corpora/<name>")
    parser.add_argument(
        "--source", required=True, choices=["folder", "lhotse", "demo"], help="kind of source"
    )
    parser.add_argument(
        "--path", help="folder: the audio folder or URI prefix; lhotse: the manifest"
    )
    parser.add_argument(
        "--metadata", help="folder: CSV or JSONL keyed by 'path' (text, labels, domain, group)"
    )
    parser.add_argument(
        "--audio-root", help="lhotse: NEW (NEW/<file name>) or OLD=NEW (prefix replaced)"
    )
    parser.add_argument(
        "--domain", default="unknown", help="domain of clips without one in metadata"
    )
    parser.add_argument("--license", default="", help="license recorded with every clip")
    parser.add_argument(
        "--min-s", type=float, default=1.0, help="pad shorter clips to this (default 1)"
    )
    parser.add_argument(
        "--max-s", type=float, default=10.0, help="crop longer clips to this (default 10)"
    )
    parser.add_argument(
        "--max-source-s", type=float, default=3600.0, help="refuse longer sources (default 3600)"
    )
    parser.add_argument("--no-trim", action="store_true", help="keep leading/trailing near-silence")
    parser.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        help="exit 1 above this share of rejects (default 0.05)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="0: in this process, no Ray (default: Ray tasks)"
    )
    parser.add_argument("--batch-size", type=int, default=50, help="inputs per task (default 50)")
    parser.add_argument(
        "--max-shard-mb", type=int, default=256, help="audio per shard (default 256 MB)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a corpus ingested from other inputs"
    )
    parser.add_argument("--cache", default="./.uts-cache/demo", help="demo: packages and renders")
    parser.add_argument("--seed", type=int, default=0, help="demo: sampling seed (default 0)")
    parser.add_argument(
        "--per-speaker", type=int, default=60, help="demo: clips per voice of large packs (60)"
    )
    parser.add_argument(
        "--programs-per-family",
        type=int,
        default=4,
        help="demo: GM programs rendered per family (4)",
    )
    parser.add_argument(
        "--extra-per-speaker",
        type=int,
        default=0,
        help="demo: more clips per pretraining voice of the large packs, pretraining only (0)",
    )
    parser.add_argument(
        "--extra-programs",
        type=int,
        default=0,
        help="demo: more GM programs per family, pretraining only (0)",
    )
    args = parser.parse_args(argv)
    for flag in ("per_speaker", "programs_per_family", "extra_per_speaker", "extra_programs"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.source != "demo" and not args.path:
        parser.error(f"--path is required with --source {args.source}")
    return args


def collect(args: argparse.Namespace) -> tuple[list[Item], list[Reject], int, dict[str, Any]]:
    """Inputs of the chosen source: (items, rejects found while listing, skipped files, provenance)."""
    rejects: list[Reject] = []
    skipped = 0
    if args.source == "demo":
        items = demo_items(
            Path(args.cache),
            seed=args.seed,
            per_speaker=args.per_speaker,
            programs_per_family=args.programs_per_family,
            extra_per_speaker=args.extra_per_speaker,
            extra_programs=args.extra_programs,
        )
        packages = {p.name: {"license": p.license, "why": p.why} for p in PACKAGES}
        provenance: dict[str, Any] = {"source": "demo", "packages": packages, "seed": args.seed}
    elif args.source == "folder":
        items, rejects, skipped = folder_items(
            args.path, metadata=args.metadata, domain=args.domain, license=args.license
        )
        provenance = {"source": "folder", "path": args.path, "metadata": args.metadata}
    else:
        items = manifest_items(args.path, audio_root=args.audio_root, license=args.license)
        provenance = {"source": "lhotse", "manifest": args.path, "audio_root": args.audio_root}
    check_unique(items)
    if not items and not rejects:
        raise IngestError(
            f"{args.path}: no audio inputs found (extensions: wav flac ogg opus mp3 aiff au)"
        )
    return items, rejects, skipped, provenance


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    policy = ClipPolicy(
        min_s=args.min_s,
        max_s=args.max_s,
        max_source_s=args.max_source_s,
        trim_db=None if args.no_trim else -50.0,
    )
    store = Store(args.store)
    where = ("corpora", args.corpus)
    try:
        items, rejects, skipped, provenance = collect(args)
    except (IngestError, DemoError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fingerprint = items_fingerprint(
        args.source, items, policy, {"rejects": [r.path for r in rejects]}
    )
    if store.is_complete(*where) and not args.overwrite:
        existing = store.read_json(*where, "corpus.json")
        if existing.get("fingerprint") == fingerprint:
            print(f"{store.uri(*where)} is up to date (fingerprint {fingerprint}); nothing to do")
            return verdict(existing["reject_fraction"], args.max_reject_fraction)
        print(
            f"error: {store.uri(*where)} exists and was ingested from other inputs (fingerprint "
            f"{existing.get('fingerprint')}, now {fingerprint}); pass --overwrite or another --corpus",
            file=sys.stderr,
        )
        return 2
    mapper = mapper_for(args.workers)
    print(
        f"ingesting {len(items):,} inputs ({args.source}) into {store.uri(*where)}",
        file=sys.stderr,
    )
    meta = {
        "name": args.corpus,
        "fingerprint": fingerprint,
        **provenance,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(
            ["python", "jobs/ingest.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    with store.staging() as staged:
        summary = run_ingest(
            items,
            staged,
            policy=policy,
            mapper=mapper,
            rejects=rejects,
            batch_size=args.batch_size,
            max_shard_bytes=args.max_shard_mb << 20,
            meta=meta,
            skipped=skipped,
        )
        uri = store.publish(staged, *where, overwrite=True)
    report = summary.as_json()
    domains = ", ".join(f"{d} {n:,}" for d, n in report["domains"].items())
    print(
        f"corpus {args.corpus}: {summary.clips:,} clips, {report['hours']:.2f} h ({domains}); "
        f"{len(summary.rejects):,} rejects, {skipped:,} non-audio files skipped; "
        f"{summary.shards} shard(s); {report['clips_per_s'] or 0:.1f} clips/s"
    )
    for reject in summary.rejects[:10]:
        print(f"  reject {reject.path}: {reject.reason}")
    if len(summary.rejects) > 10:
        print(f"  ... {len(summary.rejects) - 10} more in {uri}/rejects.parquet")
    print(f"wrote {uri}")
    return verdict(summary.reject_fraction, args.max_reject_fraction)


def verdict(reject_fraction: float, limit: float) -> int:
    if reject_fraction > limit:
        print(
            f"error: {reject_fraction:.1%} of inputs were rejected (limit {limit:.1%})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
