"""Request parsing and validation for the HTTP API, as pure functions (no FastAPI, no model).

Every problem is an `ApiError` carrying the HTTP status and the OpenAI-style error body
`{"error": {"message", "type", "code"}}`; the app only renders it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "AudioRef",
    "EmbeddingsRequest",
    "ServeSettings",
    "StoreRef",
    "TagsRequest",
    "TextItem",
    "check_auth",
    "check_store_uri",
    "classify_item",
    "parse_embeddings",
    "parse_tags",
]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    503: "service_unavailable",
}


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """What the endpoint serves and its limits (each exceeded limit is a 400/413 naming it).

    `model`: the name clients send (None: the backend's model id). `store`: the store root whose
    files requests may name (`s3://bucket/prefix` or a local folder; None: no store URIs).
    `token`: bearer token required on /v1/* (None: no auth).
    """

    model: str | None = None
    store: str | None = None
    token: str | None = None
    max_body_bytes: int = 25 * 1024 * 1024  # also the largest store file read
    max_items: int = 64
    max_seconds: float = 60.0
    min_seconds: float = 0.1
    min_rate: int = 8_000
    max_rate: int = 96_000
    default_top_k: int = 10
    max_top_k: int = 100

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_items < 1 or self.max_top_k < 1:
            raise ValueError("ServeSettings: max_body_bytes, max_items and max_top_k must be >= 1")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError("ServeSettings: need 0 < min_seconds <= max_seconds")
        if not 0 < self.min_rate <= self.max_rate:
            raise ValueError("ServeSettings: need 0 < min_rate <= max_rate")
        if not 1 <= self.default_top_k <= self.max_top_k:
            raise ValueError("ServeSettings: need 1 <= default_top_k <= max_top_k")
        if self.token is not None and not self.token:
            raise ValueError("ServeSettings: token must be None or non-empty")


class ApiError(Exception):
    """An error response: HTTP status, message for people, machine-readable code."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        kind = ERROR_TYPES.get(self.status, "server_error")
        return {"error": {"message": self.message, "type": kind, "code": self.code}}


@dataclass(frozen=True)
class AudioRef:
    """Audio bytes sent inline (a base64 data URI)."""

    index: int
    data: bytes


@dataclass(frozen=True)
class StoreRef:
    """An audio file in the store: `uri` is normalised and checked to lie under the store root."""

    index: int
    uri: str


@dataclass(frozen=True)
class TextItem:
    index: int
    text: str


Item = AudioRef | StoreRef | TextItem


@dataclass(frozen=True)
class EmbeddingsRequest:
    model: str
    items: list[Item]
    encoding_format: str  # float | base64


@dataclass(frozen=True)
class TagsRequest:
    model: str
    items: list[Item]
    top_k: int


def check_auth(header: str | None, token: str | None) -> None:
    """Raise 401 unless `Authorization: Bearer <token>` matches (constant-time comparison)."""
    if token is None:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'",
                       "missing_token", challenge)  # fmt: skip
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "invalid bearer token", "invalid_token", challenge)


_DATA_URI = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)


def _split_uri(uri: str) -> tuple[str | None, str]:
    """(scheme or None for a local path, path): `file://` counts as local."""
    match = _SCHEME.fullmatch(uri)
    if match is None:
        return None, uri
    scheme = match[1].lower()
    return (None, match[2]) if scheme == "file" else (scheme, match[2])


def check_store_uri(uri: str, store: str | None) -> str:
    """The normalised URI of a store file a request names, after checking it lies under `store`.

    Local paths are resolved (symlinks too) before the check; object-store keys must already be
    normal (no empty, `.` or `..` segments). Raises ApiError 403 otherwise: another scheme, another
    bucket or prefix, a path outside the store, or path traversal.
    """
    if store is None:
        raise ApiError(403, f"this server reads no store URIs (none configured); got {uri!r}",
                       "store_uri_forbidden")  # fmt: skip
    scheme, path = _split_uri(uri)
    root_scheme, root = _split_uri(store.rstrip("/") or store)
    outside = ApiError(403, f"{uri!r} is not under the store {store}", "store_uri_forbidden")
    if scheme != root_scheme:
        raise outside
    if "\x00" in path or ".." in path.replace("\\", "/").split("/"):
        raise ApiError(403, f"{uri!r}: path traversal ('..') is not allowed", "store_uri_forbidden")
    if scheme is None:
        if not path.startswith("/"):
            raise outside
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root or real == real_root:
            raise outside
        return real
    segments, root_segments = path.split("/"), root.split("/")
    if any(s in ("", ".") for s in segments):
        raise ApiError(403, f"{uri!r} is not a normalised path", "store_uri_forbidden")
    if segments[: len(root_segments)] != root_segments or len(segments) == len(root_segments):
        raise outside
    return f"{scheme}://{posixpath.join(*segments)}"


def _decode_data_uri(index: int, uri: str) -> AudioRef:
    match = _DATA_URI.fullmatch(uri)
    where = f"input[{index}]"
    if match is None:
        raise ApiError(400, f"{where}: malformed data URI (expected data:audio/<type>;base64,...)",
                       "invalid_data_uri")  # fmt: skip
    media, params, payload = match[1].strip().lower(), match[2].lower().split(";"), match[3]
    if not media.startswith("audio/"):
        raise ApiError(400, f"{where}: data URI media type {media or '(none)'!r} is not audio/*",
                       "invalid_data_uri")  # fmt: skip
    if "base64" not in params:
        raise ApiError(400, f"{where}: data URI must be base64-encoded (';base64,')",
                       "invalid_data_uri")  # fmt: skip
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            400, f"{where}: malformed base64 in data URI ({exc})", "invalid_base64"
        ) from exc
    if not data:
        raise ApiError(400, f"{where}: empty audio in data URI", "invalid_audio")
    return AudioRef(index, data)


def classify_item(index: int, item: Any, settings: ServeSettings) -> Item:
    """One input string: a base64 data URI, a store URI (`scheme://...` or an absolute path), or
    text (anything else)."""
    if not isinstance(item, str):
        raise ApiError(400, f"input[{index}] must be a string (audio data URI, store URI or text), "
                            f"got {type(item).__name__}", "invalid_input")  # fmt: skip
    if not item.strip():
        raise ApiError(400, f"input[{index}] is empty", "invalid_input")
    if item.startswith("data:"):
        return _decode_data_uri(index, item)
    if _SCHEME.fullmatch(item) or item.startswith("/"):
        return StoreRef(index, check_store_uri(item, settings.store))
    return TextItem(index, item)


def _common(body: Any, settings: ServeSettings, served: str) -> tuple[str, list[Item]]:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", "invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required (a string); see GET /v1/models", "invalid_model")
    if model != served:
        raise ApiError(404, f"model {model!r} not found; this server serves {served!r}",
                       "model_not_found")  # fmt: skip
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'input' must be a string or a non-empty list of strings",
                       "invalid_input")  # fmt: skip
    if len(raw) > settings.max_items:
        raise ApiError(400, f"'input' has {len(raw)} items; the limit max_items is "
                            f"{settings.max_items}", "too_many_items")  # fmt: skip
    return model, [classify_item(i, item, settings) for i, item in enumerate(raw)]


def parse_embeddings(body: Any, settings: ServeSettings, served: str) -> EmbeddingsRequest:
    """A /v1/embeddings body (already JSON-decoded) -> its request; `served` is the model name."""
    model, items = _common(body, settings, served)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}",
                       "invalid_encoding_format")  # fmt: skip
    if body.get("dimensions") is not None:
        raise ApiError(400, "'dimensions' is not supported: vectors have the model's size",
                       "unsupported_parameter")  # fmt: skip
    return EmbeddingsRequest(model, items, encoding)


def parse_tags(body: Any, settings: ServeSettings, served: str) -> TagsRequest:
    """A /v1/tags body (already JSON-decoded) -> its request; text items are refused."""
    model, items = _common(body, settings, served)
    top_k = body.get("top_k", settings.default_top_k)
    if (
        isinstance(top_k, bool)
        or not isinstance(top_k, int)
        or not 1 <= top_k <= settings.max_top_k
    ):
        raise ApiError(400, f"'top_k' must be an integer in 1..{settings.max_top_k} (max_top_k), "
                            f"got {top_k!r}", "invalid_top_k")  # fmt: skip
    for item in items:
        if isinstance(item, TextItem):
            raise ApiError(400, f"input[{item.index}] is text; /v1/tags takes audio (a base64 data "
                                "URI or a store URI)", "text_not_supported")  # fmt: skip
    return TagsRequest(model, items, top_k)
