"""A frozen encoder on the probe tasks: clip embeddings (masked mean of the encoder's frames) fed to
the same protocol as the log-mel baseline (standardise -> logistic regression, L2 picked on the
validation split, mean and std over the task's seeds), so the numbers sit side by side.

This is the minimal probe the pretraining job prints; the evaluation job (linear, xares, knn, mlp
protocols) builds on the same embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.models.zipformer import Zipformer, masked_mean
from uts.probe.baseline import run_baseline
from uts.probe.tasks import read_task

__all__ = ["embed", "probe_tasks"]


@torch.no_grad()
def embed(encoder: Zipformer, waves: Sequence[Wave], *, batch: int = 16) -> npt.NDArray[np.float32]:
    """(N waveforms at 16 kHz) -> (N, D) clip embeddings, encoder in eval mode, in short-first
    groups so padding stays small."""
    encoder.eval()
    fbank = Fbank()
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    out = np.zeros((len(waves), encoder.output_dim), np.float32)
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        feats, lengths = fbank([waves[i] for i in chosen])
        frames, frame_lengths = encoder(feats, lengths)  # (B, T', D), (B,)
        pooled = masked_mean(frames, frame_lengths)  # (B, D)
        out[chosen] = pooled.float().numpy()
    return out


def probe_tasks(
    tasks_root: Path, names: Sequence[str], features: Mapping[str, npt.NDArray[np.float32]]
) -> dict[str, dict[str, Any]]:
    """Per task: its metric, the score of `features` (mean, std over seeds), and the stored log-mel
    baseline and majority scores for comparison."""
    import json

    results = {}
    for name in names:
        folder = tasks_root / name
        meta, vocabulary, splits = read_task(folder)
        metric = "mAP" if meta["metric"] == "mAP" else "accuracy"
        scored = run_baseline(meta, vocabulary, splits, features)
        stored = json.loads((folder / "baseline.json").read_text("utf-8"))
        results[name] = {
            "metric": metric,
            "score": scored[f"baseline_{metric}"],
            "logmel": stored[f"baseline_{metric}"],
            "majority": stored[f"majority_{metric}"],
        }
    return results
