"""Extract tags from every caption of a corpus (step 2 of the study).

    python jobs/tag.py --store ./uts-store --corpus demo --captions latest --backend rules
    python jobs/tag.py --corpus demo --backend openai --endpoint http://gpu-host:8000/v1 \
        --model Qwen/Qwen2.5-7B-Instruct
    ray job submit -- python jobs/tag.py --store s3://bucket/uts --corpus big --captions <fingerprint> \
        --backend vllm --accelerator-type L4 --concurrency 8

Writes <store>/tags/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, tags normalised with
uts.tags.normalize, raw, status, error, domain), one part per caption part, plus stage.json and
_SUCCESS: exactly what jobs/build_vocab.py reads. Captions that are not ok become failed rows with
the reason (suspect ones too, unless --keep-suspect). A killed run resumes. Backends: `rules`
(deterministic extraction, no model: the paper's non-LLM baseline), `vllm` (Qwen2.5-7B-Instruct by
default, chat template, JSON structured output), `openai` (any OpenAI-compatible endpoint). Model
output that cannot be parsed is asked again once with a stricter prompt, then kept as `failed` with
its raw text and the reason. Exit codes: 0 done, 2 bad arguments, no such captions, or an unusable
endpoint.
"""

from __future__ import annotations

import argparse
import functools
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
from uts.llm.backends import rules_tags_table, tag_spec
from uts.llm.parse import PARSER_VERSION
from uts.llm.prompts import load_prompt
from uts.llm.rules import RULES_VERSION
from uts.llm.stage import fingerprint, run_stage, versions
from uts.store import Store, join_uri


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tag.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--corpus", required=True, help="corpus name")
    parser.add_argument(
        "--captions", default="latest", help="captions fingerprint, or latest (default)"
    )
    parser.add_argument(
        "--backend", choices=["rules", "vllm", "openai"], default="rules",
        help="tagger (default rules: no model)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-suspect", action="store_true", help="tag captions linted as suspect too"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="rules: 0 = in this process, no Ray"
    )
    parser.add_argument(
        "--prompt-version", type=int, default=1, help="prompts/tagging_v<N>.txt (default 1)"
    )
    parser.add_argument(
        "--no-structured-output", dest="structured", action="store_false",
        help="do not constrain the output to the labels JSON schema (faster on some engines)",
    )  # fmt: skip
    parser.add_argument(
        "--language", choices=["en", "any"], default="en",
        help="en: refuse labels outside a-z, 0-9 and hyphens (default en)",
    )  # fmt: skip
    add_model_args(parser, "tag")
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


def stage_inputs(args: argparse.Namespace, captions_fingerprint: str) -> dict[str, Any]:
    """Everything that changes the tags: their fingerprint is a hash of this.

    Raises:
        FileNotFoundError: the prompt version does not exist.
    """
    inputs: dict[str, Any] = {"stage": "tag", "backend": args.backend, "captions_fingerprint": captions_fingerprint,
                              "parser_version": PARSER_VERSION, "keep_suspect": args.keep_suspect}  # fmt: skip
    if args.backend == "rules":
        inputs["rules_version"] = RULES_VERSION
        return inputs
    prompt, strict = load_prompt("tagging", args.prompt_version), load_prompt("tagging_strict", 1)
    inputs |= {"model": model_id(args, "tag"), "revision": args.revision,
               "prompt": {prompt.id: prompt.text, strict.id: strict.text},
               "sampling": sampling(args, structured=args.structured).as_dict(), "language": args.language,
               "limit": args.limit}  # fmt: skip
    return inputs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := check_model_args(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
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
    try:
        inputs = stage_inputs(args, captions)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__, "versions": versions(),
            "command": shlex.join(["python", "jobs/tag.py", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    if args.backend == "rules":
        process = functools.partial(rules_tags_table, keep_suspect=args.keep_suspect)
        summary = run_stage(
            sources, out, process, columns=None, mapper=mapper_for(args.workers), meta=meta
        )
    else:
        prompt, strict = (
            load_prompt("tagging", args.prompt_version),
            load_prompt("tagging_strict", 1),
        )
        chosen = sampling(args, structured=args.structured)
        spec = tag_spec(prompt, strict, language=None if args.language == "any" else "en",
                        keep_suspect=args.keep_suspect)  # fmt: skip
        result = run_with_model(args, "tag", chosen, spec, sources, out, meta)
        if result is None:
            return 2
        summary = result
    print(summary_line("tags", fp, summary, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
