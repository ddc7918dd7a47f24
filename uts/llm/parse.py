"""Parsing a tagger's output and linting a captioner's output.

`parse_labels` finds the JSON object even inside prose or code fences, accepts a bare list, and
refuses what is not a usable label list with a reason (never silently "no tags"). With language
`en`, labels in another script are dropped one by one (the clip keeps the rest); a clip left with
none is refused with that reason.
`lint_caption` flags captions that should not feed the vocabulary (status `suspect`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from uts.tags.normalize import normalize_tags

__all__ = ["PARSER_VERSION", "Parsed", "lint_caption", "parse_labels"]

PARSER_VERSION = "1"
MAX_LABEL_CHARS = 40
_LATIN = re.compile(r"^[a-z0-9][a-z0-9\- ]*$")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


@dataclass(frozen=True)
class Parsed:
    tags: tuple[str, ...]
    error: str | None  # None when usable
    dropped: tuple[str, ...] = ()  # labels left out for their language (the rest are kept)


def _candidates(raw: str) -> list[str]:
    """Texts that may hold the JSON: fenced blocks, then each {...} or [...] span, then the whole."""
    found = [m.group(1) for m in _FENCE.finditer(raw)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = raw.find(opener), raw.rfind(closer)
        if 0 <= start < end:
            found.append(raw[start : end + 1])
    return [*found, raw]


def parse_labels(raw: str, *, language: str | None = "en") -> Parsed:
    """Labels from a tagger's raw output: normalised, deduplicated, at most one per identity."""
    if not raw or not raw.strip():
        return Parsed((), "empty output")
    value: object = None
    for text in _candidates(raw):
        try:
            value = json.loads(text)
            break
        except json.JSONDecodeError:
            continue
    if value is None:
        return Parsed((), "no JSON object or list in the output")
    labels = value.get("labels") if isinstance(value, dict) else value
    if not isinstance(labels, list):
        return Parsed((), 'expected {"labels": [...]} or a list')
    if not all(isinstance(label, str) for label in labels):
        return Parsed((), "labels must all be strings")
    if any(len(label) > MAX_LABEL_CHARS for label in labels):
        return Parsed((), f"a label is longer than {MAX_LABEL_CHARS} characters")
    tags = normalize_tags(labels)
    dropped: list[str] = []
    if language == "en":  # drop the labels in another script; keep the clip with the rest
        dropped = [tag for tag in tags if not _LATIN.match(tag.replace("-", " "))]
        tags = [tag for tag in tags if tag not in dropped]
        if dropped and not tags:
            return Parsed((), "every label is outside a-z, 0-9 and hyphens (language en)", tuple(dropped))  # fmt: skip
    if not tags:
        return Parsed((), "no usable label")
    return Parsed(tuple(tags), None, tuple(dropped))


def lint_caption(text: str, *, truncated: bool = False) -> str | None:
    """Why a caption is suspect (empty, truncated, looping, leaked markup or probabilities), or None."""
    stripped = text.strip()
    if not stripped:
        return "empty caption"
    if truncated:
        return "truncated at the token limit"
    words = stripped.lower().split()
    if len(words) >= 24:
        grams = [" ".join(words[i : i + 6]) for i in range(len(words) - 5)]
        if max(grams.count(g) for g in set(grams)) >= 4:
            return "repetition loop"
    if re.search(r"<\|?[a-z_]+\|?>|</?[a-z]+>", stripped) or re.search(
        r"\b(logprob|probability)\s*[:=]\s*-?\d", stripped
    ):
        return "leaked markup or probabilities"
    return None
