"""Duration-bounded batches and collation, against invariants and a hand-made reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uts.audio.fbank import NUM_MEL_BINS
from uts.models.zipformer import Zipformer
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


def test_non_finite_steps_are_skipped_and_three_in_a_row_stop() -> None:
    from uts.models.zipformer import preset as zipformer
    from uts.objectives import MTC, Pretrainer
    from uts.train import SkipGuard, build_optimizer, train_step

    torch.manual_seed(0)
    model = Pretrainer(
        Zipformer(zipformer("xs", dropout=0.0, layer_skip=0.0)), MTC(128, 4, dropout=0.0)
    )
    optimizer, _ = build_optimizer(model, "adamw", warmup_steps=1)
    batch = {"feats": torch.randn(2, 120, NUM_MEL_BINS), "feat_lens": torch.tensor([120, 100]),
             "targets": torch.eye(2, 4)}  # fmt: skip
    before = [p.detach().clone() for p in model.parameters()]
    bad = {**batch, "feats": batch["feats"].clone().fill_(float("nan"))}
    metrics = train_step(model, bad, optimizer)
    assert metrics["skipped"] == 1.0
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
    )  # no update
    # one rank finite, another not: agree() says skip, and this rank skips too
    assert train_step(model, batch, optimizer, agree=lambda finite: False)["skipped"] == 1.0
    assert train_step(model, batch, optimizer)["skipped"] == 0.0  # and a good step still learns
    guard = SkipGuard(limit=3)
    guard.update(True, step=1, clip_ids=["a"])
    guard.update(False, step=2, clip_ids=["b"])
    guard.update(True, step=3, clip_ids=["c"])
    guard.update(True, step=4, clip_ids=["d"])
    with pytest.raises(
        FloatingPointError, match=r"3 steps in a row \(last at step 5\).*'e1', 'e2'"
    ):
        guard.update(True, step=5, clip_ids=["e1", "e2"])
    assert guard.total == 4


def test_featurize_matches_fbank_of_each_clip_alone() -> None:
    from uts.audio.fbank import Fbank
    from uts.audio.io import decode_flac, encode_flac
    from uts.tags.vocab import Vocabulary
    from uts.train.features import featurize

    rng = np.random.default_rng(0)
    rows = [{"clip_id": f"k{i}", "duration_s": n / 16000, "audio": encode_flac(0.3 * rng.standard_normal(n).astype(np.float32))}
            for i, n in enumerate([48000, 16000, 32000])]  # fmt: skip
    vocab = Vocabulary(tags=("dog", "rain", "car"), df=(3, 2, 1), score=(3.0, 2.0, 1.0), n_clips=5)
    examples = featurize(rows, {"k0": ["rain"], "k1": ["car", "zebra"]}, vocab)
    assert [e["clip_id"] for e in examples] == ["k1", "k2", "k0"]  # shortest first
    for example in examples:
        row = next(r for r in rows if r["clip_id"] == example["clip_id"])
        alone, n = Fbank()([decode_flac(row["audio"])])
        got = np.frombuffer(example["feats"], np.float32).reshape(-1, NUM_MEL_BINS)
        assert example["frames"] == int(n[0]) == len(got)
        np.testing.assert_allclose(
            got, alone[0, : int(n[0])].numpy(), atol=1e-4
        )  # batch-independent
    assert {e["clip_id"]: e["targets"] for e in examples} == {"k0": [1], "k1": [2], "k2": []}
