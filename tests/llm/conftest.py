"""Fixtures for the LLM stage tests: a small ingested corpus with texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs import ingest


@pytest.fixture
def corpus_store(tmp_path: Path) -> Path:
    """A corpus of 12 one-second tones, one clip per shard; three in four have a text."""
    import numpy as np
    import soundfile as sf

    root = tmp_path / "audio"
    root.mkdir()
    rows = []
    texts = ["A dog barks loudly in a park.", "Rain falls on a tin roof while thunder rolls.", "",
             "A man speaks over a bass drum and a hi hat."]  # fmt: skip
    for i in range(12):
        t = np.arange(16000) / 16000
        sf.write(root / f"c{i:02d}.wav", 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t), 16000)
        rows.append({"path": f"c{i:02d}.wav", "text": texts[i % 4], "domain": "environment"})
    (tmp_path / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "store"
    code = ingest.main(["--store", str(store), "--corpus", "c", "--source", "folder", "--path", str(root),
                        "--metadata", str(tmp_path / "meta.jsonl"), "--workers", "0", "--batch-size", "4",
                        "--max-shard-mb", "0"])  # fmt: skip
    assert code == 0
    assert len(list((store / "corpora/c/shards").glob("*.parquet"))) == 12  # one clip per shard
    return store
