"""GPU tier: the tag stage with the vllm backend on a real engine.

Needs a CUDA GPU of compute capability >= 7.5, `pip install -e .[llm]` (vLLM), and a local copy of
an instruct model (no hub access in tests): UTS_VLLM_TAGGER=/path/to/Qwen2.5-0.5B-Instruct (any
chat model works; the 7B default is what the study uses).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.ray]


def test_vllm_tagger_with_structured_output(ray_session: Any, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    model = os.environ.get("UTS_VLLM_TAGGER")
    if not model or not Path(model).is_dir():
        pytest.skip("set UTS_VLLM_TAGGER to a local instruct model folder")
    import torch

    if torch.cuda.get_device_capability() < (7, 5):
        pytest.skip("vLLM needs compute capability >= 7.5")
    from jobs import tag
    from tests.llm.test_model_stages import write_captions

    store = tmp_path / "store"
    write_captions(store, ["Heavy rain drums on a metal roof while thunder rolls in the distance.",
                           "A solo piano plays a slow melody in a large reverberant hall."])  # fmt: skip
    args = ["--store", str(store), "--corpus", "c", "--captions", "fp0", "--backend", "vllm",
            "--model", model, "--max-model-len", "2048", "--batch-size", "8"]  # fmt: skip
    assert tag.main(args) == 0
    (folder,) = (store / "tags" / "c").iterdir()
    rows = pq.read_table(folder, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok"]  # structured output always parses
    assert all(1 <= len(r["tags"]) <= 10 for r in rows)


def test_vllm_tagger_raw_completion_without_the_chat_template(
    ray_session: Any, tmp_path: Path
) -> None:
    """The paper's way: the prompt as a raw completion (no chat-template stage), no schema."""
    pytest.importorskip("vllm")
    model = os.environ.get("UTS_VLLM_TAGGER")
    if not model or not Path(model).is_dir():
        pytest.skip("set UTS_VLLM_TAGGER to a local instruct model folder")
    from jobs import tag
    from tests.llm.test_model_stages import write_captions

    store = tmp_path / "store"
    write_captions(store, ["A dog barks twice in a quiet yard."])
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(
        'Return only JSON {{"labels": [...]}} with 5 one-word labels for:\n{caption}\n'
    )
    args = ["--store", str(store), "--corpus", "c", "--captions", "fp0", "--backend", "vllm",
            "--model", model, "--max-model-len", "2048", "--sampling", "paper",
            "--prompt-file", str(prompt), "--no-chat-template", "--no-structured-output"]  # fmt: skip
    assert tag.main(args) == 0
    (folder,) = (store / "tags" / "c").iterdir()
    rows = pq.read_table(folder, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    assert len(rows) == 1 and rows[0]["raw"]  # the engine answered the raw prompt


def test_vllm_captioner_hears_audio(ray_session: Any, corpus_store: Path) -> None:
    """The captioner through the engine path: audio-only multimodal input, one caption per clip.
    UTS_VLLM_CAPTIONER: a local audio LLM folder (e.g. Qwen2-Audio-7B-Instruct or Qwen2.5-Omni-3B;
    the study's default is Qwen3-Omni-30B-A3B-Captioner)."""
    pytest.importorskip("vllm")
    model = os.environ.get("UTS_VLLM_CAPTIONER")
    if not model or not Path(model).is_dir():
        pytest.skip("set UTS_VLLM_CAPTIONER to a local audio LLM folder")
    from jobs import caption

    args = ["--store", str(corpus_store), "--corpus", "c", "--backend", "vllm", "--model", model,
            "--max-model-len", "4096", "--max-tokens", "128", "--batch-size", "4"]  # fmt: skip
    assert caption.main(args) == 0
    (folder,) = (corpus_store / "captions" / "c").iterdir()
    rows = pq.read_table(folder, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    assert rows and all(r["status"] in ("ok", "suspect") for r in rows)
    assert sum(len(r["description"].split()) >= 3 for r in rows) >= len(rows) // 2
