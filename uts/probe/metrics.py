"""Probe metrics: accuracy, chroma accuracy (pitch up to octave), mean average precision."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["accuracy", "average_precision", "chroma_accuracy", "mean_average_precision"]


IntLike = Sequence[int] | npt.NDArray[np.integer]


def accuracy(predicted: IntLike, target: IntLike) -> float:
    """Share of exact matches."""
    p, t = np.asarray(predicted), np.asarray(target)
    return float((p == t).mean()) if t.size else 0.0


def chroma_accuracy(predicted_pitch: IntLike, target_pitch: IntLike) -> float:
    """Share of predictions with the right pitch class (C, C#, ...), octave errors forgiven."""
    return accuracy(np.asarray(predicted_pitch) % 12, np.asarray(target_pitch) % 12)


def average_precision(scores: npt.NDArray[np.floating], positive: npt.NDArray[np.bool_]) -> float:
    """Area under the precision-recall curve of one class: sum over thresholds of precision times
    the recall gained there. Tied scores form one threshold (as scikit-learn does), so a constant
    scorer gets the class's prevalence, never a lucky ordering.
    """
    if not positive.any():
        raise ValueError("average precision needs at least one positive")
    order = np.argsort(-scores, kind="stable")
    ranked_scores, hits = scores[order], positive[order].astype(np.float64)
    last_of_tie = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]  # end of each threshold
    true_positives = np.cumsum(hits)[last_of_tie]
    counted = (np.arange(1, len(hits) + 1))[last_of_tie]
    recall_gain = np.diff(np.r_[0.0, true_positives]) / hits.sum()
    return float(np.sum(recall_gain * true_positives / counted))


def mean_average_precision(
    scores: npt.NDArray[np.floating], targets: npt.NDArray[np.bool_]
) -> float:
    """(N, C) scores and multi-hot targets -> mAP over the classes that have a positive."""
    present = [c for c in range(targets.shape[1]) if targets[:, c].any()]
    return float(np.mean([average_precision(scores[:, c], targets[:, c]) for c in present]))
