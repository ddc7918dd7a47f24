"""The learning-rate scales of the tag head and the encoder's stem (PretrainConfig.head_lr_scale,
stem_lr_scale; AdamW): a group of its own for every MTC head and for the stem, the other weights'
updates unchanged, one group when both scales are 1, as before."""

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


def stem_ids(model: torch.nn.Module) -> set[int]:
    return {id(p) for p in model.encoder.stem.parameters()}


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


def test_the_stem_gets_a_group_after_the_head_and_the_rest_keeps_the_base_rate() -> None:
    model = mtc_model()
    optimizer = build_optimizer(model, "adamw", lr=1e-3, head_lr_scale=30.0, stem_lr_scale=0.1)[0]
    rest, head, stem = optimizer.param_groups
    assert {id(p) for p in head["params"]} == head_ids(model)
    assert {id(p) for p in stem["params"]} == stem_ids(model) and len(stem["params"]) > 2
    # Eden starts at half the peak rate (warm-up); the groups' ratios are the scales
    assert (rest["lr"], head["lr"], stem["lr"]) == pytest.approx((5e-4, 30 * 5e-4, 0.1 * 5e-4))
    assert not {id(p) for p in rest["params"]} & (head_ids(model) | stem_ids(model))
    total = sum(len(g["params"]) for g in optimizer.param_groups)
    assert total == sum(1 for p in model.parameters() if p.requires_grad)
    # the stem alone: [rest, stem]
    rest, stem = build_optimizer(mtc_model(), "adamw", stem_lr_scale=0.5)[0].param_groups
    assert stem["lr"] == pytest.approx(0.5 * rest["lr"])


def moved_by_one_step(**scales: float) -> dict[str, torch.Tensor]:
    model = mtc_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer, schedule = build_optimizer(model, "adamw", lr=1e-4, **scales)
    torch.manual_seed(3)  # same dropout and SpecAugment draws
    train_step(model, batch(), optimizer, scheduler=schedule)
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}


def test_one_step_moves_the_head_and_the_stem_scale_times_as_far_and_the_rest_alike() -> None:
    base = moved_by_one_step()
    scaled = moved_by_one_step(head_lr_scale=30.0, stem_lr_scale=0.1)
    for name, delta in base.items():
        scale = 30.0 if ".head." in name else 0.1 if name.startswith("encoder.stem.") else None
        if scale is None:
            torch.testing.assert_close(scaled[name], delta, rtol=0, atol=0)
        else:
            assert delta.abs().sum() > 0, name
            # to the float rounding of w + step
            torch.testing.assert_close(scaled[name], scale * delta, rtol=1e-3, atol=1e-6)


def test_scale_one_and_models_without_a_head_keep_one_group(minilm_path: str) -> None:
    # scale 1: one group, as the optimiser states of older checkpoints have
    assert len(build_optimizer(mtc_model(), "adamw")[0].param_groups) == 1
    ar = mtc_model("ar", minilm_path)
    assert len(build_optimizer(ar, "adamw", head_lr_scale=30.0)[0].param_groups) == 1
    multitask = mtc_model("multitask", minilm_path)
    groups = build_optimizer(multitask, "adamw", head_lr_scale=30.0)[0].param_groups
    assert len(groups) == 2 and len(groups[1]["params"]) == 2  # the multitask's MTC head


@pytest.mark.parametrize("name", ["head_lr_scale", "stem_lr_scale"])
def test_the_config_refuses_a_scale_adamw_does_not_apply(name: str) -> None:
    assert getattr(PretrainConfig(), name) == 1.0
    with pytest.raises(ValueError, match=name):
        PretrainConfig(**{name: 30.0})  # ScaledAdam, the default optimiser
    with pytest.raises(ValueError, match=name):
        PretrainConfig(optimizer="adamw", **{name: 0.0})
    with pytest.raises(ValueError, match=f"{name}.*are for adamw"):
        build_optimizer(mtc_model(), "scaled_adam", **{name: 2.0})


def test_the_demo_preset_scales_the_head_up_and_the_stem_down() -> None:
    demo = preset("demo")
    assert (demo.head_lr_scale, demo.stem_lr_scale) == (30.0, 0.1)
    assert preset("m").stem_lr_scale == 1.0  # the paper's ScaledAdam recipe as it is


def test_a_saved_state_loads_only_into_the_same_groups() -> None:
    from uts.train.optim import load_optimizer_state

    model = mtc_model()
    optimizer, schedule = build_optimizer(
        model, "adamw", lr=1e-4, head_lr_scale=30.0, stem_lr_scale=0.1
    )
    train_step(model, batch(), optimizer, scheduler=schedule)
    saved = optimizer.state_dict()
    # the same settings: loads, every tensor's moments as saved
    same = build_optimizer(model, "adamw", lr=1e-4, head_lr_scale=30.0, stem_lr_scale=0.1)[0]
    load_optimizer_state(same, saved, "ckpt")
    for p in model.parameters():
        torch.testing.assert_close(
            same.state[p]["exp_avg"], optimizer.state[p]["exp_avg"], rtol=0, atol=0
        )
    # the stem's rate dropped from the preset (2 groups where 3 were saved), or the head's
    # group under another optimiser (1): refused, naming the source and both layouts
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    for scales in ({"head_lr_scale": 30.0}, {}):
        other = build_optimizer(model, "adamw", lr=1e-4, **scales)[0]
        built = [len(g["params"]) for g in other.param_groups]
        with pytest.raises(
            ValueError,
            match=rf"ckpt: .*groups of \[{sizes[0]}, 2, {sizes[2]}\].*builds \[{', '.join(map(str, built))}\].*stem_lr_scale",
        ):
            load_optimizer_state(other, saved, "ckpt")
