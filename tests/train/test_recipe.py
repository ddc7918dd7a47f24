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
