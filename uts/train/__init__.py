"""Training: optimisers and schedules, and the one training step."""

from uts.train.optim import Eden, ScaledAdam, build_optimizer
from uts.train.step import SkipGuard, train_step

__all__ = ["Eden", "ScaledAdam", "SkipGuard", "build_optimizer", "train_step"]
