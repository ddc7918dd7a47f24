"""What the probe protocols share (uts.probe.protocols): input checks, seeding that leaves the
caller's random state alone, the loss and scores of multiclass and multilabel heads, minibatch
indices, and the train-with-early-stopping loop of the trained heads.

Labels are one-hot (multiclass) or multi-hot (multilabel) float rows; validation selects by
accuracy (multiclass) or mAP (multilabel).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import torch

from uts.probe.metrics import accuracy, mean_average_precision

__all__ = [
    "Matrix",
    "checked_arrays",
    "epoch_batches",
    "head_loss",
    "predict",
    "probabilities",
    "seeded",
    "step_batches",
    "train_head",
    "unit_rows",
    "validation_metric",
]

Matrix = npt.NDArray[np.float32]


def validation_metric(scores: Matrix, y: Matrix, *, multilabel: bool) -> float:
    """Accuracy of the argmax (multiclass), or mAP over the classes with a positive (multilabel;
    0.0 when no class has one). Higher is better."""
    if multilabel:
        positive = y.astype(bool)
        return mean_average_precision(scores, positive) if positive.any() else 0.0
    return accuracy(scores.argmax(1), y.argmax(1))


def checked_arrays(protocol: str, *arrays: npt.ArrayLike, multilabel: bool) -> tuple[Matrix, ...]:
    """(x_train, y_train, x_valid, y_valid, x_test) as contiguous float32 2-D arrays; an empty
    validation split takes the train widths.

    Raises:
        ValueError: an array that is not 2-D, no train rows, x/y row counts or widths that
            disagree, or a multiclass label row that is not one-hot (the message names it).
    """
    names = ("x_train", "y_train", "x_valid", "y_valid", "x_test")
    out = [np.ascontiguousarray(a, np.float32) for a in arrays]
    shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out, strict=True))
    if any(a.ndim != 2 for a in out):
        raise ValueError(f"{protocol}: every array must be 2-D, (N, D) or (N, C); got {shapes}")
    x_train, y_train, x_valid, y_valid, x_test = out
    if len(x_train) == 0 or len(x_train) != len(y_train) or len(x_valid) != len(y_valid):
        raise ValueError(f"{protocol}: need train rows and matching x/y row counts; got {shapes}")
    if not len(x_valid):  # an empty split of any width: give it the train widths
        out[2], out[3] = x_train[:0], y_train[:0]
    if len({x_train.shape[1], out[2].shape[1], x_test.shape[1]}) != 1:
        raise ValueError(f"{protocol}: embedding widths (D) differ; got {shapes}")
    if y_train.shape[1] != out[3].shape[1]:
        raise ValueError(f"{protocol}: label widths (C) differ; got {shapes}")
    for name, y in (("y_train", y_train), ("y_valid", out[3])):
        if not multilabel and len(y) and not np.all(y.sum(1) == 1):
            bad = int(np.flatnonzero(y.sum(1) != 1)[0])
            raise ValueError(f"{protocol}: multiclass {name} row {bad} is not one-hot: {y[bad]}")
    return tuple(out)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for the block and restore the caller's state after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def head_loss(logits: torch.Tensor, targets: torch.Tensor, *, multilabel: bool) -> torch.Tensor:
    """BCE over multi-hot rows, or cross-entropy against the one-hot rows' class."""
    if multilabel:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    return torch.nn.functional.cross_entropy(logits, targets.argmax(1))


def probabilities(logits: torch.Tensor, *, multilabel: bool) -> Matrix:
    """(N, C) logits -> (N, C) float32 sigmoid (multilabel) or softmax (multiclass) scores."""
    scores = logits.sigmoid() if multilabel else logits.softmax(1)
    return np.ascontiguousarray(scores.detach().numpy(), np.float32)


@torch.no_grad()
def predict(model: torch.nn.Module, x: Matrix, *, multilabel: bool) -> Matrix:
    """The model's scores of (N, D) rows in eval mode (dropout off)."""
    model.eval()
    return probabilities(model(torch.from_numpy(x)), multilabel=multilabel)


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    norms: torch.Tensor = x.norm(dim=1, keepdim=True)  # (N, 1)
    return x / norms.clamp_min(1e-12)


def epoch_batches(n: int, batch: int) -> Iterator[torch.Tensor]:
    """One epoch of shuffled minibatch indices (the last one may be short); one full batch when
    n <= batch."""
    if n <= batch:
        yield torch.arange(n)
        return
    yield from torch.split(torch.randperm(n), batch)


def step_batches(n: int, batch: int, steps: int) -> Iterator[torch.Tensor]:
    """`steps` minibatches of indices, epoch after epoch."""
    done = 0
    while done < steps:
        for indices in epoch_batches(n, batch):
            if done == steps:
                return
            done += 1
            yield indices


def train_head(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None,
    train: tuple[Matrix, Matrix],
    valid: tuple[Matrix, Matrix],
    *,
    multilabel: bool,
    batch: int,
    epochs: int,
    patience: int,
) -> float:
    """Train for up to `epochs`, stepping `schedule` per minibatch; with validation rows, keep the
    weights of the best epoch (strictly better only) and stop after `patience` epochs without
    improvement. Leaves the model on its kept weights and returns their validation metric (0.0
    with no validation rows: the last epoch is kept)."""
    features, targets = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    x_valid, y_valid = valid
    best_value, best_state, since_best = -math.inf, None, 0
    for _ in range(epochs):
        model.train()
        for indices in epoch_batches(len(features), batch):
            optimiser.zero_grad()
            head_loss(model(features[indices]), targets[indices], multilabel=multilabel).backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            if schedule is not None:
                schedule.step()
        if not len(x_valid):
            continue
        value = validation_metric(
            predict(model, x_valid, multilabel=multilabel), y_valid, multilabel=multilabel
        )
        if value > best_value:
            best_value, since_best = value, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        if since_best >= patience or best_value >= 1.0:  # a perfect score cannot be beaten
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_value if best_state is not None else 0.0
