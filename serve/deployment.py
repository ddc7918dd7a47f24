"""The Ray Serve deployment of the embedding endpoint: each replica loads the checkpoint once and
is itself the `Backend` of the FastAPI app (serve.app.build_app), with dynamic batching.

    serve run serve.deployment:app_builder store=./uts-store run=demo-mtc-k300   # or:
    serve deploy serve/config.yaml                                              # a cluster
    python jobs/serve.py --run demo-mtc-k300                                    # the job

Batching is per clip: a request with N audio items puts N clips on the replica's queue (one
`@serve.batch` call each), and the queue hands up to `max_batch` clips, from any mix of requests,
to one `Embedder.embed` (or `.tags`) call after at most `batch_wait_s`. The Embedder's own batch is
`max_batch`, so clips up to 10 s go through the encoder as one forward (longer clips are split into
10-s chunks first, so they add more rows). Embeddings and tags have a queue each; text (contrastive
checkpoints) is embedded per request, unbatched. A replica accepts 2 * max_batch requests at once
(`DeploymentOptions.max_ongoing_requests`) so one batch can fill while the previous one runs; the
encoder runs in a worker thread, so health checks and request parsing go on meanwhile. The sizes
of the batches a replica ran are in its `/healthz` body (`batches`, `max_batch`, `batch_sizes`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ray import serve as ray_serve
from ray.serve import Application

from serve.app import build_app
from serve.options import DeploymentOptions, options_from_args
from serve.parsing import ServeSettings
from uts.audio import Wave
from uts.embed import Embedder

__all__ = ["DEPLOYMENT", "EncoderDeployment", "app_builder", "build_deployment"]

DEPLOYMENT = "uts-encoder"  # the deployment's name (a config file's `deployments:` use it)

log = logging.getLogger("ray.serve")  # Serve writes this logger to the replica's log file

Matrix = np.ndarray[Any, np.dtype[np.float32]]


def replica_threads(default: float) -> int:
    """Torch threads for this replica: the CPUs Ray assigned to it (`default` outside Ray), so
    replicas sharing a node do not oversubscribe its cores."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", default)
    except Exception:  # not in a Ray worker (a test constructing the class directly)
        cpus = default
    return max(1, round(cpus))


@ray_serve.deployment(name=DEPLOYMENT, max_constructor_retry_count=3)
@ray_serve.ingress()
class EncoderDeployment:
    """One replica: an Embedder on this replica's CPUs (or its GPU), behind the HTTP app."""

    def __init__(
        self, checkpoint: str, settings: ServeSettings, *, max_batch: int, batch_wait_s: float,
        num_cpus: float = 1.0, num_gpus: int = 0,
    ) -> None:  # fmt: skip
        from uts.store import Store

        self.loaded = False
        self.settings, self.checkpoint = settings, checkpoint
        self.batch_sizes: Counter[int] = Counter()
        threads = replica_threads(num_cpus)
        torch.set_num_threads(threads)
        started = time.monotonic()
        store = Store(settings.store) if settings.store else None
        embedder = Embedder.from_checkpoint(checkpoint, store, batch=max_batch)
        if num_gpus:
            if not torch.cuda.is_available():
                raise RuntimeError("num_gpus = 1, but this replica sees no CUDA device")
            embedder.to("cuda")
        self.embedder = embedder
        self.model_id, self.objective = embedder.model_id, embedder.objective
        self.embedding_space = embedder.embedding_space
        for method in (self._embed_clips, self._tag_clips):
            method.set_max_batch_size(max_batch)  # type: ignore[attr-defined]
            method.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]
        self.loaded = True
        log.info("loaded checkpoint %s in %.1f s: model %s (%s), embedding space %s, on %s with "
                 "%d torch thread(s), batches of up to %d clips, wait %.0f ms", checkpoint,
                 time.monotonic() - started, self.model_id, self.objective, self.embedding_space,
                 embedder.device, threads, max_batch, batch_wait_s * 1000)  # fmt: skip

    def __serve_build_asgi_app__(self) -> Any:
        """Serve calls this after __init__: the app's backend is this replica."""
        return build_app(self, self.settings)

    def check_health(self) -> None:
        """Serve's periodic replica health check."""
        if not self.loaded:
            raise RuntimeError(f"the model of {self.checkpoint} is not loaded")

    def describe(self) -> dict[str, Any]:
        """What this replica serves (jobs/serve.py prints it)."""
        return {"model": self.settings.model or self.model_id, "objective": self.objective,
                "embedding_space": self.embedding_space, "checkpoint": self.checkpoint,
                "device": str(self.embedder.device), "threads": torch.get_num_threads()}  # fmt: skip

    def stats(self) -> dict[str, Any]:
        """Batches this replica ran: how many, the largest, and how many of each size."""
        sizes = self.batch_sizes
        return {"batches": sum(sizes.values()), "max_batch": max(sizes, default=0),
                "clips": sum(k * n for k, n in sizes.items()),
                "batch_sizes": {str(k): sizes[k] for k in sorted(sizes)}}  # fmt: skip

    # The Backend protocol (serve.backend): one queue entry per clip.

    async def embed(self, waves: Sequence[Wave]) -> Matrix:
        if not waves:
            return np.zeros((0, self.embedder.dim), np.float32)
        rows = await asyncio.gather(*(self._embed_clips(w) for w in waves))
        return np.stack(rows)

    async def tags(self, waves: Sequence[Wave], top_k: int) -> list[list[tuple[str, float]]]:
        return list(await asyncio.gather(*(self._tag_clips((w, top_k)) for w in waves)))

    async def embed_texts(self, texts: Sequence[str]) -> Matrix:
        return await asyncio.to_thread(self.embedder.embed_texts, texts)

    # The batched calls: max batch size and wait are set per replica in __init__.

    @ray_serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def _embed_clips(self, waves: list[Wave]) -> list[Matrix]:
        self.batch_sizes[len(waves)] += 1
        matrix = await asyncio.to_thread(self.embedder.embed, waves)  # (B, D)
        return list(matrix)

    @ray_serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def _tag_clips(self, items: list[tuple[Wave, int]]) -> list[list[tuple[str, float]]]:
        self.batch_sizes[len(items)] += 1
        most = max(k for _, k in items)  # one call at the largest top_k, each cut to its own
        found = await asyncio.to_thread(self.embedder.tags, [w for w, _ in items], most)
        return [row[:k] for row, (_, k) in zip(found, items, strict=True)]


def build_deployment(options: DeploymentOptions) -> Application:
    """The Serve application for `options`: replicas or autoscaling, CPUs/GPU per replica."""
    scaling: dict[str, Any]
    if options.autoscale is not None:
        low, high = options.autoscale
        target = options.target_ongoing_requests or float(options.max_batch)
        scaling = {"autoscaling_config": {"min_replicas": low, "max_replicas": high,
                                          "initial_replicas": max(low, 1),
                                          "target_ongoing_requests": target}}  # fmt: skip
    else:
        scaling = {"num_replicas": options.replicas}
    deployment = EncoderDeployment.options(
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options={"num_cpus": options.num_cpus, "num_gpus": options.num_gpus},
        **scaling,
    )
    return deployment.bind(
        options.checkpoint, options.settings, max_batch=options.max_batch,
        batch_wait_s=options.batch_wait_s, num_cpus=options.num_cpus, num_gpus=options.num_gpus,
    )  # fmt: skip


def app_builder(args: dict[str, Any]) -> Application:
    """Serve's application builder (`import_path: serve.deployment:app_builder` with `args:`); the
    keys are serve.options.options_from_args's (store, run or checkpoint, limits, ...)."""
    return build_deployment(options_from_args(args))
