"""Encoders compared on probe tasks: clip embeddings -> a protocol (uts.probe.protocols) -> scores
per seeded split, with the majority class beside every number, summarised as mean and std.

A task is read once (`load_task`); its `clips_fingerprint` names the clips (and where their audio
comes from), which is what an embedding cache is keyed by: embeddings do not depend on the splits.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.probe.metrics import accuracy, chroma_accuracy, mean_average_precision
from uts.probe.tasks import SPLITS, read_task

__all__ = [
    "DOMAINS",
    "TaskSpec",
    "domain_means",
    "evaluate_task",
    "load_task",
    "majority_scores",
    "score_predictions",
    "seed_means",
    "split_arrays",
    "summarize",
]

Matrix = npt.NDArray[np.float32]
DOMAINS = ("speech", "music", "environment")
# Task folders written before task.json carried a domain (the demo tasks of TASKS_VERSION 1).
_KNOWN_DOMAINS = {
    "speaker_id": "speech", "speaker_id_hedgewars": "speech", "expression": "speech",
    "instrument_family_seen": "music", "instrument_family_unseen": "music", "pitch": "music",
    "environment_category": "environment", "sound_attributes": "mixed",
}  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """A probe task folder, read: metadata, label vocabulary and the seeded splits."""

    name: str
    folder: Path
    meta: dict[str, Any]
    vocabulary: list[str]
    splits: dict[int, dict[str, dict[str, list[str]]]]  # seed -> split -> clip -> labels

    @property
    def domain(self) -> str:
        return str(self.meta.get("domain") or _KNOWN_DOMAINS.get(self.name, "other"))

    @property
    def multilabel(self) -> bool:
        return bool(self.meta["prediction_type"] == "multilabel")

    @property
    def metric(self) -> str:
        return "mAP" if self.multilabel else "accuracy"

    def clips(self) -> list[str]:
        """Every clip id (or audio file path) the task uses, sorted."""
        return sorted(
            {c for parts in self.splits.values() for part in parts.values() for c in part}
        )

    def clips_fingerprint(self) -> str:
        """Names the task's clips and their audio source: an embedding cache key."""
        body = json.dumps([self.meta.get("audio", {}), self.clips()], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def definition_fingerprint(self) -> str:
        """Names everything a probe result depends on besides the embeddings and the protocol:
        metadata, label vocabulary and every seeded split with its labels."""
        body = json.dumps([self.meta, self.vocabulary, self.splits], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def load_task(folder: Path) -> TaskSpec:
    """Read a task folder (task.json, labelvocabulary.csv, split<seed>/*.json).

    Raises:
        FileNotFoundError: a file of the layout is missing (the message names it).
        ValueError: a split names a label outside the vocabulary.
    """
    for needed in ("task.json", "labelvocabulary.csv"):
        if not (folder / needed).exists():
            raise FileNotFoundError(f"{folder} is not a task folder: no {needed}")
    meta, vocabulary, splits = read_task(folder)
    known = set(vocabulary)
    for seed, parts in splits.items():
        for split, labelled in parts.items():
            for clip, labels in labelled.items():
                unknown = [label for label in labels if label not in known]
                if unknown:
                    raise ValueError(f"{folder}/split{seed}/{split}.json: clip {clip!r} has label(s) "
                                     f"{unknown} outside labelvocabulary.csv")  # fmt: skip
    return TaskSpec(str(meta.get("name", folder.name)), folder, meta, vocabulary, splits)


def score_predictions(task: TaskSpec, scores: Matrix, y: Matrix) -> dict[str, float]:
    """The task's metric (and its extra metrics) of (N, C) scores against one/multi-hot targets."""
    if task.multilabel:
        return {"mAP": mean_average_precision(scores, y.astype(bool))}
    predicted, target = scores.argmax(1), y.argmax(1)
    result = {"accuracy": accuracy(predicted, target)}
    if "chroma_accuracy" in task.meta.get("extra_metrics", ()):
        pitch = np.asarray([int(v) for v in task.vocabulary])
        result["chroma_accuracy"] = chroma_accuracy(pitch[predicted], pitch[target])
    return result


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def split_arrays(
    task: TaskSpec, part: Mapping[str, Sequence[str]], features: Mapping[str, Matrix]
) -> tuple[Matrix, Matrix]:
    index = {label: i for i, label in enumerate(task.vocabulary)}
    clips = sorted(part)
    width = len(next(iter(features.values())))
    x = np.asarray([features[c] for c in clips], np.float32).reshape(len(clips), width)
    y = np.zeros((len(clips), len(task.vocabulary)), np.float32)
    for row, clip in enumerate(clips):
        y[row, [index[label] for label in part[clip]]] = 1.0
    return x, y


def majority_scores(task: TaskSpec, y_seen: Matrix, n_test: int) -> Matrix:
    """Scores of the trivial predictor: label prevalence (multilabel) or the most common class."""
    if task.multilabel:
        return np.tile(y_seen.mean(0), (n_test, 1)).astype(np.float32)
    top = Counter(y_seen.argmax(1).tolist()).most_common(1)[0][0]
    return np.tile(np.eye(len(task.vocabulary), dtype=np.float32)[top], (n_test, 1))


def evaluate_task(
    task: TaskSpec, features: Mapping[str, Matrix], *, protocol: str, seeds: int | None = None
) -> dict[str, Any]:
    """Fit and score `protocol` on each of the first `seeds` splits (all by default).

    Raises:
        KeyError: a clip of the task has no embedding in `features`.
        ValueError: a split has no training or no test clips.
    """
    from uts.probe.protocols import fit_predict

    missing = [c for c in task.clips() if c not in features]
    if missing:
        raise KeyError(
            f"task {task.name}: {len(missing)} clip(s) without an embedding, e.g. {missing[0]!r}"
        )
    per_seed: list[dict[str, Any]] = []
    for seed, parts in sorted(task.splits.items())[:seeds]:
        if not parts["train"] or not parts["test"]:
            raise ValueError(f"task {task.name}: split {seed} has an empty train or test set")
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
            split_arrays(task, parts[s], features) for s in SPLITS
        )
        scores = fit_predict(protocol, x_train, y_train, x_valid, y_valid, x_test,
                             multilabel=task.multilabel, seed=seed)  # fmt: skip
        majority = majority_scores(task, np.r_[y_train, y_valid], len(x_test))
        per_seed.append({
            "seed": seed, "n_train": len(x_train), "n_valid": len(x_valid), "n_test": len(x_test),
            "score": score_predictions(task, scores, y_test),
            "majority": score_predictions(task, majority, y_test),
        })  # fmt: skip
    result: dict[str, Any] = {
        "task": task.name, "domain": task.domain, "metric": task.metric, "protocol": protocol,
        "prediction_type": task.meta["prediction_type"], "n_clips": len(task.clips()),
        "seeds": [s["seed"] for s in per_seed],
    }  # fmt: skip
    for kind in ("score", "majority"):
        for metric in per_seed[0][kind]:
            key = kind if metric == task.metric else f"{kind}_{metric}"
            result[key] = summarize([s[kind][metric] for s in per_seed])
    result["per_seed"] = per_seed
    return result


def domain_means(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Mean score per domain (speech, music, environment) over the tasks of that domain, and the
    mean over all tasks ("all")."""
    by_domain: dict[str, list[float]] = {}
    for result in results.values():
        by_domain.setdefault(str(result["domain"]), []).append(float(result["score"]["mean"]))
    out = {d: float(np.mean(by_domain[d])) for d in DOMAINS if d in by_domain}
    if results:
        out["all"] = float(np.mean([float(r["score"]["mean"]) for r in results.values()]))
    return out


def seed_means(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The mean of all tasks computed per seed (tasks scored on the same seeded splits), then its
    mean and std over the seeds: the spread of the headline number, not of single tasks."""
    by_seed: dict[int, list[float]] = {}
    for result in results.values():
        for entry in result.get("per_seed", []):
            value = entry["score"][result["metric"]]
            by_seed.setdefault(int(entry["seed"]), []).append(float(value))
    complete = [float(np.mean(v)) for v in by_seed.values() if len(v) == len(results)]
    return summarize(complete) if complete else {}
