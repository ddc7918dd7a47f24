"""Ray tasks as a mapper: apply a function to batches on the cluster, results back in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from cluster.runtime import ensure_ray

B = TypeVar("B")
R = TypeVar("R")


def _call(fn: Callable[[Any], Any], batch: Any) -> Any:
    return fn(batch)


def ray_mapper(
    fn: Callable[[B], R], batches: Sequence[B], *, max_in_flight: int | None = None
) -> Iterator[R]:
    """Run `fn(batch)` as Ray tasks, at most `max_in_flight` at once (default: 2 per CPU), and
    yield the results in input order (so outputs are deterministic whatever finishes first)."""
    ray = ensure_ray()
    task = ray.remote(_call)
    fn_ref = ray.put(fn)
    limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict[Any, int] = {}
    ready: dict[int, R] = {}
    next_submit = next_yield = 0
    while next_yield < len(batches):
        # Finished-but-not-yet-yielded results count too, so one slow task bounds memory.
        while next_submit < len(batches) and len(pending) + len(ready) < limit:
            pending[task.remote(fn_ref, batches[next_submit])] = next_submit
            next_submit += 1
        if next_yield not in ready:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                ready[pending.pop(ref)] = ray.get(ref)
            continue
        yield ready.pop(next_yield)
        next_yield += 1


def mapper_for(workers: int | None) -> Callable[[Callable[[B], R], Sequence[B]], Iterator[R]]:
    """`--workers 0`: plain in-process `map`; otherwise Ray tasks (joining the cluster if any)."""
    if workers == 0:
        return map
    return ray_mapper
