"""Peak memory of this process, for the train loop's log lines and the benchmarks.

CUDA: the caching allocator's peak bytes allocated since the last reset (what the tensors needed,
not what the allocator kept). CPU: the resident high-water mark from /proc/self/status (Linux),
which `reset_peak` brings down to the current resident size where the kernel allows (>= 4.0);
elsewhere (macOS) the process's maximum resident size from getrusage, never reset.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["peak_mb", "reset_peak", "status_mb"]


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM, ...), in MB.

    Raises:
        RuntimeError: the field is not there (not Linux, or a misspelt field).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_mb(device: str) -> float:
    """Peak memory on `device` ("cuda" or "cpu") since the last reset_peak, in MB."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    if Path("/proc/self/status").exists():
        return status_mb("VmHWM")
    import resource  # macOS: no /proc; ru_maxrss is in bytes there (and not resettable)
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak(device: str) -> None:
    """Start a new peak: the CUDA allocator's statistics, or the resident high-water mark."""
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
