"""Model-free backends: `corpus` captions (the clip's existing text) and `rules` tags.

Both work table to table on one shard, so a stage runs them in Ray tasks or in-process alike.
Only the corpus's pretraining partition is captioned: probe clips never enter the pipeline.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from uts.llm.parse import lint_caption
from uts.llm.rules import rules_tags

__all__ = ["CAPTION_SCHEMA", "CORPUS_COLUMNS", "TAG_SCHEMA", "corpus_captions", "rules_tags_table"]

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


def rules_tags_table(captions: pa.Table, *, keep_suspect: bool = False) -> pa.Table:
    """Caption rows -> tag rows. Captions that are not ok (or suspect, unless kept) stay visible as
    failed rows with the reason, never as clips without tags."""
    out = []
    usable = {"ok", "suspect"} if keep_suspect else {"ok"}
    for row in captions.to_pylist():
        if row["status"] not in usable:
            out.append({"clip_id": row["clip_id"], "tags": [], "raw": row["description"], "status": "failed",
                        "error": f"caption is {row['status']}: {row['error']}", "domain": row["domain"]})  # fmt: skip
            continue
        tags = rules_tags(row["description"])
        out.append({"clip_id": row["clip_id"], "tags": tags, "raw": row["description"],
                    "status": "ok" if tags else "failed", "error": None if tags else "no content word in the caption",
                    "domain": row["domain"]})  # fmt: skip
    return pa.Table.from_pylist(out, schema=TAG_SCHEMA)
