"""Clip embeddings of a frozen encoder (masked mean of its frames, eval mode): what every probe
protocol of the evaluation (uts.probe.protocols, jobs/evaluate.py) is trained on. `layers="all"`
concatenates the means of the stem, every stack and the output (Zipformer.layer_embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.models.zipformer import Zipformer, masked_mean

__all__ = ["LAYERS", "embed"]

LAYERS = ("final", "all")


@torch.no_grad()
def embed(
    encoder: Zipformer, waves: Sequence[Wave], *, batch: int = 16, layers: str = "final"
) -> npt.NDArray[np.float32]:
    """(N waveforms at 16 kHz) -> (N, D) clip embeddings, encoder in eval mode, in short-first
    groups so padding stays small. D is the output's width, or `layers_dim` with layers="all".

    Raises:
        ValueError: `layers` is not one of LAYERS.
    """
    if layers not in LAYERS:
        raise ValueError(f"layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    encoder.eval()
    device = next(encoder.parameters()).device  # fbank on the CPU, the forward where the encoder is
    fbank = Fbank()
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    width = encoder.output_dim if layers == "final" else encoder.layers_dim
    out = np.zeros((len(waves), width), np.float32)
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        feats, lengths = fbank([waves[i] for i in chosen])
        feats, lengths = feats.to(device), lengths.to(device)
        if layers == "all":
            pooled = encoder.layer_embeddings(feats, lengths)
        else:
            frames, frame_lengths = encoder(feats, lengths)  # (B, T', D), (B,)
            pooled = masked_mean(frames, frame_lengths)  # (B, D)
        out[chosen] = pooled.float().cpu().numpy()
    return out
