"""A small tagged corpus made on the spot (tones and noise captioned with one of a few sounds), run
through the real jobs: ingest, caption (corpus), tag (rules), build_vocab. For tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["SOUNDS", "make_tagged_store"]

SOUNDS = ("dog barks", "rain falls", "bird chirps", "engine hums", "piano melody", "drum beats")


def make_tagged_store(root: Path, *, clips: int = 40, seconds: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0),
                      seed: int = 0) -> Path:  # fmt: skip
    """Write `clips` clips under root/audio and the store root/store with corpus `c` and vocabulary
    `v`; returns the store path. Raises RuntimeError when a job fails."""
    from jobs import build_vocab, caption, ingest, tag

    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(clips):
        kind = i % len(SOUNDS)
        t = np.arange(int(16000 * seconds[i % len(seconds)])) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 120 * kind) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(audio / f"c{i:04d}.wav", wave.astype(np.float32), 16000)
        rows.append(
            {"path": f"c{i:04d}.wav", "text": f"A {SOUNDS[kind]} loudly.", "domain": "environment"}
        )
    (root / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = root / "store"
    steps = [
        (ingest.main, ["--store", str(store), "--corpus", "c", "--source", "folder", "--path", str(audio),
                       "--metadata", str(root / "meta.jsonl"), "--workers", "0", "--batch-size", "10"]),
        (caption.main, ["--store", str(store), "--corpus", "c", "--workers", "0"]),
        (tag.main, ["--store", str(store), "--corpus", "c", "--workers", "0"]),
    ]  # fmt: skip
    for main, argv in steps:
        if main(argv) != 0:
            raise RuntimeError(f"{main.__module__} failed: {argv}")
    (tags_dir,) = (store / "tags" / "c").iterdir()
    if build_vocab.main(["--store", str(store), "--tags", str(tags_dir), "--name", "v"]) != 0:
        raise RuntimeError("build_vocab failed")
    return store
