"""Create or reopen a sweep's study: sampler, pruner, directions, and the settings it was made with.

A study records the settings that define its trials (objective, K list, lambda range, preset,
corpus, vocabulary, tasks, metric, segments, ...) in the user attr `uts_sweep`. Reopening it with
different settings is refused: its finished trials would not be comparable with the new ones (the
number of trials and the parallelism may change freely).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuning.space import SweepSpace

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SETTINGS_ATTR",
    "StudyMismatch",
    "make_pruner",
    "make_sampler",
    "open_study",
]  # fmt: skip

SAMPLERS = ("grid", "tpe")
PRUNERS = ("median", "none")
SETTINGS_ATTR = "uts_sweep"
# Settings that may differ between runs of one study without changing what a trial means.
FREE = frozenset({"trials", "parallel", "pruner", "prune_after", "heartbeat_s"})


class StudyMismatch(ValueError):
    """The study exists with other settings; the message lists them."""


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its stop-the-study-when-exhausted hook: `Study.stop` works
    only inside `Study.optimize`, and tuning.loop, which asks and tells itself, counts the total."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:  # fmt: skip
        return None


def make_sampler(name: str, space: SweepSpace, seed: int) -> optuna.samplers.BaseSampler:
    """`grid`: every (K, lambda) of `space.grid()`, in an order shuffled by `seed` (so fewer trials
    than points visit a random subset); `tpe`: Optuna's TPE."""
    if name == "grid":
        return GridSampler(space.grid(), seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


def make_pruner(name: str, *, multi_objective: bool, prune_after: int) -> optuna.pruners.BasePruner:
    """`median`: stop a trial whose probe score after a segment is below the median of the other
    trials' at that step, once `prune_after` trials have completed. Multi-objective: no pruning
    (Optuna's `Trial.report` does not support it)."""
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; known: {', '.join(PRUNERS)}")
    if name == "none" or multi_objective:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=prune_after, n_warmup_steps=0)


def open_study(name: str, storage: optuna.storages.BaseStorage, *, settings: Mapping[str, Any],
               directions: Sequence[str], sampler: optuna.samplers.BaseSampler,
               pruner: optuna.pruners.BasePruner) -> tuple[optuna.Study, bool]:  # fmt: skip
    """The study `name` in `storage`, created if missing; (study, created).

    Raises:
        StudyMismatch: it exists with other settings or directions.
    """
    optuna.logging.get_logger("optuna").setLevel(logging.WARNING)  # the loop logs trials itself
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}  # fmt: skip
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
                                sampler=sampler, pruner=pruner, load_if_exists=True)  # fmt: skip
    settings = json.loads(json.dumps(dict(settings)))  # as stored: tuples become lists
    if name not in existing:
        study.set_user_attr(SETTINGS_ATTR, settings)
        return study, True
    old = study.user_attrs.get(SETTINGS_ATTR, {})
    changes = [f"{key}: {old.get(key)!r} -> {settings.get(key)!r}"
               for key in sorted(set(old) | set(settings)) if key not in FREE and old.get(key) != settings.get(key)]  # fmt: skip
    wanted = [d.lower() for d in directions]
    had = [d.name.lower() for d in study.directions]
    if had != wanted:
        changes.append(f"directions: {had} -> {wanted}")
    if changes:
        raise StudyMismatch(f"study {name!r} exists with other settings ({'; '.join(changes)}); "
                            "rerun with its settings to continue it, or pass a new --study")  # fmt: skip
    study.set_user_attr(SETTINGS_ATTR, settings)  # the free settings of this run
    return study, False
