"""Extract tags from every caption of a corpus (step 2 of the study).

    python jobs/tag.py --store ./uts-store --corpus demo --captions latest --backend rules
    ray job submit -- python jobs/tag.py --store s3://bucket/uts --corpus demo --captions <fingerprint>

Writes <store>/tags/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, tags normalised with
uts.tags.normalize, raw, status, error, domain), one part per caption part, plus stage.json and
_SUCCESS: exactly what jobs/build_vocab.py reads. Captions that are not ok become failed rows with
the reason (suspect ones too, unless --keep-suspect). A killed run resumes. Backends: `rules`
(deterministic extraction, no model: the paper's non-LLM baseline). Exit codes: 0 done, 2 bad
arguments or no such captions.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Sequence

from cluster.parallel import mapper_for
from uts import __version__
from uts.llm.backends import rules_tags_table
from uts.llm.parse import PARSER_VERSION
from uts.llm.rules import RULES_VERSION
from uts.llm.stage import fingerprint, run_stage
from uts.store import Store, join_uri


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tag.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--corpus", required=True, help="corpus name")
    parser.add_argument(
        "--captions", default="latest", help="captions fingerprint, or latest (default)"
    )
    parser.add_argument(
        "--backend", choices=["rules"], default="rules", help="tagger (default rules)"
    )
    parser.add_argument(
        "--keep-suspect", action="store_true", help="tag captions linted as suspect too"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="0: in this process, no Ray (default: Ray tasks)"
    )
    return parser.parse_args(argv)


def latest_complete(store: Store, *parts: str) -> str | None:
    """The fingerprint of the most recently finished stage folder under `parts`, if any."""
    root = store.path(*parts)
    if not store.fs.exists(root):
        return None
    finished = []
    for folder in store.fs.ls(root, detail=False):
        name = folder.rstrip("/").rsplit("/", 1)[-1]
        if store.is_complete(*parts, name):
            finished.append((store.fs.info(join_uri(folder, "stage.json")).get("mtime", 0), name))
    return max(finished)[1] if finished else None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.store)
    captions = (
        latest_complete(store, "captions", args.corpus)
        if args.captions == "latest"
        else args.captions
    )
    if not captions or not store.is_complete("captions", args.corpus, captions):
        print(
            f"error: no complete captions {args.captions!r} for corpus {args.corpus}; run jobs/caption.py first",
            file=sys.stderr,
        )
        return 2
    caption_dir = store.uri("captions", args.corpus, captions)
    inputs = {"stage": "tag", "backend": args.backend, "captions_fingerprint": captions, "rules_version": RULES_VERSION,
              "parser_version": PARSER_VERSION, "keep_suspect": args.keep_suspect}  # fmt: skip
    fp = fingerprint(inputs)
    out = store.uri("tags", args.corpus, fp)
    if store.is_complete("tags", args.corpus, fp):
        print(f"{out} is complete (fingerprint {fp}); nothing to do")
        return 0
    parts = sorted(
        store.fs.glob(join_uri(store.path("captions", args.corpus, captions), "part-*.parquet"))
    )
    sources = [join_uri(caption_dir, p.rsplit("/", 1)[-1]) for p in parts]
    print(
        f"tagging {len(sources)} caption part(s) with the {args.backend} backend -> {out}",
        file=sys.stderr,
    )
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__,
            "command": shlex.join(["python", "jobs/tag.py", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    process = functools.partial(rules_tags_table, keep_suspect=args.keep_suspect)
    summary = run_stage(
        sources, out, process, columns=None, mapper=mapper_for(args.workers), meta=meta
    )
    print(f"tags {fp}: {summary['rows']:,} rows {summary['statuses']}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
