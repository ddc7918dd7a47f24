"""--engine ray extracts the same embeddings as the local engine (Ray Data actors, corpus tasks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobs import evaluate
from uts.data import iter_clip_batches
from uts.probe.tasks import Task, write_task

pytestmark = pytest.mark.ray


def test_ray_engine_matches_local(ray_session: Any, tmp_path: Path) -> None:
    from stages.fixtures import make_tagged_store

    store = make_tagged_store(tmp_path, clips=24)
    ids = [i for b in iter_clip_batches(str(store / "corpora" / "c"), columns=["clip_id"])
           for i in b.column(0).to_pylist()]  # fmt: skip
    task = Task(name="sounds", prediction_type="multiclass", metric="accuracy",
                labels={c: (str(n % 3),) for n, c in enumerate(sorted(ids))},
                groups={c: c for c in ids}, audio={"corpus": "c"}, domain="environment")  # fmt: skip
    write_task(task, store / "tasks" / "sounds", seeds=(0,))
    base = [
        "--store",
        str(store),
        "--baseline",
        "random-init",
        "--preset",
        "smoke",
        "--protocol",
        "knn",
    ]
    assert evaluate.main([*base, "--name", "local", "--no-cache"]) == 0
    assert evaluate.main([*base, "--name", "ray", "--engine", "ray"]) == 0
    local = json.loads((store / "evals" / "local" / "knn" / "sounds.json").read_text())
    on_ray = json.loads((store / "evals" / "ray" / "knn" / "sounds.json").read_text())
    # Scores may differ where kNN neighbours nearly tie (batches are padded differently); the
    # embeddings themselves are compared below.
    assert on_ray["n_clips"] == local["n_clips"] == 24
    (space,) = (store / "embeddings").iterdir()  # only the ray run wrote the cache
    (folder,) = [p for p in space.iterdir() if p.is_dir()]
    from_ray = dict(
        zip(
            json.loads((folder / "ids.json").read_text()),
            np.load(folder / "embeddings.npy"),
            strict=True,
        )
    )
    from uts.probe.embeddings import random_init_source, task_embeddings
    from uts.probe.evaluate import load_task
    from uts.store import Store
    from uts.train.config import preset

    here, hit = task_embeddings(Store(str(store)), load_task(store / "tasks" / "sounds"),
                                random_init_source(preset("smoke")), cache=False)  # fmt: skip
    assert not hit and sorted(here) == sorted(from_ray) == sorted(ids)
    for clip in ids:
        np.testing.assert_allclose(from_ray[clip], here[clip], rtol=1e-5, atol=1e-5)
