"""Retrieval metrics against a brute-force ranking, the pessimistic tie rule, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from uts.probe.retrieval import retrieval_metrics, retrieval_ranks


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def first_right_position(scores: list[float], right: set[int]) -> int:
    """1-based position of the first right item after sorting by score, wrong items first on ties."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i in right))
    return next(position for position, i in enumerate(order, start=1) if i in right)


def reference_ranks(
    audio: np.ndarray, text: np.ndarray, owner: list[int]
) -> tuple[list[int], list[int], list[int]]:
    """Python loops over a full similarity matrix: (text->audio, audio->text, audio queries)."""
    sims = unit(text) @ unit(audio).T  # (N_t, N_a)
    t2a = [first_right_position(list(sims[j]), {owner[j]}) for j in range(len(owner))]
    queries = [i for i in range(len(audio)) if i in owner]
    a2t = [
        first_right_position(list(sims[:, i]), {j for j, o in enumerate(owner) if o == i})
        for i in queries
    ]
    return t2a, a2t, queries


def reference_summary(ranks: list[int]) -> dict[str, float]:
    out = {f"R@{k}": sum(r <= k for r in ranks) / len(ranks) for k in (1, 5, 10)}
    ordered = sorted(ranks)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {**out, "median_rank": float(median), "mean_rank": sum(ranks) / len(ranks)}


def test_identical_embeddings_rank_first() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(50, 16)).astype(np.float32)
    # every clip owns two texts: its own embedding, and a scaled copy (cosine is scale-free)
    text = np.concatenate([audio, 3.0 * audio])
    owner = list(range(50)) * 2
    metrics = retrieval_metrics(audio, text, owner)
    for direction in ("text_to_audio", "audio_to_text"):
        assert metrics[direction] == {
            "R@1": 1.0,
            "R@5": 1.0,
            "R@10": 1.0,
            "median_rank": 1.0,
            "mean_rank": 1.0,
        }
    assert (metrics["n_audio"], metrics["n_text"], metrics["n_audio_without_text"]) == (50, 100, 0)


@pytest.mark.parametrize("chunk_size", [1, 7, 512])
def test_matches_brute_force_with_several_texts_per_clip(chunk_size: int) -> None:
    rng = np.random.default_rng(1)
    n_audio, dim = 40, 8
    audio = rng.normal(size=(n_audio, dim))
    owner = [i for i in range(n_audio) for _ in range(int(rng.integers(0, 4)))]  # 0..3 texts each
    # texts near their clip, noisy enough that many rank below 1
    text = audio[owner] + rng.normal(scale=1.2, size=(len(owner), dim))
    t2a, a2t, queries = reference_ranks(audio, text, owner)

    ranks = retrieval_ranks(audio, text, owner, chunk_size=chunk_size)
    assert ranks.text_to_audio.tolist() == t2a
    assert ranks.audio_to_text.tolist() == a2t
    assert ranks.audio_queries.tolist() == queries
    assert min(max(t2a), max(a2t)) > 1  # the data is not trivially easy

    metrics = retrieval_metrics(audio, text, owner, chunk_size=chunk_size)
    assert metrics["text_to_audio"] == pytest.approx(reference_summary(t2a), rel=1e-12)
    assert metrics["audio_to_text"] == pytest.approx(reference_summary(a2t), rel=1e-12)
    assert metrics["n_audio_without_text"] == n_audio - len(queries) > 0


def test_ties_count_against_the_right_answer() -> None:
    # exactly representable vectors, so the tied similarities are bit-identical
    audio = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    # text 0 -> clip 1, tied with clip 0; text 1 -> clip 2, alone on its axis; text 2 -> clip 2,
    # orthogonal to it and tied (at 0) with clips 2 and 3
    text = np.array([[2.0, 0, 0], [0, 1.0, 0], [0, 0, 0.5]])
    owner = [1, 2, 2]
    ranks = retrieval_ranks(audio, text, owner)
    # text 0: clip 0 ties with its owner and counts above it -> 2
    # text 2: clips 0, 1 (sim 0) and 3 (sim 1) tie with or beat clip 2 (sim 0) -> 4
    assert ranks.text_to_audio.tolist() == [2, 1, 4]
    # clip 1 owns text 0 and shares its similarity (1) with nothing else -> 1;
    # clip 2's best text is text 1 (sim 1) -> 1
    assert ranks.audio_to_text.tolist() == [1, 1]
    assert ranks.audio_queries.tolist() == [1, 2]
    assert ranks.text_to_audio.tolist() == reference_ranks(audio, text, owner)[0]

    # audio -> text: clip 0's only text (2) ties with text 3 of clip 1 -> 2; clip 1's own texts
    # 0 and 1 tie with each other at the top, which does not push it down -> 1
    text = np.array([[0, 1.0], [0, 1.0], [1.0, 0], [1.0, 0]])
    ranks = retrieval_ranks(np.array([[1.0, 0], [0, 1.0]]), text, [1, 1, 0, 1])
    assert ranks.audio_to_text.tolist() == [2, 1]
    assert ranks.audio_to_text.tolist() == reference_ranks(np.eye(2), text, [1, 1, 0, 1])[1]

    # a constant encoder is ranked last, not first
    metrics = retrieval_metrics(np.ones((5, 3)), np.ones((5, 3)), list(range(5)))
    assert metrics["text_to_audio"]["median_rank"] == 5.0
    assert metrics["audio_to_text"]["R@1"] == 0.0


@pytest.mark.parametrize(
    ("audio", "text", "owner", "message"),
    [
        (np.ones((3, 4)), np.ones((2, 5)), [0, 1], "differ in width"),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 1, 2], "one clip index per text"),
        (np.ones((3, 4)), np.ones((2, 4)), [0, 3], r"text_owner\[1\] = 3 is out of range"),
        (np.ones((3, 4)), np.ones((2, 4)), [-1, 0], r"text_owner\[0\] = -1 is out of range"),
        (np.ones((3, 4)), np.ones((2, 4)), [0.0, 1.0], "integer clip indices"),
        (np.ones(4), np.ones((2, 4)), [0, 0], r"audio embeddings must have shape \(N, D\)"),
        (np.ones((3, 4)), np.zeros((0, 4)), [], r"text embeddings must have shape \(N, D\)"),
        (np.eye(3, 4), np.eye(2, 4) * [[1], [0]], [0, 1], "text embeddings: row 1 is all zeros"),
        (np.full((2, 4), np.nan), np.ones((2, 4)), [0, 1], "audio embeddings: row 0 is not finite"),
    ],
)
def test_bad_inputs_name_the_problem(
    audio: np.ndarray, text: np.ndarray, owner: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(audio, text, owner)


def test_bad_cutoffs() -> None:
    with pytest.raises(ValueError, match="ks must be positive integers"):
        retrieval_metrics(np.eye(2), np.eye(2), [0, 1], ks=(0, 5))
