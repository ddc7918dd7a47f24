"""caption (corpus) -> tag (rules) -> build_vocab end to end, and resuming after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import uts.llm.backends
from jobs import build_vocab, caption, tag
from stages import caption as caption_stage
from uts.tags import load_vocab


def test_corpus_rules_vocab_end_to_end(corpus_store: Path) -> None:
    store = str(corpus_store)
    assert caption.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    assert tag.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    (tags_dir,) = (corpus_store / "tags/c").iterdir()
    rows = pq.read_table(tags_dir, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    assert len(rows) == 12 and len({r["clip_id"] for r in rows}) == 12
    by_id = {r["clip_id"]: r for r in rows}
    assert (
        by_id["c00.wav"]["tags"] == ["dog", "bark", "park"]  # "loudly": adverbs are dropped
        and by_id["c00.wav"]["status"] == "ok"
    )
    assert (
        by_id["c02.wav"]["status"] == "failed" and "no text" in by_id["c02.wav"]["error"]
    )  # never silent
    stage = json.loads((tags_dir / "stage.json").read_text())
    assert (
        stage["statuses"] == {"ok": 9, "failed": 3}
        and stage["fingerprint_inputs"]["backend"] == "rules"
    )
    assert build_vocab.main(["--store", store, "--tags", str(tags_dir), "--name", "v"]) == 0
    vocab = load_vocab(str(corpus_store / "vocab/v"))
    assert vocab.n_clips == 9 and vocab.index("bark") is not None
    assert (
        caption.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    )  # complete: no-op


def test_a_crashed_stage_resumes_with_every_clip_once(
    corpus_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(corpus_store)
    real = uts.llm.backends.corpus_captions
    calls = {"n": 0}

    def crash_after_five(shard):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("killed")
        return real(shard)

    monkeypatch.setattr(caption_stage, "corpus_captions", crash_after_five)
    with pytest.raises(RuntimeError, match="killed"):
        caption.main(["--store", store, "--corpus", "c", "--workers", "0"])
    (folder,) = (corpus_store / "captions/c").iterdir()
    done = sorted(folder.glob("part-*.parquet"))
    assert len(done) == 5 and not (folder / "_SUCCESS").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in done}
    monkeypatch.setattr(caption_stage, "corpus_captions", real)
    assert caption.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in done} == stamps  # committed parts untouched
    ids = (
        pq.read_table(folder, columns=["clip_id"], ignore_prefixes=[".", "_", "stage"])
        .column(0)
        .to_pylist()
    )
    assert sorted(ids) == [f"c{i:02d}.wav" for i in range(12)]  # every clip exactly once
    stage = json.loads((folder / "stage.json").read_text())
    assert stage["parts_skipped_this_run"] == 5 and stage["parts_written_this_run"] == 7
