"""A small tagged corpus with a vocabulary, for the pretraining tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.fixtures import make_tagged_store


@pytest.fixture(scope="session")
def tagged_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 clips of 1-3 s captioned with one of six sounds, rules tags, vocabulary `v`, corpus `c`."""
    return make_tagged_store(tmp_path_factory.mktemp("tagged"))
