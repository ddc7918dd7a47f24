"""The paper's recipe in the `m` preset, the validation/checkpoint cadence rule, and clipping done
once (ScaledAdam's adaptive clipping replaces the global-norm clip, not stacked on it)."""

from __future__ import annotations

import pytest
import torch

from uts.train import train_step
from uts.train.config import PretrainConfig, preset
from uts.train.optim import ScaledAdam


def test_m_follows_audens_uts_recipe() -> None:
    # AudenAI/Auden examples/uts/configs/train.yaml: scaled_adam lr 0.045, eden lr_batches 7500,
    # lr_epochs 3.5, warmup_batches 500, valid_interval 1000, save_every_n 4; clipping_scale 2.0
    # as its trainer builds ScaledAdam.
    m = preset("m")
    assert (m.optimizer, m.lr, m.clipping_scale) == ("scaled_adam", None, 2.0)
    assert (m.warmup_steps, m.lr_steps, m.lr_epochs) == (500, 7500, 3.5)
    assert (m.validate_every, m.checkpoint_every) == (1000, 4000)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checkpoint_every": 10, "validate_every": 4}, "must be a multiple of validate_every"),
        ({"validate_every": 0}, "must be a multiple of validate_every"),
        ({"optimizer": "adamw", "clipping_scale": 2.0}, "clipping_scale is ScaledAdam's"),
    ],
)
def test_impossible_cadences_and_clipping_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**overrides)


class _Square(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((4, 4), 0.5))

    def forward(self, batch: dict, with_loss: bool = True) -> tuple[torch.Tensor, dict]:
        return (self.w * batch["feats"]).sum() ** 2, {}


def test_clip_norm_none_leaves_the_gradient_to_the_optimiser() -> None:
    """A huge gradient reaches ScaledAdam unclipped when clip_norm is None (it clips itself), and
    is clipped to 5.0 by the step otherwise; the reported norm is the unclipped one in both."""
    batch = {"feats": torch.full((4, 4), 100.0)}
    seen = []
    for clip in (None, 5.0):
        model = _Square()
        optimizer = ScaledAdam(model.parameters(), lr=0.01)
        metrics = train_step(model, batch, optimizer, clip_norm=clip)
        seen.append((metrics["grad_norm"], float(model.w.grad.norm())))
    (reported_free, free), (reported_clipped, clipped) = seen
    assert reported_free == pytest.approx(reported_clipped) == pytest.approx(free, rel=1e-5)
    assert free > 1e5 and clipped == pytest.approx(5.0, rel=1e-4)


def test_train_step_moves_the_encoders_schedules_to_the_batch_count() -> None:
    """train_step(batch_count=n) sets every ScheduledFloat of the encoder to n before the forward,
    through a DDP-style `.module` wrapper too; without one the schedules stay where they were.
    At batch 0 a block's layer-drop rate is upstream's 0.5, at 100k its final 0.035 sqrt(factor)."""
    from uts.models.zipformer.scaling import ScheduledFloat
    from uts.train.model import build_model

    config = preset("smoke", optimizer="adamw")
    model = build_model(config)
    batch = {"feats": torch.randn(2, 120, 80), "feat_lens": torch.tensor([120, 90]),
             "targets": torch.zeros(2, config.k)}  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    schedules = [m for m in model.encoder.modules() if isinstance(m, ScheduledFloat)]
    assert schedules and all(s.batch_count is None for s in schedules)
    train_step(model, batch, optimizer)
    assert all(s.batch_count is None for s in schedules)

    class Wrapped(torch.nn.Module):  # what DDP looks like to train_step
        def __init__(self) -> None:
            super().__init__()
            self.module = model

        def forward(self, batch: dict, with_loss: bool = False) -> tuple[torch.Tensor, dict]:
            return self.module(batch, with_loss=with_loss)

    for count in (0.0, 100_000.0):
        train_step(Wrapped(), batch, optimizer, batch_count=count)
        assert all(s.batch_count == count for s in schedules)
    skip = model.encoder.stacks[0].blocks[0].bypass.skip_rate
    model.encoder.set_batch_count(0.0)
    assert float(skip) == pytest.approx(0.5)
    model.encoder.set_batch_count(100_000.0)
    assert float(skip) == pytest.approx(0.035)  # stack 0: downsampling 1


def test_batch_count_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_count_scale"):
        PretrainConfig(batch_count_scale=0.0)
