"""Corpora in an S3 store read like local ones; the Ray-task ingest writes what the in-process one does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from jobs import ingest
from tests.ingest.conftest import GOOD
from uts.data import iter_clip_batches, list_shards


def args(store: str, root: Path, metadata: Path, *extra: str) -> list[str]:
    return [
        "--store",
        store,
        "--corpus",
        "c",
        "--source",
        "folder",
        "--path",
        str(root),
        "--metadata",
        str(metadata),
        "--max-source-s",
        "20",
        "--max-reject-fraction",
        "0.9",
        *extra,
    ]


def test_corpus_on_s3_reads_like_a_local_one(
    s3_bucket: str, messy_folder: tuple[Path, Path], tmp_path: Path
) -> None:
    root, metadata = messy_folder
    assert ingest.main(args(f"{s3_bucket}/store", root, metadata, "--workers", "0")) == 0
    assert ingest.main(args(str(tmp_path / "local"), root, metadata, "--workers", "0")) == 0
    remote = [b.to_pylist() for b in iter_clip_batches(f"{s3_bucket}/store/corpora/c")]
    local = [b.to_pylist() for b in iter_clip_batches(str(tmp_path / "local/corpora/c"))]
    assert remote == local and sum(len(b) for b in local) == len(GOOD)
    assert list_shards(f"{s3_bucket}/store/corpora/c")[0].startswith("s3://")
    assert ingest.main(args(f"{s3_bucket}/store", root, metadata, "--workers", "0")) == 0  # no-op


@pytest.mark.ray
def test_ray_tasks_write_the_same_corpus(
    ray_session: Any, messy_folder: tuple[Path, Path], tmp_path: Path
) -> None:
    import ray.data

    root, metadata = messy_folder
    assert ingest.main(args(str(tmp_path / "ray"), root, metadata, "--batch-size", "2")) == 0
    assert ingest.main(args(str(tmp_path / "local"), root, metadata, "--workers", "0")) == 0

    def table(store: str, name: str) -> Any:
        return pq.read_table(tmp_path / store / "corpora/c" / name)

    assert table("ray", "shards/part-00000.parquet").equals(
        table("local", "shards/part-00000.parquet")
    )
    assert table("ray", "rejects.parquet").equals(table("local", "rejects.parquet"))
    # Shards are plain parquet that Ray Data reads.
    ds = ray.data.read_parquet(str(tmp_path / "ray/corpora/c/shards"))
    assert sorted(ds.to_pandas()["clip_id"]) == sorted(GOOD)
