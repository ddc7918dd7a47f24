"""A small tagged corpus (vocabulary `v` of 12 tags) with one probe task, for the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.fixtures import make_tagged_store


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Corpus `c`, vocabulary `v` (12 tags), probe task `vggsound` (environment, own audio)."""
    from tests.probe.test_evaluate import SHAPES
    from uts.testing.corpus import make_task_folder

    store = make_tagged_store(tmp_path_factory.mktemp("sweep"))
    make_task_folder(store / "tasks", *SHAPES[1])
    return store
