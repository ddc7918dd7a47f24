"""Write the demo corpus's probe tasks (HEAR-style folders) and their log-mel baselines.

Tasks use only the corpus's probe partition. Each task folder records a fingerprint of its inputs
(corpus, task name, seeds, TASKS_VERSION) in baseline.json; a task whose fingerprint still matches
is not redone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from stages.base import StageError
from uts.data import iter_clip_batches, load_waves
from uts.probe.baseline import logmel_stats, run_baseline
from uts.probe.demo_tasks import demo_tasks
from uts.probe.tasks import Task, read_task, write_task
from uts.store import Store

__all__ = ["SCRIPT", "TASKS_VERSION", "TasksResult", "TasksSpec", "add_arguments", "run", "spec_from_args"]  # fmt: skip

SCRIPT = "jobs/tasks.py"
TASKS_VERSION = "1"  # bump when demo_tasks or the baseline changes


@dataclass(frozen=True, kw_only=True)
class TasksSpec:
    corpus: str = "demo"  # a corpus made by ingest --source demo
    seeds: int = 3  # splits per task, one per seed (0..seeds-1)
    tasks: str = "all"  # "all", or comma-separated task names

    def task_fingerprint(self, corpus_fingerprint: str, task: str) -> str:
        """Content address of one task folder: the corpus, the task and its split seeds."""
        inputs = [TASKS_VERSION, corpus_fingerprint, task, list(range(self.seeds))]
        return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class TasksResult:
    uri: str  # <store>/tasks
    written: tuple[str, ...] = ()  # tasks (re)written by this run
    skipped: tuple[str, ...] = ()  # tasks left out: too few groups to split
    summary: str = ""
    exit_code: int = 0


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TasksSpec)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--corpus", default=d["corpus"], help="a corpus made by ingest --source demo")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=d["seeds"], help="splits per task, one per seed (default 3)")  # fmt: skip
    parser.add_argument("--tasks", default=d["tasks"], help="all, or a comma-separated list of task names")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TasksSpec:
    return TasksSpec(**{f.name: getattr(args, f.name) for f in fields(TasksSpec)})


def run(spec: TasksSpec, store: Store) -> TasksResult:
    """Write every wanted task whose inputs changed, with its baseline; exit code 1 when a task
    had too few groups to split (the others are written).

    Raises StageError (code 2): no complete corpus, not a demo corpus, or unknown task names."""
    corpus = ("corpora", spec.corpus)
    if not store.is_complete(*corpus):
        raise StageError(f"no complete corpus at {store.uri(*corpus)}; run jobs/ingest.py first", 2)
    meta = store.read_json(*corpus, "corpus.json")
    if meta.get("source") != "demo":
        raise StageError(
            f"{store.uri(*corpus)} is a {meta.get('source')!r} corpus; task folders for your own "
            "data are written by hand (README: Probe tasks)",
            2,
        )
    started = time.monotonic()
    columns = ["clip_id", "domain", "labels", "group", "partition"]
    rows = [
        r for b in iter_clip_batches(store.uri(*corpus), columns=columns) for r in b.to_pylist()
    ]
    tasks = demo_tasks(rows, spec.corpus)
    if spec.tasks != "all":
        wanted = set(spec.tasks.split(","))
        unknown = wanted - {t.name for t in tasks}
        if unknown:
            raise StageError(
                f"unknown task(s) {sorted(unknown)}; known: {[t.name for t in tasks]}", 2
            )
        tasks = [t for t in tasks if t.name in wanted]
    seeds = list(range(spec.seeds))
    todo = []
    for task in tasks:
        fingerprint = spec.task_fingerprint(meta["fingerprint"], task.name)
        done = store.is_complete("tasks", task.name) and (
            store.read_json("tasks", task.name, "baseline.json").get("fingerprint") == fingerprint
        )
        if not done:
            todo.append((task, fingerprint))
    needed = {clip for task, _ in todo for clip in task.labels}
    print(
        f"{len(tasks)} task(s), {len(todo)} to write; log-mel features for {len(needed):,} clips",
        file=sys.stderr,
    )
    features = _features(store.uri(*corpus), needed)
    skipped: list[str] = []
    written: list[str] = []
    for task, fingerprint in todo:
        with store.staging() as staged:
            write_task(task, staged, seeds=seeds)
            task_meta, vocabulary, splits = read_task(staged)
            try:
                baseline = run_baseline(task_meta, vocabulary, splits, features)
            except ValueError as exc:
                print(f"warning: task {task.name} not written: {exc}", file=sys.stderr)
                skipped.append(task.name)
                continue
            baseline.update(
                fingerprint=fingerprint, corpus=spec.corpus, corpus_fingerprint=meta["fingerprint"]
            )
            (staged / "baseline.json").write_text(
                json.dumps(baseline, indent=2, sort_keys=True) + "\n", "utf-8"
            )
            store.publish(staged, "tasks", task.name, overwrite=True)
            written.append(task.name)
    kept = [t for t in tasks if t.name not in skipped]
    return TasksResult(
        uri=store.uri("tasks"),
        written=tuple(written),
        skipped=tuple(skipped),
        summary=_summary(store, kept, time.monotonic() - started),
        exit_code=1 if skipped else 0,
    )


def _features(corpus_uri: str, clips: set[str]) -> dict[str, np.ndarray]:
    """Log-mel mean+std per clip, for the baselines."""
    ids, waves = load_waves(corpus_uri, clips)
    return dict(zip(ids, logmel_stats(waves), strict=True)) if ids else {}


def _summary(store: Store, tasks: Sequence[Task], seconds: float) -> str:
    """One line per task: size, baseline beside the majority-class score."""
    lines = [f"{'task':<26} {'clips':>6} {'labels':>6}  {'log-mel baseline':>18}  {'majority':>8}"]
    for task in tasks:
        name = task.name
        info = store.read_json("tasks", name, "task.json")
        baseline = store.read_json("tasks", name, "baseline.json")
        metric = "mAP" if info["metric"] == "mAP" else "accuracy"
        value, majority = baseline[f"baseline_{metric}"], baseline[f"majority_{metric}"]
        lines.append(
            f"{name:<26} {info['n_clips']:>6} {info['n_labels']:>6}  "
            f"{metric} {value['mean']:.3f} +- {value['std']:.3f}  {majority['mean']:>8.3f}"
        )
    lines.append(f"wrote {store.uri('tasks')} in {seconds:.1f} s")
    return "\n".join(lines)
