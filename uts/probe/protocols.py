"""Probe protocols on frozen clip embeddings: (N, D) embeddings and labels in, (N_test, C) scores out.

`fit_predict(protocol, ...)` dispatches to one `fit_predict_<protocol>` function per protocol:

- `logistic`: standardise -> L-BFGS logistic regression, L2 picked on validation, refit on
  train+valid (the log-mel baseline's protocol).
- `linear`: the paper's frozen-encoder linear probe (Dropout + Linear, fixed step budget).
- `xares`: X-ARES style LayerNorm + Linear, best validation epoch of 10.
- `knn`: temperature-weighted k nearest neighbours by cosine similarity.
- `mlp`: HEAR style MLP grid with early stopping on validation.

Labels are one-hot (multiclass) or multi-hot (multilabel) float rows. Validation selects by accuracy
(multiclass) or mAP (multilabel). Every protocol is deterministic for a given seed on CPU: it seeds
torch inside `torch.random.fork_rng`, so the caller's random state is left as it was. What the
protocols share (input checks, seeding, losses, the early-stopping loop) is uts.probe.fitting.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from uts.probe.fitting import (
    Matrix,
    checked_arrays,
    head_loss,
    predict,
    probabilities,
    seeded,
    step_batches,
    train_head,
    unit_rows,
    validation_metric,
)

__all__ = [
    "PROTOCOLS",
    "WEIGHT_DECAYS",
    "fit_logistic",
    "fit_predict",
    "fit_predict_knn",
    "fit_predict_linear",
    "fit_predict_logistic",
    "fit_predict_mlp",
    "fit_predict_xares",
    "frame_logits_pooled",
    "validation_metric",
]

PROTOCOLS = ("logistic", "linear", "xares", "knn", "mlp")
WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)  # logistic: picked on the validation split
MLP_LEARNING_RATES = (3.2e-3, 1e-3, 3.2e-4, 1e-4)
MLP_DEPTHS = (1, 2)  # hidden layers


def fit_logistic(x: Matrix, y: Matrix, *, multilabel: bool, weight_decay: float) -> torch.nn.Linear:
    """Full-batch L-BFGS logistic regression: softmax (y one-hot) or one-vs-rest sigmoid."""
    torch.manual_seed(0)
    features, targets = torch.from_numpy(x), torch.from_numpy(y)
    model = torch.nn.Linear(x.shape[1], y.shape[1])
    optimiser = torch.optim.LBFGS(
        model.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = model(features)
        loss = head_loss(logits, targets, multilabel=multilabel)
        loss = loss + weight_decay * model.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call]
    return model


def fit_predict_logistic(
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS,
    fallback_decay: float = 1e-2,
) -> tuple[Matrix, float]:
    """Standardise with train statistics, pick the L2 weight decay on validation, refit on
    train+valid. With no validation rows the decay is `fallback_decay`.

    Returns:
        (N_test, C) logits and the chosen weight decay.
    """
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_valid, x_test = ((x - mean) / std for x in (x_train, x_valid, x_test))
    best: tuple[float, float] | None = None if len(x_valid) else (0.0, fallback_decay)
    for decay in weight_decays if best is None else ():
        model = fit_logistic(x_train, y_train, multilabel=multilabel, weight_decay=decay)
        with torch.no_grad():
            valid_scores = model(torch.from_numpy(x_valid)).numpy()
        value = validation_metric(valid_scores, y_valid, multilabel=multilabel)
        if best is None or value > best[0]:  # ties keep the smaller decay
            best = (value, decay)
    assert best is not None
    model = fit_logistic(
        np.r_[x_train, x_valid],
        np.r_[y_train, y_valid],
        multilabel=multilabel,
        weight_decay=best[1],
    )
    with torch.no_grad():
        logits: Matrix = model(torch.from_numpy(x_test)).numpy()
    return logits, best[1]


def fit_predict_linear(
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    seed: int = 0,
    steps: int = 1000,
    batch: int = 64,
    lr: float = 1e-3,
    dropout: float = 0.1,
) -> Matrix:
    """The paper's linear probe: frozen encoder, per-frame Dropout(0.1) + Linear, logits mean-pooled
    over the valid frames, cross-entropy (multiclass) or BCE (multilabel), Adam, a fixed step budget,
    the last checkpoint, no selection on validation (it trains on train+valid).

    Because mean_t(W x_t + b) = W mean_t(x_t) + b, the head is trained here on the pooled
    embeddings with the dropout on the pooled vector: exact at evaluation (see
    `frame_logits_pooled`); per-frame versus pooled dropout is the only approximation in training.
    Inputs are standardised with the training statistics first: an affine map of every frame, so
    the identity still holds, and one learning rate suits encoders whose output scales differ
    (without it a fixed budget at lr 1e-3 leaves some encoders far from converged).
    """
    x, y = np.r_[x_train, x_valid], np.r_[y_train, y_valid]
    mean, std = x.mean(0), x.std(0) + 1e-6
    x, x_test = ((x - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
    with seeded(seed):
        head = torch.nn.Sequential(
            torch.nn.Dropout(dropout), torch.nn.Linear(x.shape[1], y.shape[1])
        )
        optimiser = torch.optim.Adam(head.parameters(), lr=lr)
        features, targets = torch.from_numpy(x), torch.from_numpy(y)
        for indices in step_batches(len(x), batch, steps):
            optimiser.zero_grad()
            head_loss(head(features[indices]), targets[indices], multilabel=multilabel).backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        return predict(head, x_test, multilabel=multilabel)


def frame_logits_pooled(
    linear: torch.nn.Linear, frames: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """(B, T, D) frames and (B,) valid lengths -> (B, C): the linear head on every valid frame, its
    logits averaged over the valid frames (equal to the head on the masked-mean embedding).

    Raises:
        ValueError: a length outside 1..T.
    """
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > frames.shape[1]):
        raise ValueError(f"lengths must lie in 1..{frames.shape[1]} (T), got {lengths.tolist()}")
    logits = linear(frames)  # (B, T, C)
    valid = torch.arange(frames.shape[1], device=frames.device) < lengths[:, None]  # (B, T)
    summed: torch.Tensor = (logits * valid[..., None]).sum(1)  # (B, C)
    return summed / lengths[:, None].to(logits.dtype)


def fit_predict_xares(
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    seed: int = 0,
    epochs: int = 10,
    batch: int = 32,
    lr: float = 1e-3,
) -> Matrix:
    """X-ARES style: LayerNorm + Linear on the pooled embeddings, Adam with a cosine schedule over
    all steps, trained on train; the weights of the epoch with the best validation metric are kept
    (the last epoch when there are no validation rows).

    The Linear starts at zero (X-ARES uses Xavier-uniform): ten epochs of a few hundred clips are
    some tens of steps at lr 1e-3, too few to wash out a random start, which then decides the
    score of small tasks. A zero Linear starts from uniform predictions, and on large tasks the
    start washes out anyway; the seed still drives the shuffling.
    """
    with seeded(seed):
        linear = torch.nn.Linear(x_train.shape[1], y_train.shape[1])
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        head = torch.nn.Sequential(torch.nn.LayerNorm(x_train.shape[1]), linear)
        optimiser = torch.optim.Adam(head.parameters(), lr=lr)
        total = epochs * math.ceil(len(x_train) / batch)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(total, 1))
        train_head(
            head,
            optimiser,
            schedule,
            (x_train, y_train),
            (x_valid, y_valid),
            multilabel=multilabel,
            batch=batch,
            epochs=epochs,
            patience=epochs,
        )
        return predict(head, x_test, multilabel=multilabel)


def fit_predict_knn(
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    seed: int = 0,
    k: int = 10,
    temperature: float = 0.07,
    chunk_elements: int = 1 << 24,
) -> Matrix:
    """Weighted kNN: L2-normalised embeddings, cosine similarity of each test row to the bank
    (train+valid), the top-k neighbours weighted by exp(similarity / temperature); a row's scores
    are its neighbours' label vectors averaged with those weights. Test rows go in chunks so the
    similarity block holds about `chunk_elements` floats. Neighbours tied at the k-th similarity
    are taken in an unspecified order. `multilabel` and `seed` are unused (no training).
    """
    del multilabel, seed
    bank = unit_rows(torch.from_numpy(np.r_[x_train, x_valid]))  # (N_bank, D)
    labels = torch.from_numpy(np.r_[y_train, y_valid])  # (N_bank, C)
    k = min(k, len(bank))
    rows = max(1, chunk_elements // len(bank))
    out = np.zeros((len(x_test), labels.shape[1]), np.float32)
    for start in range(0, len(x_test), rows):
        queries = unit_rows(torch.from_numpy(x_test[start : start + rows]))  # (R, D)
        top, neighbours = (queries @ bank.T).topk(k, dim=1)  # (R, k) similarities and indices
        # Shifted by the row's best similarity: the normalisation cancels it, exp cannot overflow.
        weights = torch.exp((top - top[:, :1]) / temperature)  # (R, k)
        votes = torch.einsum("rk,rkc->rc", weights, labels[neighbours])  # (R, C)
        out[start : start + rows] = (votes / weights.sum(1, keepdim=True)).numpy()
    return out


def fit_predict_mlp(
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    seed: int = 0,
    hidden: int = 1024,
    max_epochs: int = 500,
    patience: int = 20,
    batch: int = 1024,
    dropout: float = 0.1,
) -> Matrix:
    """HEAR style: standardised inputs, an MLP (ReLU, dropout) for each learning rate in
    MLP_LEARNING_RATES and depth in MLP_DEPTHS, Adam, trained on train with early stopping on the
    validation metric; the test scores of the best grid point at its best epoch. Each grid point is
    seeded with `seed`, so its result does not depend on the grid's order. With no validation rows:
    learning rate 1e-3, one hidden layer, a fixed 100 epochs, last epoch.
    """
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_valid, x_test = ((x - mean) / std for x in (x_train, x_valid, x_test))
    if len(x_valid):
        grid = [(lr, depth) for lr in MLP_LEARNING_RATES for depth in MLP_DEPTHS]
    else:
        grid, max_epochs = [(1e-3, 1)], 100
    best: tuple[float, Matrix] | None = None
    for lr, depth in grid:
        with seeded(seed):
            widths = [x_train.shape[1]] + [hidden] * depth
            layers: list[torch.nn.Module] = []
            for width_in, width_out in itertools.pairwise(widths):
                layers += [
                    torch.nn.Linear(width_in, width_out),
                    torch.nn.ReLU(),
                    torch.nn.Dropout(dropout),
                ]
            model = torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], y_train.shape[1]))
            optimiser = torch.optim.Adam(model.parameters(), lr=lr)
            value = train_head(
                model,
                optimiser,
                None,
                (x_train, y_train),
                (x_valid, y_valid),
                multilabel=multilabel,
                batch=batch,
                epochs=max_epochs,
                patience=patience,
            )
            if best is None or value > best[0]:  # ties keep the earlier grid point
                best = (value, predict(model, x_test, multilabel=multilabel))
        if best[0] >= 1.0:  # a perfect validation score cannot be beaten: the rest is moot
            break
    assert best is not None
    return best[1]


def fit_predict(
    protocol: str,
    x_train: Matrix,
    y_train: Matrix,
    x_valid: Matrix,
    y_valid: Matrix,
    x_test: Matrix,
    *,
    multilabel: bool,
    seed: int = 0,
    **options: Any,
) -> Matrix:
    """Fit `protocol` on the embeddings and score the test rows.

    Args:
        protocol: one of PROTOCOLS.
        x_train, x_valid, x_test: (N, D) float32 clip embeddings; x_valid may have 0 rows.
        y_train, y_valid: (N, C) float32 one-hot (multiclass) or multi-hot (multilabel) labels.
        multilabel: BCE and sigmoid scores, validation by mAP; else cross-entropy, softmax and
            accuracy.
        seed: seeds initialisation, shuffling and dropout.
        options: protocol-specific keywords (e.g. `steps` for linear, `k` for knn); see the
            `fit_predict_<protocol>` functions.

    Returns:
        (N_test, C) float32 scores, higher = more likely: softmax (multiclass) or sigmoid
        (multilabel) probabilities; knn returns its weighted label votes, also in [0, 1]. A
        float32 sigmoid is 1.0 for logits above about 17, and tied scores are one threshold in
        average precision, so confident errors among confident hits cost some mAP.

    Raises:
        ValueError: an unknown protocol, arrays whose shapes disagree, or a multiclass label row
            that is not one-hot.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown probe protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    x_train, y_train, x_valid, y_valid, x_test = checked_arrays(
        protocol, x_train, y_train, x_valid, y_valid, x_test, multilabel=multilabel
    )
    if protocol == "logistic":
        with seeded(seed):  # fit_logistic seeds torch itself; keep that from leaking out
            logits, _ = fit_predict_logistic(
                x_train, y_train, x_valid, y_valid, x_test, multilabel=multilabel, **options
            )
        return probabilities(torch.from_numpy(logits), multilabel=multilabel)
    fitters: dict[str, Callable[..., Matrix]] = {
        "linear": fit_predict_linear,
        "xares": fit_predict_xares,
        "knn": fit_predict_knn,
        "mlp": fit_predict_mlp,
    }
    return fitters[protocol](
        x_train, y_train, x_valid, y_valid, x_test, multilabel=multilabel, seed=seed, **options
    )
