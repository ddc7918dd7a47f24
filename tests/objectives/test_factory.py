"""Every objective builds from a config and trains one step; a whole training state round-trips."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from tests.objectives.conftest import tag_batch
from uts.models.zipformer import preset
from uts.objectives import OBJECTIVES, ObjectiveConfig, build_pretrainer
from uts.train import build_optimizer, train_step

TAGS = ["speech, male", "music, guitar, loud"]


def config(name: str, minilm_path: str) -> ObjectiveConfig:
    return ObjectiveConfig(name=name, num_tags=6, tokenizer=minilm_path, text_model=minilm_path, decoder_dim=32,
                           decoder_layers=1, decoder_heads=2, max_tokens=16, contrastive_dim=16)  # fmt: skip


def batch_for(tokenizer: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    ids, lens = tag_batch(tokenizer, TAGS)
    text = tokenizer(TAGS, padding=True, return_tensors="pt")
    return {
        "feats": torch.randn(2, 80, 80), "feat_lens": torch.tensor([80, 60]),
        "targets": torch.tensor([[1.0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]]),
        "tag_ids": ids, "tag_lens": lens, "text_ids": text["input_ids"], "text_mask": text["attention_mask"],
    }  # fmt: skip


@pytest.mark.parametrize("name", OBJECTIVES)
def test_each_objective_builds_and_steps(name: str, minilm_path: str, tokenizer: Any) -> None:
    model = build_pretrainer(preset("xs"), config(name, minilm_path))
    optimizer, schedule = build_optimizer(model, "adamw")
    metrics = train_step(model, batch_for(tokenizer), optimizer, scheduler=schedule)
    assert torch.isfinite(torch.tensor(metrics["loss"])) and metrics["grad_norm"] > 0


def test_unknown_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown objective 'ctc'"):
        ObjectiveConfig(name="ctc")


def test_training_state_round_trips_bit_exactly(minilm_path: str, tokenizer: Any) -> None:
    batch = batch_for(tokenizer)
    torch.manual_seed(0)
    model = build_pretrainer(preset("xs"), config("multitask", minilm_path))
    optimizer, schedule = build_optimizer(model, "scaled_adam")
    train_step(model, batch, optimizer, scheduler=schedule)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    copy = build_pretrainer(preset("xs"), config("multitask", minilm_path))
    copy_optimizer, copy_schedule = build_optimizer(copy, "scaled_adam")
    copy.load_state_dict(state["model"])
    copy_optimizer.load_state_dict(state["optimizer"])
    copy_schedule.load_state_dict(state["schedule"])
    for m, o, s in ((model, optimizer, schedule), (copy, copy_optimizer, copy_schedule)):
        torch.manual_seed(5)  # same dropout, SpecAugment and AR/PAR draws
        train_step(m, batch, o, scheduler=s)
    for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
