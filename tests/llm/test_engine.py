"""uts.llm.engine: the vLLM settings per model and GPU type, shared by the Ray Data processor
(VLLMBackend) and `vllm serve`. The API names are checked against vLLM 0.29.0 in
test_engine_vllm_api.py."""

from __future__ import annotations

import json

import pytest

from cluster.llm import VLLMBackend
from uts.llm.chat import Sampling
from uts.llm.engine import (
    AUDIO_ONLY,
    GPUS,
    MODELS,
    EngineFitError,
    engine_settings,
    fitting_tensor_parallel_sizes,
    serve_argv,
)

CAPTIONER = "Qwen/Qwen3-Omni-30B-A3B-Captioner"
TAGGER = "Qwen/Qwen2.5-7B-Instruct"
GiB = 1 << 30


def test_model_table_holds_the_configs_numbers() -> None:
    captioner, tagger = MODELS[CAPTIONER], MODELS[TAGGER]
    # 2 (K, V) x layers x KV heads x head_dim x 2 bytes
    assert captioner.kv_bytes_per_token() == 2 * 48 * 4 * 128 * 2 == 98_304
    assert tagger.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57_344
    # vLLM splits the 4 KV heads over tensor parallel ranks, and replicates past 4
    assert captioner.kv_bytes_per_token(2) == 49_152
    assert captioner.kv_bytes_per_token(8) == captioner.kv_bytes_per_token(4) == 24_576
    assert round(captioner.weight_bytes / 1e9) == 64 and round(tagger.weight_bytes / 1e9, 1) == 15.2
    assert captioner.audio and not tagger.audio


def test_the_papers_captioner_settings() -> None:
    # batch_inference_vllm.py: gpu_memory_utilization=0.9, max_model_len=8192, audio 1 per prompt
    kwargs = engine_settings(CAPTIONER, accelerator_type="A100", tensor_parallel_size=8).engine_kwargs()  # fmt: skip
    assert kwargs["gpu_memory_utilization"] == 0.9 and kwargs["max_model_len"] == 8192
    assert kwargs["limit_mm_per_prompt"] == {"audio": 1, "image": 0, "video": 0} == AUDIO_ONLY
    assert kwargs["dtype"] == "bfloat16" and kwargs["tensor_parallel_size"] == 8
    # the paper's README: 8 sequences on 40 GB and 16 on 80 GB GPUs at tensor parallel 8; the
    # memory estimate allows at least that many on either
    assert kwargs["max_num_seqs"] >= 8
    on_80 = engine_settings(CAPTIONER, accelerator_type="A100-80G", tensor_parallel_size=8)
    assert on_80.max_num_seqs is not None and on_80.max_num_seqs >= 16


@pytest.mark.parametrize(
    ("model", "gpu", "tp", "seqs"),
    [(TAGGER, "L4", 1, 14), (TAGGER, "A10G", 1, 14), (TAGGER, "A100", 1, 86), (TAGGER, "H100", 1, 249),
     (CAPTIONER, "A100", 2, 3), (CAPTIONER, "A100", 4, 85), (CAPTIONER, "H100", 1, 9),
     (CAPTIONER, "L4", 4, 1)],
)  # fmt: skip
def test_max_num_seqs_is_the_kv_room_in_whole_sequences(
    model: str, gpu: str, tp: int, seqs: int
) -> None:
    settings = engine_settings(model, accelerator_type=gpu, tensor_parallel_size=tp)
    assert settings.max_num_seqs == seqs
    spec, card = MODELS[model], GPUS[gpu]
    assert settings.max_model_len is not None
    room = card.memory_mib * 2**20 * 0.9 - spec.weight_bytes / tp - spec.reserve_gib * GiB
    per_sequence = spec.kv_bytes_per_token(tp) * settings.max_model_len
    assert seqs <= room / per_sequence < seqs + 1  # every sequence can reach max_model_len


def test_a_shorter_context_or_a_bigger_gpu_gives_more_sequences_capped_by_vllms_default() -> None:
    base = engine_settings(TAGGER, accelerator_type="L4").max_num_seqs
    half = engine_settings(TAGGER, accelerator_type="L4", max_model_len=2048).max_num_seqs
    assert base is not None and half is not None and half >= 2 * base
    # vLLM 0.29.0's defaults: 256 on A100s, 1024 on H100/H200
    assert engine_settings(TAGGER, accelerator_type="A100-80G", tensor_parallel_size=4).max_num_seqs == 256  # fmt: skip
    assert engine_settings(TAGGER, accelerator_type="H200", tensor_parallel_size=4).max_num_seqs == 1024  # fmt: skip


def test_a_model_that_cannot_fit_is_refused_with_the_sizes_that_would() -> None:
    with pytest.raises(
        EngineFitError, match=r"does not fit on 1 x L4.*59\.6 GiB of weights"
    ) as err:
        engine_settings(CAPTIONER, accelerator_type="L4")
    assert "tensor parallel sizes that fit: [4, 8]" in str(err.value)
    assert fitting_tensor_parallel_sizes(CAPTIONER, "A100") == [2, 4, 8]
    assert fitting_tensor_parallel_sizes(CAPTIONER, "H100") == [1, 2, 4, 8]
    assert fitting_tensor_parallel_sizes(TAGGER, "A10G") == [1, 2, 4, 7]  # 28 heads: not 8
    with pytest.raises(EngineFitError, match="none up to 8"):
        engine_settings(CAPTIONER, accelerator_type="A10G", gpu_memory_utilization=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tensor_parallel_size": 8}, "does not divide its 28 attention heads"),
     ({"tensor_parallel_size": 0}, "must be >= 1"),
     ({"max_model_len": 40000}, "beyond its context of 32768"),
     ({"accelerator_type": "V100"}, "compute capability 7.0"),
     ({"accelerator_type": "l4"}, "unknown accelerator type 'l4'"),
     ({"gpu_memory_utilization": 1.5}, r"must be in \(0, 1\]"),
     ({"max_num_seqs": 0}, "max_num_seqs must be >= 1")],
)  # fmt: skip
def test_settings_vllm_would_refuse_are_refused_here(kwargs: dict[str, object], message: str) -> None:  # fmt: skip
    with pytest.raises(EngineFitError, match=message):
        engine_settings(TAGGER, **kwargs)  # type: ignore[arg-type]


def test_without_a_gpu_type_or_for_other_models_vllm_picks_max_num_seqs() -> None:
    unplaced = engine_settings(CAPTIONER, revision="r1")
    assert unplaced.max_num_seqs is None and unplaced.max_model_len == 8192
    assert unplaced.engine_kwargs()["revision"] == "r1"
    other = engine_settings("/models/Qwen2.5-0.5B-Instruct", accelerator_type="L4", max_model_len=2048)  # fmt: skip
    assert other.engine_kwargs() == {"tensor_parallel_size": 1, "gpu_memory_utilization": 0.9,
                                     "max_model_len": 2048}  # fmt: skip
    assert engine_settings("some/omni", audio=True).limit_mm_per_prompt == AUDIO_ONLY
    assert engine_settings(CAPTIONER, audio=False).limit_mm_per_prompt is None
    assert engine_settings(TAGGER, accelerator_type="L4", max_num_seqs=4).max_num_seqs == 4


def test_serve_argv_says_what_engine_kwargs_say() -> None:
    settings = engine_settings(CAPTIONER, accelerator_type="A100", tensor_parallel_size=2, revision="abc")  # fmt: skip
    argv = settings.serve_argv(port=8000)
    assert argv[:3] == ["vllm", "serve", CAPTIONER] and argv[-2:] == ["--port", "8000"]
    flags = dict(zip(argv[3:-2:2], argv[4:-2:2], strict=True))
    kwargs = settings.engine_kwargs()
    assert set(flags) == {"--" + k.replace("_", "-") for k in kwargs}
    assert flags["--revision"] == "abc" and flags["--max-num-seqs"] == "3"
    assert json.loads(flags["--limit-mm-per-prompt"]) == kwargs["limit_mm_per_prompt"]
    for key, value in kwargs.items():
        text = flags["--" + key.replace("_", "-")]
        assert (json.loads(text) if isinstance(value, dict) else type(value)(text)) == value
    assert serve_argv(CAPTIONER, accelerator_type="A100", tensor_parallel_size=2, revision="abc") == argv[:-2]  # fmt: skip


def test_vllm_backend_uses_the_shared_settings() -> None:
    backend = VLLMBackend(model=TAGGER, sampling=Sampling(max_tokens=256), revision="abc123",
                          accelerator_type="L4", tensor_parallel_size=2)  # fmt: skip
    expected = engine_settings(TAGGER, accelerator_type="L4", tensor_parallel_size=2, revision="abc123", audio=False)  # fmt: skip
    assert backend.engine_kwargs() == expected.engine_kwargs()
    assert backend.engine_kwargs()["revision"] == "abc123"
    assert backend.serve_argv() == expected.serve_argv()
    config = backend.processor_config()
    assert config.engine_kwargs["max_num_seqs"] == expected.max_num_seqs
    assert config.engine_kwargs["gpu_memory_utilization"] == 0.9
    tuned = VLLMBackend(model=TAGGER, sampling=Sampling(max_tokens=256), accelerator_type="L4",
                        gpu_memory_utilization=0.8, max_num_seqs=6)  # fmt: skip
    assert tuned.engine_kwargs()["gpu_memory_utilization"] == 0.8
    assert tuned.engine_kwargs()["max_num_seqs"] == 6
    captioner = VLLMBackend(model=CAPTIONER, sampling=Sampling(max_tokens=1024), audio=True,
                            accelerator_type="L4")  # fmt: skip
    with pytest.raises(EngineFitError, match="does not fit"):
        captioner.engine_kwargs()
