"""Probe task folders (HEAR-style) and group-aware splits.

A task folder `tasks/<name>/` holds:
- `task.json`: name, prediction_type (multiclass | multilabel), metric (accuracy | mAP),
  extra_metrics, domain (speech | music | environment), split_mode, audio (where clips come from: {"corpus": NAME} or {"folder": "audio"}),
  weak_labels, notes, seeds;
- `labelvocabulary.csv`: `idx,label`;
- `split<seed>/{train,valid,test}.json`: {clip id (or file path under the audio folder): [labels]}.
Splits never put one group (phrase, speaker, program, sound file: whatever the task names) on two
sides. The same layout is what a user writes for FSD50K, VGGSound, VoxCeleb2, CREMA-D, MTAT, NSynth.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SPLITS", "Task", "group_split", "read_task", "write_task"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True, kw_only=True)
class Task:
    """A probe task: clips with labels, and how to split and score them."""

    name: str
    prediction_type: str  # multiclass | multilabel
    metric: str  # accuracy | mAP
    labels: Mapping[str, tuple[str, ...]]  # clip id -> labels (one for multiclass)
    groups: Mapping[str, str]  # clip id -> group; a group never spans two splits
    audio: Mapping[str, str] = field(
        default_factory=dict
    )  # {"corpus": NAME} or {"folder": "audio"}
    extra_metrics: tuple[str, ...] = ()
    domain: str = ""  # speech | music | environment (the report's domain means); "" = other
    weak_labels: bool = False
    notes: str = ""
    fixed_test: frozenset[str] = frozenset()  # clips that must be the test set (an unseen-X task)

    def vocabulary(self) -> list[str]:
        return sorted(
            {label for labels in self.labels.values() for label in labels}, key=_label_key
        )


def _label_key(label: str) -> tuple[int, str]:
    return (0, f"{int(label):08d}") if label.isdigit() else (1, label)


def group_split(
    groups: Mapping[str, str], seed: int, *, shares: tuple[float, float, float] = (0.7, 0.1, 0.2),
    fixed_test: frozenset[str] = frozenset(),
) -> dict[str, list[str]]:  # fmt: skip
    """Assign whole groups to train/valid/test so that clip counts approach `shares`.

    With `fixed_test`, those clips are the test set and the rest is split into train/valid.
    """
    by_group: dict[str, list[str]] = defaultdict(list)
    for clip, group in sorted(groups.items()):
        if clip not in fixed_test:
            by_group[group].append(clip)
    order = sorted(by_group)
    random.Random(seed).shuffle(order)
    total = sum(len(v) for v in by_group.values())
    if fixed_test:
        shares = (shares[0] / (shares[0] + shares[1]), shares[1] / (shares[0] + shares[1]), 0.0)
    split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for group in order:  # fill the split furthest below its target share
        name = min(
            SPLITS, key=lambda s: (len(split[s]) / total - shares[SPLITS.index(s)], SPLITS.index(s))
        )
        split[name].extend(by_group[group])
    split["test"].extend(sorted(fixed_test))
    return {s: sorted(v) for s, v in split.items()}


def write_task(task: Task, folder: Path, *, seeds: Sequence[int] = (0, 1, 2)) -> None:
    """Write the task folder (task.json, labelvocabulary.csv, split<seed>/*.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = task.vocabulary()
    meta = {k: v for k, v in asdict(task).items() if k not in ("labels", "groups", "fixed_test")}
    meta.update(
        task_name=task.name, n_clips=len(task.labels), n_labels=len(vocabulary), seeds=list(seeds),
        split_mode="group-aware, one split per seed" + (", fixed test set" if task.fixed_test else ""),
    )  # fmt: skip
    (folder / "task.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["idx", "label"])
    writer.writerows(enumerate(vocabulary))
    (folder / "labelvocabulary.csv").write_text(buffer.getvalue(), "utf-8")
    for seed in seeds:
        parts = group_split(task.groups, seed, fixed_test=task.fixed_test)
        (folder / f"split{seed}").mkdir(exist_ok=True)
        for name, clips in parts.items():
            body = {clip: list(task.labels[clip]) for clip in clips}
            (folder / f"split{seed}" / f"{name}.json").write_text(
                json.dumps(body, ensure_ascii=False) + "\n", "utf-8"
            )


def read_task(
    folder: Path,
) -> tuple[dict[str, Any], list[str], dict[int, dict[str, dict[str, list[str]]]]]:
    """(task.json, label vocabulary, {seed: {split: {clip: labels}}}) of a task folder."""
    meta = json.loads((folder / "task.json").read_text("utf-8"))
    with (folder / "labelvocabulary.csv").open(encoding="utf-8") as f:
        vocabulary = [row["label"] for row in csv.DictReader(f)]
    splits = {
        seed: {
            name: json.loads((folder / f"split{seed}" / f"{name}.json").read_text("utf-8"))
            for name in SPLITS
        }
        for seed in meta["seeds"]
    }
    return meta, vocabulary, splits
