"""The model stage's book-keeping without Ray: plan_round and Ledger commit whole shards, park
rows to retry, and resume from whatever a killed run left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uts.llm import load_prompt
from uts.llm.backends import CAPTION_SCHEMA, tag_spec
from uts.llm.chat import Reply
from uts.llm.model_stage import Ledger, plan_round
from uts.llm.stage import part_name, write_part

SPEC = tag_spec(load_prompt("tagging", 1), load_prompt("tagging_strict", 1))


def captions(tmp_path: Path, shards: list[list[str]]) -> list[str]:
    """Caption parts; a description "" is a failed caption (kept, never asked)."""
    sources = []
    for s, texts in enumerate(shards):
        rows = [{"clip_id": f"s{s}-{i}", "description": t, "status": "ok" if t else "failed",
                 "error": None if t else "empty caption", "raw": t, "text_kind": "caption",
                 "domain": "music"} for i, t in enumerate(texts)]  # fmt: skip
        path = str(tmp_path / "captions" / part_name(s))
        write_part(pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA), path)
        sources.append(path)
    return sources


def answer(clip_id: str, shard: int, text: str, attempt: int) -> dict[str, Any]:
    """What the pipeline hands the driver for one reply."""
    row = SPEC.finish(
        {"clip_id": clip_id, "domain": "music"}, Reply(text=text, completion_tokens=5), attempt
    )
    return {**row, "shard": shard, "prompt_tokens": 10, "completion_tokens": 5}


GOOD = '{"labels": ["piano", "melody"]}'


def test_plan_then_commit_then_nothing_left(tmp_path: Path) -> None:
    sources = captions(tmp_path, [["a piano", "", "a violin"], ["a drum"]])
    out = str(tmp_path / "tags")
    works = plan_round(SPEC, sources, out)
    assert [(w.ask, w.attempt, [k["clip_id"] for k in w.kept]) for w in works] == [
        (["s0-0", "s0-2"], 0, ["s0-1"]),
        (["s1-0"], 0, []),
    ]
    ledger = Ledger(works, SPEC.schema, total_shards=2)
    ledger.add([answer("s1-0", 1, GOOD, 0), answer("s0-2", 0, GOOD, 0)])
    assert (tmp_path / "tags" / part_name(1)).exists() and ledger.open_shards == [0]
    ledger.add([answer("s0-0", 0, GOOD, 0)])
    assert ledger.open_shards == [] and ledger.counts["completion_tokens"] == 15
    part = pq.read_table(tmp_path / "tags" / part_name(0)).to_pylist()
    assert [(r["clip_id"], r["status"]) for r in part] == [
        ("s0-1", "failed"),
        ("s0-0", "ok"),
        ("s0-2", "ok"),
    ]
    assert plan_round(SPEC, sources, out) == []


def test_unparseable_rows_are_parked_then_asked_once_more(tmp_path: Path) -> None:
    sources = captions(tmp_path, [["a piano", "a violin"]])
    out = str(tmp_path / "tags")
    ledger = Ledger(plan_round(SPEC, sources, out), SPEC.schema, total_shards=1)
    ledger.add([answer("s0-0", 0, GOOD, 0), answer("s0-1", 0, "sorry, no", 0)])
    assert not (tmp_path / "tags" / part_name(0)).exists()  # not final yet
    assert (tmp_path / "tags" / "_pending" / part_name(0)).exists()
    (work,) = plan_round(SPEC, sources, out)  # the next round, or the next run after a kill
    assert work.ask == ["s0-1"] and work.attempt == 1
    assert "no JSON" in work.reasons["s0-1"] and [k["clip_id"] for k in work.kept] == ["s0-0"]
    messages = SPEC.request({"clip_id": "s0-1", "description": "a violin"}, 1, work.reasons["s0-1"])
    assert "could not be used: no JSON" in messages[0]["content"]  # the stricter prompt
    ledger = Ledger([work], SPEC.schema, total_shards=1)
    ledger.add([answer("s0-1", 0, "still no", 1)])
    rows = pq.read_table(tmp_path / "tags" / part_name(0)).to_pylist()
    assert [(r["clip_id"], r["status"]) for r in rows] == [("s0-0", "ok"), ("s0-1", "failed")]
    assert rows[1]["raw"] == "still no" and "no JSON" in rows[1]["error"]
    assert not (tmp_path / "tags" / "_pending" / part_name(0)).exists()


def test_limit_takes_the_same_first_rows_every_time(tmp_path: Path) -> None:
    sources = captions(tmp_path, [["a", "b", "c"], ["d", "e"], ["f"]])
    works = plan_round(SPEC, sources, str(tmp_path / "tags"), limit=4)
    assert [w.ask for w in works] == [["s0-0", "s0-1", "s0-2"], ["s1-0"], []]
    Ledger(works[2:], SPEC.schema, total_shards=3)  # nothing to ask: committed (empty) at once
    assert pq.read_table(tmp_path / "tags" / part_name(2)).num_rows == 0
    again = plan_round(SPEC, sources, str(tmp_path / "tags"), limit=4)
    assert [w.ask for w in again] == [["s0-0", "s0-1", "s0-2"], ["s1-0"]]


def test_a_reply_for_a_closed_shard_is_an_error(tmp_path: Path) -> None:
    sources = captions(tmp_path, [["a piano"]])
    ledger = Ledger(plan_round(SPEC, sources, str(tmp_path / "tags")), SPEC.schema, total_shards=1)
    ledger.add([answer("s0-0", 0, GOOD, 0)])
    with pytest.raises(RuntimeError, match="not open"):
        ledger.add([answer("s0-0", 0, GOOD, 0)])
