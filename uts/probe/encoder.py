"""Clip embeddings of a frozen encoder (masked mean of its frames, eval mode): what every probe
protocol of the evaluation (uts.probe.protocols, jobs/evaluate.py) is trained on. `layers` picks the
depth: "final" (the output), "stem", "stack1".."stack6" (each at its own width), or "all" (their
means concatenated, Zipformer.layer_embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.models.zipformer import Zipformer, masked_mean

__all__ = ["LAYERS", "embed", "layer_suffix"]

LAYERS = ("final", "all", "stem", *(f"stack{i}" for i in range(1, 7)))


def layer_suffix(layers: str) -> str:
    """What a depth appends to an embedding space or a results folder ("" for the output).

    Raises:
        ValueError: `layers` is not one of LAYERS.
    """
    if layers not in LAYERS:
        raise ValueError(f"layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    return {"final": "", "all": "-all-layers"}.get(layers, f"-{layers}")


@torch.no_grad()
def embed(
    encoder: Zipformer, waves: Sequence[Wave], *, batch: int = 16, layers: str = "final"
) -> npt.NDArray[np.float32]:
    """(N waveforms at 16 kHz) -> (N, D) clip embeddings, encoder in eval mode, in short-first
    groups so padding stays small. D is the chosen depth's width (`layers_dim` for "all").

    Raises:
        ValueError: `layers` is not one of LAYERS, or the encoder has no such stack.
    """
    layer_suffix(layers)
    widths = encoder.layer_widths
    if layers != "all" and layers not in widths:
        raise ValueError(f"this encoder has layers {', '.join(widths)}; got {layers!r}")
    start_of = dict(zip(widths, np.cumsum([0, *widths.values()]).tolist(), strict=False))
    encoder.eval()
    device = next(encoder.parameters()).device  # fbank on the CPU, the forward where the encoder is
    fbank = Fbank()
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    width = encoder.layers_dim if layers == "all" else widths[layers]
    out = np.zeros((len(waves), width), np.float32)
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        feats, lengths = fbank([waves[i] for i in chosen])
        feats, lengths = feats.to(device), lengths.to(device)
        if layers == "final":
            frames, frame_lengths = encoder(feats, lengths)  # (B, T', D), (B,)
            pooled = masked_mean(frames, frame_lengths)  # (B, D)
        else:
            pooled = encoder.layer_embeddings(feats, lengths)  # (B, layers_dim)
            if layers != "all":
                pooled = pooled[:, start_of[layers] : start_of[layers] + width]
        out[chosen] = pooled.float().cpu().numpy()
    return out
