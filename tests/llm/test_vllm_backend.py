"""The vllm backend's configuration and row functions, without vLLM (its engine runs on GPU
nodes; the `-m gpu` test in test_vllm_gpu.py runs it for real)."""

from __future__ import annotations

import json

from cluster.llm import VLLMBackend, openai_body, vllm_row, vllm_sampling_params
from uts.llm.chat import LABELS_SCHEMA, Sampling
from uts.llm.parse import parse_labels

TAGGING = Sampling(max_tokens=256, structured=True)


def test_processor_config_for_the_tagger() -> None:
    backend = VLLMBackend(model="Qwen/Qwen2.5-7B-Instruct", sampling=TAGGING, concurrency=3,
                          tensor_parallel_size=2, accelerator_type="L4", revision="abc123")  # fmt: skip
    config = backend.processor_config()
    assert config.model_source == "Qwen/Qwen2.5-7B-Instruct"
    assert config.engine_kwargs["tensor_parallel_size"] == 2
    assert config.engine_kwargs["revision"] == "abc123"
    assert config.accelerator_type == "L4" and config.concurrency == 3
    assert config.chat_template_stage and config.should_continue_on_error
    assert not config.prepare_multimodal_stage and "limit_mm_per_prompt" not in config.engine_kwargs


def test_processor_config_for_the_captioner_takes_audio() -> None:
    backend = VLLMBackend(model="Qwen/Qwen3-Omni-30B-A3B-Captioner",
                          sampling=Sampling(max_tokens=1024), audio=True)  # fmt: skip
    config = backend.processor_config()
    assert config.prepare_multimodal_stage and config.engine_kwargs["limit_mm_per_prompt"] == {
        "audio": 1, "image": 0, "video": 0
    }  # fmt: skip


def test_structured_output_and_sampling() -> None:
    params = vllm_sampling_params(TAGGING)
    assert params["structured_outputs"] == {"json": LABELS_SCHEMA} and params["max_tokens"] == 256
    assert "structured_outputs" not in vllm_sampling_params(Sampling(max_tokens=256))
    body = openai_body("m", [{"role": "user", "content": "x"}], TAGGING)
    assert body["response_format"]["json_schema"]["schema"] == LABELS_SCHEMA
    assert "response_format" not in openai_body("m", [], Sampling(max_tokens=8))


def test_preprocess_builds_the_engine_request() -> None:
    backend = VLLMBackend(model="m", sampling=TAGGING)
    messages = [{"role": "user", "content": "Description:\nA dog barks."}]
    request = backend.preprocess({"shard": 0, "clip_id": "c", "messages": json.dumps(messages)})
    assert request["messages"] == messages and request["sampling_params"]["max_tokens"] == 256
    # without the chat template: a raw prompt goes straight to the tokenizer stage
    raw = VLLMBackend(model="m", sampling=TAGGING, chat_template=False)
    assert raw.processor_config().chat_template_stage is False
    request = raw.preprocess(
        {"shard": 0, "clip_id": "c", "messages": json.dumps("Tag: A dog barks.")}
    )
    assert request["prompt"] == "Tag: A dog barks." and "messages" not in request


def test_engine_rows_become_replies() -> None:
    ours = {"shard": 3, "clip_id": "c", "attempt": 0, "carry": "{}", "uts_max_tokens": 256}
    done = VLLMBackend.reply(VLLMBackend.postprocess(
        {**ours, "generated_text": '{"labels": ["dog"]}', "num_generated_tokens": 7, "num_input_tokens": 40,
         "messages": [], "prompt": "..."}))  # fmt: skip
    assert done == {**{k: ours[k] for k in ("shard", "clip_id", "attempt", "carry")},
                    "text": '{"labels": ["dog"]}', "finish_reason": "stop", "prompt_tokens": 40,
                    "completion_tokens": 7, "error": None, "attempts": 1}  # fmt: skip
    assert parse_labels(done["text"]).tags == ("dog",)
    cut = vllm_row({**ours, "generated_text": '{"labels": ["d', "num_generated_tokens": 256})
    assert cut["finish_reason"] == "length"
    # an engine error row skips postprocess and still carries every input column
    failed = VLLMBackend.reply({**ours, "__inference_error__": "ValueError: prompt too long",
                                "messages": [], "generated_text": ""})  # fmt: skip
    assert failed["error"] == "vLLM: ValueError: prompt too long" and failed["text"] is None
