"""Pretraining data on Ray Data: corpus shards -> read units -> (CPU actors) decode + fbank +
vocabulary columns -> the train and validation datasets each worker takes its shard of. The train
set's blocks come in a new random order every epoch.

The vocabulary arrives loaded and cut at the run's K (the pretrain stage loads it once and checks
K once); the actors receive it with their constructor and never read the store's vocab folder.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cluster.runtime import store_env
from uts.tags import Vocabulary
from uts.train.batching import is_validation
from uts.train.config import PretrainConfig

__all__ = [
    "CORPUS_COLUMNS",
    "Featurize",
    "epoch_share",
    "examples",
    "make_datasets",
    "read_unit",
    "read_units",
]

CORPUS_COLUMNS = ["clip_id", "audio", "duration_s", "partition"]


def read_units(shards: list[str]) -> list[dict[str, Any]]:
    """One read unit per parquet row group (64 clips) of every shard: Ray Data's blocks follow its
    inputs, so units this small let every data worker take part even on a corpus of one shard.
    Footers are read in parallel threads (one small ranged read each on an object store)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from uts.store import open_fs

    def groups(uri: str) -> list[dict[str, Any]]:
        fs, path = open_fs(uri)
        with fs.open(path, "rb") as f:
            count = pq.ParquetFile(f).num_row_groups
        return [{"source": uri, "row_group": g} for g in range(count)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        return [unit for part in pool.map(groups, shards) for unit in part]


def read_unit(item: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """The rows of one read unit (a row group of a shard), some columns."""
    import pyarrow.parquet as pq

    from uts.store import open_fs

    fs, path = open_fs(item["source"])
    with fs.open(path, "rb") as f:
        table = pq.ParquetFile(f).read_row_group(item["row_group"], columns=columns)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _read_split(item: dict[str, Any], *, fraction: float, split: str) -> list[dict[str, Any]]:
    """The pretraining rows of one read unit that fall in `split` (train or val, by clip id)."""
    rows = read_unit(item, CORPUS_COLUMNS)
    want_val = split == "val"
    return [
        r
        for r in rows
        if r["partition"] == "pretrain" and is_validation(r["clip_id"], fraction) == want_val
    ]


class Featurize:
    """A Ray Data actor: holds the tags and the vocabulary, turns clips into examples."""

    def __init__(self, tags_ref: Any, vocab: Vocabulary) -> None:
        import ray

        from uts.audio.fbank import Fbank

        self.tags = ray.get(tags_ref[0])
        self.vocab = vocab
        self.fbank = Fbank()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from uts.train.features import featurize

        rows = [r for r in batch.to_pylist() if self.tags.get(r["clip_id"])]
        examples = [e for e in featurize(rows, self.tags, self.vocab, self.fbank) if e["targets"]]
        schema = pa.schema([("clip_id", pa.string()), ("feats", pa.binary()), ("frames", pa.int64()),
                            ("duration_s", pa.float64()), ("targets", pa.list_(pa.int64())),
                            ("tag_string", pa.string())])  # fmt: skip
        return pa.Table.from_pylist(examples, schema=schema)


def make_datasets(
    shards: list[str], tags: Mapping[str, list[str]], vocab: Vocabulary, config: PretrainConfig
) -> dict[str, Any]:
    """The train and validation datasets (streaming; features are computed on CPU workers).

    Args:
        shards: the corpus's shard URIs.
        tags: clip id -> its tags (clips without tags are left out).
        vocab: the run's vocabulary, already cut at the run's K (`Vocabulary.at(config.k)`).
        config: the run's configuration (K, validation share, data workers, feature caching).

    Raises:
        ValueError: `vocab` is not cut at `config.k` (the targets would not match the model's K).
    """
    import functools

    import ray
    import ray.data

    if len(vocab) != config.k:
        raise ValueError(f"vocabulary {vocab.name or '(unnamed)'} has {len(vocab)} tags but the "
                         f"run's K is {config.k}: pass vocab.at({config.k})")  # fmt: skip
    # In a list: Ray would resolve a bare object ref before the actor's constructor sees it.
    tags_ref = [ray.put(dict(tags))]
    runtime_env = {"env_vars": store_env()}
    units = read_units(shards)
    pool = ray.data.ActorPoolStrategy(min_size=1, max_size=config.data_workers)
    out = {}
    for split in ("train", "val"):
        ds = ray.data.from_items(units, override_num_blocks=len(units))
        if split == "train" and not config.cache_features:
            # Each epoch (each execution of the dataset) reads the row groups in a new order,
            # so ranks meet different clips from epoch to epoch (see _shuffled).
            ds = _shuffled(ds)
        ds = ds.flat_map(
            functools.partial(_read_split, fraction=config.val_fraction, split=split),
            runtime_env=runtime_env,
        )
        ds = ds.map_batches(
            Featurize, fn_constructor_kwargs={"tags_ref": tags_ref, "vocab": vocab},
            batch_size=32, batch_format="pyarrow", compute=pool,
            runtime_env=runtime_env,
        )  # fmt: skip
        # A small corpus is featurised once, before training, on every core; a large one streams
        # (features are recomputed each epoch while the GPUs train).
        if config.cache_features:
            ds = ds.materialize()
            ds = _shuffled(ds) if split == "train" and not config.reproducible else ds
        out[split] = ds
    return out


def _shuffled(ds: Any) -> Any:
    """`ds` with its blocks in a new random order at every execution (every epoch: Ray Train's
    split coordinator re-executes the dataset per epoch, ray/data/_internal/iterator/
    stream_split_iterator.py, _try_start_new_epoch). A global shuffle at the cost of a block
    reorder: blocks are row groups of 64 clips (streaming) or featurised batches of 32 (cached),
    and each rank shuffles its clips further within duration buckets. Unseeded: Ray Data's row
    order is not reproducible anyway (tasks finish in parallel, in varying order)."""
    return ds.randomize_block_order()


def epoch_share(
    rows: list[dict[str, Any]], *, rank: int, world: int, seed: int
) -> list[dict[str, Any]]:
    """This rank's clips of one epoch when every rank reads the whole train set (reproducible
    order): all clips in clip-id order, shuffled by `seed` (the same on every rank), every
    `world`-th from `rank`. The ranks' shares are disjoint, cover every clip, and differ by at
    most one clip; the arrival order of Ray Data's blocks plays no part."""
    import random

    ordered = sorted(rows, key=lambda r: r["clip_id"])
    random.Random(seed).shuffle(ordered)
    return ordered[rank::world]


def examples(shard: Any) -> Iterator[dict[str, Any]]:
    """The examples of a worker's dataset shard, one at a time (batches are cut by duration later)."""
    for batch in shard.iter_batches(batch_size=64, batch_format="pyarrow", prefetch_batches=4):
        yield from batch.to_pylist()
