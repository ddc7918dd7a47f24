"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks (no model).
It serves /v1/chat/completions, /v1/completions (a raw `prompt`: the same script, answered in the
completions shape) and /v1/models.

Each request's answer comes from a script: `script(request_json, attempt) -> Canned`, where
`attempt` counts earlier requests with the same body (so "fail once, then succeed" is scriptable).
The default script obeys a `[[script:NAME]]` directive in the request's text (see `DIRECTIVES`)
and otherwise answers like a well-behaved model: labels from the description's words, or a caption
that states the clip's length. `latency_s` and `max_concurrency` make a server with a known
ceiling (max_concurrency / latency_s requests per second) for throughput benchmarks.

    with ScriptedServer() as server:
        client_config = ClientConfig(endpoint=server.endpoint, model=server.model)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import soundfile as sf

__all__ = ["DIRECTIVES", "Canned", "ScriptedServer", "default_script"]


@dataclass(frozen=True, kw_only=True)
class Canned:
    """One scripted answer: a chat completion (`content`), or a raw `body` with any status."""

    status: int = 200
    content: str = ""
    finish_reason: str = "stop"
    body: str | None = None  # sent verbatim (e.g. an HTML error page); overrides content
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[dict[str, Any], int], Canned]

DIRECTIVES = {
    "ok": "valid JSON labels",
    "fenced": "valid JSON inside a ```json code fence",
    "prose": "valid JSON with prose before and after",
    "bare-list": "a bare JSON list of labels",
    "malformed": "broken JSON, every time",
    "malformed-then-ok": "broken JSON to the normal prompt, valid JSON to the stricter retry prompt",
    "empty": "an empty message",
    "length": "a reply cut off at the token limit (finish_reason length)",
    "http500": "HTTP 500 with an HTML body, every time",
    "http500-once": "HTTP 500 once, then valid JSON",
    "429": "HTTP 429, every time",
    "http401": "HTTP 401 (a revoked key), every time",
    "429-once": "HTTP 429 (Retry-After: 0) once, then valid JSON",
    "slow": "valid JSON, but only after `slow_s` seconds",
}
_DIRECTIVE = re.compile(r"\[\[script:([a-z0-9\-]+)\]\]")
_WORD = re.compile(r"[a-z]{3,}")


def _texts(request: dict[str, Any]) -> tuple[str, list[bytes]]:
    """All text and all audio (decoded base64) in a request's messages."""
    texts: list[str] = [request["prompt"]] if isinstance(request.get("prompt"), str) else []
    audio: list[bytes] = []
    for message in request.get("messages", []):
        content = message.get("content")
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        )
        for part in parts:
            if part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "input_audio":
                audio.append(base64.b64decode(part["input_audio"]["data"]))
    return "\n".join(texts), audio


def _labels_for(text: str) -> list[str]:
    description = text.rsplit("Description:", 1)[-1]
    skip = {"script", "the", "and", "while", "with", "from", "for"}
    words = [w for w in _WORD.findall(_DIRECTIVE.sub(" ", description).lower()) if w not in skip]
    return list(dict.fromkeys(words))[:10] or ["sound"]


def default_script(request: dict[str, Any], attempt: int, *, slow_s: float = 5.0) -> Canned:
    text, audio = _texts(request)
    if audio and not text:
        info = sf.info(io.BytesIO(audio[0]))
        return Canned(content=f"A {info.duration:.1f}-second recording of a steady tone.")
    match = _DIRECTIVE.search(text)
    name = match.group(1) if match else "ok"
    labels = json.dumps({"labels": _labels_for(text)})
    strict = "could not be used" in text  # the stricter retry prompt
    answers = {
        "ok": Canned(content=labels),
        "fenced": Canned(content=f"Sure:\n```json\n{labels}\n```\n"),
        "prose": Canned(content=f"Here are the labels: {labels} I hope this helps."),
        "bare-list": Canned(content=json.dumps(_labels_for(text))),
        "malformed": Canned(content='{"labels": ["rain", "thunder"'),
        "malformed-then-ok": Canned(content=labels if strict else "labels: rain, thunder"),
        "empty": Canned(content=""),
        "length": Canned(content=labels[: len(labels) // 2], finish_reason="length"),
        "http500": Canned(status=500, body="<html><body>Internal Server Error</body></html>"),
        "http500-once": Canned(status=500, body="oops") if attempt == 0 else Canned(content=labels),
        "429": Canned(status=429, body='{"error": "rate limited"}', headers={"Retry-After": "0"}),
        "http401": Canned(status=401, body='{"error": "invalid api key"}'),
        "429-once": Canned(status=429, body="{}", headers={"Retry-After": "0"})
        if attempt == 0
        else Canned(content=labels),
        "slow": Canned(content=labels, delay_s=slow_s),
    }
    if name not in answers:
        return Canned(status=400, body=json.dumps({"error": f"unknown directive {name}"}))
    return answers[name]


class ScriptedServer:
    """Serves /v1/chat/completions and /v1/models on 127.0.0.1 from a background thread."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        latency_s: float = 0.0,
        max_concurrency: int | None = None,
        slow_s: float = 5.0,
        model: str = "scripted-model",
        api_key: str | None = None,
    ) -> None:
        self.script: Script = script or (lambda r, a: default_script(r, a, slow_s=slow_s))
        self.latency_s, self.max_concurrency = latency_s, max_concurrency
        self.model, self.api_key = model, api_key
        self.statuses: Counter[int] = Counter()
        self.requests = 0
        self.paths: Counter[str] = Counter()  # requests per URL path
        self.max_in_flight = 0
        self._in_flight = 0
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ceiling_rps(self) -> float:
        """The most requests per second this server can answer (finite with both limits set)."""
        if not self.max_concurrency or not self.latency_s:
            return float("inf")
        return self.max_concurrency / self.latency_s

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "bad api key"}, status=401)
        raw = await request.read()
        body = json.loads(raw)
        key = hashlib.sha256(raw).hexdigest()
        with self._lock:
            attempt = self._attempts[key]
            self._attempts[key] += 1
            self.requests += 1
            self.paths[request.path] += 1
        canned = self.script(body, attempt)
        async with self._gate:
            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                await asyncio.sleep(self.latency_s + canned.delay_s)
            finally:
                with self._lock:
                    self._in_flight -= 1
        with self._lock:
            self.statuses[canned.status] += 1
        if canned.body is not None:
            return web.Response(
                status=canned.status, text=canned.body, headers=canned.headers,
                content_type="text/html" if canned.body.startswith("<") else "application/json",
            )  # fmt: skip
        raw_prompt = "prompt" in body  # /v1/completions: the text_completion shape
        choice: dict[str, Any] = {"index": 0, "finish_reason": canned.finish_reason}
        choice |= {"text": canned.content} if raw_prompt else {"message": {"role": "assistant", "content": canned.content}}  # fmt: skip
        completion = {
            "id": f"{'cmpl' if raw_prompt else 'chatcmpl'}-{key[:12]}", "model": self.model,
            "object": "text_completion" if raw_prompt else "chat.completion", "choices": [choice],
            "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": max(1, len(canned.content) // 4),
                      "total_tokens": len(raw) // 4 + max(1, len(canned.content) // 4)},
        }  # fmt: skip
        return web.json_response(completion, status=canned.status, headers=canned.headers)

    async def _models(self, request: Any) -> Any:
        from aiohttp import web

        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "bad api key"}, status=401)
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        )

    async def _start(self) -> None:
        from aiohttp import web

        # Without max_concurrency, a gate far above anything a test sends.
        self._gate = asyncio.Semaphore(self.max_concurrency or 1_000_000)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._chat)  # the body's `prompt` picks the shape
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
