"""jobs/serve.py end to end on the session's local Ray: the Serve app on a free 127.0.0.1 port
answers httpx and the official `openai` client with the Embedder's own vectors and tags, batches
concurrent requests' clips into one encoder call, refuses bad input and missing tokens with their
status codes, keeps answering, and shuts Serve down when stopped (exit 0)."""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from jobs import serve as job
from tests.serve.conftest import encode, tone
from tests.serve.test_app import URIS, assert_error, data_uri, vectors
from uts.embed import Embedder, decode_audio
from uts.store import Store

pytestmark = pytest.mark.ray

MODEL = "serve-mtc"
TOKEN = "test-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def waves_of(uris: list[str]) -> list[np.ndarray]:
    return [decode_audio(base64.b64decode(u.split(",", 1)[1])) for u in uris]


@pytest.fixture(scope="module")
def endpoint(
    ray_session: Any, serve_store: Store, mtc_checkpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """jobs/serve.py's main in a thread (as `python jobs/serve.py` runs it, with a stop event in
    place of Ctrl-C); yields the base URL, the thread and the job's result once stopped."""
    token = tmp_path_factory.mktemp("token") / "token"
    token.write_text(f"{TOKEN}\n")
    port = free_port()
    argv = ["--store", serve_store.root_uri, "--checkpoint", mtc_checkpoint, "--port", str(port),
            "--token-file", str(token), "--max-batch", "8", "--batch-wait-ms", "100",
            "--max-items", "4", "--max-seconds", "3", "--max-body-bytes", "1000000"]  # fmt: skip
    stop, result, printed = threading.Event(), {}, io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(printed):  # the job's banner, read by the first test
            result.update(rc=job.main(argv, stop=stop))

    thread = threading.Thread(target=run)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            ready = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            if ready and "serving" in printed.getvalue():  # the banner comes after the deploy
                break
        except httpx.HTTPError:
            pass
        assert thread.is_alive(), f"jobs/serve.py ended early: {result}"
        assert time.monotonic() < deadline, "the endpoint did not come up in 120 s"
        time.sleep(0.5)
    state = {"url": url, "port": port, "thread": thread, "result": result, "stop": stop,
             "printed": printed}  # fmt: skip
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=60)


def post(url: str, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", json={"model": MODEL, **body}, headers=AUTH, timeout=60,
                      **kwargs)  # fmt: skip


def test_served_vectors_and_tags_equal_the_embedder(
    endpoint: dict[str, Any], mtc_embedder: Embedder
) -> None:
    import openai

    url = endpoint["url"]
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["embedding_space"] == mtc_embedder.embedding_space
    printed = endpoint["printed"].getvalue()
    assert f"{url}/v1" in printed and mtc_embedder.embedding_space in printed and MODEL in printed
    expected = mtc_embedder.embed(waves_of(URIS))
    response = post(url, "/v1/embeddings", {"input": URIS})  # two clips in one request
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(vectors(response), expected, atol=1e-5)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=60)
    created = client.embeddings.create(model=MODEL, input=URIS)  # base64 on the wire
    assert created.model == MODEL and [d.index for d in created.data] == [0, 1]
    assert (created.model_extra or {})["embedding_space"] == mtc_embedder.embedding_space
    np.testing.assert_allclose([d.embedding for d in created.data], expected, atol=1e-5)
    assert created.usage.prompt_tokens == response.json()["usage"]["prompt_tokens"]
    tags = post(url, "/v1/tags", {"input": URIS, "top_k": 3})
    assert tags.status_code == 200, tags.text
    want = mtc_embedder.tags(waves_of(URIS), top_k=3)
    for got, row in zip(tags.json()["data"], want, strict=True):
        assert [t["tag"] for t in got["tags"]] == [tag for tag, _ in row]
        np.testing.assert_allclose([t["probability"] for t in got["tags"]],
                                   [p for _, p in row], atol=1e-5)  # fmt: skip


def test_concurrent_requests_are_batched(endpoint: dict[str, Any], mtc_embedder: Embedder) -> None:
    url = endpoint["url"]
    clips = [tone(1.0 + 0.05 * i, freq=200.0 + 40 * i, seed=i) for i in range(16)]
    uris = [data_uri(encode(c)) for c in clips]
    before = httpx.get(f"{url}/healthz").json()
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda u: post(url, "/v1/embeddings", {"input": [u]}), uris))
    assert [r.status_code for r in responses] == [200] * 16
    got = np.concatenate([vectors(r) for r in responses])
    np.testing.assert_allclose(got, mtc_embedder.embed(waves_of(uris)), atol=1e-5)
    after = httpx.get(f"{url}/healthz").json()
    assert after["clips"] - before["clips"] == 16
    assert after["max_batch"] > 1, after  # several requests' clips went through one call
    assert max(int(k) for k in after["batch_sizes"]) <= 8  # --max-batch


def test_bad_requests_and_auth_get_their_status_and_the_app_keeps_answering(
    endpoint: dict[str, Any], mtc_embedder: Embedder
) -> None:
    url = endpoint["url"]
    junk = data_uri(b"RIFF this is not audio at all")
    for body, status, code in [
        ({"input": ["data:audio/wav;base64,@@not base64@@"]}, 400, "invalid_base64"),
        ({"input": [URIS[0], junk]}, 400, "invalid_audio"),
        ({"input": [URIS[0]] * 5}, 400, "too_many_items"),
        ({"input": [data_uri(encode(tone(4.0)))]}, 400, "audio_limit_exceeded"),
        ({"input": ["a dog barking"]}, 400, "text_not_supported"),
        ({"input": URIS[0], "model": "whisper-1"}, 404, "model_not_found"),
    ]:
        assert_error(post(url, "/v1/embeddings", body), status, code)
    assert_error(post(url, "/v1/tags", {"input": URIS[0], "top_k": 0}), 400, "invalid_top_k")
    big = b'{"model": "serve-mtc", "input": "' + b"x" * 1_100_000 + b'"}'
    assert_error(httpx.post(f"{url}/v1/embeddings", content=big, timeout=60,
                            headers={**AUTH, "content-type": "application/json"}),
                 413, "body_too_large")  # fmt: skip
    assert_error(httpx.post(f"{url}/v1/embeddings", content=b"{}", headers=AUTH),
                 415, "unsupported_media_type")  # fmt: skip
    bare = {"model": MODEL, "input": URIS[0]}
    assert_error(httpx.post(f"{url}/v1/embeddings", json=bare), 401, "missing_token")
    wrong = httpx.post(f"{url}/v1/embeddings", json=bare, headers={"Authorization": "Bearer no"})
    assert_error(wrong, 401, "invalid_token")
    after = post(url, "/v1/embeddings", {"input": URIS})
    assert after.status_code == 200
    np.testing.assert_allclose(vectors(after), mtc_embedder.embed(waves_of(URIS)), atol=1e-5)


def test_stopping_the_job_shuts_serve_down(endpoint: dict[str, Any]) -> None:
    """Last in this module: the stop event plays Ctrl-C; the job returns 0 and the port closes."""
    endpoint["stop"].set()
    endpoint["thread"].join(timeout=60)
    assert endpoint["result"] == {"rc": 0}
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", endpoint["port"]), timeout=1).close()
        except OSError:
            break  # nothing listens any more: the proxy is gone with Serve
        assert time.monotonic() < deadline, "the HTTP proxy still listens after serve.shutdown"
        time.sleep(0.5)
