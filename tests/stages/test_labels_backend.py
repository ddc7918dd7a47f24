"""jobs/tag.py --backend labels on a small folder corpus, then jobs/build_vocab.py on its tags: the
AudioSet-label baseline's vocabulary (`demo-audioset` in the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import build_vocab, ingest, tag
from stages.tag import TagSpec
from uts.tags import load_vocab
from uts.testing.corpus import write_tone_folder

METADATA = [
    ({"family": "flute", "pitch": 60, "program": 73, "set": "gm"}, "music"),
    ({"drum": "snare", "kit": "K", "set": "hydrogen"}, "music"),
    ({"expression": "neutral", "phrase": "hello", "set": "hedgewars"}, "speech"),
    ({"category": "mammal", "sound": "dog", "set": "tuxpaint-stamps-default"}, "environment"),
    ({"category": "household", "sound": "kettle", "set": "tuxpaint-stamps-default"}, "environment"),
    ({"category": "bird", "sound": "crow", "set": "tuxpaint-stamps-default"}, "environment"),
]


@pytest.fixture
def labelled_store(tmp_path: Path) -> Path:
    """12 tones whose metadata carries demo-style labels (two clips per row of METADATA)."""
    audio, _ = write_tone_folder(tmp_path, clips=12, seconds=(1.0,))
    rows = [{"path": f"c{i:04d}.wav", "text": "a sound", "domain": METADATA[i % 6][1],
             "labels": METADATA[i % 6][0]} for i in range(12)]  # fmt: skip
    meta = tmp_path / "labels.jsonl"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "store"
    code = ingest.main(["--store", str(store), "--corpus", "c", "--source", "folder", "--path", str(audio),
                        "--metadata", str(meta), "--workers", "0", "--batch-size", "4", "--max-shard-mb", "0"])  # fmt: skip
    assert code == 0
    return store


def test_labels_tags_then_the_audioset_vocabulary(labelled_store: Path) -> None:
    store = str(labelled_store)
    argv = ["--store", store, "--corpus", "c", "--backend", "labels", "--workers", "0"]
    assert tag.main(argv) == 0
    (tags_dir,) = (labelled_store / "tags/c").iterdir()
    rows = pq.read_table(tags_dir, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()
    by_id = {r["clip_id"]: r for r in rows}
    assert len(rows) == 12 and len(by_id) == 12
    assert by_id["c0000.wav"]["tags"] == ["music", "flute", "wind-instrument-woodwind-instrument",
                                          "musical-instrument"]  # fmt: skip
    assert by_id["c0002.wav"]["tags"] == ["speech"]
    assert by_id["c0003.wav"]["tags"] == ["animal", "dog", "domestic-animals-pet"]
    kettle = by_id["c0004.wav"]
    assert kettle["status"] == "failed" and "kettle" in kettle["error"]  # never silent
    stage = json.loads((tags_dir / "stage.json").read_text())
    corpus = json.loads((labelled_store / "corpora/c/corpus.json").read_text())
    inputs = stage["fingerprint_inputs"]
    assert stage["statuses"] == {"ok": 10, "failed": 2}
    assert inputs["backend"] == "labels" and inputs["corpus_fingerprint"] == corpus["fingerprint"]
    assert tags_dir.name == TagSpec(corpus="c", backend="labels").fingerprint(corpus["fingerprint"])
    assert tag.main(argv) == 0  # complete: nothing to do, same folder
    assert [p.name for p in (labelled_store / "tags/c").iterdir()] == [tags_dir.name]

    assert build_vocab.main(["--store", store, "--tags", str(tags_dir), "--name", "demo-audioset"]) == 0  # fmt: skip
    vocab = load_vocab(str(labelled_store / "vocab/demo-audioset"))
    assert vocab.n_clips == 10  # the failed clips are not documents
    assert (
        "wind-instrument-woodwind-instrument" in vocab.tags and "domestic-animals-pet" in vocab.tags
    )
    assert vocab.df[vocab.tags.index("music")] == 4 and vocab.df[vocab.tags.index("crow")] == 2
    assert len(vocab.tags) == len({t.replace("-", "") for t in vocab.tags})  # kept distinct


def test_labels_refuses_caption_options(labelled_store: Path) -> None:
    base = [
        "--store",
        str(labelled_store),
        "--corpus",
        "c",
        "--backend",
        "labels",
        "--workers",
        "0",
    ]
    assert tag.main([*base, "--captions", "0123456789abcdef"]) == 2
    assert tag.main([*base, "--keep-suspect"]) == 2
    assert tag.main([*base[:3], "nope", *base[4:]]) == 2  # no such corpus
    assert not (labelled_store / "tags").exists()


def test_the_labels_fingerprint_follows_its_inputs() -> None:
    spec = TagSpec(corpus="c", backend="labels")
    inputs = spec.inputs("0123456789abcdef")
    assert set(inputs) == {"stage", "backend", "corpus_fingerprint", "labels_version",
                           "rules_digest", "ontology_sha256", "normalizer_version"}  # fmt: skip
    assert spec.fingerprint("0123456789abcdef") != spec.fingerprint("fedcba9876543210")
    assert spec.fingerprint("0123456789abcdef") != TagSpec(corpus="c").fingerprint(
        "0123456789abcdef"
    )
