"""Connecting to Ray: the cluster a job was submitted to, or a private local one bound to loopback."""

from __future__ import annotations

import os
from typing import Any


def ensure_ray(num_cpus: int | None = None, *, log_to_driver: bool = False) -> Any:
    """Return the `ray` module, initialised.

    Under `ray job submit` (RAY_ADDRESS set) this joins that cluster. Otherwise it starts a local
    Ray for this process only, on 127.0.0.1 (on Linux Ray would bind the interface address), with
    one logical CPU per core by default: CPU-bound tasks (decoding) run fastest without
    oversubscription. Jobs that mix actors and tasks pass a larger `num_cpus`; jobs whose workers
    print progress (training) pass `log_to_driver=True`.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return ray
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
    else:
        cpus = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=log_to_driver)
    return ray


def store_env() -> dict[str, str]:
    """The driver's object-store settings (AWS_* variables: endpoint, region, credentials), for the
    runtime_env of workers that read or write the store: on a running cluster, workers do not
    inherit the submitting process's environment."""
    return {key: value for key, value in os.environ.items() if key.startswith("AWS_")}


def cluster_gpus() -> int:
    """GPUs in the connected Ray cluster (0 on a CPU-only one)."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return int(resources.get("GPU", 0))
