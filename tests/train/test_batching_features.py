"""Duration-bounded batches and collation, against invariants and a hand-made reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uts.audio.fbank import NUM_MEL_BINS
from uts.train.batching import duration_batches
from uts.train.config import PRESETS, PretrainConfig, preset
from uts.train.features import collate


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.1, 30.0), max_size=300),
    st.floats(5.0, 100.0),
    st.integers(1, 64),
    st.integers(0, 3),
)
def test_every_clip_once_and_within_budget(
    durations: list[float], budget: float, window: int, seed: int
) -> None:
    items = list(enumerate(durations))
    batches = list(
        duration_batches(items, lambda x: x[1], max_seconds=budget, window=window, seed=seed)
    )
    assert sorted(i for b in batches for i, _ in b) == list(range(len(items)))
    for batch in batches:
        longest = max(d for _, d in batch)
        assert len(batch) == 1 or len(batch) * longest <= budget  # padded cost within budget
    again = list(
        duration_batches(items, lambda x: x[1], max_seconds=budget, window=window, seed=seed)
    )
    assert again == batches  # deterministic


def test_similar_lengths_go_together() -> None:
    durations = [1.0, 10.0, 1.1, 9.9, 1.2, 10.1]
    batches = list(duration_batches(durations, float, max_seconds=31.0, window=6))
    assert sorted(map(sorted, batches)) == [[1.0, 1.1, 1.2], [9.9, 10.0, 10.1]]
    with pytest.raises(ValueError, match="positive"):
        list(duration_batches(durations, float, max_seconds=0))


def test_collate_pads_and_builds_targets() -> None:
    a = np.ones((3, NUM_MEL_BINS), np.float32)
    b = 2 * np.ones((5, NUM_MEL_BINS), np.float32)
    examples = [
        {
            "clip_id": "a",
            "feats": a.tobytes(),
            "frames": 3,
            "targets": [0, 7],
            "tag_string": "dog, bark",
        },
        {"clip_id": "b", "feats": b.tobytes(), "frames": 5, "targets": [2], "tag_string": "rain"},
    ]
    batch = collate(examples, num_tags=4)  # tag 7 is beyond K=4: ignored
    assert batch["feats"].shape == (2, 5, NUM_MEL_BINS) and batch["feat_lens"].tolist() == [3, 5]
    assert torch.equal(batch["feats"][0, 3:], torch.zeros(2, NUM_MEL_BINS))  # padding
    assert batch["targets"].tolist() == [[1, 0, 0, 0], [0, 0, 1, 0]]
    assert batch["clip_ids"] == ["a", "b"]


def test_presets_load_and_split_the_batch() -> None:
    for name in PRESETS:
        config = preset(name)
        assert isinstance(config, PretrainConfig) and config.per_worker_seconds() > 0
    assert preset("m").per_worker_seconds() == 80.0  # 640 audio-seconds over 8 V100s
    assert preset("smoke", k=7, objective=None).k == 7
    with pytest.raises(KeyError, match="known"):
        preset("huge")
