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
    "PAPER_SAMPLING",
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
# `--sampling paper`: the authors' values (AudenAI/Auden examples/uts/utils/
# vllm_qwen/batch_inference_vllm.py SamplingParams; extract_tags.py's argparse defaults).
PAPER_SAMPLING: dict[str, dict[str, Any]] = {
    "caption": {"temperature": 0.8, "top_p": 0.9, "top_k": 20, "max_tokens": 8192},
    "tag": {"temperature": 0.3, "top_p": 0.9, "max_tokens": 512},
}
SAMPLING_FIELDS = ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
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
    top_p: float = 1.0  # nucleus sampling (1.0: off)
    top_k: int | None = None  # top-k sampling (None: off)
    repetition_penalty: float = 1.0  # vLLM's repetition penalty (1.0: off)
    seed: int = 0  # sampling seed
    endpoint: str = field(default_factory=default_endpoint)  # openai: base URL
    api_key_env: str = "OPENAI_API_KEY"  # openai: environment variable holding the API key
    timeout: float = 120.0  # openai: seconds per request
    max_retries: int = 3  # openai: retries on 408/429/5xx/timeouts, exponential backoff
    tensor_parallel_size: int = 1  # vllm: GPUs per engine
    accelerator_type: str | None = None  # vllm: Ray accelerator type (A10G, L4, A100, H100)
    max_model_len: int | None = None  # vllm: context length cap (None: uts.llm.engine's per model)
    gpu_memory_utilization: float | None = (
        None  # vllm: share of GPU memory (None: 0.9, the paper's)
    )
    max_num_seqs: int | None = None  # vllm: sequences in flight (None: from the KV room on the GPU)


Spec = TypeVar("Spec", bound=LLMStageSpec)


def default(spec_type: type[Any], name: str) -> Any:
    """A spec field's default (a factory's value), so a flag's default is the spec's."""
    found = {f.name: f for f in dataclasses.fields(spec_type)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return None if found.default is dataclasses.MISSING else found.default


def spec_from_namespace(spec_type: type[Spec], args: argparse.Namespace) -> Spec:
    """The spec whose fields are the parsed flags of the same names (--store aside). Sampling
    flags left out take `--sampling paper`'s value where it gives one, else the spec's default."""
    preset = PAPER_SAMPLING[spec_type.stage] if getattr(args, "sampling", None) == "paper" else {}
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(spec_type)}
    for name in SAMPLING_FIELDS:
        if values[name] is None:
            values[name] = preset.get(name, default(spec_type, name))
    return spec_type(**values)


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
    # Sampling flags default to None here: spec_from_namespace fills what was not given, from
    # --sampling paper or the spec's defaults.
    paper = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in PAPER_SAMPLING[stage].items())
    group.add_argument(
        "--sampling", choices=("default", "paper"), default="default",
        help=f"paper: the paper's sampling for this step ({paper}); flags given alongside win",
    )  # fmt: skip
    group.add_argument(
        "--max-tokens", type=int, default=None,
        help=f"generation limit (default {max_tokens}); hitting it marks the row",
    )  # fmt: skip
    group.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0)")  # fmt: skip
    group.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default 1.0: off)")  # fmt: skip
    group.add_argument("--top-k", type=int, default=None, help="top-k sampling (default: off)")
    group.add_argument(
        "--repetition-penalty", type=float, default=None,
        help="repetition penalty, vLLM's (default 1.0: off; openai: sent as an extra field)",
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
    group.add_argument(
        "--max-model-len", type=int, default=None,
        help="vllm: context length cap (default 8192 for the captioner, 4096 for the tagger)",
    )  # fmt: skip
    group.add_argument(
        "--gpu-memory-utilization", type=float, default=None,
        help="vllm: share of each GPU's memory the engine may take (default 0.9, the paper's)",
    )  # fmt: skip
    group.add_argument(
        "--max-num-seqs", type=int, default=None,
        help="vllm: sequences in flight per engine (default: what the KV cache holds on "
        "--accelerator-type, see uts/llm/engine.py)",
    )  # fmt: skip


def check(spec: LLMStageSpec) -> None:
    """Refuse unusable model settings before any work.

    Raises:
        StageError: (code 2) a count below 1, an unknown backend, or openai without a model.
    """
    for name in ("batch_size", "concurrency", "limit", "max_tokens", "tensor_parallel_size", "top_k"):  # fmt: skip
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise StageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not 0.0 < spec.top_p <= 1.0:
        raise StageError(f"--top-p must be in (0, 1], got {spec.top_p}")
    if spec.temperature < 0.0 or spec.repetition_penalty <= 0.0:
        raise StageError(f"--temperature must be >= 0 and --repetition-penalty > 0, got "
                         f"{spec.temperature} and {spec.repetition_penalty}")  # fmt: skip
    if spec.backend not in spec.backends:  # argparse refuses these; a spec built in code may not
        raise StageError(f"--backend must be one of {', '.join(spec.backends)}, got {spec.backend!r}")  # fmt: skip
    if spec.backend == "openai" and not spec.model:
        raise StageError("--backend openai needs --model (the model name the endpoint serves)")
    if spec.backend == "vllm":  # the model must fit the GPUs asked for, before any work
        from uts.llm.engine import EngineFitError, engine_settings

        try:
            engine_settings(model_id(spec), accelerator_type=spec.accelerator_type,
                            tensor_parallel_size=spec.tensor_parallel_size, max_model_len=spec.max_model_len,
                            revision=spec.revision, audio=spec.stage == "caption",
                            gpu_memory_utilization=spec.gpu_memory_utilization, max_num_seqs=spec.max_num_seqs)  # fmt: skip
        except EngineFitError as exc:
            raise StageError(str(exc)) from exc


def model_id(spec: LLMStageSpec) -> str:
    return str(spec.model or DEFAULT_MODELS[spec.stage])


def sampling(spec: LLMStageSpec, *, structured: bool = False) -> Sampling:
    return Sampling(max_tokens=spec.max_tokens, temperature=spec.temperature, top_p=spec.top_p,
                    top_k=spec.top_k, repetition_penalty=spec.repetition_penalty, seed=spec.seed,
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
                       accelerator_type=spec.accelerator_type, max_model_len=spec.max_model_len,
                       gpu_memory_utilization=spec.gpu_memory_utilization, max_num_seqs=spec.max_num_seqs,
                       chat_template=getattr(spec, "chat_template", True))  # fmt: skip


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
    try:
        return run_model_stage(stage, sources, out, backend, meta=meta, limit=spec.limit)
    except Exception as exc:  # a Ray task error wrapping the client's, or one of our own
        refused = endpoint_error(exc)
        if refused is None:
            raise
        raise StageError(
            f"the endpoint stopped accepting requests mid-run: {refused}. Finished parts are kept "
            f"in {out}; fix the key, URL or model and rerun the same command to resume",
            code=1,
        ) from None


def endpoint_error(exc: BaseException) -> EndpointError | None:
    """The EndpointError behind `exc`, however Ray wrapped it (a task error's `cause`, an
    exception chain, or only the remote traceback's text: Ray Data's UserCodeException keeps
    the actor's error as text), or None."""
    import re

    found = re.search(rf"{EndpointError.__module__}\.EndpointError: (.+)", str(exc))
    if found:
        return EndpointError(found.group(1).strip())
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, EndpointError):
            return current
        cause = getattr(current, "cause", None)
        todo += [
            current.__cause__,
            current.__context__,
            cause if isinstance(cause, BaseException) else None,
        ]
    return None


def summary_line(label: str, fp: str, summary: Mapping[str, Any], out: str) -> str:
    """The end-of-job line: rows per status, rows/s of this run, where the output went."""
    rate = summary.get("rows_per_s_this_run")
    return (f"{label} {fp}: {summary['rows']:,} rows {summary['statuses']}"
            f"{f', {rate:,} rows/s this run' if rate else ''}; wrote {out}")  # fmt: skip
