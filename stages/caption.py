"""Caption every clip of a corpus's pretraining partition (step 1 of the study).

Writes <store>/captions/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, description, status,
error, raw, text_kind, domain), one part per corpus shard, plus stage.json and _SUCCESS; a folder
already complete is left as it is, a killed run's finished parts are kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cluster.parallel import mapper_for
from stages.base import content_address, corpus_target
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
from uts.llm.acoustic import ACOUSTIC_COLUMNS, ACOUSTIC_VERSION, acoustic_captions
from uts.llm.backends import CORPUS_COLUMNS, caption_spec, corpus_captions
from uts.llm.parse import PARSER_VERSION
from uts.llm.stage import run_stage, versions
from uts.store import Store

__all__ = ["SCRIPT", "CaptionResult", "CaptionSpec", "add_arguments", "run", "spec_from_args"]

SCRIPT = "jobs/caption.py"


@dataclass(frozen=True, kw_only=True)
class CaptionSpec(LLMStageSpec):
    """One captioning of a corpus: `corpus` (the clips' existing text, no model), `acoustic`
    (a description of what is measured in the audio, no model), `vllm` (the audio LLM on this
    cluster's GPUs, audio only) or `openai` (an OpenAI-compatible endpoint)."""

    stage: ClassVar[str] = "caption"
    backends: ClassVar[tuple[str, ...]] = ("corpus", "acoustic", "vllm", "openai")

    backend: str = "corpus"  # corpus | acoustic | vllm | openai
    max_tokens: int = 1024  # generation limit in tokens; hitting it marks the row

    def inputs(self, corpus_fingerprint: str) -> dict[str, Any]:
        """Everything that changes the captions: their fingerprint is a hash of this."""
        inputs: dict[str, Any] = {"stage": "caption", "backend": self.backend, "corpus_fingerprint": corpus_fingerprint,
                                  "lint_version": PARSER_VERSION}  # fmt: skip
        if self.backend == "acoustic":  # no model: the measurements and wording are the settings
            inputs["acoustic_version"] = ACOUSTIC_VERSION
        elif self.backend != "corpus":
            inputs |= {"model": model_id(self), "revision": self.revision,
                       "prompt": "(audio only, no text prompt)", "sampling": sampling(self).as_dict(),
                       "limit": self.limit}  # fmt: skip
        return inputs

    def fingerprint(self, corpus_fingerprint: str) -> str:
        """The captions' folder name under <store>/captions/<corpus>."""
        return content_address(self.inputs(corpus_fingerprint))


@dataclass(frozen=True, kw_only=True)
class CaptionResult:
    fingerprint: str
    uri: str  # the captions folder
    stats: Mapping[str, Any] | None = (
        None  # what stage.json records of this run; None: was complete
    )
    summary: str
    exit_code: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="corpus name under <store>/corpora")
    parser.add_argument(
        "--backend", choices=CaptionSpec.backends, default=default(CaptionSpec, "backend"),
        help="captioner (default corpus: the clips' existing text; acoustic: measured from the audio)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None, help="corpus, acoustic: 0 = in this process, no Ray"
    )
    add_model_args(parser, CaptionSpec)


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> CaptionSpec:
    return spec_from_namespace(CaptionSpec, args)


def run(spec: CaptionSpec, store: Store) -> CaptionResult:
    """Caption the corpus (resuming a killed run), or nothing when its folder is complete.

    Raises:
        StageError: (code 2) bad model settings, no such corpus, or an unusable endpoint.
    """
    check(spec)
    target = corpus_target(store, "captions", spec.corpus, spec.inputs)
    shards, inputs, fp, out = target.shards, target.inputs, target.fingerprint, target.uri
    if target.complete:
        done = f"{out} is complete (fingerprint {fp}); nothing to do"
        return CaptionResult(fingerprint=fp, uri=out, summary=done)
    print(
        f"captioning {len(shards)} shard(s) of {spec.corpus} with the {spec.backend} backend -> {out}",
        file=sys.stderr,
    )
    meta = {"fingerprint": fp, "fingerprint_inputs": inputs, "uts_version": __version__,
            "versions": versions(), "command": command(SCRIPT, store, spec)}  # fmt: skip
    if spec.backend == "corpus":
        stats = run_stage(
            shards, out, corpus_captions, columns=CORPUS_COLUMNS, mapper=mapper_for(spec.workers),
            meta=meta,
        )  # fmt: skip
    elif spec.backend == "acoustic":
        stats = run_stage(
            shards, out, acoustic_captions, columns=ACOUSTIC_COLUMNS, mapper=mapper_for(spec.workers),
            meta=meta,
        )  # fmt: skip
    else:
        stats = run_with_model(spec, sampling(spec), caption_spec(), shards, out, meta)
    summary = summary_line("captions", fp, stats, out)
    return CaptionResult(fingerprint=fp, uri=out, stats=stats, summary=summary)
