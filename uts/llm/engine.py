"""vLLM engine settings per model and GPU type: one set of defaults for both ways of running the
models, the Ray Data processor (`cluster.llm.VLLMBackend.engine_kwargs`) and a `vllm serve`
server for the openai backend (`serve_argv`). Pure Python: nothing here imports vLLM.

The memory estimate, per GPU of one engine (tensor parallel size `tp`):

    budget   = GPU memory x gpu_memory_utilization        (vLLM never allocates past it)
    weights  = parameters x 2 bytes (bf16) / tp
    reserve  = what is neither weights nor KV cache: activations of the profiling batch, CUDA
               graphs, the CUDA context, the audio encoder (a per-model margin, below)
    KV room  = budget - weights - reserve
    KV bytes per token on one GPU = 2 (K and V) x layers x max(1, KV heads // tp) x head dim
               x 2 bytes (bf16 cache); vLLM gives each GPU max(1, KV heads // tp) KV heads
               (vllm/config/model.py, ModelConfig.get_num_kv_heads, v0.29.0)
    max_num_seqs = KV room // (KV bytes per token x max_model_len), at most vLLM's own default
               for that GPU: every running sequence can then reach max_model_len without
               preemption.

An engine that cannot hold one sequence of max_model_len is refused here (EngineFitError) with
the tensor parallel sizes that would fit, instead of failing on the GPU node after the model
download. A model missing from MODELS gets the generic settings and vLLM's own max_num_seqs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUDIO_ONLY",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "GPUS",
    "MODELS",
    "EngineFitError",
    "EngineSettings",
    "Gpu",
    "ModelSpec",
    "engine_settings",
    "fitting_tensor_parallel_sizes",
    "serve_argv",
]

GiB = 1 << 30
MiB = 1 << 20

# The paper's captioner run (AudenAI/Auden examples/uts/utils/vllm_qwen/batch_inference_vllm.py):
# LLM(gpu_memory_utilization=0.9, max_model_len=8192, limit_mm_per_prompt={'audio': 1}, ...).
# vLLM 0.29.0's own default is 0.92 (vllm/config/cache.py).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9

# The captioner hears one clip and sees nothing: vLLM 0.29.0 allows 999 items of every modality a
# model supports unless told otherwise (MultiModalConfig.get_limit_per_prompt), and profiles
# memory for the largest of them; 0 drops image and video from that profile.
AUDIO_ONLY: Mapping[str, int] = {"audio": 1, "image": 0, "video": 0}


class EngineFitError(ValueError):
    """The settings cannot work: the model does not fit, or a value vLLM would refuse."""


@dataclass(frozen=True)
class Gpu:
    """One Ray accelerator type (ray.util.accelerators' names)."""

    name: str
    memory_mib: int  # memory.total as the driver reports it (nvidia-smi), below the datasheet GB
    vllm_default_max_num_seqs: int  # vllm/engine/arg_utils.py, offline (LLM class) defaults


# vLLM 0.29.0's default max_num_seqs (EngineArgs.get_batch_defaults): 1024 on GPUs of >= 70 GiB
# that are not A100s (H100, H200), 256 on the others. "A100" is Ray's label for any A100; this
# project's A100 nodes (p4d.24xlarge) have the 40 GB part, so "A100" is taken as 40 GB.
GPUS: Mapping[str, Gpu] = {
    g.name: g
    for g in (
        Gpu("A10G", 23028, 256),  # 24 GB GDDR6 (g5)
        Gpu("L4", 23034, 256),  # 24 GB GDDR6 (g6)
        Gpu("L40S", 46068, 256),  # 48 GB GDDR6 (g6e)
        Gpu("A100", 40960, 256),  # as A100-40G: the p4d.24xlarge part
        Gpu("A100-40G", 40960, 256),  # 40 GB HBM2 (p4d)
        Gpu("A100-80G", 81920, 256),  # 80 GB HBM2e (p4de)
        Gpu("H100", 81559, 1024),  # 80 GB HBM3 (p5)
        Gpu("H200", 143771, 1024),  # 141 GB HBM3e (p5e)
    )
}
# Ray names of GPUs vLLM is not run on here: V100 (compute capability 7.0), T4 (no bf16, 16 GB).
UNSUPPORTED = {"V100": "compute capability 7.0 < 7.5", "T4": "no bf16 and 16 GB",
               "P100": "compute capability 6.0", "P4": "compute capability 6.1",
               "K80": "compute capability 3.7"}  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """What the estimate needs of a model; the numbers come from its Hugging Face config."""

    model: str
    params_billion: float  # weights: params x 2 bytes (bf16)
    layers: int  # num_hidden_layers of the text decoder (the only KV cache)
    kv_heads: int  # num_key_value_heads
    head_dim: int
    attention_heads: int  # tensor parallel size must divide it (vLLM refuses otherwise)
    max_context: int  # max_position_embeddings: the largest max_model_len vLLM accepts
    default_max_model_len: int
    reserve_gib: float  # per GPU: activations, CUDA graphs and context, encoders (a margin)
    audio: bool  # audio input through the multimodal stage: limit_mm_per_prompt AUDIO_ONLY

    @property
    def weight_bytes(self) -> int:
        return int(self.params_billion * 1e9 * 2)

    def kv_bytes_per_token(self, tensor_parallel_size: int = 1) -> int:
        """KV cache bytes one token takes on one GPU of the engine (bf16 cache)."""
        heads = max(1, self.kv_heads // tensor_parallel_size)
        return 2 * self.layers * heads * self.head_dim * 2


MODELS: Mapping[str, ModelSpec] = {
    m.model: m
    for m in (
        # Qwen/Qwen3-Omni-30B-A3B-Captioner: 32B parameters (its Hugging Face model page, in the
        # Qwen3-Omni collection) -> 64 GB of bf16 weights, audio tower included. Thinker
        # text_config (Hugging Face config.json, model_type qwen3_omni_moe_text): 48 layers,
        # 32 attention heads, 4 KV heads, head_dim 128, max_position_embeddings 65536 ->
        # 2 x 48 x 4 x 128 x 2 = 98,304 bytes (96 KiB) of KV cache per token. max_model_len 8192
        # as in the paper's run. The MoE and the audio encoder get the larger reserve.
        ModelSpec(
            "Qwen/Qwen3-Omni-30B-A3B-Captioner",
            params_billion=32.0,
            layers=48,
            kv_heads=4,
            head_dim=128,
            attention_heads=32,
            max_context=65536,
            default_max_model_len=8192,
            reserve_gib=5.0,
            audio=True,
        ),
        # Qwen/Qwen2.5-7B-Instruct: 7.61B parameters (its model card) -> 15.2 GB of bf16
        # weights. config.json: 28 layers, 28 attention heads, 4 KV heads, hidden 3584 / 28 heads
        # = head_dim 128, max_position_embeddings 32768 -> 2 x 28 x 4 x 128 x 2 = 57,344 bytes
        # (56 KiB) per token. max_model_len 4096: the tagging prompt (< 1k characters), a
        # caption of at most 1024 tokens and 256 generated tokens, with room to spare.
        ModelSpec(
            "Qwen/Qwen2.5-7B-Instruct",
            params_billion=7.61,
            layers=28,
            kv_heads=4,
            head_dim=128,
            attention_heads=28,
            max_context=32768,
            default_max_model_len=4096,
            reserve_gib=3.0,
            audio=False,
        ),
    )
}


@dataclass(frozen=True)
class EngineSettings:
    """The settings of one engine; `engine_kwargs()` and `serve_argv()` say the same thing."""

    model: str
    tensor_parallel_size: int
    gpu_memory_utilization: float
    revision: str | None = None
    max_model_len: int | None = None  # None: vLLM takes the model's own context length
    max_num_seqs: int | None = None  # None: vLLM's default for the GPU it finds
    limit_mm_per_prompt: Mapping[str, int] | None = None
    dtype: str | None = None  # None: vLLM's "auto" (the checkpoint's dtype)

    def engine_kwargs(self) -> dict[str, Any]:
        """vllm.AsyncEngineArgs keyword arguments (vLLMEngineProcessorConfig.engine_kwargs)."""
        kwargs: dict[str, Any] = {"tensor_parallel_size": self.tensor_parallel_size,
                                  "gpu_memory_utilization": self.gpu_memory_utilization}  # fmt: skip
        optional = {"revision": self.revision, "max_model_len": self.max_model_len,
                    "max_num_seqs": self.max_num_seqs, "dtype": self.dtype}  # fmt: skip
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if self.limit_mm_per_prompt is not None:
            kwargs["limit_mm_per_prompt"] = dict(self.limit_mm_per_prompt)
        return kwargs

    def serve_argv(self, *, host: str | None = None, port: int | None = None) -> list[str]:
        """`vllm serve MODEL --flag value ...`: each engine kwarg as its flag (EngineArgs
        .add_cli_args spells a field f as --f with dashes); the mm limit as a JSON string."""
        argv = ["vllm", "serve", self.model]
        for key, value in self.engine_kwargs().items():
            text = (
                json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
            )
            argv += ["--" + key.replace("_", "-"), text]
        if host is not None:
            argv += ["--host", host]
        if port is not None:
            argv += ["--port", str(port)]
        return argv


def gpu_for(accelerator_type: str) -> Gpu:
    """The GPU of a Ray accelerator type; EngineFitError for one vLLM cannot or may not use."""
    if accelerator_type in UNSUPPORTED:
        raise EngineFitError(f"vLLM does not run on {accelerator_type} here ({UNSUPPORTED[accelerator_type]}); "
                             f"use one of {', '.join(GPUS)}")  # fmt: skip
    if accelerator_type not in GPUS:
        raise EngineFitError(f"unknown accelerator type {accelerator_type!r} (Ray's names, case "
                             f"matters): one of {', '.join(GPUS)}")  # fmt: skip
    return GPUS[accelerator_type]


def _seq_room(spec: ModelSpec, gpu: Gpu, tp: int, max_model_len: int, utilization: float) -> int:
    """Sequences of max_model_len tokens whose KV cache fits on each GPU (may be <= 0)."""
    budget = int(gpu.memory_mib * MiB * utilization)
    room = budget - -(-spec.weight_bytes // tp) - int(spec.reserve_gib * GiB)
    return room // (spec.kv_bytes_per_token(tp) * max_model_len)


def fitting_tensor_parallel_sizes(
    model: str, accelerator_type: str, max_model_len: int | None = None, *, up_to: int = 8,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> list[int]:  # fmt: skip
    """Tensor parallel sizes (<= up_to, dividing the attention heads) at which the model fits."""
    spec, gpu = MODELS[model], gpu_for(accelerator_type)
    length = max_model_len or spec.default_max_model_len
    return [tp for tp in range(1, up_to + 1) if spec.attention_heads % tp == 0
            and _seq_room(spec, gpu, tp, length, gpu_memory_utilization) >= 1]  # fmt: skip


def engine_settings(
    model: str,
    *,
    accelerator_type: str | None = None,
    tensor_parallel_size: int = 1,
    max_model_len: int | None = None,
    revision: str | None = None,
    audio: bool | None = None,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
) -> EngineSettings:
    """The engine settings for `model` on `tensor_parallel_size` GPUs of `accelerator_type`.

    `audio` None: as MODELS says (False for other models). `gpu_memory_utilization` and
    `max_num_seqs` None: the defaults above; given, they are used as they are (max_num_seqs
    above the estimate lets vLLM preempt long sequences). Without an accelerator type the
    GPU-dependent max_num_seqs is left to vLLM.

    Raises:
        EngineFitError: a tensor parallel size below 1 or not dividing the attention heads, a
            max_model_len beyond the model's context, an unknown or unsupported GPU type, or
            KV room for less than one sequence (the message lists the sizes that fit).
    """
    utilization = gpu_memory_utilization
    if utilization is None:
        utilization = DEFAULT_GPU_MEMORY_UTILIZATION
    tp = tensor_parallel_size
    if tp < 1:
        raise EngineFitError(f"tensor_parallel_size must be >= 1, got {tp}")
    if not 0 < utilization <= 1:
        raise EngineFitError(f"gpu_memory_utilization must be in (0, 1], got {utilization}")
    if max_num_seqs is not None and max_num_seqs < 1:
        raise EngineFitError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
    gpu = gpu_for(accelerator_type) if accelerator_type else None
    spec = MODELS.get(model)
    hears = spec.audio if audio is None and spec else bool(audio)
    settings = EngineSettings(
        model=model,
        tensor_parallel_size=tp,
        gpu_memory_utilization=utilization,
        revision=revision,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        limit_mm_per_prompt=AUDIO_ONLY if hears else None,
    )
    if spec is None:
        return settings
    length = max_model_len or spec.default_max_model_len
    if spec.attention_heads % tp:
        raise EngineFitError(f"{model}: tensor_parallel_size {tp} does not divide its "
                             f"{spec.attention_heads} attention heads (vLLM refuses it)")  # fmt: skip
    if length > spec.max_context:
        raise EngineFitError(
            f"{model}: max_model_len {length} is beyond its context of {spec.max_context} tokens"
        )
    seqs = max_num_seqs
    if gpu is not None:
        room = _seq_room(spec, gpu, tp, length, utilization)
        if room < 1:
            fits = fitting_tensor_parallel_sizes(
                model, gpu.name, length, gpu_memory_utilization=utilization
            )
            per_gpu = spec.weight_bytes / tp / GiB
            raise EngineFitError(
                f"{model} does not fit on {tp} x {gpu.name} ({gpu.memory_mib / 1024:.1f} GiB each, "
                f"gpu_memory_utilization {utilization}): {per_gpu:.1f} GiB of weights and "
                f"{spec.reserve_gib:g} GiB reserve per GPU leave no KV room for one sequence of "
                f"{length} tokens; tensor parallel sizes that fit: {fits or 'none up to 8'}"
            )
        seqs = seqs or min(room, gpu.vllm_default_max_num_seqs)
    return dataclasses.replace(settings, max_model_len=length, max_num_seqs=seqs, dtype="bfloat16")


def serve_argv(
    model: str, *, host: str | None = None, port: int | None = None, **settings: Any
) -> list[str]:
    """The `vllm serve` command line with engine_settings(model, **settings) (same keywords)."""
    return engine_settings(model, **settings).serve_argv(host=host, port=port)
