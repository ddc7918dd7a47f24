"""Test tiers: default (fast, no Ray), `ray` (one shared local Ray), `gpu` (skipped without one).

Ray is bound to 127.0.0.1 with auth disabled and a temp dir of its own; it is stopped by shutting
down what this session started, never with `ray stop`.
"""

from __future__ import annotations

import contextlib
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
from typing import Any

import pytest

# Before anything imports ray: loopback only, no token auth in tests.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray for the whole session, on 127.0.0.1, more logical CPUs than cores."""
    ray = pytest.importorskip("ray")
    temp_dir = tempfile.mkdtemp(prefix="ray-uts-", dir="/tmp")  # short: socket paths are limited
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        _temp_dir=temp_dir,
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 for this session; yields its URL and sets AWS_* variables."""
    pytest.importorskip("moto")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        )
    }
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server; returns `s3://name`."""
    import uuid

    import s3fs

    name = f"uts-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).mkdir(name)
    s3fs.S3FileSystem.clear_instance_cache()
    return f"s3://{name}"


def processes_under(marker: str) -> list[int]:
    """Pids whose command line mentions `marker` (a cluster's own temp dir)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture
def head_node(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    """`ray start --head` on 127.0.0.1 with its own free ports and temp dir (logical CPUs from
    `@pytest.mark.parametrize("head_node", [N], indirect=True)`, default 6); yields the dashboard
    URL for `ray job submit` and the environment to run it in. Stopped by its own process ids."""
    cpus = getattr(request, "param", 6)
    temp_dir = tempfile.mkdtemp(prefix="ray-head-", dir="/tmp")
    dashboard = _free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--dashboard-agent-listen-port={_free_port()}", f"--ray-client-server-port={_free_port()}",
         f"--num-cpus={cpus}", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        for pid in processes_under(temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit_job(
    address: str, env: dict[str, str], command: list[str], *, timeout_s: float = 600
) -> tuple[str, str]:
    """`ray job submit --working-dir <repo> -- <command>` to `address`; waits for the job to end and
    returns (final status, logs)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    ray = str(Path(sys.executable).parent / "ray")
    root = Path(__file__).resolve().parents[1]
    submitted = subprocess.run([ray, "job", "submit", f"--address={address}", f"--working-dir={root}",
                                "--no-wait", "--", *command],
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    # the CLI colours its output: take the id's characters only, not the escape codes around it
    (job_id, *_) = re.findall(r"raysubmit_[A-Za-z0-9]+", submitted.stdout) or [""]
    assert job_id, submitted.stdout[-2000:]
    client = JobSubmissionClient(address)
    ended = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
    deadline = time.monotonic() + timeout_s
    while (status := client.get_job_status(job_id)) not in ended:
        assert time.monotonic() < deadline, f"the job did not finish in {timeout_s:.0f} s"
        time.sleep(2)
    return str(status), client.get_job_logs(job_id)
