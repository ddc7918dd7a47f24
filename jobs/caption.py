"""Caption every clip of a corpus's pretraining partition (step 1 of the study).

    python jobs/caption.py --store ./uts-store --corpus demo --backend corpus
    python jobs/caption.py --corpus demo --backend openai --endpoint http://gpu-host:8000/v1 \\
        --model Qwen/Qwen3-Omni-30B-A3B-Captioner
    ray job submit -- python jobs/caption.py --store s3://bucket/uts --corpus big --backend vllm \\
        --accelerator-type A100 --concurrency 4

Writes <store>/captions/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, description, status,
error, raw, text_kind, domain), one part per corpus shard, plus stage.json and _SUCCESS. A killed run
resumes: finished parts are kept, the rest are redone. Backends: `corpus` (the clip's existing text,
no model), `vllm` (the audio LLM on this cluster's GPUs, audio only, no text prompt), `openai` (any
OpenAI-compatible endpoint; the audio goes as an input_audio part; key from $OPENAI_API_KEY).
Exit codes: 0 done, 2 bad arguments, no such corpus, or an unusable endpoint.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from cluster.parallel import mapper_for
from jobs.llm_args import (
    add_model_args,
    check_model_args,
    model_id,
    run_with_model,
    sampling,
    summary_line,
)
from uts import __version__
from uts.data import list_shards
from uts.llm.backends import CORPUS_COLUMNS, caption_spec, corpus_captions
from uts.llm.parse import PARSER_VERSION
from uts.llm.stage import fingerprint, run_stage, versions
from uts.store import Store


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="caption.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--corpus", required=True, help="corpus name under <store>/corpora")
    parser.add_argument(
        "--backend", choices=["corpus", "vllm", "openai"], default="corpus",
        help="captioner (default corpus: the clips' existing text)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None, help="corpus: 0 = in this process, no Ray"
    )
    add_model_args(parser, "caption")
    return parser.parse_args(argv)


def stage_inputs(args: argparse.Namespace, corpus_fingerprint: str) -> dict[str, Any]:
    """Everything that changes the captions: their fingerprint is a hash of this."""
    inputs = {"stage": "caption", "backend": args.backend, "corpus_fingerprint": corpus_fingerprint,
              "lint_version": PARSER_VERSION}  # fmt: skip
    if args.backend != "corpus":
        inputs |= {"model": model_id(args, "caption"), "revision": args.revision,
                   "prompt": "(audio only, no text prompt)", "sampling": sampling(args).as_dict(), "limit": args.limit}  # fmt: skip
    return inputs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := check_model_args(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    store = Store(args.store)
    try:
        shards = list_shards(store.uri("corpora", args.corpus))
    except FileNotFoundError as exc:
        print(f"error: {exc}; run jobs/ingest.py first", file=sys.stderr)
        return 2
    corpus = store.read_json("corpora", args.corpus, "corpus.json")
    inputs = stage_inputs(args, corpus["fingerprint"])
    chosen = sampling(args)
    fp = fingerprint(inputs)
    out = store.uri("captions", args.corpus, fp)
    if store.is_complete("captions", args.corpus, fp):
        print(f"{out} is complete (fingerprint {fp}); nothing to do")
        return 0
    print(
        f"captioning {len(shards)} shard(s) of {args.corpus} with the {args.backend} backend -> {out}",
        file=sys.stderr,
    )
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__, "versions": versions(),
            "command": shlex.join(["python", "jobs/caption.py", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    if args.backend == "corpus":
        summary = run_stage(
            shards, out, corpus_captions, columns=CORPUS_COLUMNS, mapper=mapper_for(args.workers),
            meta=meta,
        )  # fmt: skip
    else:
        result = run_with_model(args, "caption", chosen, caption_spec(), shards, out, meta)
        if result is None:
            return 2
        summary = result
    print(summary_line("captions", fp, summary, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
