"""What captioning and tagging share: the fields and flags of the model backends (vllm, openai),
their checks, and how a spec becomes a backend and a run.

Both stages read a corpus's rows and write one output part per input part through the same
backends, so the spec fields, their flags and the backend wiring live here once; stages/caption.py
and stages/tag.py add their own fields and inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from stages.base import StageError, spec_argv
from uts.llm.chat import Sampling
from uts.llm.client import ClientConfig, EndpointError, check_endpoint
from uts.llm.model_stage import StageSpec as ModelStage
from uts.store import Store

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_MODELS",
    "LLMStageSpec",
    "add_model_args",
    "check",
    "command",
    "default",
    "make_backend",
    "model_id",
    "run_with_model",
    "sampling",
    "spec_from_namespace",
    "summary_line",
]

DEFAULT_MODELS = {"caption": "Qwen/Qwen3-Omni-30B-A3B-Captioner", "tag": "Qwen/Qwen2.5-7B-Instruct"}
DEFAULT_ENDPOINT = "http://127.0.0.1:8000/v1"


def default_endpoint() -> str:
    """$OPENAI_BASE_URL, read when the spec (or the job's parser) is made, as the job always did."""
    return os.environ.get("OPENAI_BASE_URL", DEFAULT_ENDPOINT)


@dataclass(frozen=True, kw_only=True)
class LLMStageSpec:
    """The fields caption and tag share; each subclass sets `stage`, its backends and the
    defaults that differ (backend, max_tokens). Fields are the jobs' flag names."""

    stage: ClassVar[str]  # "caption" | "tag": picks the default model
    backends: ClassVar[tuple[str, ...]]  # the --backend choices; the first needs no model

    corpus: str  # corpus name under <store>/corpora
    backend: str  # captioner/tagger; the subclass gives the default
    workers: int | None = None  # no-model backend: 0 = in this process, no Ray; None = Ray tasks
    model: str | None = None  # model id; None = DEFAULT_MODELS[stage] (openai needs one)
    revision: str | None = None  # model revision (part of the fingerprint)
    batch_size: int = 32  # rows per batch sent to the backend
    concurrency: int | None = (
        None  # vllm engine replicas (None = 1) / openai client actors (None = 4)
    )
    limit: int | None = None  # only the first N clips (a trial run; its own fingerprint)
    max_tokens: int  # generation limit in tokens; the subclass gives the default
    temperature: float = 0.0  # sampling temperature
    seed: int = 0  # sampling seed
    endpoint: str = field(default_factory=default_endpoint)  # openai: base URL
    api_key_env: str = "OPENAI_API_KEY"  # openai: environment variable holding the API key
    timeout: float = 120.0  # openai: seconds per request
    max_retries: int = 3  # openai: retries on 408/429/5xx/timeouts, exponential backoff
    tensor_parallel_size: int = 1  # vllm: GPUs per engine
    accelerator_type: str | None = None  # vllm: Ray accelerator type (A10G, L4, A100, H100)
    max_model_len: int | None = None  # vllm: context length cap in tokens


Spec = TypeVar("Spec", bound=LLMStageSpec)


def default(spec_type: type[Any], name: str) -> Any:
    """A spec field's default (a factory's value), so a flag's default is the spec's."""
    found = {f.name: f for f in dataclasses.fields(spec_type)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return None if found.default is dataclasses.MISSING else found.default


def spec_from_namespace(spec_type: type[Spec], args: argparse.Namespace) -> Spec:
    """The spec whose fields are the parsed flags of the same names (--store aside)."""
    return spec_type(**{f.name: getattr(args, f.name) for f in dataclasses.fields(spec_type)})


def add_model_args(parser: argparse.ArgumentParser, spec_type: type[LLMStageSpec]) -> None:
    """The model backends' flags; defaults from `spec_type` (the endpoint's from $OPENAI_BASE_URL
    at parse time)."""
    stage = spec_type.stage
    max_tokens = default(spec_type, "max_tokens")
    group = parser.add_argument_group("model backends (vllm, openai)")
    group.add_argument(
        "--model",
        default=None,
        help=f"model id (vllm default {DEFAULT_MODELS[stage]}; openai: the served model name)",
    )
    group.add_argument("--revision", default=None, help="model revision (part of the fingerprint)")
    group.add_argument(
        "--batch-size", type=int, default=default(spec_type, "batch_size"),
        help="rows per batch sent to the backend (default 32)",
    )  # fmt: skip
    group.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="vllm: engine replicas (default 1); openai: client actors, each with one "
        "batch of requests in flight (default 4)",
    )
    group.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N clips (a trial run; its own fingerprint)",
    )
    group.add_argument(
        "--max-tokens",
        type=int,
        default=max_tokens,
        help=f"generation limit (default {max_tokens}); hitting it marks the row",
    )
    group.add_argument(
        "--temperature", type=float, default=default(spec_type, "temperature"),
        help="sampling temperature (default 0)",
    )  # fmt: skip
    group.add_argument("--seed", type=int, default=default(spec_type, "seed"), help="sampling seed (default 0)")  # fmt: skip
    group.add_argument(
        "--endpoint",
        default=default(spec_type, "endpoint"),
        help=f"openai: base URL (default $OPENAI_BASE_URL or {DEFAULT_ENDPOINT})",
    )
    group.add_argument(
        "--api-key-env",
        default=default(spec_type, "api_key_env"),
        help="openai: environment variable holding the API key (default OPENAI_API_KEY)",
    )
    group.add_argument(
        "--timeout", type=float, default=default(spec_type, "timeout"),
        help="openai: seconds per request (default 120)",
    )  # fmt: skip
    group.add_argument(
        "--max-retries",
        type=int,
        default=default(spec_type, "max_retries"),
        help="openai: retries on 408/429/5xx/timeouts, with exponential backoff (default 3)",
    )
    group.add_argument(
        "--tensor-parallel-size", type=int, default=default(spec_type, "tensor_parallel_size"),
        help="vllm: GPUs per engine (default 1)",
    )  # fmt: skip
    group.add_argument(
        "--accelerator-type",
        default=None,
        help="vllm: Ray accelerator type, e.g. A10G, L4, A100, H100 (not V100: vLLM needs "
        "compute capability >= 7.5)",
    )
    group.add_argument("--max-model-len", type=int, default=None, help="vllm: context length cap")  # fmt: skip


def check(spec: LLMStageSpec) -> None:
    """Refuse unusable model settings before any work.

    Raises:
        StageError: (code 2) a count below 1, an unknown backend, or openai without a model.
    """
    for name in ("batch_size", "concurrency", "limit", "max_tokens", "tensor_parallel_size"):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise StageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if spec.backend not in spec.backends:  # argparse refuses these; a spec built in code may not
        raise StageError(f"--backend must be one of {', '.join(spec.backends)}, got {spec.backend!r}")  # fmt: skip
    if spec.backend == "openai" and not spec.model:
        raise StageError("--backend openai needs --model (the model name the endpoint serves)")


def model_id(spec: LLMStageSpec) -> str:
    return str(spec.model or DEFAULT_MODELS[spec.stage])


def sampling(spec: LLMStageSpec, *, structured: bool = False) -> Sampling:
    return Sampling(max_tokens=spec.max_tokens, temperature=spec.temperature, seed=spec.seed,
                    structured=structured)  # fmt: skip


def command(script: str, store: Store, spec: LLMStageSpec) -> str:
    """The command line that reruns `spec` on `store` (recorded in stage.json)."""
    return shlex.join(["python", script, "--store", store.root_uri, *spec_argv(spec)])


def make_backend(spec: LLMStageSpec, chosen: Sampling) -> Any:
    """The backend callable for cluster.llm.run_model_stage; checks an openai endpoint first.

    Raises:
        EndpointError: the endpoint is unreachable, refuses the key, or does not serve the model.
    """
    from cluster.llm import OpenAIBackend, VLLMBackend

    if spec.backend == "openai":
        config = ClientConfig(endpoint=spec.endpoint, model=model_id(spec),
                              api_key=os.environ.get(spec.api_key_env) or None,
                              timeout_s=spec.timeout, max_retries=spec.max_retries)  # fmt: skip
        check_endpoint(config)
        return OpenAIBackend(config=config, sampling=chosen, batch_size=spec.batch_size,
                             concurrency=spec.concurrency or 4)  # fmt: skip
    return VLLMBackend(model=model_id(spec), revision=spec.revision, sampling=chosen,
                       audio=spec.stage == "caption", batch_size=spec.batch_size,
                       concurrency=spec.concurrency or 1, tensor_parallel_size=spec.tensor_parallel_size,
                       accelerator_type=spec.accelerator_type, max_model_len=spec.max_model_len)  # fmt: skip


def run_with_model(
    spec: LLMStageSpec, chosen: Sampling, stage: ModelStage, sources: Sequence[str], out: str,
    meta: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Run a model stage with the spec's backend; returns the summary written to stage.json.

    Raises:
        StageError: (code 2) the endpoint is unusable, found before any work.
    """
    from cluster.llm import run_model_stage

    try:
        backend = make_backend(spec, chosen)
    except EndpointError as exc:
        raise StageError(str(exc)) from exc
    return run_model_stage(stage, sources, out, backend, meta=meta, limit=spec.limit)


def summary_line(label: str, fp: str, summary: Mapping[str, Any], out: str) -> str:
    """The end-of-job line: rows per status, rows/s of this run, where the output went."""
    rate = summary.get("rows_per_s_this_run")
    return (f"{label} {fp}: {summary['rows']:,} rows {summary['statuses']}"
            f"{f', {rate:,} rows/s this run' if rate else ''}; wrote {out}")  # fmt: skip
