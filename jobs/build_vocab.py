"""Build the UTS vocabulary from tag tables, or compare two vocabularies.

    python jobs/build_vocab.py --store ./uts-store --tags ./uts-store/tags/demo/<fingerprint> --name demo
    ray job submit -- python jobs/build_vocab.py --store s3://bucket/uts --tags s3://bucket/uts/tags/c/fp
    python jobs/build_vocab.py --store ./uts-store --diff demo@800 demo@1500

Writes <store>/vocab/<name>/: vocab.parquet (rank, tag, df, score, coverage_<domain>), vocab.json
(N, inputs and their hashes, fingerprints, normaliser version, cut-off statistics) and a report
(report.md, score_df.png, coverage.png). The folder appears whole or not at all. Rerunning on the
same input is a no-op; different input under an existing name needs --overwrite.
Exit codes: 0 done, 2 bad input or arguments (nothing written).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from uts.store import Store
from uts.tags import (
    TagInputError,
    Vocabulary,
    VocabularyError,
    load_vocab,
    resolve_sources,
    tag_key,
)
from uts.tags.build import build_vocabulary, input_fingerprint, write_vocabulary
from uts.tags.counting import print_progress
from uts.tags.normalize import normalize_tag


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_vocab.py",
        description="Score tags with df*ln((N+1)/(df+1)) and write the top-K UTS vocabulary.",
    )
    parser.add_argument(
        "--store", default="./uts-store", help="store root: folder or URI (default ./uts-store)"
    )
    parser.add_argument(
        "--tags",
        action="append",
        metavar="URI",
        help="tag table: parquet file, folder of parquet files, or glob (repeatable)",
    )
    parser.add_argument(
        "--name", default="uts", help="vocabulary name: <store>/vocab/<name> (default uts)"
    )
    parser.add_argument(
        "--max-k", type=int, default=3000, help="tags to keep; any K is a prefix (default 3000)"
    )
    parser.add_argument("--no-normalize", action="store_true", help="keep tags exactly as given")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a vocabulary built from other input"
    )
    parser.add_argument(
        "--diff",
        nargs=2,
        metavar=("A", "B"),
        help="compare two vocabularies instead of building: NAME[@K] in --store, a vocabulary folder, "
        "or a JSON {index: tag} file such as the paper's label_1.5k.json",
    )
    parser.add_argument(
        "--show", type=int, default=50, help="with --diff: tags listed per side (default 50)"
    )
    args = parser.parse_args(argv)
    if args.diff is None and not args.tags:
        parser.error("--tags is required (or --diff A B)")
    if args.max_k < 1:
        parser.error(f"--max-k must be positive, got {args.max_k}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # recorded in vocab.json
    try:
        return diff(args) if args.diff else build(args)
    except (TagInputError, VocabularyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    store = Store(args.store)
    normalize = not args.no_normalize
    sources = resolve_sources(args.tags)
    hashes = [s.sha256() for s in sources]
    fingerprint = input_fingerprint(hashes, normalize=normalize, max_k=args.max_k)
    where = ("vocab", args.name)
    if store.is_complete(*where) and not args.overwrite:
        existing = store.read_json(*where, "vocab.json")
        if existing.get("input_fingerprint") == fingerprint:
            print(
                f"{store.uri(*where)} is up to date (input fingerprint {fingerprint}); nothing to do"
            )
            return 0
        raise VocabularyError(
            f"{store.uri(*where)} exists and was built from other input (fingerprint "
            f"{existing.get('input_fingerprint')}, now {fingerprint}); pass --overwrite or another --name"
        )
    print(
        f"building vocabulary {args.name!r} from {len(sources)} file(s), max K {args.max_k}",
        file=sys.stderr,
    )
    result = build_vocabulary(
        sources,
        name=args.name,
        max_k=args.max_k,
        normalize=normalize,
        source_hashes=hashes,
        progress=print_progress(),
    )
    result.meta["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result.meta["command"] = shlex.join(["python", "jobs/build_vocab.py", *args.argv])
    with store.staging() as staged:
        write_vocabulary(result, staged)
        uri = store.publish(staged, *where, overwrite=True)
    summarize(result.meta, uri, time.monotonic() - started)
    return 0


def summarize(meta: dict[str, object], uri: str, seconds: float) -> None:
    print(
        f"vocabulary {meta['name']}: N={meta['n_clips']:,} clips ({meta['n_skipped_status']:,} rows left out: "
        f"status not ok), {meta['n_distinct_tags']:,} distinct tags, kept {meta['size']:,}"
    )
    cutoffs = meta["cutoffs"]
    assert isinstance(cutoffs, dict)
    for k, row in cutoffs.items():
        coverage = ", ".join(f"{d} {share:.1%}" for d, share in row["coverage"].items())
        print(
            f"  K={int(k):>5,}: {row['clips_without_tag']:,} clips keep no tag; coverage {coverage}"
        )
    print(f"wrote {uri} (vocab.parquet, vocab.json, report.md, 2 plots) in {seconds:.1f} s")


def _load_any(spec: str, store: Store) -> Vocabulary:
    """NAME[@K] in the store, a vocabulary folder[@K], or a {index: tag} JSON file[@K]."""
    ref, _, k_text = spec.partition("@")
    if k_text and not k_text.isdigit():
        raise VocabularyError(f"{spec}: expected NAME@K with K a positive integer")
    k = int(k_text) if k_text else None
    if ref.endswith(".json") and Path(ref).is_file():
        try:
            mapping = json.loads(Path(ref).read_text(encoding="utf-8"))
            tags = tuple(str(mapping[str(i)]) for i in range(len(mapping)))
        except (ValueError, KeyError, TypeError) as exc:
            raise VocabularyError(
                f'{ref}: expected a JSON object {{"0": tag, "1": tag, ...}} ({exc})'
            ) from exc
        vocab = Vocabulary(
            tags, (0,) * len(tags), (0.0,) * len(tags), 0, normalized=False, name=ref
        )
        return vocab if k is None else vocab.at(k)
    location = ref if ("/" in ref or ref.startswith(".")) else store.uri("vocab", ref)
    return load_vocab(location, k)


def diff(args: argparse.Namespace) -> int:
    store = Store(args.store)
    a, b = (_load_any(spec, store) for spec in args.diff)
    by_identity = a.normalized and b.normalized

    def ident(tag: str) -> str:
        form = normalize_tag(tag) if by_identity else tag
        return tag_key(form) if by_identity and form is not None else tag

    rank_a = {ident(t): i + 1 for i, t in enumerate(a.tags)}
    rank_b = {ident(t): i + 1 for i, t in enumerate(b.tags)}
    added = [(rank_b[ident(t)], t) for t in b.tags if ident(t) not in rank_a]
    dropped = [(rank_a[ident(t)], t) for t in a.tags if ident(t) not in rank_b]
    shared = len(rank_a.keys() & rank_b.keys())
    label_a, label_b = args.diff
    print(f"A = {label_a}: {len(a)} tags; B = {label_b}: {len(b)} tags")
    print(
        f"compared by {'normalised identity' if by_identity else 'exact spelling'}; {shared} shared"
    )
    for title, rows in (
        (f"added in B ({len(added)})", added),
        (f"dropped from A ({len(dropped)})", dropped),
    ):
        print(f"{title}:")
        for rank, tag in rows[: args.show]:
            print(f"  {rank:>6}  {tag}")
        if len(rows) > args.show:
            print(f"  ... {len(rows) - args.show} more (--show N)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
