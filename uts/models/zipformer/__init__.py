"""Zipformer (Yao et al., ICLR 2024), written for this project from the paper and the upstream
recipe (icefall / Auden): architecture, balancers, whitening and training schedules."""

from uts.models.zipformer.config import PRESETS, ZipformerConfig, preset
from uts.models.zipformer.encoder import Zipformer, masked_mean, parameter_count

__all__ = ["PRESETS", "Zipformer", "ZipformerConfig", "masked_mean", "parameter_count", "preset"]
