"""The baseline every encoder must beat: log-mel (64 bands) mean+std -> standardise -> logistic
regression, per task, over the task's seeded splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.probe.protocols import fit_logistic, fit_predict_logistic

__all__ = ["fit_logistic", "logmel_stats", "run_baseline"]

Matrix = npt.NDArray[np.float32]


def logmel_stats(waves: Sequence[Wave], *, batch: int = 32) -> Matrix:
    """(N waveforms) -> (N, 128): per-band mean and standard deviation of 64-band log-mel frames."""
    fbank = Fbank(num_mel_bins=64)
    out = np.zeros((len(waves), 128), np.float32)
    for start in range(0, len(waves), batch):
        feats, lengths = fbank(list(waves[start : start + batch]))
        for row, (f, n) in enumerate(zip(feats, lengths.tolist(), strict=True)):
            valid = f[:n]
            out[start + row, :64] = valid.mean(0).numpy()
            out[start + row, 64:] = valid.std(0, unbiased=False).numpy()
    return out


def run_baseline(
    meta: Mapping[str, Any],
    vocabulary: Sequence[str],
    splits: Mapping[int, Mapping[str, Mapping[str, Sequence[str]]]],
    features: Mapping[str, npt.NDArray[np.float32]],
) -> dict[str, Any]:
    """Baseline and majority scores per seed, and their mean and std.

    Raises:
        ValueError: a split has no training or no test clips.
    """
    from uts.probe.evaluate import (
        TaskSpec,
        majority_scores,
        score_predictions,
        split_arrays,
        summarize,
    )

    task = TaskSpec(str(meta.get("name", "")), Path(), dict(meta), list(vocabulary),
                    {seed: {s: {c: list(labels) for c, labels in p.items()} for s, p in parts.items()}
                     for seed, parts in splits.items()})  # fmt: skip
    per_seed: list[dict[str, Any]] = []
    for seed, parts in sorted(task.splits.items()):
        if not parts["train"] or not parts["test"]:
            raise ValueError(f"split {seed} has an empty train or test set (too few groups)")
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
            split_arrays(task, parts[s], features) for s in ("train", "valid", "test")
        )
        # Standardise, L2 on validation, refit on train+valid: the `logistic` protocol, as logits.
        test_scores, decay = fit_predict_logistic(
            x_train, y_train, x_valid, y_valid, x_test, multilabel=task.multilabel
        )
        majority = majority_scores(task, np.r_[y_train, y_valid], len(x_test))
        per_seed.append({
            "seed": seed, "weight_decay": decay, "n_train": len(x_train) + len(x_valid), "n_test": len(x_test),
            "baseline": score_predictions(task, test_scores, y_test),
            "majority": score_predictions(task, majority, y_test),
        })  # fmt: skip
    summary: dict[str, Any] = {
        "features": "log-mel 64 mean+std, standardised",
        "model": "logistic regression (L-BFGS, L2 on validation)",
    }
    for kind in ("baseline", "majority"):
        for metric in per_seed[0][kind]:
            summary[f"{kind}_{metric}"] = summarize([s[kind][metric] for s in per_seed])
    summary["per_seed"] = per_seed
    return summary
