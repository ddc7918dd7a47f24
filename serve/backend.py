"""What the HTTP app needs from a model (`Backend`), and the in-process one (`LocalBackend`).

The Ray Serve deployment implements the same protocol (with `@serve.batch` on its methods) and
passes itself to `serve.app.build_app`; tests and a single-process server pass a LocalBackend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from starlette.concurrency import run_in_threadpool

from uts.audio import Wave
from uts.embed import Embedder

__all__ = ["Backend", "LocalBackend"]

Matrix = npt.NDArray[np.float32]


class Backend(Protocol):
    """A loaded (or loading) model. Errors: uts.embed.NoTagHead / NoTextTower for what the
    checkpoint cannot do; anything else is a server error.

    Optional: a `stats() -> dict` method, whose JSON-able dict joins `/healthz`'s body (the Serve
    deployment reports its batch sizes there).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def embedding_space(self) -> str: ...

    @property
    def objective(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    async def embed(self, waves: Sequence[Wave]) -> Matrix:
        """(N waves, 16 kHz mono) -> (N, D) float32."""
        ...

    async def tags(self, waves: Sequence[Wave], top_k: int) -> list[list[tuple[str, float]]]: ...

    async def embed_texts(self, texts: Sequence[str]) -> Matrix: ...


class LocalBackend:
    """An Embedder in this process; model calls run in a worker thread so the event loop (health
    checks, request parsing) keeps answering."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.embedding_space = embedder.embedding_space
        self.objective = embedder.objective
        self.loaded = True

    async def embed(self, waves: Sequence[Wave]) -> Matrix:
        return await run_in_threadpool(self.embedder.embed, waves)

    async def tags(self, waves: Sequence[Wave], top_k: int) -> list[list[tuple[str, float]]]:
        return await run_in_threadpool(self.embedder.tags, waves, top_k)

    async def embed_texts(self, texts: Sequence[str]) -> Matrix:
        return await run_in_threadpool(self.embedder.embed_texts, texts)
