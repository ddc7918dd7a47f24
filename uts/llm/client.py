"""An asyncio client for OpenAI-compatible chat-completions (and, for raw prompts, completions)
endpoints (vllm serve, Ray Serve LLM, hosted APIs), built for bulk jobs: many requests in flight,
a timeout per request, bounded retries with exponential backoff on 408/429/5xx and dropped
connections, and a `Reply` for every request.

A row that keeps failing becomes a Reply with the reason (the stage records it as `failed`); it
never raises and never stops the other rows. Only a misconfiguration that would fail every row
(401/403/404: bad key, wrong URL or model) raises `EndpointError`, so a job stops at once with a
clear message instead of writing 400K failed rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from uts.llm.chat import Reply

__all__ = ["ClientConfig", "EndpointError", "check_endpoint", "complete", "complete_many"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 403, 404})


class EndpointError(RuntimeError):
    """The endpoint refuses every request (authentication, URL or model); retrying cannot help."""


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """endpoint is the base URL (`http://host:8000/v1`), as for the openai client's base_url."""

    endpoint: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = (
        1.0  # waits backoff_s * 2**k (+ up to 25% jitter), or the server's Retry-After
    )
    max_backoff_s: float = 60.0

    @property
    def url(self) -> str:
        return self.endpoint.rstrip("/") + "/chat/completions"

    def url_for(self, body: dict[str, Any]) -> str:
        """chat/completions for `messages`; completions for a raw `prompt` (no chat template)."""
        return self.url if "messages" in body else self.endpoint.rstrip("/") + "/completions"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _reply_from(data: Any) -> Reply:
    """A Reply from a chat-completions JSON body, or one that says what was wrong with it."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        return Reply(error=f"unexpected response shape: {json.dumps(data)[:200]}")
    usage = data.get("usage") or {}
    return Reply(
        text=text if isinstance(text, str) else "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _wait_s(config: ClientConfig, attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(float(retry_after), config.max_backoff_s)
        except ValueError:
            pass  # an HTTP date instead of seconds: fall back to our own backoff
    base = config.backoff_s * 2**attempt
    return float(min(base * (1 + 0.25 * random.random()), config.max_backoff_s))


async def complete(
    session: aiohttp.ClientSession, config: ClientConfig, body: dict[str, Any]
) -> Reply:
    """POST one request (chat, or a raw completion when the body has a `prompt`); retries what
    may succeed later, returns a Reply in every case.

    Raises:
        EndpointError: HTTP 401, 403 or 404 (every other request would fail the same way).
    """
    last = "no attempt made"
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    for attempt in range(config.max_retries + 1):
        retry_after = None
        try:
            async with session.post(
                config.url_for(body), json=body, headers=config.headers(), timeout=timeout
            ) as response:
                payload = await response.text()
                if response.status == 200:
                    try:
                        data = json.loads(payload)
                    except json.JSONDecodeError:
                        return Reply(error=f"HTTP 200 but the body is not JSON: {payload[:200]!r}",
                                     attempts=attempt + 1)  # fmt: skip
                    return dataclasses.replace(_reply_from(data), attempts=attempt + 1)
                last = f"HTTP {response.status}: {payload[:200]}"
                if response.status in FATAL_STATUSES:
                    raise EndpointError(f"{config.url_for(body)} answered {last}")
                if response.status not in RETRY_STATUSES:
                    return Reply(error=last, attempts=attempt + 1)  # e.g. 400: the request is bad
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            last = f"no reply within {config.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < config.max_retries:
            await asyncio.sleep(_wait_s(config, attempt, retry_after))
    return Reply(
        error=f"{last} (gave up after {config.max_retries + 1} attempts)",
        attempts=config.max_retries + 1,
    )


async def complete_many(
    config: ClientConfig,
    bodies: Sequence[dict[str, Any]],
    *,
    session: aiohttp.ClientSession | None = None,
) -> list[Reply]:
    """Send every request at once (the caller bounds how many by the batch it passes) and return
    the replies in input order."""
    if session is None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as own:
            return await complete_many(config, bodies, session=own)
    return list(await asyncio.gather(*(complete(session, config, body) for body in bodies)))


def check_endpoint(config: ClientConfig) -> None:
    """Fail early with a clear message when the endpoint cannot be reached or refuses us
    (GET <endpoint>/models, as every OpenAI-compatible server serves it).

    Raises:
        EndpointError: unreachable, not OpenAI-compatible, bad key, or the model is not served.
    """

    async def probe() -> None:
        url = config.endpoint.rstrip("/") + "/models"
        timeout = aiohttp.ClientTimeout(total=min(config.timeout_s, 30.0))
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, headers=config.headers(), timeout=timeout) as response,
            ):
                body = await response.text()
                if response.status != 200:
                    raise EndpointError(f"{url} answered HTTP {response.status}: {body[:200]}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise EndpointError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
        try:
            served = [m.get("id") for m in json.loads(body).get("data", [])]
        except (json.JSONDecodeError, AttributeError) as exc:
            raise EndpointError(f"{url} is not an OpenAI-compatible models list") from exc
        if served and config.model not in served:
            raise EndpointError(f"{url} does not serve model {config.model!r}; it serves {served}")

    asyncio.run(probe())
