"""The probe tasks a store holds (`<store>/tasks/<name>/`), and the check that a task may score a
run: pretraining never sees probe data, so a task whose clips lie in the pretraining partition of
the corpus a run trained on is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from uts.probe.evaluate import TaskSpec, load_task
from uts.store import Store

__all__ = ["find_tasks", "leaked"]


def find_tasks(store: Store, wanted: str) -> list[TaskSpec] | str:
    """The task folders of a local store, by name: `wanted` is "all" or comma-separated names.

    Returns:
        The tasks, read (sorted by name for "all", in the order asked otherwise), or a message for
        people when the store is not local, a name is unknown, or there is no task at all.

    Raises:
        FileNotFoundError, ValueError: a task folder that does not read (uts.probe.evaluate.load_task).
    """
    root = Path(store.path("tasks"))
    if not store.local:
        return (
            "task folders are read from a local store; copy <store>/tasks locally and pass --store"
        )
    names = (
        sorted(p.name for p in root.iterdir() if (p / "task.json").exists())
        if root.is_dir()
        else []
    )
    if wanted != "all":
        asked = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = [n for n in asked if n not in names]
        if unknown:
            return f"unknown task(s) {unknown}; known in {store.uri('tasks')}: {names}"
        names = asked
    if not names:
        return f"no task folders in {store.uri('tasks')}; run jobs/tasks.py (demo) or write them (README)"
    return [load_task(root / n) for n in names]


def leaked(
    store: Store, tasks: Sequence[TaskSpec], lineage: Mapping[str, Any] | None
) -> str | None:
    """A message when a task's clips were in the run's pretraining data (clip ids in the pretrain
    partition of the corpus named by `lineage["corpus"]["name"]`), else None. A lineage without a
    corpus, or a corpus no longer complete in the store, cannot be checked and passes."""
    corpus = (lineage or {}).get("corpus", {}).get("name")
    if not corpus or not store.is_complete("corpora", corpus):
        return None
    from uts.data import iter_clip_batches  # pyarrow, only when there is a corpus to read

    clips = {c: t.name for t in tasks for c in t.clips()}
    for batch in iter_clip_batches(store.uri("corpora", corpus), columns=["clip_id", "partition"]):
        for clip, partition in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
        ):
            if partition == "pretrain" and clip in clips:
                return (f"task {clips[clip]} uses clip {clip!r}, which is in the pretraining partition "
                        f"of corpus {corpus!r} the run trained on: probes must not see training clips")  # fmt: skip
    return None
