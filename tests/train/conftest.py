"""A small tagged corpus with a vocabulary, for the pretraining tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jobs import build_vocab, caption, ingest, tag

SOUNDS = ["dog barks", "rain falls", "bird chirps", "engine hums", "piano melody", "drum beats"]


@pytest.fixture(scope="session")
def tagged_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 clips (1-3 s tones and noise) captioned with one of six sounds, tagged by the rules
    tagger, vocabulary `v`; corpus `c`, 4 shards."""
    tmp = tmp_path_factory.mktemp("tagged")
    root = tmp / "audio"
    root.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        kind = i % len(SOUNDS)
        seconds = 1.0 + (i % 5) * 0.5
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 120 * kind) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(root / f"c{i:02d}.wav", wave.astype(np.float32), 16000)
        rows.append(
            {"path": f"c{i:02d}.wav", "text": f"A {SOUNDS[kind]} loudly.", "domain": "environment"}
        )
    (tmp / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = str(tmp / "store")
    assert ingest.main(["--store", store, "--corpus", "c", "--source", "folder", "--path", str(root),
                        "--metadata", str(tmp / "meta.jsonl"), "--workers", "0", "--batch-size", "10"]) == 0  # fmt: skip
    assert caption.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    assert tag.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    (tags_dir,) = (tmp / "store" / "tags" / "c").iterdir()
    assert build_vocab.main(["--store", store, "--tags", str(tags_dir), "--name", "v"]) == 0
    return tmp / "store"
