"""Write the demo corpus's probe tasks (HEAR-style folders) and their log-mel baselines.

    python jobs/tasks.py --store ./uts-store --corpus demo
    ray job submit -- python jobs/tasks.py --store s3://bucket/uts --corpus demo --seeds 3

Writes <store>/tasks/<task>/: task.json, labelvocabulary.csv, split<seed>/{train,valid,test}.json
and baseline.json (log-mel mean+std -> logistic regression, mean and std over the seeds, beside the
majority-class score). Tasks use only the corpus's probe partition. A task whose inputs did not
change is skipped. Exit codes: 0 done, 1 some task had too few groups to split (the others are written), 2 no such
corpus or not a demo corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from uts.data import iter_clip_batches, load_waves
from uts.probe.baseline import logmel_stats, run_baseline
from uts.probe.demo_tasks import demo_tasks
from uts.probe.tasks import Task, read_task, write_task
from uts.store import Store

TASKS_VERSION = "1"  # bump when demo_tasks or the baseline changes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tasks.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--corpus", default="demo", help="a corpus made by ingest --source demo")
    parser.add_argument(
        "--seeds", type=int, default=3, help="splits per task, one per seed (default 3)"
    )
    parser.add_argument(
        "--tasks", default="all", help="all, or a comma-separated list of task names"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.store)
    corpus = ("corpora", args.corpus)
    if not store.is_complete(*corpus):
        print(
            f"error: no complete corpus at {store.uri(*corpus)}; run jobs/ingest.py first",
            file=sys.stderr,
        )
        return 2
    meta = store.read_json(*corpus, "corpus.json")
    if meta.get("source") != "demo":
        print(
            f"error: {store.uri(*corpus)} is a {meta.get('source')!r} corpus; task folders for your own "
            "data are written by hand (README: Probe tasks)",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    columns = ["clip_id", "domain", "labels", "group", "partition"]
    rows = [
        r for b in iter_clip_batches(store.uri(*corpus), columns=columns) for r in b.to_pylist()
    ]
    tasks = demo_tasks(rows, args.corpus)
    if args.tasks != "all":
        wanted = set(args.tasks.split(","))
        unknown = wanted - {t.name for t in tasks}
        if unknown:
            print(
                f"error: unknown task(s) {sorted(unknown)}; known: {[t.name for t in tasks]}",
                file=sys.stderr,
            )
            return 2
        tasks = [t for t in tasks if t.name in wanted]
    seeds = list(range(args.seeds))
    todo = []
    for task in tasks:
        fingerprint = hashlib.sha256(
            json.dumps([TASKS_VERSION, meta["fingerprint"], task.name, seeds]).encode()
        ).hexdigest()[:16]
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
    skipped = []
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
                fingerprint=fingerprint, corpus=args.corpus, corpus_fingerprint=meta["fingerprint"]
            )
            (staged / "baseline.json").write_text(
                json.dumps(baseline, indent=2, sort_keys=True) + "\n", "utf-8"
            )
            store.publish(staged, "tasks", task.name, overwrite=True)
    _summary(store, [t for t in tasks if t.name not in skipped], time.monotonic() - started)
    return 1 if skipped else 0


def _features(corpus_uri: str, clips: set[str]) -> dict[str, np.ndarray]:
    ids, waves = load_waves(corpus_uri, clips)
    return dict(zip(ids, logmel_stats(waves), strict=True)) if ids else {}


def _summary(store: Store, tasks: Sequence[Task], seconds: float) -> None:
    print(f"{'task':<26} {'clips':>6} {'labels':>6}  {'log-mel baseline':>18}  {'majority':>8}")
    for task in tasks:
        name = task.name
        info = store.read_json("tasks", name, "task.json")
        baseline = store.read_json("tasks", name, "baseline.json")
        metric = "mAP" if info["metric"] == "mAP" else "accuracy"
        value, majority = baseline[f"baseline_{metric}"], baseline[f"majority_{metric}"]
        print(
            f"{name:<26} {info['n_clips']:>6} {info['n_labels']:>6}  "
            f"{metric} {value['mean']:.3f} +- {value['std']:.3f}  {majority['mean']:>8.3f}"
        )
    print(f"wrote {store.uri('tasks')} in {seconds:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
