"""The running average of a model's weights that the paper's trainer keeps and evaluates.

Auden's examples/uts recipe trains with `use_averaged_model: True, average_period: 200`
(configs/train.yaml). Its trainer (auden/trainer/ddp_trainer.py, as icefall's) holds a copy of
the model on rank 0 and, at every step t that is a multiple of the period P, sets

    avg <- avg * (1 - P / t) + weights_t * P / t

(auden/utils/checkpoint.py: update_averaged_model), so that at t = nP the average is the plain
mean of the n snapshots taken at P, 2P, ..., nP. Checkpoints carry it, and Auden's evaluation
scripts extract it in preference to the last weights (generate_model_checkpoint_from_trainer_
checkpoints). Ours do the same: the averaged weights are what evaluation, serving and a warm start
load (uts.train.checkpoint), while a resumed run continues from the last weights and this average.

Floating-point entries of the state_dict are averaged (parameters and float buffers); the others
(integer counters) are the model's current ones. Each update is computed in float64 and the
average kept in the dtype of the model's own entry (float32 for every trained weight, also under
autocast), which is how checkpoints store it: a resumed run continues from exactly the average an
uninterrupted run holds. Before the first multiple of P there is no average (Auden's would be the
initial weights); a run resumed from a checkpoint saved without one starts it at its next update.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """The uniform average of a model's weights every `period` optimiser steps (see above)."""

    def __init__(self, period: int, saved: Mapping[str, torch.Tensor] | None = None) -> None:
        """`saved`: the average a checkpoint holds (its averaged weights), to continue from."""
        if period < 1:
            raise ValueError(
                f"the averaging period must be a positive number of steps, got {period}"
            )
        self.period = period
        # Entries are replaced on update, never changed in place: `saved` needs no copy.
        self.average: dict[str, torch.Tensor] | None = dict(saved) if saved is not None else None

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> bool:
        """Fold in the model's weights when `step` (the optimiser steps taken) is a multiple of the
        period; whether it did. A DDP-wrapped model is averaged as its module."""
        if step < self.period or step % self.period:
            return False
        current = getattr(model, "module", model).state_dict()
        if self.average is None:
            self.average = {k: v.detach().cpu().clone() for k, v in current.items()}
            return True
        weight = self.period / step
        for key, value in current.items():
            if not torch.is_floating_point(value):
                self.average[key] = value.detach().cpu().clone()
                continue
            mean = (
                self.average[key].double() * (1.0 - weight) + value.detach().cpu().double() * weight
            )
            self.average[key] = mean.to(value.dtype)
        return True

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """The averaged weights, a state_dict of the model (None before the first update)."""
        return self.average
