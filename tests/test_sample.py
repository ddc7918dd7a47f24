"""The bundled sample is exactly what its generator makes, and looks like a tagger's output."""

from __future__ import annotations

import pyarrow.parquet as pq

from uts.testing import sample_tag_rows, sample_tags_path, tag_table


def test_bundled_sample_matches_its_generator() -> None:
    assert pq.read_table(sample_tags_path()).equals(tag_table(sample_tag_rows()))


def test_sample_has_domains_failures_and_spelling_noise() -> None:
    rows = sample_tag_rows()
    assert 300 <= len(rows) <= 500
    assert {r["domain"] for r in rows} == {"speech", "music", "environment"}
    assert any(r["status"] == "failed" and r["tags"] == [] for r in rows)
    tags = {t for r in rows for t in r["tags"]}
    assert any(t != t.lower() for t in tags) and any("_" in t for t in tags)
    assert len({r["clip_id"] for r in rows}) == len(rows)
