"""GPU tier (skipped without CUDA): fp16 autocast training with a GradScaler, as on V100 nodes."""

from __future__ import annotations

import pytest
import torch

from uts.models.zipformer import Zipformer, preset
from uts.objectives import MTC, Pretrainer
from uts.train import build_optimizer, train_step

pytestmark = pytest.mark.gpu


def test_fp16_training_step_matches_fp32_direction_and_learns() -> None:
    torch.manual_seed(0)
    model = Pretrainer(
        Zipformer(preset("xs", dropout=0.0, layer_skip=0.0)), MTC(128, 8, dropout=0.0)
    ).cuda()
    model.specaug.time_masks = model.specaug.freq_masks = 0
    batch = {
        "feats": (0.5 * torch.randn(4, 200, 80) + torch.randn(4, 1, 80)).cuda(),
        "feat_lens": torch.tensor([200, 180, 150, 120]).cuda(),
        "targets": torch.eye(4, 8).cuda(),
    }
    optimizer, schedule = build_optimizer(
        model, "adamw", lr_steps=1e9, lr_epochs=1e9, warmup_steps=1
    )
    scaler = torch.amp.GradScaler()
    losses = [
        train_step(
            model, batch, optimizer, scheduler=schedule, scaler=scaler, autocast_dtype=torch.float16
        )["loss"]
        for _ in range(60)
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.3 * losses[0]
