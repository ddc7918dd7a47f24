"""Tiny data and reference implementations for tests, the demo and benchmarks."""

from uts.testing.reference import reference_vocabulary
from uts.testing.tags import sample_tag_rows, sample_tags_path, tag_table, zipf_tag_table

__all__ = [
    "reference_vocabulary",
    "sample_tag_rows",
    "sample_tags_path",
    "tag_table",
    "zipf_tag_table",
]
