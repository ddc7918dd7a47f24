"""Chat requests and replies for the model backends (vllm, openai): the same for both.

A request is OpenAI chat-completions shaped (`messages` + sampling parameters); vLLM's chat stages
and any OpenAI-compatible server read the same messages, including the audio part. A reply is
turned into an output row here, so every backend parses and lints identically.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import soundfile as sf

from uts.audio.io import decode_flac
from uts.llm.parse import lint_caption, parse_labels
from uts.llm.prompts import Prompt

__all__ = [
    "LABELS_SCHEMA",
    "Reply",
    "Sampling",
    "audio_part",
    "caption_messages",
    "caption_row",
    "tag_row",
    "tagging_messages",
]

# The JSON structured output asked of the tagger (vLLM `structured_outputs={"json": ...}` or an
# OpenAI `response_format` json_schema): at most 10 short strings under "labels".
LABELS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "labels": {
            "type": "array",
            "items": {"type": "string", "maxLength": 40},
            "minItems": 1,
            "maxItems": 10,
        }
    },
    "required": ["labels"],
    "additionalProperties": False,
}


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """Sampling parameters; all of them are part of the stage fingerprint."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    structured: bool = False  # JSON-schema constrained output (tagging)

    def as_dict(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, "structured": self.structured}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What a backend returned for one request: the text, or why there is none."""

    text: str | None = None
    finish_reason: str | None = None  # "stop" | "length" | None when unknown
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # transport or engine failure (after the backend's own retries)
    attempts: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)


def audio_part(flac: bytes) -> dict[str, Any]:
    """An OpenAI `input_audio` message part (16-bit WAV, base64) from a stored FLAC clip."""
    wave = decode_flac(flac)
    buffer = io.BytesIO()
    sf.write(buffer, wave, 16_000, format="WAV", subtype="PCM_16")
    return {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(buffer.getvalue()).decode(), "format": "wav"},
    }


def caption_messages(flac: bytes) -> list[dict[str, Any]]:
    """The captioner's request: the audio alone (Qwen3-Omni-Captioner takes no text prompt)."""
    return [{"role": "user", "content": [audio_part(flac)]}]


def tagging_messages(
    description: str, prompt: Prompt, *, retry: Prompt | None = None, reason: str = ""
) -> list[dict[str, Any]]:
    """The tagger's request; a retry uses the stricter prompt and says what went wrong."""
    chosen = retry if retry is not None else prompt
    text = chosen.render(description=description, reason=reason or "it was not valid JSON")
    return [{"role": "user", "content": text}]


def caption_row(reply: Reply) -> dict[str, Any]:
    """description, status, error, raw for one caption reply (never retried: captions are not
    parsed; transport failures were already retried by the backend)."""
    if reply.error is not None:
        return {
            "description": "",
            "status": "failed",
            "error": reply.error,
            "raw": reply.text or "",
        }
    text = reply.text or ""
    problem = lint_caption(text, truncated=reply.finish_reason == "length")
    return {"description": text.strip(), "status": "suspect" if problem else "ok",
            "error": problem, "raw": text}  # fmt: skip


def tag_row(reply: Reply, *, attempt: int, language: str | None = "en") -> dict[str, Any]:
    """tags, status, error, raw and `retry` for one tagging reply.

    Unparseable output is retried once (retry=True on the first attempt), then kept as `failed`
    with its raw text and the parser's reason; it never becomes an empty tag list.
    """
    if reply.error is not None:
        return {"tags": [], "status": "failed", "error": reply.error, "raw": reply.text or "",
                "retry": False}  # fmt: skip
    raw = reply.text or ""
    parsed = parse_labels(raw, language=language)
    if parsed.error is None:
        return {
            "tags": list(parsed.tags),
            "status": "ok",
            "error": None,
            "raw": raw,
            "retry": False,
        }
    if reply.finish_reason == "length":
        reason = f"{parsed.error} (output truncated at the token limit)"
    else:
        reason = parsed.error
    return {"tags": [], "status": "failed", "error": reason, "raw": raw, "retry": attempt == 0}
