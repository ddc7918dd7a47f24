"""Probe metrics against brute-force references, split invariants, and the baseline on known data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uts.probe.baseline import run_baseline
from uts.probe.metrics import accuracy, average_precision, chroma_accuracy, mean_average_precision
from uts.probe.tasks import Task, group_split, read_task, write_task


def reference_ap(scores: list[float], positive: list[bool]) -> float:
    """Precision at each positive's rank, every tie counted against us."""
    values = []
    for i, (s, p) in enumerate(zip(scores, positive, strict=True)):
        if p:
            above = [j for j, t in enumerate(scores) if t > s or (t == s and j != i)]
            hits = sum(positive[j] for j in above) + 1
            values.append(hits / (len(above) + 1))
    return sum(values) / len(values)


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30).filter(
        lambda r: any(p for _, p in r)
    )
)
def test_average_precision_matches_brute_force(rows: list[tuple[int, bool]]) -> None:
    scores, positive = [float(s) for s, _ in rows], [p for _, p in rows]
    assert average_precision(np.asarray(scores), np.asarray(positive)) == pytest.approx(
        reference_ap(scores, positive)
    )


def test_metric_golden_values() -> None:
    assert average_precision(
        np.array([0.9, 0.8, 0.7]), np.array([True, False, True])
    ) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.zeros(4), np.array([True, False, False, False])) == pytest.approx(
        0.25
    )
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert mean_average_precision(scores, np.array([[True, False], [False, True]])) == 1.0
    assert accuracy([1, 2, 3], [1, 2, 0]) == pytest.approx(2 / 3)
    assert chroma_accuracy([60, 72, 61], [48, 60, 60]) == pytest.approx(2 / 3)  # octaves forgiven


@settings(max_examples=50, deadline=None)
@given(groups=st.dictionaries(st.text(min_size=1, max_size=4), st.sampled_from("abcdefgh"), min_size=1, max_size=40),
       seed=st.integers(0, 5))  # fmt: skip
def test_group_split_keeps_groups_whole_and_covers_everything(
    groups: dict[str, str], seed: int
) -> None:
    parts = group_split(groups, seed)
    clips = [c for part in parts.values() for c in part]
    assert sorted(clips) == sorted(groups)  # every clip exactly once
    sides = {}
    for name, part in parts.items():
        for clip in part:
            assert sides.setdefault(groups[clip], name) == name  # a group on one side only
    assert group_split(groups, seed) == parts  # deterministic


def test_group_split_with_fixed_test() -> None:
    groups = {f"c{i}": f"g{i % 5}" for i in range(50)}
    fixed = frozenset({"c0", "c5"})
    parts = group_split(groups, 0, fixed_test=fixed)
    assert parts["test"] == ["c0", "c5"]
    assert not {"c0", "c5"} & set(parts["train"] + parts["valid"])


def test_task_folder_round_trip_and_baseline_on_separable_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels, groups, features = {}, {}, {}
    for i in range(120):
        label = ["low", "mid", "high"][i % 3]
        labels[f"clip{i}"], groups[f"clip{i}"] = (label,), f"g{i // 4}"
        centre = {"low": -3.0, "mid": 0.0, "high": 3.0}[label]
        features[f"clip{i}"] = (rng.normal(centre, 0.5, 128)).astype(np.float32)
    task = Task(
        name="toy", prediction_type="multiclass", metric="accuracy", labels=labels, groups=groups
    )
    write_task(task, tmp_path / "toy", seeds=(0, 1, 2))
    meta, vocabulary, splits = read_task(tmp_path / "toy")
    assert (
        vocabulary == ["high", "low", "mid"]
        and meta["n_clips"] == 120
        and sorted(splits) == [0, 1, 2]
    )
    for parts in splits.values():
        assert sum(len(p) for p in parts.values()) == 120
    result = run_baseline(meta, vocabulary, splits, features)
    assert result["baseline_accuracy"]["mean"] == 1.0  # separable: the baseline must get it all
    assert result["majority_accuracy"]["mean"] < 0.5
    noise = {k: rng.normal(0, 1, 128).astype(np.float32) for k in features}
    chance = run_baseline(meta, vocabulary, splits, noise)
    assert chance["baseline_accuracy"]["mean"] < 0.6  # no signal, no score
