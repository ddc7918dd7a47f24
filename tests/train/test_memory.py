"""uts.train.memory: the peak follows what the process touched, and reset brings it down."""

from __future__ import annotations

import numpy as np

from uts.train.memory import peak_mb, reset_peak, status_mb


def test_the_peak_rises_by_what_is_touched_and_resets() -> None:
    reset_peak("cpu")
    before = peak_mb("cpu")
    block = np.ones(200 * 2**20 // 8)  # 200 MB, every page written
    assert peak_mb("cpu") - before > 150
    del block
    reset_peak("cpu")
    assert peak_mb("cpu") < before + 150  # back near the resident size (Linux >= 4.0)
    assert abs(peak_mb("cpu") - status_mb("VmRSS")) < 50
