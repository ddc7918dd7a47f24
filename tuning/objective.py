"""One trial = one named pretraining run, trained in segments and probed after each.

A trial with params {"k": K, "lam": lambda} trains run `<study>-t<number>` to step s_1, then s_2,
... up to the preset's steps, through the `train` function it is given: each call is a complete
Ray Train run that ends (training further resumes the same run from its last checkpoint; the
learning-rate schedule does not depend on the step budget, so the segments train what one run
would, except that each segment starts its data epoch afresh). After each segment the checkpoint
at that step is probed through the `probe` function, the value is reported to Optuna, and the
pruner may stop the trial there: nothing is running then, so pruning frees every worker (no Ray
Tune scheduler killing Train trials: ray#54305).

Training and probing are passed in (stages/sweep.py gives the pretrain stage and the evaluate
stage's probe) because tuning sits below the stages: it knows trials, not how a run is trained.

User attrs of a trial: `run`, `command` (the ready-to-run pretraining command of its config),
`segments` (per finished segment: step, checkpoint, audio-hours, domain means, task scores),
`checkpoint`, `audio_hours`, `scores` (the latest domain means), `cost` (train_s, probe_s) and
`wall_s`. A retried trial inherits them (tuning.loop), so finished segments are not trained or
probed again and the run name, hence the Train checkpoint, is the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from tuning.loop import TrialError
from tuning.space import SweepSpace
from uts.store import Store
from uts.train import checkpoint

__all__ = [
    "MEAN_PROBE",
    "Command",
    "Probe",
    "Train",
    "TrialSetup",
    "make_objective",
    "run_name",
    "score",
    "segment_steps",
]

MEAN_PROBE = "mean_probe"  # the mean score over the probe tasks ("all" in the domain means)

# (run name, params, step budget) -> None: trains run `name` with the config `params` until it has
# a checkpoint at the step budget (resuming its latest checkpoint). Raises TrialError on failure.
Train = Callable[[str, Mapping[str, Any], int], None]
# checkpoint URI -> the probe summary: {"domain_means": {domain or "all": score},
# "results": {task: {"score": {"mean": score, ...}, ...}}}.
Probe = Callable[[str], Mapping[str, Any]]
# params -> the command line that trains this config again from scratch (shown in the report).
Command = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True, kw_only=True)
class TrialSetup:
    """Everything a trial needs besides its params and the functions that train and probe."""

    store: str  # store root URI: the runs' checkpoints are found there
    study: str
    space: SweepSpace
    segments: tuple[int, ...]  # the steps at which a segment ends; the last is the run's length
    metric: tuple[str, ...] = (MEAN_PROBE,)

    @property
    def multi_objective(self) -> bool:
        return self.metric != (MEAN_PROBE,)


def segment_steps(max_steps: int, segments: int) -> tuple[int, ...]:
    """Segment ends: `segments` near-equal parts of `max_steps` (fewer when the steps are few)."""
    if max_steps < 1 or segments < 1:
        raise ValueError(f"max_steps and segments must be >= 1, got {max_steps}, {segments}")
    return tuple(sorted({math.ceil(max_steps * i / segments) for i in range(1, segments + 1)}))


def run_name(study: str, number: int) -> str:
    return f"{study}-t{number}"


def score(domain_means: Mapping[str, float], metric: Sequence[str]) -> list[float]:
    """The trial's value(s) from the probe's domain means.

    Raises:
        TrialError: a domain of `metric` has no task score.
    """
    keys = ["all" if name == MEAN_PROBE else name for name in metric]
    missing = [key for key in keys if key not in domain_means]
    if missing:
        raise TrialError(
            f"the probe tasks gave no score for {missing} (scores: {dict(domain_means)})"
        )
    return [float(domain_means[key]) for key in keys]


def make_objective(setup: TrialSetup, *, train: Train, probe: Probe, command: Command,
                   log: Callable[[str], None] = print) -> Callable[[optuna.Trial], float | list[float]]:  # fmt: skip
    """The trial function: train each unfinished segment, probe its checkpoint, report, prune."""
    store = Store(setup.store)

    def objective(trial: optuna.Trial) -> float | list[float]:
        params = setup.space.suggest(trial)
        run = str(trial.user_attrs.get("run") or run_name(setup.study, trial.number))
        trial.set_user_attr("run", run)
        trial.set_user_attr("command", command(params))
        done: dict[str, Any] = dict(trial.user_attrs.get("segments", {}))
        cost = {"train_s": 0.0, "probe_s": 0.0, **trial.user_attrs.get("cost", {})}
        values: list[float] = []
        for step in setup.segments:
            entry = done.get(str(step))
            if entry is None:
                log(f"trial {trial.number} ({run}, {params}): training to step {step}")
                started = time.monotonic()
                train(run, params, step)
                cost["train_s"] += time.monotonic() - started
                found = checkpoint.at_step(store, run, step)
                if found is None:
                    raise TrialError(f"run {run} has no checkpoint at step {step} after training")
                uri, state = found
                started = time.monotonic()
                summary = probe(uri)
                cost["probe_s"] += time.monotonic() - started
                entry = {"step": int(state["step"]), "checkpoint": uri,
                         "audio_hours": float(state.get("audio_seconds", 0.0)) / 3600,
                         "domain_means": summary["domain_means"],
                         "tasks": {name: r["score"]["mean"] for name, r in summary["results"].items()}}  # fmt: skip
                done[str(step)] = entry
                for key, value in (("segments", done), ("cost", cost), ("checkpoint", uri),
                                   ("audio_hours", entry["audio_hours"]), ("scores", entry["domain_means"]),
                                   ("wall_s", cost["train_s"] + cost["probe_s"])):  # fmt: skip
                    trial.set_user_attr(key, value)
            values = score(entry["domain_means"], setup.metric)
            if not setup.multi_objective:  # Optuna cannot prune multi-objective trials
                trial.report(values[0], step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"probe {values[0]:.4f} at step {step}")
        return values if setup.multi_objective else values[0]

    return objective
