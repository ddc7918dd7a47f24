"""Training: optimisers and schedules, and the one training step."""

from uts.train.optim import Eden, ScaledAdam, build_optimizer
from uts.train.step import train_step

__all__ = ["Eden", "ScaledAdam", "build_optimizer", "train_step"]
