"""Embedding extraction with Ray Data (jobs/evaluate.py --engine ray): a corpus's row groups are
read in parallel, the task's clips kept, and actors holding the encoder (eval mode, loaded once
each) embed them in duration-sorted batches. On GPU nodes an actor takes one GPU."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from cluster.runtime import ensure_ray, store_env
from uts.probe.embeddings import EncoderSource, task_audio
from uts.probe.evaluate import TaskSpec
from uts.store import Store

__all__ = ["ray_embeddings"]


def _keep(item: dict[str, Any], *, wanted: frozenset[str]) -> list[dict[str, Any]]:
    from cluster.train_data import read_unit

    return [r for r in read_unit(item, ["clip_id", "audio"]) if r["clip_id"] in wanted]


class _Embed:
    """A Ray Data actor: the source's encoder, loaded once; rows of FLAC clips -> embeddings."""

    def __init__(self, source: EncoderSource) -> None:
        self.embed = source.embedder()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from uts.audio import decode_flac

        waves = [decode_flac(bytes(a)) for a in batch["audio"]]
        return {"clip_id": batch["clip_id"], "embedding": list(self.embed(waves))}


def ray_embeddings(
    store: Store, task: TaskSpec, clips: list[str], source: EncoderSource, *, actors: int | None = None,
    use_gpu: bool = False,
) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """(clip ids, (N, D) embeddings) of the task's clips. Tasks with their own audio folder are
    embedded in this process (their files are not in the store's shards)."""
    audio = task.meta.get("audio") or {}
    if "corpus" not in audio:
        ids, waves = task_audio(store, task, clips)
        return ids, source.embedder()(waves)
    import ray.data

    from cluster.train_data import read_units
    from uts.data import list_shards

    ensure_ray()
    units = read_units(list_shards(store.uri("corpora", str(audio["corpus"]))))
    ds = ray.data.from_items(units, override_num_blocks=len(units))
    ds = ds.flat_map(
        functools.partial(_keep, wanted=frozenset(clips)), runtime_env={"env_vars": store_env()}
    )
    ds = ds.map_batches(
        _Embed, fn_constructor_kwargs={"source": source}, batch_size=16, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors), num_gpus=1 if use_gpu else 0,
        runtime_env={"env_vars": store_env()},
    )  # fmt: skip
    ids, rows = [], []
    for batch in ds.iter_batches(batch_size=256, batch_format="numpy"):
        ids.extend(str(c) for c in batch["clip_id"])
        rows.extend(np.asarray(e, np.float32) for e in batch["embedding"])
    missing = set(clips) - set(ids)
    if missing:
        raise FileNotFoundError(f"task {task.name}: {len(missing)} clip(s) not in corpus "
                                f"{audio['corpus']!r}, e.g. {sorted(missing)[0]!r}")  # fmt: skip
    return ids, np.stack(rows)
