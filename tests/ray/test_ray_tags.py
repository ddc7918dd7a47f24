"""Ray tier: tag tables read through Ray Data, normalised in Ray workers, agree with the builder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from uts.tags import normalize_tags, resolve_sources, tag_key
from uts.tags.build import build_vocabulary
from uts.testing import sample_tags_path

pytestmark = pytest.mark.ray


def _keys(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        "keys": [sorted({tag_key(t) for t in normalize_tags(list(tags))}) for tags in batch["tags"]]
    }


def test_document_frequencies_through_ray_data_match_the_builder(
    ray_session: Any, tmp_path: Path
) -> None:
    import ray.data

    ds = ray.data.read_parquet(str(sample_tags_path()))
    ds = ds.filter(lambda row: row["status"] in (None, "ok"))
    rows = ds.map_batches(_keys, batch_format="numpy").take_all()
    df = Counter(key for row in rows for key in row["keys"])

    built = build_vocabulary(
        resolve_sources([str(sample_tags_path())]), name="ray-check", max_k=10_000
    )
    assert built.vocab.n_clips == len(rows)
    assert {tag_key(t): d for t, d in zip(built.vocab.tags, built.vocab.df, strict=True)} == dict(
        df
    )
    assert ray_session.is_initialized()
    address = ray_session.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address  # loopback only
