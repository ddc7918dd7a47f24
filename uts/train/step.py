"""One training step: forward, loss, backward, clip, optimiser and schedule step; returns metrics.

Pure in the sense that everything it touches is passed in (model, batch, optimiser, scaler), so
the Ray Train loop and the tests call the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from uts.objectives.base import Batch

__all__ = ["SkipGuard", "train_step"]


def train_step(
    model: nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip_norm: float | None = 5.0,
    autocast_dtype: torch.dtype | None = None,
    agree: Callable[[bool], bool] = bool,
    batch_count: float | None = None,
) -> dict[str, float]:
    """Run one step. fp16 on GPU: pass `autocast_dtype=torch.float16` and a GradScaler (V100 has
    no bf16). `model` is a Pretrainer or a DDP-wrapped one (its forward is what DDP syncs).

    A non-finite loss skips the update (metrics then hold `skipped=1`). Under DDP every rank must
    skip together: `agree(finite)` returns whether the loss is finite on every rank (an
    all-reduce); the backward still runs (on a zeroed loss) so DDP's gradient hooks stay in step.
    With a scaler, an fp16 overflow (inf/NaN gradients) makes `scaler.step` skip the optimiser
    step; then `stepped=0` (with `skipped=0`: it is the scaler calibrating, not divergence) and
    the scheduler is not stepped. The caller counts a step only when `stepped` is 1.
    `clip_norm`: the global gradient norm is clipped to it before the optimiser step; None when
    the optimiser clips (ScaledAdam with a clipping scale), so gradients are clipped once.
    `batch_count`: where the encoder's training schedules stand (Zipformer.set_batch_count:
    dropout, layer drop, balancer and whitening limits), set before the forward; None leaves them.
    Returns the objective's metrics plus `loss`, `grad_norm`, `lr`, `skipped`, `stepped` and,
    with a scaler, `grad_scale` (the scale after this step's update).
    """
    model.train()
    if batch_count is not None:
        encoder = getattr(getattr(model, "module", model), "encoder", None)  # DDP wraps in .module
        if encoder is not None and hasattr(encoder, "set_batch_count"):
            encoder.set_batch_count(batch_count)
    device_type = batch["feats"].device.type
    with torch.autocast(
        device_type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
    ):
        result: tuple[torch.Tensor, dict[str, float]] = model(batch, with_loss=True)
    loss, metrics = result
    optimizer.zero_grad(set_to_none=True)
    if not agree(bool(torch.isfinite(loss.detach()))):
        (loss.nan_to_num(0.0, 0.0, 0.0) * 0.0).backward()  # type: ignore[no-untyped-call]
        optimizer.zero_grad(set_to_none=True)
        lr = optimizer.param_groups[0]["lr"]
        return {"loss": float(loss.detach()), "skipped": 1.0, "stepped": 0.0, "lr": lr}
    if scaler is not None:
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        scaler.unscale_(optimizer)
    else:
        loss.backward()  # type: ignore[no-untyped-call]
    # The global norm is logged either way; clip_norm=None leaves clipping to the optimiser
    # (ScaledAdam's adaptive clipping).
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip_norm or float("inf"))
    stepped = True
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skips optimizer.step() when the unscaled grads hold inf/NaN
        scaler.update()
        # update() lowers the scale exactly when it found inf/NaN, i.e. when it skipped the step
        # (torch's own test for a skipped step); a disabled scaler stays at 1.0.
        metrics["grad_scale"] = scaler.get_scale()
        stepped = metrics["grad_scale"] >= scale
    else:
        optimizer.step()
    if scheduler is not None and stepped:
        scheduler.step()
    metrics.update(
        loss=float(loss.detach()), grad_norm=float(grad_norm), lr=optimizer.param_groups[0]["lr"],
        skipped=0.0, stepped=float(stepped),
    )  # fmt: skip
    return metrics


class SkipGuard:
    """Counts skipped (non-finite) steps; `limit` in a row is an error that names the step and the
    batch's clips, because by then the run is diverging, not unlucky."""

    def __init__(self, limit: int = 3) -> None:
        self.limit, self.in_a_row, self.total = limit, 0, 0

    def update(self, skipped: bool, *, step: int, clip_ids: Sequence[str]) -> None:
        """Raises FloatingPointError on the `limit`-th skipped step in a row."""
        if not skipped:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.total += 1
        if self.in_a_row >= self.limit:
            raise FloatingPointError(
                f"non-finite loss {self.limit} steps in a row (last at step {step}); "
                f"clips of that batch: {list(clip_ids)[:20]}"
            )
