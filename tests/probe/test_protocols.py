"""Probe protocols: accuracy on separable embeddings, kNN against a brute-force loop, mAP against
scikit-learn, the pooled-logit identity of the linear probe, determinism and input errors."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from uts.probe.metrics import mean_average_precision
from uts.probe.protocols import (
    PROTOCOLS,
    fit_predict,
    fit_predict_knn,
    fit_predict_logistic,
    frame_logits_pooled,
)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These heads are tiny, so every op is thread fork/join; on a shared machine with more runnable
    threads than cores each join waits for a descheduled thread (this file: 13 s on one thread,
    143 s on two under load). The protocols never set threads; only the tests do, and restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clusters(
    seed: int,
    *,
    sizes: tuple[int, int, int] = (200, 50, 100),
    dim: int = 32,
    n_clusters: int = 5,
    multilabel_classes: int = 0,
) -> Arrays:
    """Gaussian clusters far apart -> (x_train, y_train, x_valid, y_valid, x_test, y_test).

    Multiclass: the cluster is the class. Multilabel: each cluster carries a fixed multi-hot row,
    so every label is a union of clusters (linearly separable: few points in general position).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (n_clusters, dim))
    if multilabel_classes:
        rows = rng.random((n_clusters, multilabel_classes)) < 0.4
        rows[np.arange(multilabel_classes) % n_clusters, np.arange(multilabel_classes)] = True
    else:
        rows = np.eye(n_clusters, dtype=bool)
    out = []
    for n in sizes:
        which = np.arange(n) % n_clusters
        rng.shuffle(which)
        out.append((centres[which] + rng.normal(0.0, 1.0, (n, dim))).astype(np.float32))
        out.append(rows[which].astype(np.float32))
    return tuple(out)  # type: ignore[return-value]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_separable_multiclass_is_solved(protocol: str) -> None:
    x_train, y_train, x_valid, y_valid, x_test, y_test = clusters(0)
    scores = fit_predict(protocol, x_train, y_train, x_valid, y_valid, x_test, multilabel=False)
    assert scores.shape == y_test.shape and scores.dtype == np.float32
    assert (scores.argmax(1) == y_test.argmax(1)).mean() >= 0.98


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_without_validation_rows_the_fallback_still_solves_it(protocol: str) -> None:
    x_train, y_train, _, _, x_test, y_test = clusters(1, sizes=(150, 0, 60), dim=16)
    empty = np.zeros((0, 0), np.float32)  # any width: an empty split is taken as (0, D) / (0, C)
    options = {"steps": 200} if protocol == "linear" else {}  # linear never reads validation
    scores = fit_predict(
        protocol, x_train, y_train, empty, empty, x_test, multilabel=False, **options
    )
    assert (scores.argmax(1) == y_test.argmax(1)).mean() >= 0.98


@pytest.mark.parametrize("protocol", ["logistic", "linear", "xares", "mlp"])
def test_separable_multilabel_reaches_high_map(protocol: str) -> None:
    x_train, y_train, x_valid, y_valid, x_test, y_test = clusters(
        2, n_clusters=8, multilabel_classes=6
    )
    scores = fit_predict(protocol, x_train, y_train, x_valid, y_valid, x_test, multilabel=True)
    assert scores.min() >= 0.0 and scores.max() <= 1.0  # sigmoid probabilities
    assert mean_average_precision(scores, y_test.astype(bool)) >= 0.95


def test_logistic_protocol_is_the_baseline_selection_as_probabilities() -> None:
    x_train, y_train, x_valid, y_valid, x_test, _ = clusters(3, sizes=(60, 20, 30), dim=8)
    logits, decay = fit_predict_logistic(
        x_train, y_train, x_valid, y_valid, x_test, multilabel=False
    )
    scores = fit_predict("logistic", x_train, y_train, x_valid, y_valid, x_test, multilabel=False)
    assert decay in (1e-4, 1e-3, 1e-2, 1e-1)
    np.testing.assert_allclose(scores, torch.from_numpy(logits).softmax(1).numpy(), atol=1e-6)


def reference_knn(
    bank: list[list[float]], labels: list[list[float]], query: list[float], k: int, t: float
) -> list[float]:
    """Sort the bank by cosine similarity, weight the top k by exp(sim / t), average labels."""

    def unit(v: list[float]) -> list[float]:
        norm = math.sqrt(sum(a * a for a in v))
        return [a / norm for a in v]

    q = unit(query)
    sims = [
        (sum(a * b for a, b in zip(q, unit(row), strict=True)), i) for i, row in enumerate(bank)
    ]
    sims.sort(reverse=True)
    top = sims[:k]
    weights = [math.exp(s / t) for s, _ in top]
    return [
        sum(w * labels[i][c] for w, (_, i) in zip(weights, top, strict=True)) / sum(weights)
        for c in range(len(labels[0]))
    ]


@pytest.mark.parametrize(("k", "chunk_elements"), [(10, 1 << 24), (3, 100), (500, 7)])
def test_knn_matches_brute_force(k: int, chunk_elements: int) -> None:
    rng = np.random.default_rng(4)
    x_train, x_valid, x_test = (rng.normal(size=(n, 8)).astype(np.float32) for n in (50, 10, 15))
    y_train, y_valid = ((rng.random((n, 4)) < 0.4).astype(np.float32) for n in (50, 10))
    scores = fit_predict_knn(
        x_train,
        y_train,
        x_valid,
        y_valid,
        x_test,
        multilabel=True,
        k=k,
        chunk_elements=chunk_elements,
    )
    bank, labels = np.r_[x_train, x_valid].tolist(), np.r_[y_train, y_valid].tolist()
    expected = [reference_knn(bank, labels, q, k, 0.07) for q in x_test.tolist()]
    np.testing.assert_allclose(scores, np.asarray(expected), atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [False, True])
def test_map_matches_scikit_learn(seed: int, tied: bool) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, (40, 6)).astype(np.float64) if tied else rng.normal(size=(40, 6))
    targets = rng.random((40, 6)) < 0.3
    targets[:, 0] = False  # a class with no positive: left out by both
    present = targets.any(0)
    expected = metrics.average_precision_score(
        targets[:, present], scores[:, present], average="macro"
    )
    assert mean_average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)


def test_frame_logits_pooled_equals_linear_on_masked_mean() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 3)
    frames = torch.randn(4, 7, 5)
    lengths = torch.tensor([7, 1, 3, 5])
    for row, n in enumerate(lengths.tolist()):
        frames[row, n:] = 1e3  # padding must not leak in
    pooled = torch.stack([frames[row, :n].mean(0) for row, n in enumerate(lengths.tolist())])
    expected = linear(pooled)
    torch.testing.assert_close(
        frame_logits_pooled(linear, frames, lengths), expected, atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.7"):
        frame_logits_pooled(linear, frames, torch.tensor([7, 0, 3, 5]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_same_seed_same_scores_and_caller_rng_untouched(protocol: str) -> None:
    x_train, y_train, x_valid, y_valid, x_test, _ = clusters(5, sizes=(60, 20, 30), dim=16)
    stochastic = protocol in ("linear", "xares", "mlp")  # seeded init, shuffling or dropout
    options = {"steps": 100} if protocol == "linear" else {}  # the budget does not matter here
    state = torch.get_rng_state()
    runs = [
        fit_predict(
            protocol,
            x_train,
            y_train,
            x_valid,
            y_valid,
            x_test,
            multilabel=False,
            seed=seed,
            **options,
        )
        for seed in ((0, 0, 1) if stochastic else (0, 0))
    ]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    np.testing.assert_array_equal(runs[0], runs[1])
    if stochastic:
        assert not np.array_equal(runs[0], runs[2])


def test_unknown_protocol_names_the_known_ones() -> None:
    x_train, y_train, x_valid, y_valid, x_test, _ = clusters(6, sizes=(10, 5, 5), dim=4)
    with pytest.raises(ValueError, match=r"'svm'.*logistic, linear, xares, knn, mlp"):
        fit_predict("svm", x_train, y_train, x_valid, y_valid, x_test, multilabel=False)


def test_mismatched_shapes_are_reported() -> None:
    x_train, y_train, x_valid, y_valid, x_test, _ = clusters(7, sizes=(10, 5, 5), dim=4)
    with pytest.raises(ValueError, match=r"knn: embedding widths \(D\) differ.*x_test \(5, 3\)"):
        fit_predict("knn", x_train, y_train, x_valid, y_valid, x_test[:, :3], multilabel=False)
    with pytest.raises(ValueError, match="matching x/y row counts"):
        fit_predict("mlp", x_train, y_train[:-1], x_valid, y_valid, x_test, multilabel=False)
    y_bad = y_train.copy()
    y_bad[3] = 0.0
    with pytest.raises(ValueError, match="linear: multiclass y_train row 3 is not one-hot"):
        fit_predict("linear", x_train, y_bad, x_valid, y_valid, x_test, multilabel=False)
