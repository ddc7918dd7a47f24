"""The HTTP app with TestClient (no Ray): vectors equal the probes' embeddings in both encodings,
tags equal the MTC head's sigmoid, every bad input gets its status and the JSON error shape, auth,
store-URI confinement, and the app keeps answering after all of it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from serve.app import LocalBackend, ServeSettings, build_app
from serve.parsing import ApiError, check_store_uri
from tests.serve.conftest import encode, tone
from uts.audio import Wave
from uts.audio.fbank import Fbank
from uts.embed import Embedder, NoTagHead, audio_tokens
from uts.probe.encoder import embed as probe_embed
from uts.store import Store

MODEL = "serve-mtc"
CLIPS = [tone(1.0), tone(1.5, freq=300.0, seed=1)]


def data_uri(data: bytes, media: str = "audio/wav") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


URIS = [
    data_uri(encode(CLIPS[0])),
    data_uri(encode(CLIPS[1], fmt="FLAC", channels=2), "audio/flac"),
]


def settings(store: Store, **overrides: Any) -> ServeSettings:
    return ServeSettings(store=store.root_uri, max_items=4, max_seconds=3.0,
                         max_body_bytes=1_000_000, **overrides)  # fmt: skip


@pytest.fixture(scope="module")
def client(mtc_embedder: Embedder, serve_store: Store) -> Iterator[TestClient]:
    with TestClient(build_app(LocalBackend(mtc_embedder), settings(serve_store))) as c:
        yield c


@pytest.fixture(scope="module")
def expected(mtc_embedder: Embedder) -> np.ndarray:
    """The probes' embeddings of CLIPS (the FLAC one is 16-bit: decode it the way the app does)."""
    from uts.embed import decode_audio

    waves = [decode_audio(base64.b64decode(u.split(",", 1)[1])) for u in URIS]
    return probe_embed(mtc_embedder.model.encoder, waves)


def assert_error(response: Any, status: int, code: str, words: tuple[str, ...] = ()) -> None:
    """The status, the `{"error": {message, type, code}}` shape, and words in the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    assert body["error"]["code"] == code and body["error"]["message"]
    for word in words:
        assert word in body["error"]["message"]


def embed_request(client: TestClient, items: Any, **extra: Any) -> Any:
    return client.post("/v1/embeddings", json={"model": MODEL, "input": items, **extra})


def vectors(response: Any) -> np.ndarray:
    rows = []
    for i, item in enumerate(response.json()["data"]):
        assert item["object"] == "embedding" and item["index"] == i
        value = item["embedding"]
        rows.append(
            np.frombuffer(base64.b64decode(value), "<f4") if isinstance(value, str) else value
        )
    return np.asarray(rows, np.float32)


def test_embeddings_equal_the_probe_embeddings_in_both_formats(
    client: TestClient, mtc_embedder: Embedder, expected: np.ndarray
) -> None:
    floats = embed_request(client, URIS)
    assert floats.status_code == 200, floats.text
    body = floats.json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert body["embedding_space"] == mtc_embedder.embedding_space
    tokens = sum(audio_tokens(len(w)) for w in CLIPS)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    np.testing.assert_allclose(vectors(floats), expected, atol=1e-5)
    packed = embed_request(client, URIS, encoding_format="base64")
    assert isinstance(packed.json()["data"][0]["embedding"], str)
    np.testing.assert_allclose(vectors(packed), expected, atol=1e-5)
    single = embed_request(client, URIS[0])  # a plain string is one item
    np.testing.assert_allclose(vectors(single), expected[:1], atol=1e-5)


def test_tags_are_the_top_k_of_the_mtc_head(client: TestClient, mtc_embedder: Embedder) -> None:
    response = client.post("/v1/tags", json={"model": MODEL, "input": URIS[:1], "top_k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["embedding_space"] == mtc_embedder.embedding_space
    (item,) = body["data"]
    feats, lengths = Fbank()(CLIPS[:1])
    with torch.no_grad():
        frames, frame_lengths = mtc_embedder.model.encoder(feats, lengths)
        probs = torch.sigmoid(mtc_embedder.model.objective.head(frames, frame_lengths))[0].numpy()
    best = np.argsort(-probs)[:4]
    assert mtc_embedder.vocab is not None
    assert [t["tag"] for t in item["tags"]] == [mtc_embedder.vocab.tags[i] for i in best]
    got = [t["probability"] for t in item["tags"]]
    assert got == sorted(got, reverse=True)
    np.testing.assert_allclose(got, probs[best], atol=1e-5)
    default = client.post("/v1/tags", json={"model": MODEL, "input": URIS[0]})
    assert len(default.json()["data"][0]["tags"]) == 10  # default_top_k


def test_store_uris_are_read_only_under_the_store(
    client: TestClient, serve_store: Store, expected: np.ndarray, tmp_path: Path
) -> None:
    audio = Path(serve_store.root) / "audio"
    audio.mkdir(exist_ok=True)
    (audio / "a.wav").write_bytes(encode(CLIPS[0]))
    inside = str(audio / "a.wav")
    for uri in (inside, f"file://{inside}"):
        response = embed_request(client, [uri])
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(vectors(response), expected[:1], atol=1e-5)
    outside = tmp_path / "secret.wav"
    outside.write_bytes(encode(CLIPS[0]))
    (audio / "link.wav").symlink_to(outside)  # a symlink in the store pointing out of it
    for uri in (str(outside), f"{audio}/../../{outside.parent.name}/secret.wav",
                str(audio / "link.wav"), "s3://bucket/a.wav", "http://example.com/a.wav"):  # fmt: skip
        assert_error(embed_request(client, [uri]), 403, "store_uri_forbidden")
    assert_error(embed_request(client, [str(audio / "missing.wav")]), 400, "file_not_found")


def test_store_uri_check_on_object_stores() -> None:
    root = "s3://bucket/prefix"
    assert (
        check_store_uri("s3://bucket/prefix/corpora/a.flac", root)
        == "s3://bucket/prefix/corpora/a.flac"
    )
    for uri in ("s3://other/prefix/a.flac", "s3://bucket/prefix2/a.flac", "s3://bucket/a.flac",
                "s3://bucket/prefix/../secret/a.flac", "s3://bucket/prefix//a.flac",
                "gs://bucket/prefix/a.flac", "/bucket/prefix/a.flac", "s3://bucket/prefix"):  # fmt: skip
        with pytest.raises(ApiError) as caught:
            check_store_uri(uri, root)
        assert caught.value.status == 403
    with pytest.raises(ApiError):
        check_store_uri("s3://bucket/prefix/a.flac", None)  # no store configured


def test_every_bad_input_is_a_4xx_in_the_error_shape_and_the_app_keeps_answering(
    client: TestClient, expected: np.ndarray
) -> None:
    junk = data_uri(b"RIFF this is not audio at all")
    cases: list[tuple[dict[str, Any], int, str, tuple[str, ...]]] = [
        ({"input": ["data:audio/wav;base64,@@not base64@@"]}, 400, "invalid_base64", ("input[0]",)),
        ({"input": [URIS[0], junk]}, 400, "invalid_audio", ("input[1]",)),
        ({"input": [URIS[0]] * 5}, 400, "too_many_items", ("max_items", "4")),
        ({"input": [data_uri(encode(tone(4.0)))]}, 400, "audio_limit_exceeded", ("max_seconds", "3")),
        ({"input": [data_uri(encode(tone(1.0, rate=4_000), rate=4_000))]}, 400, "audio_limit_exceeded",
         ("min_rate", "8000")),
        ({"input": [data_uri(encode(tone(0.2, rate=192_000), rate=192_000))]}, 400, "audio_limit_exceeded",
         ("max_rate", "96000")),
        ({"input": [data_uri(encode(tone(0.02)))]}, 400, "audio_limit_exceeded", ("min_seconds",)),
        ({"input": ["data:image/png;base64,AAAA"]}, 400, "invalid_data_uri", ("audio",)),
        ({"input": ["a dog barking"]}, 400, "text_not_supported", ("text tower",)),
        ({"input": []}, 400, "invalid_input", ()),
        ({"input": [3]}, 400, "invalid_input", ("input[0]",)),
        ({"input": URIS[0], "encoding_format": "int8"}, 400, "invalid_encoding_format", ()),
        ({"input": URIS[0], "dimensions": 8}, 400, "unsupported_parameter", ()),
        ({"input": URIS[0], "model": "whisper-1"}, 404, "model_not_found", ("whisper-1", MODEL)),
        ({"input": URIS[0], "model": None}, 400, "invalid_model", ()),
    ]  # fmt: skip
    for extra, status, code, words in cases:
        response = client.post("/v1/embeddings", json={"model": MODEL, **extra})
        assert_error(response, status, code, words)
    tag_cases = [
        ({"input": URIS[0], "top_k": 0}, "invalid_top_k"),
        ({"input": URIS[0], "top_k": 101}, "invalid_top_k"),
        ({"input": ["rain on a roof"]}, "text_not_supported"),
    ]
    for extra, code in tag_cases:
        assert_error(client.post("/v1/tags", json={"model": MODEL, **extra}), 400, code)
    body = json.dumps({"model": MODEL, "input": URIS[0]})
    assert_error(client.post("/v1/embeddings", content=body, headers={"content-type": "text/plain"}),
                 415, "unsupported_media_type")  # fmt: skip
    assert_error(client.post("/v1/embeddings", content=b"{not json",
                             headers={"content-type": "application/json"}), 400, "invalid_json")  # fmt: skip
    big = json.dumps({"model": MODEL, "input": "x" * 1_100_000})
    assert_error(client.post("/v1/embeddings", content=big, headers={"content-type": "application/json"}),
                 413, "body_too_large", ("max_body_bytes", "1000000"))  # fmt: skip

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes received are counted
        for _ in range(12):
            yield b" " * 100_000

    assert_error(client.post("/v1/embeddings", content=chunks(),
                             headers={"content-type": "application/json"}), 413, "body_too_large")  # fmt: skip
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/embeddings"), 405, "method_not_allowed")
    after = embed_request(client, URIS)  # still serving, same vectors
    assert after.status_code == 200
    np.testing.assert_allclose(vectors(after), expected, atol=1e-5)


class Stub:
    """A backend that claims another objective, or fails, around a real embedder."""

    def __init__(self, embedder: Embedder, objective: str, *, loaded: bool = True,
                 fail: Exception | None = None) -> None:  # fmt: skip
        self.inner = LocalBackend(embedder)
        self.model_id, self.embedding_space = embedder.model_id, "stub-space"
        self.objective, self.loaded, self.fail = objective, loaded, fail

    async def embed(self, waves: Sequence[Wave]) -> np.ndarray:
        if self.fail is not None:
            raise self.fail
        return await self.inner.embed(waves)

    async def tags(self, waves: Sequence[Wave], top_k: int) -> list[list[tuple[str, float]]]:
        raise NoTagHead("stub has no MTC head")

    async def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([np.full(3, len(t), np.float32) for t in texts])


def test_objectives_decide_text_and_tags(
    mtc_embedder: Embedder, serve_store: Store, expected: np.ndarray
) -> None:
    with TestClient(build_app(Stub(mtc_embedder, "contrastive"), settings(serve_store))) as c:
        mixed = embed_request(c, ["rain", URIS[0], "a dog"])  # text and audio, order kept
        assert mixed.status_code == 200, mixed.text
        rows = [d["embedding"] for d in mixed.json()["data"]]
        assert rows[0] == [4.0] * 3 and rows[2] == [5.0] * 3
        np.testing.assert_allclose(rows[1], expected[0], atol=1e-5)
        tags = c.post("/v1/tags", json={"model": MODEL, "input": URIS[0]})
        assert_error(tags, 400, "no_tag_head", ("contrastive",))
    with TestClient(build_app(Stub(mtc_embedder, "mtc"), settings(serve_store))) as c:
        assert_error(
            c.post("/v1/tags", json={"model": MODEL, "input": URIS[0]}), 400, "no_tag_head"
        )


def test_health_models_and_server_errors(mtc_embedder: Embedder, serve_store: Store) -> None:
    loading = build_app(Stub(mtc_embedder, "mtc", loaded=False), settings(serve_store))
    with TestClient(loading) as c:
        health = c.get("/healthz")
        assert health.status_code == 503 and health.json()["error"]["code"] == "model_not_loaded"
        assert_error(embed_request(c, URIS[0]), 503, "model_not_loaded")
    broken = Stub(mtc_embedder, "mtc", fail=RuntimeError("boom"))
    with TestClient(build_app(broken, settings(serve_store, model="uts-encoder"))) as c:
        failed = c.post("/v1/embeddings", json={"model": "uts-encoder", "input": URIS[0]})
        assert_error(failed, 500, "internal_error")
        assert "boom" not in failed.text  # logged, not sent
        assert c.get("/healthz").json()["status"] == "ok"  # still answering
        models = c.get("/v1/models").json()
        assert models["object"] == "list"
        (entry,) = models["data"]
        assert (
            entry["id"] == "uts-encoder"
            and entry["object"] == "model"
            and entry["owned_by"] == "uts"
        )


def test_bearer_token(
    mtc_embedder: Embedder, serve_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serve.parsing

    compared: list[bytes] = []
    real = serve.parsing.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:  # the comparison must be hmac's constant-time one
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(serve.parsing.hmac, "compare_digest", spy)
    token = "s3cret-token"
    app = build_app(LocalBackend(mtc_embedder), settings(serve_store, token=token))
    with TestClient(app) as c:
        assert_error(embed_request(c, URIS[0]), 401, "missing_token")
        wrong = c.post("/v1/embeddings", json={"model": MODEL, "input": URIS[0]},
                       headers={"Authorization": "Bearer s3cret-tokem"})  # fmt: skip
        assert_error(wrong, 401, "invalid_token")
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/v1/models"), 401, "missing_token")
        assert c.get("/healthz").status_code == 200  # health checks need no token
        right = {"Authorization": f"Bearer {token}"}
        ok = c.post("/v1/embeddings", json={"model": MODEL, "input": URIS[0]}, headers=right)
        assert ok.status_code == 200, ok.text
        assert c.get("/v1/models", headers=right).status_code == 200
    assert compared == [b"s3cret-tokem", token.encode(), token.encode()]
