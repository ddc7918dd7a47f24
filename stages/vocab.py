"""Score tags with df*ln((N+1)/(df+1)) and write the top-K UTS vocabulary.

Builds <store>/vocab/<name>/ once at max_k (any K is a prefix of the ranking), or, with `diff`,
compares two vocabularies and writes nothing. The input fingerprint (tag table contents, normalise
flag, paper-compat flag, max_k) decides whether an existing vocabulary is up to date. With
`paper_compat` the scoring is the paper's released build_labelsys.py, to reproduce its vocabularies.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages.base import StageError, spec_argv
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
from uts.tags.paper import paper_overlap_lines

__all__ = ["SCRIPT", "VocabResult", "VocabSpec", "add_arguments", "run", "spec_from_args"]

SCRIPT = "jobs/build_vocab.py"


@dataclass(frozen=True, kw_only=True)
class VocabSpec:
    tags: tuple[str, ...] = ()  # tag tables: parquet files, folders of them, or globs
    name: str = "uts"  # vocabulary name: <store>/vocab/<name>
    max_k: int = 3000  # tags kept; any K is a prefix
    no_normalize: bool = False  # keep tags exactly as given
    paper_compat: bool = False  # score as the paper's build_labelsys.py; implies no_normalize
    overwrite: bool = False  # replace a vocabulary built from other input
    diff: tuple[str, str] | None = field(
        default=None, metadata={"nargs": True}
    )  # (A, B): compare instead of building
    show: int = 50  # with diff: tags listed per side


@dataclass(frozen=True, kw_only=True)
class VocabResult:
    name: str  # the vocabulary built (spec.name); "" for a diff
    uri: str | None  # its folder; None for a diff
    vocab_fingerprint: str | None  # of the ranked vocabulary; None for a diff
    summary: str = ""
    exit_code: int = 0


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(VocabSpec)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--tags", action="append", metavar="URI",
                        help="tag table: parquet file, folder of parquet files, or glob (repeatable)")  # fmt: skip
    parser.add_argument("--name", default=d["name"], help="vocabulary name: <store>/vocab/<name> (default uts)")  # fmt: skip
    parser.add_argument("--max-k", type=int, default=d["max_k"], help="tags to keep; any K is a prefix (default 3000)")  # fmt: skip
    parser.add_argument("--no-normalize", action="store_true", help="keep tags exactly as given")
    parser.add_argument(
        "--paper-compat",
        action="store_true",
        help="score as the paper's build_labelsys.py, to reproduce its released vocabularies: tags "
        "as written, every row a document (status ignored), ties in first-seen order",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a vocabulary built from other input")  # fmt: skip
    parser.add_argument(
        "--diff",
        nargs=2,
        metavar=("A", "B"),
        help="compare two vocabularies instead of building: NAME[@K] in --store, a vocabulary folder, "
        "or a JSON {index: tag} file such as the paper's label_1.5k.json",
    )
    parser.add_argument("--show", type=int, default=d["show"], help="with --diff: tags listed per side (default 50)")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> VocabSpec:
    if args.diff is None and not args.tags:
        parser.error("--tags is required (or --diff A B)")
    if args.max_k < 1:
        parser.error(f"--max-k must be positive, got {args.max_k}")
    return VocabSpec(
        tags=tuple(args.tags or ()),
        name=args.name,
        max_k=args.max_k,
        no_normalize=args.no_normalize,
        paper_compat=args.paper_compat,
        overwrite=args.overwrite,
        diff=(args.diff[0], args.diff[1]) if args.diff else None,
        show=args.show,
    )


def run(spec: VocabSpec, store: Store) -> VocabResult:
    """Build the vocabulary (or compare two, with spec.diff).

    Raises StageError (code 2): unreadable tag tables or vocabularies, or a vocabulary of that
    name built from other input (without overwrite)."""
    try:
        return _diff(spec, store) if spec.diff else _build(spec, store)
    except (TagInputError, VocabularyError) as exc:
        raise StageError(str(exc), 2) from exc


def _build(spec: VocabSpec, store: Store) -> VocabResult:
    started = time.monotonic()
    normalize = not (spec.no_normalize or spec.paper_compat)
    sources = resolve_sources(list(spec.tags))
    hashes = [s.sha256() for s in sources]
    fingerprint = input_fingerprint(
        hashes, normalize=normalize, max_k=spec.max_k, paper_compat=spec.paper_compat
    )
    where = ("vocab", spec.name)
    if store.is_complete(*where) and not spec.overwrite:
        existing = store.read_json(*where, "vocab.json")
        if existing.get("input_fingerprint") == fingerprint:
            return VocabResult(
                name=spec.name,
                uri=store.uri(*where),
                vocab_fingerprint=existing.get("vocab_fingerprint"),
                summary=f"{store.uri(*where)} is up to date (input fingerprint {fingerprint}); nothing to do",
            )
        raise VocabularyError(
            f"{store.uri(*where)} exists and was built from other input (fingerprint "
            f"{existing.get('input_fingerprint')}, now {fingerprint}); pass --overwrite or another --name"
        )
    mode = " (paper-compatible)" if spec.paper_compat else ""
    print(
        f"building vocabulary {spec.name!r}{mode} from {len(sources)} file(s), max K {spec.max_k}",
        file=sys.stderr,
    )
    result = build_vocabulary(
        sources,
        name=spec.name,
        max_k=spec.max_k,
        normalize=normalize,
        source_hashes=hashes,
        progress=print_progress(),
        paper_compat=spec.paper_compat,
    )
    result.meta["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    # The command a user would type to rebuild it (not part of any fingerprint).
    result.meta["command"] = shlex.join(
        ["python", SCRIPT, "--store", store.root_uri, *spec_argv(spec)]
    )
    with store.staging() as staged:
        write_vocabulary(result, staged)
        uri = store.publish(staged, *where, overwrite=True)
    vocab_fp = result.meta.get("vocab_fingerprint")
    return VocabResult(
        name=spec.name,
        uri=uri,
        vocab_fingerprint=str(vocab_fp) if vocab_fp is not None else None,
        summary=_summary(result.meta, uri, time.monotonic() - started, result.vocab.tags),
    )


def _summary(meta: dict[str, Any], uri: str, seconds: float, tags: Sequence[str]) -> str:
    """N, distinct tags, size kept, per cut-off K the clips left without a tag, and the overlap
    with the paper's top-100/1k (the top-100's shared tags listed)."""
    lines = [
        f"vocabulary {meta['name']}: N={meta['n_clips']:,} clips ({meta['n_skipped_status']:,} rows left out: "
        f"status not ok), {meta['n_distinct_tags']:,} distinct tags, kept {meta['size']:,}"
    ]
    cutoffs = meta["cutoffs"]
    assert isinstance(cutoffs, dict)
    for k, row in cutoffs.items():
        coverage = ", ".join(f"{d} {share:.1%}" for d, share in row["coverage"].items())
        lines.append(
            f"  K={int(k):>5,}: {row['clips_without_tag']:,} clips keep no tag; coverage {coverage}"
        )
    overlap = paper_overlap_lines(tags, listed=60)
    lines += [f"  {line}" for line in overlap[1:]]
    lines.append(f"wrote {uri} (vocab.parquet, vocab.json, report.md, 2 plots) in {seconds:.1f} s")
    return "\n".join(lines)


def _load_any(ref_k: str, store: Store) -> Vocabulary:
    """NAME[@K] in the store, a vocabulary folder[@K], or a {index: tag} JSON file[@K]."""
    ref, _, k_text = ref_k.partition("@")
    if k_text and not k_text.isdigit():
        raise VocabularyError(f"{ref_k}: expected NAME@K with K a positive integer")
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


def _diff(spec: VocabSpec, store: Store) -> VocabResult:
    """Tags added in B and dropped from A, by normalised identity when both are normalised."""
    assert spec.diff is not None
    label_a, label_b = spec.diff
    a, b = _load_any(label_a, store), _load_any(label_b, store)
    by_identity = a.normalized and b.normalized

    def ident(tag: str) -> str:
        form = normalize_tag(tag) if by_identity else tag
        return tag_key(form) if by_identity and form is not None else tag

    rank_a = {ident(t): i + 1 for i, t in enumerate(a.tags)}
    rank_b = {ident(t): i + 1 for i, t in enumerate(b.tags)}
    added = [(rank_b[ident(t)], t) for t in b.tags if ident(t) not in rank_a]
    dropped = [(rank_a[ident(t)], t) for t in a.tags if ident(t) not in rank_b]
    shared = len(rank_a.keys() & rank_b.keys())
    lines = [
        f"A = {label_a}: {len(a)} tags; B = {label_b}: {len(b)} tags",
        f"compared by {'normalised identity' if by_identity else 'exact spelling'}; {shared} shared",
    ]
    for title, rows in (
        (f"added in B ({len(added)})", added),
        (f"dropped from A ({len(dropped)})", dropped),
    ):
        lines.append(f"{title}:")
        lines += [f"  {rank:>6}  {tag}" for rank, tag in rows[: spec.show]]
        if len(rows) > spec.show:
            lines.append(f"  ... {len(rows) - spec.show} more (--show N)")
    return VocabResult(name="", uri=None, vocab_fingerprint=None, summary="\n".join(lines))
