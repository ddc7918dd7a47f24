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
    top_k: int | None = None  # None: off (vLLM's -1)
    repetition_penalty: float = 1.0  # 1.0: off
    seed: int = 0
    structured: bool = False  # JSON-schema constrained output (tagging)

    def as_dict(self) -> dict[str, Any]:
        """The fingerprinted form. top_k and repetition_penalty appear only when set, so folders
        made before they existed keep their names."""
        out = {"max_tokens": self.max_tokens, "temperature": self.temperature,
               "top_p": self.top_p, "seed": self.seed, "structured": self.structured}  # fmt: skip
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.repetition_penalty != 1.0:
            out["repetition_penalty"] = self.repetition_penalty
        return out


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
    description: str, prompt: Prompt, *, retry: Prompt | None = None, reason: str = "",
    chat_template: bool = True,
) -> list[dict[str, Any]] | str:  # fmt: skip
    """The tagger's request; a retry uses the stricter prompt and says what went wrong. Without
    the chat template, the prompt text itself (sent as a raw completion, as the paper's
    extract_tags.py does with vLLM's LLM.generate)."""
    chosen = retry if retry is not None else prompt
    text = chosen.render(
        description=description, caption=description, reason=reason or "it was not valid JSON"
    )
    return [{"role": "user", "content": text}] if chat_template else text


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
    if parsed.error is None:  # on an ok row, `error` notes labels dropped for their language
        note = f"dropped {len(parsed.dropped)} label(s) outside language en: {', '.join(parsed.dropped)}"
        return {"tags": list(parsed.tags), "status": "ok", "error": note if parsed.dropped else None,
                "raw": raw, "retry": False}  # fmt: skip
    if reply.finish_reason == "length":
        reason = f"{parsed.error} (output truncated at the token limit)"
    else:
        reason = parsed.error
    return {"tags": [], "status": "failed", "error": reason, "raw": raw, "retry": attempt == 0}
