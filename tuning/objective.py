"""One trial = one named pretraining run, trained in segments and probed after each.

A trial with params {"k": K, "lam": lambda} trains run `<study>-t<number>` by calling
`jobs/pretrain.py`'s `main` in this process with `--max-steps s_1`, then `s_2`, ... up to the
preset's steps: each call is a complete Ray Train run that ends (a larger --max-steps resumes the
same run from its last checkpoint; the learning-rate schedule does not depend on --max-steps, so
the segments train what one run would, except that each segment starts its data epoch afresh).
After each segment the checkpoint at that step is probed (`jobs.evaluate.probe_checkpoint`), the
value is reported to Optuna, and the pruner may stop the trial there: nothing is running then, so
pruning frees every worker (no Ray Tune scheduler killing Train trials: ray#54305).

User attrs of a trial: `run`, `command` (the ready-to-run `jobs/pretrain.py` line of its config),
`segments` (per finished segment: step, checkpoint, audio-hours, domain means, task scores),
`checkpoint`, `audio_hours`, `scores` (the latest domain means), `cost` (train_s, probe_s) and
`wall_s`. A retried trial inherits them (tuning.loop), so finished segments are not trained or
probed again and the run name, hence the Train checkpoint, is the same.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from tuning.loop import TrialError
from tuning.space import SweepSpace
from uts.store import Store, join_uri

__all__ = [
    "MEAN_PROBE",
    "TrialSetup",
    "checkpoint_at",
    "make_objective",
    "pretrain_argv",
    "run_name",
    "score",
    "segment_steps",
]

MEAN_PROBE = "mean_probe"  # the mean score over the probe tasks ("all" in the domain means)


@dataclass(frozen=True, kw_only=True)
class TrialSetup:
    """Everything a trial needs besides its params (flat values only: it is recorded in the study)."""

    store: str
    study: str
    space: SweepSpace
    segments: tuple[int, ...]  # the steps at which a segment ends; the last is the run's length
    metric: tuple[str, ...] = (MEAN_PROBE,)
    preset: str = "demo"
    corpus: str = "demo"
    vocab: str = "demo-uts"
    tasks: str = "all"
    protocol: str = "logistic"
    seeds: int | None = None
    tokenizer: str | None = None
    num_workers: int | None = None
    use_gpu: bool = False
    accelerator_type: str | None = None

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


def pretrain_argv(setup: TrialSetup, params: Mapping[str, Any], name: str, max_steps: int) -> list[str]:  # fmt: skip
    """`jobs/pretrain.py` arguments for the config `params`, trained to `max_steps` as run `name`."""
    argv = ["--store", setup.store, "--corpus", setup.corpus, "--vocab", setup.vocab,
            "--preset", setup.preset, "--objective", setup.space.objective, "--k", str(params["k"])]  # fmt: skip
    if "lam" in params:
        argv += ["--lam", repr(float(params["lam"]))]
    if setup.tokenizer:
        argv += ["--tokenizer", setup.tokenizer]
    if setup.num_workers is not None:
        argv += ["--num-workers", str(setup.num_workers)]
    if setup.use_gpu:
        argv.append("--use-gpu")
    if setup.accelerator_type:
        argv += ["--accelerator-type", setup.accelerator_type]
    return [*argv, "--max-steps", str(max_steps), "--name", name]


def best_command(setup: TrialSetup, params: Mapping[str, Any]) -> str:
    """The ready-to-run command line that trains this config again as run `<study>-best`."""
    argv = pretrain_argv(setup, params, f"{setup.study}-best", setup.segments[-1])
    return shlex.join(["python", "jobs/pretrain.py", *argv])


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


def checkpoint_at(store: Store, run: str, step: int) -> tuple[str, dict[str, Any]] | None:
    """(URI, state.json) of the run's first checkpoint at or after `step`, or None."""
    found: tuple[int, str, dict[str, Any]] | None = None
    for path in store.fs.glob(join_uri(store.path("runs", run), "checkpoint_*", "state.json")):
        with store.fs.open(path, "r", encoding="utf-8") as f:
            state = json.load(f)
        at = int(state["step"])
        if at >= step and (found is None or at < found[0]):
            found = (at, str(path).rsplit("/", 1)[0], state)
    if found is None:
        return None
    folder = found[1]
    uri = folder if store.local else store.uri(folder[len(store.root) :].lstrip("/"))
    return uri, found[2]


def make_objective(setup: TrialSetup, *, pretrain: Callable[[list[str]], int] | None = None,
                   probe: Callable[..., dict[str, Any]] | None = None,
                   log: Callable[[str], None] = print) -> Callable[[optuna.Trial], float | list[float]]:  # fmt: skip
    """The trial function. `pretrain` (argv -> exit code) and `probe` (store, checkpoint, ... ->
    summary) default to jobs/pretrain.py's main and jobs/evaluate.py's probe_checkpoint."""
    from jobs import evaluate
    from jobs import pretrain as pretrain_job

    train_fn: Callable[[list[str]], int] = pretrain or pretrain_job.main
    probe_fn: Callable[..., dict[str, Any]] = probe or evaluate.probe_checkpoint
    store = Store(setup.store)

    def objective(trial: optuna.Trial) -> float | list[float]:
        params = setup.space.suggest(trial)
        run = str(trial.user_attrs.get("run") or run_name(setup.study, trial.number))
        trial.set_user_attr("run", run)
        trial.set_user_attr("command", best_command(setup, params))
        done: dict[str, Any] = dict(trial.user_attrs.get("segments", {}))
        cost = {"train_s": 0.0, "probe_s": 0.0, **trial.user_attrs.get("cost", {})}
        values: list[float] = []
        for step in setup.segments:
            entry = done.get(str(step))
            if entry is None:
                log(f"trial {trial.number} ({run}, {params}): training to step {step}")
                started = time.monotonic()
                code = train_fn(pretrain_argv(setup, params, run, step))
                cost["train_s"] += time.monotonic() - started
                if code != 0:
                    raise TrialError(f"jobs/pretrain.py exited with {code} training run {run} to "
                                     f"step {step} (its message is above)")  # fmt: skip
                found = checkpoint_at(store, run, step)
                if found is None:
                    raise TrialError(f"run {run} has no checkpoint at step {step} after training")
                uri, state = found
                started = time.monotonic()
                summary = probe_fn(store, uri, tasks=setup.tasks, protocol=setup.protocol,
                                   seeds=setup.seeds, check_leak=False)  # fmt: skip
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
