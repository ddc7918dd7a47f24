"""The synthetic signals through the real jobs: ingest --source folder -> caption --backend acoustic
-> tag --backend rules, in-process (`--workers 0`); each clip's tags name what it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jobs import caption, ingest, tag
from stages.caption import CaptionSpec
from tests.llm.test_acoustic import SIGNALS, voice_like
from uts.llm.acoustic import ACOUSTIC_VERSION
from uts.llm.acoustic_measure import MEASURE_UNITS
from uts.llm.rules import rules_tags

SR = 16_000


def read(folder: Path) -> dict[str, dict[str, Any]]:
    rows = pq.read_table(folder, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    return {str(r["clip_id"]): r for r in rows}


@pytest.fixture
def acoustic_store(tmp_path: Path) -> Path:
    """A store holding a folder corpus of the synthetic signals (0.3 amplitude, 16-bit WAV) and a
    low voice-like sound with a transcript and a speaker label that must never reach a caption."""
    root = tmp_path / "audio"
    root.mkdir()
    for name, (make, _, _) in SIGNALS.items():
        wave = make()
        sf.write(root / f"{name}.wav", 0.3 * wave / np.abs(wave).max(), SR, subtype="PCM_16")
    sf.write(root / "voice.wav", 0.3 * voice_like(120.0), SR, subtype="PCM_16")
    metadata = tmp_path / "meta.jsonl"
    meta = {"path": "voice.wav", "domain": "speech", "text": "ow", "text_kind": "transcript",
            "labels": {"speaker": "Pirate"}}  # fmt: skip
    metadata.write_text(json.dumps(meta) + "\n")
    store = tmp_path / "store"
    argv = ["--store", str(store), "--corpus", "c", "--source", "folder", "--path", str(root),
            "--metadata", str(metadata), "--workers", "0"]  # fmt: skip
    assert ingest.main(argv) == 0
    return store


def test_synthetic_signals_are_tagged_by_what_they_are(acoustic_store: Path) -> None:
    store = str(acoustic_store)
    assert caption.main(["--store", store, "--corpus", "c", "--backend", "acoustic", "--workers", "0"]) == 0  # fmt: skip
    (captions_dir,) = (acoustic_store / "captions" / "c").iterdir()
    stage = json.loads((captions_dir / "stage.json").read_text())
    assert stage["fingerprint_inputs"]["acoustic_version"] == ACOUSTIC_VERSION
    assert stage["statuses"] == {"ok": len(SIGNALS) + 1}
    captions = read(captions_dir)
    for row in captions.values():
        assert row["text_kind"] == "acoustic"
        assert [entry[0] for entry in json.loads(str(row["raw"]))] == list(MEASURE_UNITS)
    voice = str(captions["voice.wav"]["description"])
    assert "in the male range" in voice and voice.endswith('says "ow".') and "Pirate" not in voice

    assert tag.main(["--store", store, "--corpus", "c", "--workers", "0"]) == 0
    (tags_dir,) = (acoustic_store / "tags" / "c").iterdir()
    tags = read(tags_dir)
    for name, (_, wanted, unwanted) in SIGNALS.items():
        got = tags[f"{name}.wav"]["tags"]
        assert tags[f"{name}.wav"]["status"] == "ok"
        assert rules_tags(wanted)[0] in got, (name, captions[f"{name}.wav"]["description"], got)
        assert not {rules_tags(w)[0] for w in unwanted} & set(got), (name, got)
    assert {"speech", "voice", "male"} <= set(tags["voice.wav"]["tags"])
    # complete: a second run is a no-op
    assert caption.main(["--store", store, "--corpus", "c", "--backend", "acoustic", "--workers", "0"]) == 0  # fmt: skip


def test_the_acoustic_fingerprint_is_its_own_and_names_its_version() -> None:
    corpus_fp = "0123456789abcdef"
    acoustic = CaptionSpec(corpus="c", backend="acoustic")
    assert acoustic.inputs(corpus_fp)["acoustic_version"] == ACOUSTIC_VERSION
    assert "model" not in acoustic.inputs(corpus_fp)  # no model settings: none is used
    assert acoustic.fingerprint(corpus_fp) != CaptionSpec(corpus="c").fingerprint(corpus_fp)
    assert "acoustic_version" not in CaptionSpec(corpus="c").inputs(corpus_fp)
