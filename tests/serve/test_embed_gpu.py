"""An Embedder moved to a GPU (what a `--num-gpus 1` replica does) gives the CPU's vectors and tags."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.serve.conftest import tone
from uts.embed import Embedder

pytestmark = pytest.mark.gpu


def test_gpu_embedder_matches_cpu(mtc_embedder: Embedder) -> None:
    waves = [tone(1.0), tone(12.5, freq=300.0, seed=1)]  # the second one is chunked
    gpu = copy.deepcopy(mtc_embedder).to("cuda")
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.embed(waves), mtc_embedder.embed(waves), atol=1e-4)
    got, want = gpu.tags(waves, top_k=5), mtc_embedder.tags(waves, top_k=5)
    # probabilities agree; names are compared for the best tag only (near-ties may swap below it)
    assert [row[0][0] for row in got] == [row[0][0] for row in want]
    np.testing.assert_allclose(
        [[p for _, p in row] for row in got], [[p for _, p in row] for row in want], atol=1e-4
    )
