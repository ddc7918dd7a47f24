"""`ray job submit` of the pretraining job to a `ray start --head` cluster that the test starts on
127.0.0.1 (its own free ports and temp dir) and stops by its own process ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import submit_job

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_ray_job_submit_runs_pretraining(
    head_node: tuple[str, dict[str, str]], tagged_store: Path
) -> None:
    address, env = head_node
    status, logs = submit_job(address, env, [
        "python", "jobs/pretrain.py", "--preset", "smoke", "--store", str(tagged_store), "--corpus", "c",
        "--vocab", "v", "--k", "6", "--name", "submitted", "--max-steps", "6"])  # fmt: skip
    assert status == "SUCCEEDED", logs[-3000:]
    run = tagged_store / "runs" / "submitted"
    (checkpoint,) = [p for p in run.glob("checkpoint_*") if p.is_dir()]
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 6
    assert '"run": "submitted"' in logs
