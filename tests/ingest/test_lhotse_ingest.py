"""The lhotse source round-trips a manifest made here: segments, captions, tags, re-pointed paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

from jobs import build_vocab, ingest
from uts.audio import SAMPLE_RATE, decode_flac
from uts.ingest.manifest import repoint
from uts.tags import load_vocab


def make_manifest(tmp_path: Path) -> tuple[Path, Path]:
    original = tmp_path / "authors-machine"
    original.mkdir()
    rng = np.random.default_rng(0)
    cuts = []
    for i, (tags, caption) in enumerate(
        [
            (["Drums", "electronic", "bass"], "A drum loop with a bass line."),
            ("speech, male, Drums", "A man talks over drums."),
        ]
    ):
        path = original / f"rec{i}.wav"
        sf.write(path, 0.2 * rng.standard_normal(SAMPLE_RATE * 4), SAMPLE_RATE)
        recording = Recording.from_file(path, recording_id=f"rec{i}")
        for j, start in enumerate((0.0, 2.0)):
            supervision = SupervisionSegment(
                id=f"sup{i}{j}",
                recording_id=recording.id,
                start=0.0,
                duration=1.5,
                custom={
                    "audio_tag": tags,
                    "caption": caption,
                    "original_caption": "orig " + caption,
                },
            )
            cuts.append(
                MonoCut(
                    id=f"cut{i}{j}",
                    start=start,
                    duration=1.5,
                    channel=0,
                    recording=recording,
                    supervisions=[supervision],
                )
            )
    manifest = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    moved = tmp_path / "here"
    original.rename(moved)
    return manifest, moved


def test_lhotse_manifest_round_trip(tmp_path: Path) -> None:
    manifest, moved = make_manifest(tmp_path)
    store = tmp_path / "store"
    code = ingest.main(
        [
            "--store",
            str(store),
            "--corpus",
            "cs",
            "--source",
            "lhotse",
            "--path",
            str(manifest),
            "--audio-root",
            f"{tmp_path}/authors-machine={moved}",
            "--workers",
            "0",
        ]
    )
    assert code == 0
    rows = {
        r["clip_id"]: r
        for r in pq.read_table(store / "corpora/cs/shards/part-00000.parquet").to_pylist()
    }
    assert sorted(rows) == ["cut00", "cut01", "cut10", "cut11"]
    original = CutSet.from_file(manifest)
    for cut in original:
        row = rows[cut.id]
        assert row["duration_s"] == pytest.approx(1.5, abs=1e-3)
        assert row["group"] == cut.recording.id
        assert (
            row["text"] == cut.supervisions[0].custom["caption"] and row["text_kind"] == "caption"
        )
        assert json.loads(row["labels"]) == {
            "original_caption": cut.supervisions[0].custom["original_caption"]
        }
        # The stored audio is the cut's segment (peak-normalised to 0.9): compare shapes of the signal.
        source, _ = sf.read(moved / Path(cut.recording.sources[0].source).name, dtype="float32")
        segment = source[int(cut.start * SAMPLE_RATE) : int((cut.start + 1.5) * SAMPLE_RATE)]
        stored = decode_flac(row["audio"])
        scale = 0.9 / np.abs(segment).max()
        assert np.allclose(stored, segment * scale, atol=2e-4)
    assert rows["cut10"]["tags"] == ["speech", "male", "Drums"]  # comma string split, kept as given
    # The tags feed the vocabulary directly.
    shards = str(store / "corpora/cs/shards")
    assert build_vocab.main(["--store", str(store), "--tags", shards, "--name", "cs"]) == 0
    vocab = load_vocab(str(store / "vocab/cs"))
    assert dict(zip(vocab.tags, vocab.df, strict=True))["drum"] == 4


def test_repoint() -> None:
    assert repoint("/mnt/a/b/x.wav", "/data") == "/data/x.wav"
    assert repoint("/mnt/a/b/x.wav", "/mnt/a=/data") == "/data/b/x.wav"
    assert repoint("/elsewhere/x.wav", "/mnt/a=/data") == "/elsewhere/x.wav"
    assert repoint("/mnt/x.wav", None) == "/mnt/x.wav"


def test_unreadable_manifest_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cuts.jsonl"
    bad.write_text("{not json\n")
    code = ingest.main(
        [
            "--store",
            str(tmp_path / "s"),
            "--corpus",
            "x",
            "--source",
            "lhotse",
            "--path",
            str(bad),
            "--workers",
            "0",
        ]
    )
    assert code == 2
    assert "cuts.jsonl" in capsys.readouterr().err
