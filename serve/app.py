"""The HTTP API of the embedding endpoint: a FastAPI app around any `Backend`.

    POST /v1/embeddings  {"model", "input": item | [items], "encoding_format": "float"|"base64"}
    POST /v1/tags        {"model", "input": audio item(s), "top_k": 10}
    GET  /v1/models      OpenAI list shape
    GET  /healthz        200 when the model is loaded, else 503

Items: a base64 data URI (`data:audio/wav;base64,...`, flac, ogg, ...), a file under the configured
store (`s3://bucket/prefix/...` or an absolute path), or text (contrastive checkpoints only).
Errors are `{"error": {"message", "type", "code"}}` with a 4xx status for anything wrong with the
request; an unexpected failure is a 500 in the same shape (logged), and the app keeps answering.

    app = build_app(LocalBackend(Embedder.from_checkpoint(uri)), ServeSettings(store=root))
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.backend import Backend, LocalBackend
from serve.parsing import (
    ApiError,
    AudioRef,
    Item,
    ServeSettings,
    StoreRef,
    TextItem,
    check_auth,
    parse_embeddings,
    parse_tags,
)
from uts.audio import AudioError, Wave
from uts.embed import TAG_OBJECTIVES, TEXT_OBJECTIVES, NoTagHead, NoTextTower, audio_tokens

__all__ = ["LocalBackend", "ServeSettings", "build_app", "read_json"]

log = logging.getLogger("uts.serve")


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a logged 500 in the error shape instead of
    a dropped connection, and the server keeps serving."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = JSONResponse(
                {"error": {"message": "internal server error (logged on the server)",
                           "type": "server_error", "code": "internal_error"}},
                status_code=500,
            )  # fmt: skip
            await response(scope, receive, send)


async def read_json(request: Request, settings: ServeSettings) -> Any:
    """The request's JSON body: 415 unless application/json, 413 past max_body_bytes (the declared
    Content-Length and the bytes actually received), 400 when it is not JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {media or '(none)'!r}",
                       "unsupported_media_type")  # fmt: skip
    limit = settings.max_body_bytes
    too_large = ApiError(413, f"request body is larger than the limit max_body_bytes = {limit} "
                              "bytes", "body_too_large")  # fmt: skip
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, f"invalid Content-Length {declared!r}", "invalid_request")
        if int(declared) > limit:
            raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", "invalid_json") from exc


def _read_store_file(item: StoreRef, limit: int) -> bytes:
    from uts.store import open_fs

    where = f"input[{item.index}] ({item.uri})"
    try:
        fs, path = open_fs(item.uri)
        with fs.open(path, "rb") as f:
            data: bytes = f.read(limit + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise ApiError(400, f"{where}: no such file in the store", "file_not_found") from exc
    except PermissionError as exc:
        raise ApiError(403, f"{where}: the server may not read it", "store_uri_forbidden") from exc
    if len(data) > limit:
        raise ApiError(400, f"{where}: file is larger than the limit max_body_bytes = {limit} bytes",
                       "file_too_large")  # fmt: skip
    return data


def _load_waves(items: Sequence[Item], settings: ServeSettings) -> list[Wave]:
    """Audio items -> 16 kHz mono waves (blocking: runs in a worker thread)."""
    from uts.embed import decode_audio

    waves = []
    for item in items:
        if isinstance(item, TextItem):
            raise ApiError(400, f"input[{item.index}] is text, not audio", "invalid_input")
        data = (
            item.data
            if isinstance(item, AudioRef)
            else _read_store_file(item, settings.max_body_bytes)
        )
        try:
            waves.append(decode_audio(data, min_rate=settings.min_rate, max_rate=settings.max_rate,
                                      max_seconds=settings.max_seconds, min_seconds=settings.min_seconds))  # fmt: skip
        except AudioError as exc:
            limit = getattr(exc, "limit", None)
            code = "audio_limit_exceeded" if limit else "invalid_audio"
            raise ApiError(400, f"input[{item.index}]: {exc}", code) from exc
    return waves


def _usage(waves: Sequence[Wave], texts: Sequence[str]) -> dict[str, int]:
    """Audio: encoder output frames (25 per second); text: whitespace-separated words."""
    tokens = sum(audio_tokens(len(w)) for w in waves) + sum(len(t.split()) for t in texts)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def _vector(row: np.ndarray[Any, Any], encoding: str) -> Any:
    if encoding == "base64":  # little-endian float32, what the openai client decodes
        return base64.b64encode(np.asarray(row, "<f4").tobytes()).decode("ascii")
    return np.asarray(row, np.float32).tolist()


def build_app(backend: Backend, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `backend` under `settings` (see the module doc)."""
    settings = settings or ServeSettings()
    created = int(time.time())
    app = FastAPI(title="UTS audio encoder", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(CatchAll)

    def served() -> str:
        return settings.model or backend.model_id

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(ApiError(400, f"invalid request: {exc.errors()}", "invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(ApiError(exc.status_code, str(exc.detail), code, dict(exc.headers or {})))

    async def guard(request: Request) -> Any:
        """Auth, then readiness, then the JSON body."""
        check_auth(request.headers.get("authorization"), settings.token)
        if not backend.loaded:
            raise ApiError(503, "the model is still loading; retry shortly", "model_not_loaded")
        return await read_json(request, settings)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if not backend.loaded:
            body = ApiError(503, "the model is not loaded", "model_not_loaded").body()
            return JSONResponse({"status": "loading", **body}, status_code=503)
        stats = getattr(backend, "stats", None)  # optional (serve.backend.Backend)
        extra = stats() if callable(stats) else {}
        return JSONResponse({**extra, "status": "ok", "model": served(),
                             "embedding_space": backend.embedding_space})  # fmt: skip

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        check_auth(request.headers.get("authorization"), settings.token)
        entry = {"id": served(), "object": "model", "created": created, "owned_by": "uts",
                 "objective": backend.objective, "embedding_space": backend.embedding_space}  # fmt: skip
        return JSONResponse({"object": "list", "data": [entry]})

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        parsed = parse_embeddings(await guard(request), settings, served())
        texts = [i for i in parsed.items if isinstance(i, TextItem)]
        audio = [i for i in parsed.items if not isinstance(i, TextItem)]
        if texts and backend.objective not in TEXT_OBJECTIVES:
            raise ApiError(400, f"input[{texts[0].index}] is text, but model {served()} "
                                f"({backend.objective}) has no text tower: send audio, or use a "
                                "contrastive checkpoint", "text_not_supported")  # fmt: skip
        waves = await run_in_threadpool(_load_waves, audio, settings) if audio else []
        vectors: dict[int, Any] = {}
        try:
            if audio:
                vectors.update(
                    zip((i.index for i in audio), await backend.embed(waves), strict=True)
                )
            if texts:
                matrix = await backend.embed_texts([t.text for t in texts])
                vectors.update(zip((t.index for t in texts), matrix, strict=True))
        except NoTextTower as exc:
            raise ApiError(400, str(exc), "text_not_supported") from exc
        data = [{"object": "embedding", "index": i, "embedding": _vector(vectors[i], parsed.encoding_format)}
                for i in range(len(parsed.items))]  # fmt: skip
        return JSONResponse({"object": "list", "data": data, "model": served(),
                             "embedding_space": backend.embedding_space,
                             "usage": _usage(waves, [t.text for t in texts])})  # fmt: skip

    @app.post("/v1/tags")
    async def tags(request: Request) -> JSONResponse:
        parsed = parse_tags(await guard(request), settings, served())
        if backend.objective not in TAG_OBJECTIVES:
            raise ApiError(400, f"model {served()} ({backend.objective}) has no MTC head; /v1/tags "
                                "needs an mtc or multitask checkpoint", "no_tag_head")  # fmt: skip
        waves = await run_in_threadpool(_load_waves, parsed.items, settings)
        try:
            found = await backend.tags(waves, parsed.top_k)
        except NoTagHead as exc:
            raise ApiError(400, str(exc), "no_tag_head") from exc
        data = [{"object": "tags", "index": i,
                 "tags": [{"tag": tag, "probability": p} for tag, p in row]}
                for i, row in enumerate(found)]  # fmt: skip
        return JSONResponse({"object": "list", "data": data, "model": served(),
                             "embedding_space": backend.embedding_space,
                             "usage": _usage(waves, [])})  # fmt: skip

    return app
