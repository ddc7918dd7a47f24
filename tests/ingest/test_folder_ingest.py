"""jobs/ingest.py --source folder on a folder with every kind of broken file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import ingest
from tests.ingest.conftest import BAD, GOOD
from uts.audio import SAMPLE_RATE, decode_flac
from uts.data import SHARD_SCHEMA, iter_clip_batches, list_shards


def run(root: Path, metadata: Path, store: Path, *extra: str) -> int:
    return ingest.main(
        [
            "--store",
            str(store),
            "--corpus",
            "c",
            "--source",
            "folder",
            "--path",
            str(root),
            "--metadata",
            str(metadata),
            "--workers",
            "0",
            "--max-source-s",
            "20",
            *extra,
        ]
    )


def test_every_good_clip_and_every_reject(
    messy_folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, metadata = messy_folder
    store = tmp_path / "store"
    # 9 rejects of 15 inputs is over 5%: the corpus is written, the exit code says so.
    assert run(root, metadata, store) == 1
    assert "were rejected (limit 5.0%)" in capsys.readouterr().err
    corpus = store / "corpora" / "c"
    rejects = pq.read_table(corpus / "rejects.parquet").to_pylist()
    by_path = {r["path"].removeprefix(str(root) + "/"): r["reason"] for r in rejects}
    assert set(by_path) == set(BAD)
    for path, fragment in BAD.items():
        assert fragment in by_path[path], (path, by_path[path])

    table = pq.read_table(corpus / "shards" / "part-00000.parquet")
    assert table.schema.equals(SHARD_SCHEMA)
    rows = {r["clip_id"]: r for r in table.to_pylist()}
    assert set(rows) == set(GOOD)
    for clip_id, seconds in GOOD.items():
        row = rows[clip_id]
        wave = decode_flac(row["audio"])
        assert wave.ndim == 1
        assert len(wave) / SAMPLE_RATE == pytest.approx(row["duration_s"], abs=1e-3)
        if seconds is not None:
            assert row["duration_s"] == pytest.approx(seconds, abs=0.02), clip_id
        else:
            assert 1.5 < row["duration_s"] < 2.2
        assert np.max(np.abs(wave)) == pytest.approx(0.9, abs=1e-3)  # peak-normalised
    assert rows["speech/a.wav"]["text"] == "hello there"
    assert rows["speech/a.wav"]["text_kind"] == "transcript"
    assert json.loads(rows["speech/a.wav"]["labels"]) == {"speaker": "s1"}
    assert rows["speech/a.wav"]["group"] == "s1"
    assert json.loads(rows["speech/b.flac"]["labels"]) == {"label": "s2"}
    assert json.loads(rows["music/stereo44k.ogg"]["labels"]) == {"family": "guitar"}
    assert rows["env/c.mp3"]["domain"] == "unknown" and rows["env/c.mp3"]["group"] == "env/c.mp3"
    meta = json.loads((corpus / "corpus.json").read_text())
    assert (
        meta["clips"] == len(GOOD)
        and meta["rejects"] == len(BAD)
        and meta["skipped_not_audio"] == 1
    )
    assert meta["domains"] == {"music": 2, "speech": 2, "unknown": 2}


def test_rerun_is_a_no_op_and_changed_inputs_need_overwrite(
    messy_folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, metadata = messy_folder
    store = tmp_path / "store"
    limit = ["--max-reject-fraction", "0.9"]
    assert run(root, metadata, store, *limit) == 0
    stamp = (store / "corpora/c/corpus.json").stat().st_mtime_ns
    assert run(root, metadata, store, *limit) == 0
    assert "up to date" in capsys.readouterr().out
    assert (store / "corpora/c/corpus.json").stat().st_mtime_ns == stamp
    (root / "speech/a.wav").write_bytes((root / "speech/b.flac").read_bytes())
    assert run(root, metadata, store, *limit) == 2
    assert run(root, metadata, store, *limit, "--overwrite") == 0


def test_reading_shards_streams_every_clip(messy_folder: tuple[Path, Path], tmp_path: Path) -> None:
    root, metadata = messy_folder
    store = tmp_path / "store"
    run(root, metadata, store, "--max-shard-mb", "0")  # a new shard after every row group
    corpus = str(store / "corpora" / "c")
    ids = [
        cid
        for batch in iter_clip_batches(corpus, columns=["clip_id"])
        for cid in batch.column(0).to_pylist()
    ]
    assert sorted(ids) == sorted(GOOD)
    assert len(list_shards(corpus)) == len(GOOD)


def test_missing_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = ingest.main(
        [
            "--store",
            str(tmp_path),
            "--corpus",
            "c",
            "--source",
            "folder",
            "--path",
            str(tmp_path / "nope"),
            "--workers",
            "0",
        ]
    )
    assert code == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "corpora").exists()


def test_a_negative_demo_count_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        ingest.main(
            [
                "--store",
                str(tmp_path),
                "--corpus",
                "demo",
                "--source",
                "demo",
                "--extra-programs",
                "-1",
            ]
        )
    assert exit_.value.code == 2
    assert "--extra-programs must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "corpora").exists()
