"""The OpenAI-compatible client against the scripted server: every canned failure ends in a Reply
with the right reason, retries are bounded, and the row functions turn replies into statuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from uts.llm import load_prompt
from uts.llm.chat import Reply, caption_row, tag_row, tagging_messages
from uts.llm.client import ClientConfig, EndpointError, check_endpoint, complete_many
from uts.testing.llm_server import ScriptedServer

PROMPT = load_prompt("tagging", 1)
STRICT = load_prompt("tagging_strict", 1)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(slow_s=3.0) as running:
        yield running


def config(server: ScriptedServer, **overrides: float) -> ClientConfig:
    kwargs = {"timeout_s": 1.0, "max_retries": 2, "backoff_s": 0.01, **overrides}
    return ClientConfig(endpoint=server.endpoint, model=server.model, **kwargs)  # type: ignore[arg-type]


def ask(server: ScriptedServer, directive: str, cfg: ClientConfig | None = None) -> Reply:
    description = f"Rain falls on a tin roof while thunder rolls. [[script:{directive}]]"
    body = {"model": server.model, "messages": tagging_messages(description, PROMPT)}
    (reply,) = asyncio.run(complete_many(cfg or config(server), [body]))
    return reply


@pytest.mark.parametrize("directive", ["ok", "fenced", "prose", "bare-list"])
def test_parseable_answers_become_tags(server: ScriptedServer, directive: str) -> None:
    row = tag_row(ask(server, directive), attempt=0)
    assert row["status"] == "ok" and row["tags"][:3] == ["rain", "fall", "tin"]


@pytest.mark.parametrize(
    ("directive", "reason", "retry"),
    [
        ("malformed", "no JSON object", True),
        ("empty", "empty output", True),
        ("length", "truncated at the token limit", True),
    ],
)
def test_unparseable_answers_are_retried_once_then_failed(
    server: ScriptedServer, directive: str, reason: str, retry: bool
) -> None:
    reply = ask(server, directive)
    first = tag_row(reply, attempt=0)
    assert first["status"] == "failed" and reason in first["error"] and first["retry"] is retry
    assert first["raw"] == (reply.text or "")  # the raw output is kept
    second = tag_row(reply, attempt=1)
    assert second["status"] == "failed" and second["retry"] is False


def test_stricter_prompt_on_retry(server: ScriptedServer) -> None:
    description = "A dog barks at the gate. [[script:malformed-then-ok]]"
    first = {"model": server.model, "messages": tagging_messages(description, PROMPT)}
    retry = {"model": server.model, "messages": tagging_messages(
        description, PROMPT, retry=STRICT, reason="no JSON object or list in the output")}  # fmt: skip
    replies = asyncio.run(complete_many(config(server), [first, retry]))
    assert tag_row(replies[0], attempt=0)["retry"] is True
    assert tag_row(replies[1], attempt=1)["tags"] == ["dog", "bark", "gate"]
    assert "no JSON object" in retry["messages"][0]["content"]


@pytest.mark.parametrize(
    ("directive", "attempts", "reason"),
    [
        ("http500", 3, "HTTP 500"),
        ("429", 3, "HTTP 429"),
        ("slow", 3, "no reply within 1 s"),
    ],
)
def test_transport_failures_retry_a_bounded_number_of_times(
    server: ScriptedServer, directive: str, attempts: int, reason: str
) -> None:
    before = server.requests
    reply = ask(server, directive)
    assert reply.error is not None and reason in reply.error and "gave up after 3" in reply.error
    assert reply.attempts == attempts and server.requests - before == attempts
    assert tag_row(reply, attempt=0) == {"tags": [], "status": "failed", "error": reply.error,
                                         "raw": "", "retry": False}  # fmt: skip


@pytest.mark.parametrize("directive", ["http500-once", "429-once"])
def test_a_transient_failure_then_success(server: ScriptedServer, directive: str) -> None:
    reply = ask(server, directive)
    assert reply.error is None and reply.attempts == 2 and reply.completion_tokens > 0


def test_backoff_grows_exponentially(server: ScriptedServer) -> None:
    started = time.monotonic()
    ask(server, "http500", config(server, backoff_s=0.2))  # waits 0.2 + 0.4 (+ jitter)
    assert 0.6 <= time.monotonic() - started < 3.0


def test_fatal_statuses_stop_the_job() -> None:
    with ScriptedServer(api_key="right") as locked:
        wrong = ClientConfig(endpoint=locked.endpoint, model=locked.model, api_key="wrong")
        with pytest.raises(EndpointError, match="401"):
            check_endpoint(wrong)
        with pytest.raises(EndpointError, match="401"):
            asyncio.run(complete_many(wrong, [{"messages": []}]))
        check_endpoint(ClientConfig(endpoint=locked.endpoint, model=locked.model, api_key="right"))
        with pytest.raises(EndpointError, match="does not serve model 'other'"):
            check_endpoint(ClientConfig(endpoint=locked.endpoint, model="other", api_key="right"))


def test_unreachable_endpoint_is_a_clear_error() -> None:
    with ScriptedServer() as gone:
        endpoint = gone.endpoint
    with pytest.raises(EndpointError, match="cannot reach"):
        check_endpoint(ClientConfig(endpoint=endpoint, model="m", timeout_s=2))


def test_caption_rows() -> None:
    assert caption_row(Reply(text=" A dog barks twice in a quiet yard. "))["status"] == "ok"
    cut = caption_row(Reply(text="A dog barks twice in a", finish_reason="length"))
    assert cut["status"] == "suspect" and "truncated" in cut["error"]
    failed = caption_row(Reply(error="HTTP 500: oops (gave up after 4 attempts)"))
    assert failed["status"] == "failed" and failed["description"] == ""
