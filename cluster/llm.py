"""Model stages (captioning, tagging) on Ray Data with the `openai` or `vllm` backend.

One streaming pipeline per round over every unfinished shard:

    shard items -> read the clips to ask (flat_map) -> chat messages (map)
                -> backend: OpenAI-compatible HTTP client actors, or a vLLM processor (GPU)
                -> output rows (parse, lint, retry flag) -> driver: Ledger commits whole shards

The model is loaded once per round, not per shard. Round 2 re-asks only the rows whose output could
not be parsed (with the stricter prompt). Row logic lives in uts.llm; this module only wires it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cluster.runtime import ensure_ray
from uts.llm.chat import LABELS_SCHEMA, Reply, Sampling
from uts.llm.client import ClientConfig, complete_many
from uts.llm.model_stage import Ledger, StageSpec, plan_round, read_table
from uts.llm.stage import finish_stage

__all__ = [
    "OpenAIBackend",
    "VLLMBackend",
    "openai_body",
    "run_model_stage",
    "vllm_row",
    "vllm_sampling_params",
]

PASS_THROUGH = ("shard", "clip_id", "attempt", "carry")  # our columns that ride along a request


REPLY_TYPES = {"text": pa.string(), "finish_reason": pa.string(), "prompt_tokens": pa.int64(),
               "completion_tokens": pa.int64(), "error": pa.string(), "attempts": pa.int64()}  # fmt: skip


def _with_replies(batch: pa.Table, replies: Sequence[Reply]) -> pa.Table:
    """The batch without its messages, plus the reply columns (typed: a column of nulls stays a
    string column, so blocks concatenate)."""
    out = batch.drop_columns(["messages"])
    for name, kind in REPLY_TYPES.items():
        out = out.append_column(name, pa.array([getattr(r, name) for r in replies], type=kind))
    return out


# --- openai: any OpenAI-compatible chat-completions endpoint -----------------------------------


def openai_body(
    model: str, messages: list[dict[str, Any]] | str, sampling: Sampling
) -> dict[str, Any]:
    """A chat-completions request body (a completions one for a raw prompt string); structured
    output as an OpenAI json_schema format. top_k and repetition_penalty are not OpenAI fields:
    they go as the extra body fields vLLM's server reads, and only when set."""
    request: dict[str, Any] = (
        {"prompt": messages} if isinstance(messages, str) else {"messages": messages}
    )
    body: dict[str, Any] = {"model": model, **request, "max_tokens": sampling.max_tokens,
                            "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}  # fmt: skip
    if sampling.top_k is not None:
        body["top_k"] = sampling.top_k
    if sampling.repetition_penalty != 1.0:
        body["repetition_penalty"] = sampling.repetition_penalty
    if sampling.structured:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "labels", "schema": LABELS_SCHEMA, "strict": True},
        }
    return body


class ChatUDF:
    """A Ray Data actor: sends one batch's requests concurrently, returns one reply per row.

    Ray's HttpRequestProcessor is not used: in Ray 2.60 it awaits a batch's requests one after
    another, has no per-request timeout, and fails the whole dataset when one row exhausts its
    retries or gets a non-JSON error body. Here every row ends with a Reply (text or reason).
    """

    def __init__(self, config: ClientConfig, sampling: Sampling) -> None:
        self.config, self.sampling = config, sampling

    async def __call__(self, batch: pa.Table) -> pa.Table:
        messages = batch.column("messages").to_pylist()
        bodies = [openai_body(self.config.model, json.loads(m), self.sampling) for m in messages]
        return _with_replies(batch, await complete_many(self.config, bodies))


@dataclass(frozen=True, kw_only=True)
class OpenAIBackend:
    """`concurrency` client actors, each with up to `batch_size` requests in flight per batch
    (and Ray Data overlaps a few batches per actor)."""

    config: ClientConfig
    sampling: Sampling
    batch_size: int = 32
    concurrency: int = 4

    def __call__(self, ds: Any) -> Any:
        import ray.data

        return ds.map_batches(
            ChatUDF,
            fn_constructor_kwargs={"config": self.config, "sampling": self.sampling},
            batch_size=self.batch_size,
            compute=ray.data.ActorPoolStrategy(size=self.concurrency),
            num_cpus=0.1,  # I/O bound: an actor waits on the network, not the CPU
            batch_format="pyarrow",
        )


# --- vllm: the model on this cluster's GPUs ---------------------------------------------------


def vllm_sampling_params(sampling: Sampling) -> dict[str, Any]:
    """vLLM SamplingParams as a dict; structured output as `structured_outputs={"json": schema}`."""
    params: dict[str, Any] = {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
                              "top_p": sampling.top_p, "seed": sampling.seed,
                              "top_k": -1 if sampling.top_k is None else sampling.top_k,
                              "repetition_penalty": sampling.repetition_penalty}  # fmt: skip
    if sampling.structured:
        params["structured_outputs"] = {"json": LABELS_SCHEMA}
    return params


def vllm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A vLLM processor output row (a success, or an error row that kept its inputs) -> the reply
    columns every backend produces. Truncation shows as max_tokens generated tokens."""
    error = row.get("__inference_error__") or None
    generated = int(row.get("num_generated_tokens") or 0)
    max_tokens = int(row.get("uts_max_tokens") or 0)
    return {
        "text": None if error else row.get("generated_text", ""),
        "finish_reason": None
        if error
        else ("length" if max_tokens and generated >= max_tokens else "stop"),
        "prompt_tokens": int(row.get("num_input_tokens") or 0),
        "completion_tokens": generated,
        "error": f"vLLM: {error}" if error else None,
        "attempts": 1,
    }


@dataclass(frozen=True, kw_only=True)
class VLLMBackend:
    """vLLM engines on GPU nodes (compute capability >= 7.5: A10G/L4/A100/H100, not V100).

    The engine's settings (memory, context, batch, modalities) come from uts.llm.engine, which
    also writes the `vllm serve` command line for the openai backend: one set of defaults."""

    model: str
    sampling: Sampling
    revision: str | None = None
    audio: bool = False  # the captioner: audio parts go through the multimodal stage
    batch_size: int = 32
    concurrency: int = 1
    tensor_parallel_size: int = 1
    accelerator_type: str | None = None
    max_model_len: int | None = None  # None: the model's default in uts.llm.engine.MODELS
    gpu_memory_utilization: float | None = None  # None: uts.llm.engine's (the paper's 0.9)
    max_num_seqs: int | None = None  # None: from the KV-cache room on accelerator_type
    chat_template: bool = True  # False: rows carry a raw prompt, tokenised as it is

    def settings(self) -> Any:
        """uts.llm.engine.EngineSettings; EngineFitError when the model cannot fit."""
        from uts.llm.engine import engine_settings

        return engine_settings(self.model, accelerator_type=self.accelerator_type,
                               tensor_parallel_size=self.tensor_parallel_size,
                               max_model_len=self.max_model_len, revision=self.revision,
                               audio=self.audio, gpu_memory_utilization=self.gpu_memory_utilization,
                               max_num_seqs=self.max_num_seqs)  # fmt: skip

    def engine_kwargs(self) -> dict[str, Any]:
        return dict(self.settings().engine_kwargs())

    def serve_argv(self) -> list[str]:
        """The same engine as `vllm serve ...` (for the openai backend's server)."""
        return list(self.settings().serve_argv())

    def processor_config(self) -> Any:
        """The vLLMEngineProcessorConfig (built without vLLM installed; vLLM loads on the GPU node)."""
        from ray.data.llm import vLLMEngineProcessorConfig

        return vLLMEngineProcessorConfig(
            model_source=self.model,
            engine_kwargs=self.engine_kwargs(),
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            accelerator_type=self.accelerator_type,
            chat_template_stage=self.chat_template,
            tokenize_stage=True,
            detokenize_stage=True,
            prepare_multimodal_stage=self.audio,
            should_continue_on_error=True,  # a bad row becomes a failed row, not a dead job
        )

    def preprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        """The engine request: chat `messages` for the chat-template stage, or a raw `prompt`
        (a string request) for the tokenizer stage directly."""
        request = json.loads(row["messages"])
        key = "prompt" if isinstance(request, str) else "messages"
        return {key: request, "sampling_params": vllm_sampling_params(self.sampling),
                "uts_max_tokens": self.sampling.max_tokens}  # fmt: skip

    @staticmethod
    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        """Keep our columns and the engine's output fields; `reply` below makes the columns."""
        fields = ("generated_text", "num_generated_tokens", "num_input_tokens", "uts_max_tokens")
        return {k: row.get(k) for k in (*PASS_THROUGH, *fields)} | {"__inference_error__": ""}

    @staticmethod
    def reply(row: dict[str, Any]) -> dict[str, Any]:
        return {**{k: row[k] for k in PASS_THROUGH}, **vllm_row(row)}

    def __call__(self, ds: Any) -> Any:
        from ray.data.llm import build_processor

        processor = build_processor(
            self.processor_config(), preprocess=self.preprocess, postprocess=self.postprocess
        )
        # Error rows skip postprocess and come back with all their inputs; `reply` reads both.
        return processor(ds).map(self.reply)


# --- the pipeline ---------------------------------------------------------------------------


def _load(item: dict[str, Any], spec: StageSpec) -> list[dict[str, Any]]:
    """One shard item -> the rows to ask the model, with their messages (runs on a CPU worker)."""
    table = read_table(item["source"], spec.load_columns)
    wanted = set(item["ask"])
    reasons = dict(item["reasons"])
    rows = []
    for row in table.to_pylist():
        if row["clip_id"] not in wanted:
            continue
        messages = spec.request(row, item["attempt"], reasons.get(row["clip_id"], ""))
        rows.append({"shard": item["shard"], "clip_id": row["clip_id"], "attempt": item["attempt"],
                     "carry": json.dumps({k: row[k] for k in spec.carry}),
                     "messages": json.dumps(messages)})  # fmt: skip
    return rows


def _finish(batch: pa.Table, spec: StageSpec) -> dict[str, Any]:
    """Reply columns -> output rows (+ shard, retry flag, token counts), via the stage's finish."""
    rows = []
    for row in batch.to_pylist():
        reply = Reply(**{name: row[name] for name in REPLY_TYPES})
        source = {"clip_id": row["clip_id"], **json.loads(row["carry"])}
        out = spec.finish(source, reply, row["attempt"])
        rows.append({**out, "shard": row["shard"], "prompt_tokens": reply.prompt_tokens,
                     "completion_tokens": reply.completion_tokens})  # fmt: skip
    return {"rows": [json.dumps(r) for r in rows]}  # JSON: lists and nulls need no Arrow schema


def _stream(ds: Any, spec: StageSpec, backend: Callable[[Any], Any]) -> Any:
    import functools

    ds = ds.flat_map(functools.partial(_load, spec=spec))
    ds = backend(ds)
    return ds.map_batches(functools.partial(_finish, spec=spec), batch_format="pyarrow")


def run_model_stage(
    spec: StageSpec,
    sources: Sequence[str],
    out_uri: str,
    backend: Callable[[Any], Any],
    *,
    meta: Mapping[str, Any],
    limit: int | None = None,
) -> dict[str, Any]:
    """Run a model stage to completion (resuming whatever a killed run left), then write
    stage.json (counts, rows/s, tokens/s) and _SUCCESS. Returns the summary written."""
    ensure_ray()
    started = time.monotonic()
    totals: dict[str, int] = {}
    rounds = 0
    while True:
        works = plan_round(spec, sources, out_uri, limit=limit)
        if not works:
            break
        rounds += 1
        if rounds > 3:  # attempt 0, its retries, and nothing else: a loop here is a bug
            raise RuntimeError(f"shards {[w.index for w in works][:10]} still open after 3 rounds")
        ledger = Ledger(works, spec.schema, total_shards=len(sources))
        asked = [w for w in works if w.ask]
        if asked:
            import ray.data

            ds = ray.data.from_items([w.item() for w in asked], override_num_blocks=len(asked))
            for batch in _stream(ds, spec, backend).iter_batches(
                batch_format="numpy", batch_size=None
            ):
                ledger.add(json.loads(r) for r in batch["rows"])
        if ledger.open_shards:
            raise RuntimeError(
                f"the pipeline ended with shards {ledger.open_shards[:10]} incomplete"
            )
        for key, value in ledger.counts.items():
            totals[key] = totals.get(key, 0) + value
    wall = time.monotonic() - started
    model_rows = totals.get("model_rows", 0)
    return finish_stage(
        out_uri,
        {
            **meta,
            "parts": len(sources),
            "parts_written_this_run": totals.get("written_parts", 0),
            "rounds_this_run": rounds,
            "model_requests_this_run": model_rows,
            "retried_rows_this_run": totals.get("parked_rows", 0),
            "prompt_tokens_this_run": totals.get("prompt_tokens", 0),
            "completion_tokens_this_run": totals.get("completion_tokens", 0),
            "wall_s_this_run": round(wall, 2),
            "rows_per_s_this_run": round(model_rows / wall, 2) if wall else None,
            "tokens_per_s_this_run": round(totals.get("completion_tokens", 0) / wall, 1)
            if wall
            else None,
        },
    )
