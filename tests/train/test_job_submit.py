"""`ray job submit` of the pretraining job to a `ray start --head` cluster that the test starts on
127.0.0.1 (its own free ports and temp dir) and stops by its own process ids."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_under(marker: str) -> list[int]:
    """Pids whose command line mentions `marker` (this cluster's temp dir)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture
def head_node() -> Iterator[tuple[str, dict[str, str]]]:
    temp_dir = tempfile.mkdtemp(prefix="ray-head-", dir="/tmp")
    dashboard = free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
         "--num-cpus=6",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        for pid in processes_under(temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_runs_pretraining(
    head_node: tuple[str, dict[str, str]], tagged_store: Path
) -> None:
    address, env = head_node
    ray = str(Path(sys.executable).parent / "ray")
    submitted = subprocess.run(
        [ray, "job", "submit", f"--address={address}", f"--working-dir={ROOT}", "--no-wait", "--",
         "python", "jobs/pretrain.py", "--preset", "smoke", "--store", str(tagged_store), "--corpus", "c",
         "--vocab", "v", "--k", "6", "--name", "submitted", "--max-steps", "6"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = re.findall(r"raysubmit_[A-Za-z0-9]+", submitted.stdout)[0]
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    deadline = time.monotonic() + 600
    while client.get_job_status(job_id) not in (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    ):
        assert time.monotonic() < deadline, "the job did not finish in 10 minutes"
        time.sleep(2)
    logs = client.get_job_logs(job_id)
    assert client.get_job_status(job_id) == JobStatus.SUCCEEDED, logs[-3000:]
    run = tagged_store / "runs" / "submitted"
    (checkpoint,) = [p for p in run.glob("checkpoint_*") if p.is_dir()]
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 6
    assert '"run": "submitted"' in logs
