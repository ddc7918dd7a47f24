"""The baseline every encoder must beat: log-mel (64 bands) mean+std -> standardise -> logistic
regression, per task, over the task's seeded splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.probe.metrics import accuracy, chroma_accuracy, mean_average_precision
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


def _score(
    meta: Mapping[str, Any], vocabulary: Sequence[str], scores: Matrix, y: Matrix
) -> dict[str, float]:
    if meta["prediction_type"] == "multilabel":
        return {"mAP": mean_average_precision(scores, y.astype(bool))}
    predicted, target = scores.argmax(1), y.argmax(1)
    result = {"accuracy": accuracy(predicted, target)}
    if "chroma_accuracy" in meta.get("extra_metrics", ()):
        pitch = np.asarray([int(v) for v in vocabulary])
        result["chroma_accuracy"] = chroma_accuracy(pitch[predicted], pitch[target])
    return result


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
    index = {label: i for i, label in enumerate(vocabulary)}
    multilabel = meta["prediction_type"] == "multilabel"

    def arrays(part: Mapping[str, Sequence[str]]) -> tuple[Matrix, Matrix]:
        clips = sorted(part)
        width = len(next(iter(features.values())))
        x = np.asarray([features[c] for c in clips], np.float32).reshape(len(clips), width)
        y = np.zeros((len(clips), len(vocabulary)), np.float32)
        for row, clip in enumerate(clips):
            y[row, [index[label] for label in part[clip]]] = 1.0
        return x, y

    per_seed: list[dict[str, Any]] = []
    for seed, parts in sorted(splits.items()):
        if not parts["train"] or not parts["test"]:
            raise ValueError(f"split {seed} has an empty train or test set (too few groups)")
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
            arrays(parts[s]) for s in ("train", "valid", "test")
        )
        # Standardise, L2 on validation, refit on train+valid: the `logistic` protocol, as logits.
        test_scores, decay = fit_predict_logistic(
            x_train, y_train, x_valid, y_valid, x_test, multilabel=multilabel
        )
        prevalence = np.r_[y_train, y_valid].mean(0)
        if multilabel:
            majority_scores = np.tile(prevalence, (len(x_test), 1))
        else:
            majority_scores = np.tile(
                np.eye(len(vocabulary))[
                    Counter(np.r_[y_train, y_valid].argmax(1)).most_common(1)[0][0]
                ],
                (len(x_test), 1),
            )
        per_seed.append({
            "seed": seed, "weight_decay": decay, "n_train": len(x_train) + len(x_valid), "n_test": len(x_test),
            "baseline": _score(meta, vocabulary, test_scores, y_test),
            "majority": _score(meta, vocabulary, majority_scores.astype(np.float32), y_test),
        })  # fmt: skip
    summary: dict[str, Any] = {
        "features": "log-mel 64 mean+std, standardised",
        "model": "logistic regression (L-BFGS, L2 on validation)",
    }
    for kind in ("baseline", "majority"):
        for metric in per_seed[0][kind]:
            values = [s[kind][metric] for s in per_seed]
            summary[f"{kind}_{metric}"] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
            }
    summary["per_seed"] = per_seed
    return summary
