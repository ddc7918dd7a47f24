"""Clip embeddings of a frozen encoder (masked mean of its frames, eval mode): what every probe
protocol of the evaluation (uts.probe.protocols, jobs/evaluate.py) is trained on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.models.zipformer import Zipformer, masked_mean

__all__ = ["embed"]


@torch.no_grad()
def embed(encoder: Zipformer, waves: Sequence[Wave], *, batch: int = 16) -> npt.NDArray[np.float32]:
    """(N waveforms at 16 kHz) -> (N, D) clip embeddings, encoder in eval mode, in short-first
    groups so padding stays small."""
    encoder.eval()
    device = next(encoder.parameters()).device  # fbank on the CPU, the forward where the encoder is
    fbank = Fbank()
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    out = np.zeros((len(waves), encoder.output_dim), np.float32)
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        feats, lengths = fbank([waves[i] for i in chosen])
        frames, frame_lengths = encoder(feats.to(device), lengths.to(device))  # (B, T', D), (B,)
        pooled = masked_mean(frames, frame_lengths)  # (B, D)
        out[chosen] = pooled.float().cpu().numpy()
    return out
