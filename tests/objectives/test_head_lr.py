"""The tag head's learning-rate scale (PretrainConfig.head_lr_scale, AdamW): a group of its own
for every MTC head, the encoder's updates unchanged, one group at scale 1 as before."""

from __future__ import annotations

import pytest
import torch

from uts.models.heads import MTCHead
from uts.models.zipformer import preset as encoder_preset
from uts.objectives import ObjectiveConfig, build_pretrainer
from uts.train import build_optimizer, train_step
from uts.train.config import PretrainConfig, preset


def mtc_model(name: str = "mtc", text: str = "bert-base-uncased") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_pretrainer(encoder_preset("xs"), ObjectiveConfig(name=name, num_tags=6, tokenizer=text,
                            text_model=text, decoder_dim=32, decoder_layers=1, decoder_heads=2, max_tokens=16))  # fmt: skip


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {"feats": torch.randn(2, 80, 80, generator=generator), "feat_lens": torch.tensor([80, 60]),
            "targets": torch.tensor([[1.0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]])}  # fmt: skip


def head_ids(model: torch.nn.Module) -> set[int]:
    return {id(p) for m in model.modules() if isinstance(m, MTCHead) for p in m.parameters()}


def test_the_head_gets_a_group_at_the_scaled_rate() -> None:
    model = mtc_model()
    optimizer, schedule = build_optimizer(
        model, "adamw", lr=1e-3, head_lr_scale=30.0, warmup_steps=5
    )
    rest, head = optimizer.param_groups
    assert {id(p) for p in head["params"]} == head_ids(model) and len(head["params"]) == 2
    assert len(rest["params"]) + 2 == sum(1 for p in model.parameters() if p.requires_grad)
    for _ in range(3):  # the schedule scales both groups alike
        assert head["lr"] == pytest.approx(30 * rest["lr"])
        optimizer.step()  # no gradients: moves nothing
        schedule.step()


def test_one_step_moves_the_head_scale_times_as_far_and_the_encoder_alike() -> None:
    moved = {}
    for scale in (1.0, 30.0):
        model = mtc_model()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optimizer, schedule = build_optimizer(model, "adamw", lr=1e-4, head_lr_scale=scale)
        torch.manual_seed(3)  # same dropout and SpecAugment draws
        train_step(model, batch(), optimizer, scheduler=schedule)
        moved[scale] = {n: p.detach() - before[n] for n, p in model.named_parameters()}
    for name, delta in moved[1.0].items():
        if ".head." in name:
            assert delta.abs().sum() > 0, name
            # to the float rounding of w + step
            torch.testing.assert_close(moved[30.0][name], 30 * delta, rtol=1e-3, atol=1e-6)
        else:
            torch.testing.assert_close(moved[30.0][name], delta, rtol=0, atol=0)


def test_scale_one_and_models_without_a_head_keep_one_group(minilm_path: str) -> None:
    # scale 1: one group, as the optimiser states of older checkpoints have
    assert len(build_optimizer(mtc_model(), "adamw")[0].param_groups) == 1
    ar = mtc_model("ar", minilm_path)
    assert len(build_optimizer(ar, "adamw", head_lr_scale=30.0)[0].param_groups) == 1
    multitask = mtc_model("multitask", minilm_path)
    groups = build_optimizer(multitask, "adamw", head_lr_scale=30.0)[0].param_groups
    assert len(groups) == 2 and len(groups[1]["params"]) == 2  # the multitask's MTC head


def test_the_config_refuses_a_scale_adamw_does_not_apply() -> None:
    assert preset("demo").head_lr_scale == 30.0 and PretrainConfig().head_lr_scale == 1.0
    with pytest.raises(ValueError, match="head_lr_scale"):
        PretrainConfig(head_lr_scale=30.0)  # ScaledAdam, the default optimiser
    with pytest.raises(ValueError, match="head_lr_scale"):
        PretrainConfig(optimizer="adamw", head_lr_scale=0.0)
    with pytest.raises(ValueError, match="head_lr_scale is for adamw"):
        build_optimizer(mtc_model(), "scaled_adam", head_lr_scale=2.0)
