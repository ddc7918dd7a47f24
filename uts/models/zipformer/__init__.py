"""Zipformer (Yao et al., ICLR 2024), written from the paper for this project."""

from uts.models.zipformer.config import PRESETS, ZipformerConfig, preset
from uts.models.zipformer.encoder import Zipformer, masked_mean

__all__ = ["PRESETS", "Zipformer", "ZipformerConfig", "masked_mean", "preset"]
