"""The engine settings against vLLM 0.29.0's real API, without installing vLLM.

What was read: the vllm 0.29.0 wheel from PyPI (vllm-0.29.0-cp38-abi3-manylinux_2_28_x86_64.whl,
sha256 09d48617fc2be9c6cdcd5db480651ab0d84817b257204f2cc2e3ecbb70bbb635; vllm/_version.py:
commit g98dff2a81), the version Ray 2.60's ray[llm] extra pins (vllm[audio]==0.29.0):
- vllm/engine/arg_utils.py: the annotated fields of `EngineArgs` and `AsyncEngineArgs` (below;
  Ray's vLLMEngineWrapper calls vllm.AsyncEngineArgs(**engine_kwargs)), and the flags their
  add_cli_args registers: every field as --field-with-dashes except NO_FLAG (231 flags, the
  literal strings compared one by one). `vllm serve` (vllm/entrypoints/launchers/cli_args.py,
  make_arg_parser) takes the model as its positional model_tag, then FrontendArgs (--host,
  --port, ...) and AsyncEngineArgs.add_cli_args.
- vllm/config/multimodal.py: limit_per_prompt is a dict of modality -> count (or options);
  unnamed modalities default to 999. On the command line a dict field is parsed with json.loads
  (arg_utils._compute_kwargs: a dict type without str gets parse_type(json.loads)).
- vllm/config/cache.py: gpu_memory_utilization defaults to 0.92 (we pass the paper's 0.9).
- vllm-0.29.0.dist-info/METADATA: Requires-Dist torch==2.13.0, transformers>=5.10.4.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cluster.llm import VLLMBackend
from uts.llm.chat import Sampling
from uts.llm.engine import GPUS, MODELS, EngineFitError, engine_settings

ENGINE_ARGS_FIELDS = frozenset(
    """
    _api_process_count _api_process_rank additional_config aggregate_engine_logging
    all2all_backend allow_deprecated_quantization allowed_local_media_path
    allowed_media_domains async_scheduling attention_backend attention_config block_size
    code_revision collect_detailed_traces compilation_config config_format convert
    cp_kv_cache_interleave_size cpu_distributed_timeout_seconds cpu_offload_gb
    cpu_offload_params cudagraph_capture_sizes cudagraph_metrics data_parallel_address
    data_parallel_backend data_parallel_external_lb data_parallel_hybrid_lb
    data_parallel_multi_port_external_lb data_parallel_rank data_parallel_rpc_port
    data_parallel_size data_parallel_size_local data_parallel_start_rank
    dbo_decode_token_threshold dbo_prefill_token_threshold dcp_comm_backend
    dcp_kv_cache_interleave_size dcp_q_replicate decode_context_parallel_size
    default_mm_loras device_ids diffusion_config disable_cascade_attn
    disable_chunked_mm_input disable_custom_all_reduce disable_hybrid_kv_cache_manager
    disable_log_stats disable_nccl_for_dp_synchronization disable_sliding_window
    distributed_executor_backend distributed_timeout_seconds download_dir dtype
    ec_manager_config ec_transfer_config enable_batch_sharded_sampling
    enable_bf16x3_router_gemm enable_chunked_prefill enable_cumem_allocator enable_dbo
    enable_elastic_ep enable_ep_weight_filter enable_eplb enable_expert_parallel
    enable_fault_tolerance enable_flashinfer_autotune enable_layerwise_nvtx_tracing
    enable_log_requests enable_logging_iteration_details enable_lora
    enable_mamba_cache_stochastic_rounding enable_mfu_metrics enable_mixed_moe_lora_format
    enable_mm_embeds enable_mm_processor_stats enable_moe_shared_loras enable_prefix_caching
    enable_prompt_embeds enable_return_routed_experts enable_sleep_mode
    enable_tower_connector_lora enable_trace_replay enforce_eager eplb_config
    expert_placement_strategy fail_on_environ_validation fault_tolerance_config
    fully_sharded_loras gdn_prefill_backend generation_config gpu_memory_utilization
    hf_config_path hf_overrides hf_token ignore_patterns interleave_mm_strings
    io_processor_plugin ir_op_priority jit_monitor_mode jit_monitor_verbose
    kda_prefill_backend kernel_config kv_cache_dtype kv_cache_dtype_skip_layers
    kv_cache_memory_bytes kv_cache_metrics kv_cache_metrics_sample kv_events_config
    kv_offloading_backend kv_offloading_size kv_sharing_fast_prefill kv_transfer_config
    language_model_only limit_mm_per_prompt linear_backend load_format logits_processors
    logprobs_mode long_prefill_token_threshold lora_dtype lora_target_modules mamba_backend
    mamba_block_size mamba_cache_dtype mamba_cache_mode mamba_cache_philox_rounds
    mamba_config mamba_ssm_cache_dtype mamba_ssu_algorithm master_addr master_port
    max_cpu_loras max_cudagraph_capture_size max_logprobs max_lora_rank max_loras
    max_model_len max_num_batched_tokens max_num_queued_reqs max_num_queued_tokens
    max_num_scheduled_tokens max_num_seqs max_parallel_loading_workers media_io_kwargs
    mm_device_do_normalize mm_encoder_attn_backend mm_encoder_attn_dtype
    mm_encoder_fp8_scale_path mm_encoder_fp8_scale_save_margin
    mm_encoder_fp8_scale_save_path mm_encoder_only mm_encoder_tp_mode mm_hasher_algorithm
    mm_ipc_gpu_memory_gb mm_processor_cache_gb mm_processor_cache_type mm_processor_device
    mm_processor_kwargs mm_shm_cache_max_object_size_mb mm_tensor_ipc model
    model_class_overrides model_impl model_loader_extra_config model_weights moe_backend
    nnodes node_rank num_gpu_blocks_override numa_bind numa_bind_cpus numa_bind_nodes
    offload_backend offload_group_size offload_num_in_group offload_params
    offload_prefetch_step optimization_level otlp_traces_endpoint override_generation_config
    per_request_spec_decode_metrics performance_mode pipeline_parallel_size pooler_config
    prefill_context_parallel_size prefill_schedule_interval prefix_cache_retention_interval
    prefix_caching_hash_algo prefix_match_unit profiler_config pt_load_map_location
    quantization quantization_config ray_workers_use_nsight reasoning_config
    reasoning_parser reasoning_parser_plugin renderer_num_workers replayssm_buffer_len
    return_sampling_mask revision runner safetensors_load_strategy
    safetensors_prefetch_block_size safetensors_prefetch_num_threads scheduler_cls
    scheduler_reserve_full_isl scheduling_policy seed served_model_name
    show_hidden_metrics_for_version shutdown_timeout skip_mm_profiling skip_tokenizer_init
    spec_method spec_model spec_tokens specialize_active_lora speculative_config
    stream_interval structured_outputs_config tensor_parallel_size tokenizer tokenizer_mode
    tokenizer_revision tokens_only trust_remote_code ubatch_size use_fp64_gumbel
    use_replayssm use_tqdm_on_load video_pruning_method video_pruning_rate watermark
    weight_transfer_config worker_cls worker_extension_cls
    """.split()
)
NO_FLAG = frozenset({"_api_process_count", "_api_process_rank", "enable_mm_processor_stats",
                     "mamba_config", "model_weights", "tokens_only"})  # fmt: skip
FRONTEND_FLAGS = frozenset({"--host", "--port"})  # FrontendArgs fields (the ones we may use)
SERVE_FLAGS = frozenset("--" + f.replace("_", "-") for f in ENGINE_ARGS_FIELDS - NO_FLAG) | FRONTEND_FLAGS  # fmt: skip
VLLM_TORCH = "2.13.0"  # vllm 0.29.0 METADATA: Requires-Dist: torch==2.13.0

REPO = Path(__file__).resolve().parents[2]


def every_setting() -> list[tuple[str, str | None, int]]:
    """(model, GPU type or None, tensor parallel size) for each combination that fits."""
    out: list[tuple[str, str | None, int]] = []
    for model in MODELS:
        for gpu in [None, *GPUS]:
            for tp in (1, 2, 4, 8):
                try:
                    engine_settings(model, accelerator_type=gpu, tensor_parallel_size=tp)
                except EngineFitError:
                    continue
                out.append((model, gpu, tp))
    return out


def test_the_recorded_api_has_what_we_set() -> None:
    assert len(ENGINE_ARGS_FIELDS) == 237 and len(SERVE_FLAGS) == 231 + 2
    for name in ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "limit_mm_per_prompt",
                 "revision", "tensor_parallel_size", "enforce_eager", "dtype"):  # fmt: skip
        assert name in ENGINE_ARGS_FIELDS and "--" + name.replace("_", "-") in SERVE_FLAGS
    # fields removed before 0.29 must not come back by habit
    assert not {"swap_space", "task", "guided_decoding_backend"} & ENGINE_ARGS_FIELDS
    # what Ray 2.60's vLLM stage adds itself (vllm_engine_stage.py): model, runner,
    # enable_log_requests, distributed_executor_backend; it pops task_type before vLLM sees it
    assert {"model", "runner", "enable_log_requests", "distributed_executor_backend"} <= ENGINE_ARGS_FIELDS  # fmt: skip


@pytest.mark.parametrize(("model", "gpu", "tp"), every_setting())
def test_every_engine_kwarg_and_serve_flag_exists_in_vllm_0_29(model: str, gpu: str | None, tp: int) -> None:  # fmt: skip
    settings = engine_settings(model, accelerator_type=gpu, tensor_parallel_size=tp, revision="r")
    assert set(settings.engine_kwargs()) <= ENGINE_ARGS_FIELDS
    argv = settings.serve_argv(host="127.0.0.1", port=8000)
    assert argv[:3] == ["vllm", "serve", model]  # model_tag is positional
    flags = [word for word in argv[3:] if word.startswith("--")]
    assert len(flags) == len(argv[3:]) // 2 and set(flags) <= SERVE_FLAGS, set(flags) - SERVE_FLAGS
    limit = settings.engine_kwargs().get("limit_mm_per_prompt")
    if limit is not None:  # a dict for the engine, JSON on the command line
        assert isinstance(limit, dict) and all(isinstance(v, int) for v in limit.values())
        assert json.loads(argv[argv.index("--limit-mm-per-prompt") + 1]) == limit


def test_the_processor_config_hands_vllm_only_known_engine_args() -> None:
    backend = VLLMBackend(model="Qwen/Qwen3-Omni-30B-A3B-Captioner", sampling=Sampling(max_tokens=1024),
                          audio=True, accelerator_type="H100", revision="r")  # fmt: skip
    kwargs = dict(backend.processor_config().engine_kwargs)
    assert kwargs.pop("task_type") == "generate"  # Ray's own key, popped before vLLM
    assert set(kwargs) <= ENGINE_ARGS_FIELDS and kwargs["revision"] == "r"


def test_vllms_torch_is_the_projects_torch() -> None:
    # "torch left to vLLM" (Dockerfile, cluster.yaml) then installs the version everything else
    # here is pinned to: the CPU workers and vLLM nodes run the same torch as the V100 trainers.
    makefile = (REPO / "Makefile").read_text()
    assert set(re.findall(r"torch==([0-9][0-9.]*)", makefile)) == {VLLM_TORCH}
