"""Extract tags from every caption of a corpus (step 2 of the study).

Writes <store>/tags/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, tags normalised with
uts.tags.normalize, raw, status, error, domain), one part per caption part, plus stage.json and
_SUCCESS: exactly what the vocabulary stage reads. Captions that are not ok become failed rows with
the reason (suspect ones too, unless keep_suspect). Model output that cannot be parsed is asked
again once with a stricter prompt, then kept as `failed` with its raw text and the reason.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cluster.parallel import mapper_for
from stages.base import StageError, content_address, corpus_target
from stages.llm import (
    LLMStageSpec,
    add_model_args,
    check,
    command,
    default,
    model_id,
    run_with_model,
    sampling,
    spec_from_namespace,
    summary_line,
)
from uts import __version__
from uts.llm.backends import rules_tags_table, tag_spec
from uts.llm.parse import PARSER_VERSION
from uts.llm.prompts import Prompt, load_prompt, prompt_from_file
from uts.llm.rules import RULES_VERSION
from uts.llm.stage import run_stage, versions
from uts.store import Store, join_uri, latest_complete
from uts.tags.audioset import (
    LABEL_COLUMNS,
    LABELS_VERSION,
    labels_tags_table,
    load_ontology,
    rules_digest,
)
from uts.tags.normalize import NORMALIZER_VERSION

__all__ = ["SCRIPT", "TagResult", "TagSpec", "add_arguments", "run", "spec_from_args"]

SCRIPT = "jobs/tag.py"
LANGUAGES = ("en", "any")


@dataclass(frozen=True, kw_only=True)
class TagSpec(LLMStageSpec):
    """One tagging of a corpus's captions: `rules` (deterministic extraction, no model: the
    paper's non-LLM baseline), `vllm` or `openai` (an instruct LLM answering labels JSON); or
    `labels`: AudioSet ontology classes from the corpus's own metadata (the paper's AudioSet-label
    baseline), which reads the corpus shards, not captions."""

    stage: ClassVar[str] = "tag"
    backends: ClassVar[tuple[str, ...]] = ("rules", "vllm", "openai", "labels")

    backend: str = "rules"  # rules | vllm | openai | labels
    max_tokens: int = 256  # generation limit in tokens; hitting it marks the row
    captions: str = "latest"  # captions fingerprint, or "latest": the newest complete one
    keep_suspect: bool = False  # tag captions linted as suspect too
    prompt_version: int = 1  # prompts/tagging_v<N>.txt
    structured: bool = field(
        default=True, metadata={"off": "--no-structured-output"}
    )  # JSON schema
    language: str = "en"  # en: drop labels outside a-z, 0-9 and hyphens | any
    prompt_file: str | None = None  # the tagging prompt's exact text (instead of prompt_version)
    chat_template: bool = field(
        default=True, metadata={"off": "--no-chat-template"}
    )  # off: the prompt goes as a raw completion, as the paper's extract_tags.py sends it

    def prompts(self) -> tuple[Prompt, Prompt]:
        """The tagging prompt (a user's file, or prompts/tagging_v<N>.txt) and the stricter retry.

        Raises:
            FileNotFoundError: no such prompt version or file.
            ValueError: the prompt file names no caption placeholder, or an unknown one.
        """
        prompt = (
            prompt_from_file(self.prompt_file)
            if self.prompt_file
            else load_prompt("tagging", self.prompt_version)
        )
        return prompt, load_prompt("tagging_strict", 1)

    def inputs(self, captions_fingerprint: str) -> dict[str, Any]:
        """Everything that changes the tags: their fingerprint is a hash of this. For `labels`
        the argument is the corpus's fingerprint (that backend reads no captions).

        Raises:
            FileNotFoundError: the prompt version or file does not exist.
            ValueError: the prompt file's placeholders are unusable.
        """
        if self.backend == "labels":
            return {"stage": "tag", "backend": "labels", "corpus_fingerprint": captions_fingerprint,
                    "labels_version": LABELS_VERSION, "rules_digest": rules_digest(),
                    "ontology_sha256": load_ontology().sha256, "normalizer_version": NORMALIZER_VERSION}  # fmt: skip
        inputs: dict[str, Any] = {"stage": "tag", "backend": self.backend, "captions_fingerprint": captions_fingerprint,
                                  "parser_version": PARSER_VERSION, "keep_suspect": self.keep_suspect}  # fmt: skip
        if self.backend == "rules":
            inputs["rules_version"] = RULES_VERSION
            return inputs
        prompt, strict = self.prompts()
        inputs |= {"model": model_id(self), "revision": self.revision,
                   "prompt": {prompt.id: prompt.text, strict.id: strict.text},
                   "sampling": sampling(self, structured=self.structured).as_dict(),
                   "language": self.language, "limit": self.limit}  # fmt: skip
        if self.language == "en":  # labels in another script are dropped, not the whole clip
            inputs["language_rule"] = "drop-label"
        if not self.chat_template:
            inputs["chat_template"] = False
        return inputs

    def fingerprint(self, captions_fingerprint: str) -> str:
        """The tags' folder name under <store>/tags/<corpus>.

        Raises:
            FileNotFoundError: the prompt version does not exist.
        """
        return content_address(self.inputs(captions_fingerprint))


@dataclass(frozen=True, kw_only=True)
class TagResult:
    fingerprint: str
    uri: str  # the tags folder
    captions: str  # the captions fingerprint tagged ("latest" resolved); labels: "" (none read)
    stats: Mapping[str, Any] | None = (
        None  # what stage.json records of this run; None: was complete
    )
    summary: str
    exit_code: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="corpus name")
    parser.add_argument(
        "--captions", default=default(TagSpec, "captions"),
        help="captions fingerprint, or latest (default)",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=TagSpec.backends, default=default(TagSpec, "backend"),
        help="tagger (default rules: no model; labels: AudioSet classes from the corpus metadata, no captions)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-suspect", action="store_true", help="tag captions linted as suspect too"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="rules, labels: 0 = in this process, no Ray"
    )
    parser.add_argument(
        "--prompt-version", type=int, default=default(TagSpec, "prompt_version"),
        help="prompts/tagging_v<N>.txt (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--no-structured-output", dest="structured", action="store_false",
        help="do not constrain the output to the labels JSON schema (faster on some engines)",
    )  # fmt: skip
    parser.add_argument(
        "--language", choices=LANGUAGES, default=default(TagSpec, "language"),
        help="en: drop labels outside a-z, 0-9 and hyphens, keep the clip's others (default en)",
    )  # fmt: skip
    parser.add_argument(
        "--prompt-file", default=None,
        help="the tagging prompt's exact text, {description} (or {caption}) where the caption "
        "goes; doubled braces mean a Python format string (instead of --prompt-version)",
    )  # fmt: skip
    parser.add_argument(
        "--no-chat-template", dest="chat_template", action="store_false",
        help="send the prompt as a raw completion, without the model's chat template (as the "
        "paper's extract_tags.py does)",
    )  # fmt: skip
    add_model_args(parser, TagSpec)


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TagSpec:
    return spec_from_namespace(TagSpec, args)


def run(spec: TagSpec, store: Store) -> TagResult:
    """Tag the chosen captions (resuming a killed run), or nothing when the folder is complete.

    Raises:
        StageError: (code 2) bad model settings, no such captions, no such prompt version, or an
            unusable endpoint.
    """
    check(spec)
    if spec.language not in LANGUAGES:  # argparse refuses these; a spec built in code may not
        raise StageError(f"--language must be en or any, got {spec.language!r}")
    if spec.prompt_file and spec.prompt_version != default(TagSpec, "prompt_version"):
        raise StageError("--prompt-file and --prompt-version are two prompts: give one")
    if spec.backend == "rules" and (spec.prompt_file or not spec.chat_template):
        raise StageError(
            "--prompt-file and --no-chat-template are for the vllm and openai backends"
        )
    if spec.backend == "labels":
        return run_labels(spec, store)
    captions = (
        latest_complete(store, "captions", spec.corpus)
        if spec.captions == "latest"
        else spec.captions
    )
    if not captions or not store.is_complete("captions", spec.corpus, captions):
        raise StageError(
            f"no complete captions {spec.captions!r} for corpus {spec.corpus}; run jobs/caption.py first"
        )
    caption_dir = store.uri("captions", spec.corpus, captions)
    try:
        inputs = spec.inputs(captions)
    except (FileNotFoundError, ValueError) as exc:
        raise StageError(str(exc)) from exc
    fp = content_address(inputs)
    out = store.uri("tags", spec.corpus, fp)
    if store.is_complete("tags", spec.corpus, fp):
        return TagResult(fingerprint=fp, uri=out, captions=captions,
                         summary=f"{out} is complete (fingerprint {fp}); nothing to do")  # fmt: skip
    parts = sorted(
        store.fs.glob(join_uri(store.path("captions", spec.corpus, captions), "part-*.parquet"))
    )
    sources = [join_uri(caption_dir, p.rsplit("/", 1)[-1]) for p in parts]
    print(
        f"tagging {len(sources)} caption part(s) with the {spec.backend} backend -> {out}",
        file=sys.stderr,
    )
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__,
            "versions": versions(), "command": command(SCRIPT, store, spec)}  # fmt: skip
    if spec.backend == "rules":
        process = functools.partial(rules_tags_table, keep_suspect=spec.keep_suspect)
        stats = run_stage(
            sources, out, process, columns=None, mapper=mapper_for(spec.workers), meta=meta
        )
    else:
        prompt, strict = spec.prompts()
        model_stage = tag_spec(prompt, strict, language=None if spec.language == "any" else "en",
                               keep_suspect=spec.keep_suspect, chat_template=spec.chat_template)  # fmt: skip
        stats = run_with_model(spec, sampling(spec, structured=spec.structured), model_stage,
                               sources, out, meta)  # fmt: skip
    return TagResult(fingerprint=fp, uri=out, captions=captions, stats=stats,
                     summary=summary_line("tags", fp, stats, out))  # fmt: skip


def run_labels(spec: TagSpec, store: Store) -> TagResult:
    """The `labels` backend: AudioSet classes of each pretraining clip from the corpus shards.

    Raises:
        StageError: (code 2) options for captions or models, or no such corpus.
    """
    if spec.captions != default(TagSpec, "captions") or spec.keep_suspect:
        raise StageError(
            "--backend labels reads the corpus, not captions: drop --captions and --keep-suspect"
        )
    if spec.prompt_file or not spec.chat_template:
        raise StageError(
            "--prompt-file and --no-chat-template are for the vllm and openai backends"
        )
    target = corpus_target(store, "tags", spec.corpus, spec.inputs)
    shards, inputs, fp, out = target.shards, target.inputs, target.fingerprint, target.uri
    if target.complete:
        return TagResult(fingerprint=fp, uri=out, captions="",
                         summary=f"{out} is complete (fingerprint {fp}); nothing to do")  # fmt: skip
    print(f"labelling {len(shards)} shard(s) of {spec.corpus} with AudioSet classes -> {out}", file=sys.stderr)  # fmt: skip
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__,
            "versions": versions(), "command": command(SCRIPT, store, spec)}  # fmt: skip
    stats = run_stage(shards, out, labels_tags_table, columns=LABEL_COLUMNS,
                      mapper=mapper_for(spec.workers), meta=meta)  # fmt: skip
    return TagResult(fingerprint=fp, uri=out, captions="", stats=stats,
                     summary=summary_line("tags", fp, stats, out))  # fmt: skip
