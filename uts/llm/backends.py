"""What each backend does with a shard's rows.

Model-free (`corpus` captions = the clip's existing text, `rules` tags) work table to table on one
shard, so a stage runs them in Ray tasks or in-process alike. Model backends (vllm, openai) use the
`StageSpec`s below: what to ask for each clip and how to turn the reply into an output row.
Only the corpus's pretraining partition is captioned: probe clips never enter the pipeline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from uts.llm.chat import Reply, caption_messages, caption_row, tag_row, tagging_messages
from uts.llm.model_stage import StageSpec
from uts.llm.parse import lint_caption
from uts.llm.prompts import Prompt
from uts.llm.rules import rules_tags

__all__ = [
    "CAPTION_SCHEMA",
    "CORPUS_COLUMNS",
    "TAG_SCHEMA",
    "caption_spec",
    "corpus_captions",
    "rules_tags_table",
    "tag_spec",
]

CORPUS_COLUMNS = ("clip_id", "text", "text_kind", "domain", "partition")
CAPTION_SCHEMA = pa.schema(
    [("clip_id", pa.string()), ("description", pa.string()), ("status", pa.string()), ("error", pa.string()),
     ("raw", pa.string()), ("text_kind", pa.string()), ("domain", pa.string())]
)  # fmt: skip
TAG_SCHEMA = pa.schema(
    [("clip_id", pa.string()), ("tags", pa.list_(pa.string())), ("raw", pa.string()), ("status", pa.string()),
     ("error", pa.string()), ("domain", pa.string())]
)  # fmt: skip


def corpus_captions(shard: pa.Table) -> pa.Table:
    """Corpus rows -> caption rows: the existing text, linted; no text is a failure, not silence."""
    rows = shard.filter(pc.equal(shard.column("partition"), "pretrain")).to_pylist()
    out = []
    for row in rows:
        text = row["text"] or ""
        problem = (
            "the clip has no text (the corpus backend cannot describe it)"
            if not text
            else lint_caption(text)
        )
        status = "failed" if not text else ("suspect" if problem else "ok")
        out.append({"clip_id": row["clip_id"], "description": text, "status": status, "error": problem,
                    "raw": text, "text_kind": row["text_kind"], "domain": row["domain"]})  # fmt: skip
    return pa.Table.from_pylist(out, schema=CAPTION_SCHEMA)


def unusable_caption(row: Mapping[str, Any], keep_suspect: bool) -> dict[str, Any] | None:
    """The failed tag row for a caption that must not be tagged (not ok; suspect unless kept), or
    None. Such clips stay visible with the reason, never as clips without tags."""
    if row["status"] == "ok" or (keep_suspect and row["status"] == "suspect"):
        return None
    return {"clip_id": row["clip_id"], "tags": [], "raw": row["description"], "status": "failed",
            "error": f"caption is {row['status']}: {row['error']}", "domain": row["domain"]}  # fmt: skip


def rules_tags_table(captions: pa.Table, *, keep_suspect: bool = False) -> pa.Table:
    """Caption rows -> tag rows with the rules tagger."""
    out = []
    for row in captions.to_pylist():
        if (failed := unusable_caption(row, keep_suspect)) is not None:
            out.append(failed)
            continue
        tags = rules_tags(row["description"])
        out.append({"clip_id": row["clip_id"], "tags": tags, "raw": row["description"],
                    "status": "ok" if tags else "failed", "error": None if tags else "no content word in the caption",
                    "domain": row["domain"]})  # fmt: skip
    return pa.Table.from_pylist(out, schema=TAG_SCHEMA)


# --- model backends: what to ask, what to keep ----------------------------------------------


def _plan_captions(shard: pa.Table) -> list[tuple[str, dict[str, Any] | None]]:
    pretrain = shard.filter(pc.equal(shard.column("partition"), "pretrain"))
    return [(clip_id, None) for clip_id in pretrain.column("clip_id").to_pylist()]


def _ask_caption(row: Mapping[str, Any], attempt: int, reason: str) -> list[dict[str, Any]]:
    return caption_messages(row["audio"])


def _finish_caption(source: Mapping[str, Any], reply: Reply, attempt: int) -> dict[str, Any]:
    return {"clip_id": source["clip_id"], **caption_row(reply), "text_kind": "caption",
            "domain": source["domain"], "retry": False}  # fmt: skip


def caption_spec() -> StageSpec:
    """Captioning with an audio LLM: the audio alone goes in, a description comes out."""
    return StageSpec(
        name="caption",
        schema=CAPTION_SCHEMA,
        plan_columns=("clip_id", "partition"),
        plan=_plan_captions,
        load_columns=("clip_id", "audio", "domain"),
        request=_ask_caption,
        finish=_finish_caption,
        carry=("domain",),
    )


def _plan_tags(
    captions: pa.Table, *, keep_suspect: bool
) -> list[tuple[str, dict[str, Any] | None]]:
    return [(row["clip_id"], unusable_caption(row, keep_suspect)) for row in captions.to_pylist()]


def _ask_tags(
    row: Mapping[str, Any], attempt: int, reason: str, *, prompt: Prompt, strict: Prompt,
    chat_template: bool,
) -> list[dict[str, Any]] | str:  # fmt: skip
    return tagging_messages(row["description"], prompt, retry=strict if attempt else None,
                            reason=reason, chat_template=chat_template)  # fmt: skip


def _finish_tags(
    source: Mapping[str, Any], reply: Reply, attempt: int, *, language: str | None
) -> dict[str, Any]:
    return {"clip_id": source["clip_id"], **tag_row(reply, attempt=attempt, language=language),
            "domain": source["domain"]}  # fmt: skip


def tag_spec(
    prompt: Prompt, strict: Prompt, *, language: str | None = "en", keep_suspect: bool = False,
    chat_template: bool = True,
) -> StageSpec:  # fmt: skip
    """Tagging with an LLM: the prompt + description go in, JSON labels come out; unparseable
    output is asked again once with the `strict` prompt. Without the chat template the request is
    the prompt text itself (a raw completion)."""
    return StageSpec(
        name="tag",
        schema=TAG_SCHEMA,
        plan_columns=("clip_id", "description", "status", "error", "domain"),
        plan=functools.partial(_plan_tags, keep_suspect=keep_suspect),
        load_columns=("clip_id", "description", "domain"),
        request=functools.partial(
            _ask_tags, prompt=prompt, strict=strict, chat_template=chat_template
        ),
        finish=functools.partial(_finish_tags, language=language),
        carry=("domain",),
    )
