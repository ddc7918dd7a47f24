"""Command-line flags shared by jobs/caption.py and jobs/tag.py for the model backends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from uts.llm.chat import Sampling
from uts.llm.client import ClientConfig, EndpointError, check_endpoint
from uts.llm.model_stage import StageSpec

DEFAULT_MODELS = {"caption": "Qwen/Qwen3-Omni-30B-A3B-Captioner", "tag": "Qwen/Qwen2.5-7B-Instruct"}
DEFAULT_MAX_TOKENS = {"caption": 1024, "tag": 256}


def add_model_args(parser: argparse.ArgumentParser, stage: str) -> None:
    group = parser.add_argument_group("model backends (vllm, openai)")
    group.add_argument(
        "--model",
        default=None,
        help=f"model id (vllm default {DEFAULT_MODELS[stage]}; openai: the served model name)",
    )
    group.add_argument("--revision", default=None, help="model revision (part of the fingerprint)")
    group.add_argument(
        "--batch-size", type=int, default=32, help="rows per batch sent to the backend (default 32)"
    )
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
        default=DEFAULT_MAX_TOKENS[stage],
        help=f"generation limit (default {DEFAULT_MAX_TOKENS[stage]}); hitting it marks the row",
    )
    group.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature (default 0)"
    )
    group.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    group.add_argument(
        "--endpoint",
        default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
        help="openai: base URL (default $OPENAI_BASE_URL or http://127.0.0.1:8000/v1)",
    )
    group.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="openai: environment variable holding the API key (default OPENAI_API_KEY)",
    )
    group.add_argument(
        "--timeout", type=float, default=120.0, help="openai: seconds per request (default 120)"
    )
    group.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="openai: retries on 408/429/5xx/timeouts, with exponential backoff (default 3)",
    )
    group.add_argument(
        "--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per engine (default 1)"
    )
    group.add_argument(
        "--accelerator-type",
        default=None,
        help="vllm: Ray accelerator type, e.g. A10G, L4, A100, H100 (not V100: vLLM needs "
        "compute capability >= 7.5)",
    )
    group.add_argument("--max-model-len", type=int, default=None, help="vllm: context length cap")  # fmt: skip


def check_model_args(args: argparse.Namespace) -> str | None:
    """Why the model flags are unusable, or None."""
    for name in ("batch_size", "concurrency", "limit", "max_tokens", "tensor_parallel_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {value}"
    if args.backend == "openai" and not args.model:
        return "--backend openai needs --model (the model name the endpoint serves)"
    return None


def model_id(args: argparse.Namespace, stage: str) -> str:
    return str(args.model or DEFAULT_MODELS[stage])


def sampling(args: argparse.Namespace, *, structured: bool = False) -> Sampling:
    return Sampling(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
                    structured=structured)  # fmt: skip


def make_backend(args: argparse.Namespace, stage: str, chosen: Sampling) -> Any:
    """The backend callable for cluster.llm.run_model_stage; checks an openai endpoint first.

    Raises:
        EndpointError: the endpoint is unreachable, refuses the key, or does not serve the model.
    """
    from cluster.llm import OpenAIBackend, VLLMBackend

    if args.backend == "openai":
        config = ClientConfig(endpoint=args.endpoint, model=model_id(args, stage),
                              api_key=os.environ.get(args.api_key_env) or None,
                              timeout_s=args.timeout, max_retries=args.max_retries)  # fmt: skip
        check_endpoint(config)
        return OpenAIBackend(config=config, sampling=chosen, batch_size=args.batch_size,
                             concurrency=args.concurrency or 4)  # fmt: skip
    return VLLMBackend(model=model_id(args, stage), revision=args.revision, sampling=chosen,
                       audio=stage == "caption", batch_size=args.batch_size,
                       concurrency=args.concurrency or 1, tensor_parallel_size=args.tensor_parallel_size,
                       accelerator_type=args.accelerator_type, max_model_len=args.max_model_len)  # fmt: skip


def run_with_model(
    args: argparse.Namespace, stage: str, chosen: Sampling, spec: StageSpec, sources: Sequence[str],
    out: str, meta: Mapping[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """Run a model stage with the chosen backend; None (the error printed) when the endpoint is
    unusable, so the job exits 2 before any work."""
    from cluster.llm import run_model_stage

    try:
        backend = make_backend(args, stage, chosen)
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return run_model_stage(spec, sources, out, backend, meta=meta, limit=args.limit)


def summary_line(label: str, fp: str, summary: Mapping[str, Any], out: str) -> str:
    """The end-of-job line: rows per status, rows/s of this run, where the output went."""
    rate = summary.get("rows_per_s_this_run")
    return (f"{label} {fp}: {summary['rows']:,} rows {summary['statuses']}"
            f"{f', {rate:,} rows/s this run' if rate else ''}; wrote {out}")  # fmt: skip
