"""The released UTS/CaptionStew manifests as published: the source is a dataset name, not a path.

The manifest is written here by hand in the released layout (examples/uts/README.md of
AudenAI/Auden, section "Data"): lhotse MonoCut JSONL, `supervisions[0].custom` with `audio_tag`
(list), `original_caption` (list) and `caption` (string), `recording.sources[0].source` the source
dataset's name, no `domain`. The audio lies in a local tree <data>/<source>/<recording id>.flac.
"""

from __future__ import annotations

import gzip
import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jobs import ingest
from uts.audio import SAMPLE_RATE, decode_flac
from uts.ingest.manifest import manifest_items

RATE = 16000


def cut(
    rid: str, source: str, seconds: float, custom: dict[str, Any], *, start: float = 0.0
) -> dict[str, Any]:
    """One manifest line, field for field as released (the clip is the whole recording there)."""
    duration = seconds - start
    return {
        "id": rid,
        "start": start,
        "duration": duration,
        "channel": 0,
        "supervisions": [
            {
                "id": rid,
                "recording_id": rid,
                "start": 0.0,
                "duration": duration,
                "channel": 0,
                "custom": custom,
            }
        ],
        "recording": {
            "id": rid,
            "sources": [{"type": "file", "channels": [0], "source": source}],
            "sampling_rate": RATE,
            "num_samples": int(seconds * RATE),
            "duration": seconds,
            "channel_ids": [0],
        },
        "type": "MonoCut",
    }


def custom(tags: list[str], caption: str | None, *originals: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"audio_tag": tags, "original_caption": list(originals)}
    if caption is not None:
        fields["caption"] = caption
    return fields


# recording id -> (source dataset, seconds of audio, expected domain)
AUDIO = {
    "YtS9FbMAKnFc": ("audioset", 3.0, "environment"),
    "mc_0001": ("musiccaps", 2.5, "music"),
    "ls_84_121": ("librispeech", 2.0, "speech"),
    "odd_1": ("somewhere_else", 1.5, "unknown"),
}


@pytest.fixture
def released(tmp_path: Path) -> tuple[Path, Path]:
    """(manifest .jsonl.gz, data root) with 4 good cuts, one without audio, one with two sources."""
    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    for rid, (source, seconds, _) in AUDIO.items():
        (data / source).mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * RATE)) / RATE
        wave = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(data / source / f"{rid}.flac", wave, RATE)
    lines = [
        cut("YtS9FbMAKnFc", "audioset", 3.0, custom(
            ["punk", "music", "vehicle", "engine"], "A burst of punk rock over racing engines.",
            "An electronic melody intertwines with engines", "Intense racing sounds")),
        cut("mc_0001", "musiccaps", 2.5, custom(
            ["guitar", "blues"], "A slow blues guitar riff.", "blues guitar"), start=0.5),
        cut("ls_84_121", "librispeech", 2.0, custom(
            ["speech", "male"], None, "A man reads a passage aloud.", "male voice")),
        cut("Ymissing0001", "audioset", 10.0, custom(["dog"], "A dog barks.", "dog barking")),
        cut("odd_1", "somewhere_else", 1.5, custom([], "Something hums.", "hum")),
        cut("Ytwo_sources", "audioset", 10.0, custom(["rain"], "Rain falls.", "rain")),
    ]  # fmt: skip
    lines[-1]["recording"]["sources"].append(
        {"type": "file", "channels": [1], "source": "audioset"}
    )
    lines[-1]["recording"]["channel_ids"] = [0, 1]
    manifest = tmp_path / "captionstew400k_full_tag_2k.jsonl.gz"
    with gzip.open(manifest, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    return manifest, data


def job(manifest: Path | str, store: Path, *extra: str) -> int:
    return ingest.main(
        ["--store", str(store), "--corpus", "uts", "--source", "lhotse", "--path", str(manifest),
         "--workers", "0", *extra]
    )  # fmt: skip


def test_items_rejects_and_what_each_cut_keeps(released: tuple[Path, Path]) -> None:
    manifest, data = released
    template = f"{data}/{{source}}/{{recording_id}}.flac"
    items, rejects = manifest_items(str(manifest), audio_template=template)
    assert [i.clip_id for i in items] == ["YtS9FbMAKnFc", "mc_0001", "ls_84_121", "odd_1"]
    assert {r.path.rpartition("#")[2]: r.reason for r in rejects} == {
        "Ymissing0001": f"audio file not found: {data}/audioset/Ymissing0001.flac",
        "Ytwo_sources": "not a single-file recording: recording Ytwo_sources has 2 audio sources",
    }
    by_id = {i.clip_id: i for i in items}
    first = by_id["YtS9FbMAKnFc"]
    assert first.uri == f"{data}/audioset/YtS9FbMAKnFc.flac"
    assert first.tags == ("punk", "music", "vehicle", "engine")
    assert (
        first.text == "A burst of punk rock over racing engines." and first.text_kind == "caption"
    )
    assert first.labels == {
        "original_caption": [
            "An electronic melody intertwines with engines",
            "Intense racing sounds",
        ]
    }
    # No `caption`: the first original caption is the text.
    assert by_id["ls_84_121"].text == "A man reads a passage aloud."
    assert {i.clip_id: i.domain for i in items} == {k: v[2] for k, v in AUDIO.items()}
    assert (by_id["mc_0001"].start_s, by_id["mc_0001"].duration_s) == (0.5, 2.0)
    # --domain is the fallback for a source the table does not know.
    items, _ = manifest_items(str(manifest), audio_template=template, domain="mixed")
    assert {i.clip_id: i.domain for i in items}["odd_1"] == "mixed"


def test_the_job_ingests_the_released_layout(
    released: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, data = released
    store = tmp_path / "store"
    template = f"{data}/{{source}}/{{recording_id}}.flac"
    argv = ["--audio-template", template, "--max-reject-fraction", "0.5"]
    assert job(manifest, store, *argv) == 0
    out = capsys.readouterr().out
    assert "ingested 4, rejected 2: " in out
    assert "audio file not found 1" in out and "not a single-file recording 1" in out
    corpus = store / "corpora" / "uts"
    rows = {r["clip_id"]: r for r in pq.read_table(corpus / "shards").to_pylist()}
    assert sorted(rows) == sorted(AUDIO)
    expected_s = {"YtS9FbMAKnFc": 3.0, "mc_0001": 2.0, "ls_84_121": 2.0, "odd_1": 1.5}
    for rid, row in rows.items():
        assert row["domain"] == AUDIO[rid][2]
        assert row["duration_s"] == pytest.approx(expected_s[rid], abs=0.02), rid
        assert len(decode_flac(row["audio"])) / SAMPLE_RATE == pytest.approx(row["duration_s"])
        assert row["group"] == rid and row["source"] == f"{manifest}#{rid}"
    assert rows["mc_0001"]["tags"] == ["guitar", "blues"]
    assert rows["mc_0001"]["text"] == "A slow blues guitar riff."
    assert json.loads(rows["mc_0001"]["labels"]) == {"original_caption": ["blues guitar"]}
    assert rows["ls_84_121"]["text"] == "A man reads a passage aloud."
    rejects = pq.read_table(corpus / "rejects.parquet").to_pylist()
    assert [r["path"] for r in rejects] == [f"{manifest}#Ymissing0001", f"{manifest}#Ytwo_sources"]
    meta = json.loads((corpus / "corpus.json").read_text())
    assert (meta["clips"], meta["rejects"]) == (4, 2)
    assert meta["reject_reasons"] == {"audio file not found": 1, "not a single-file recording": 1}
    assert meta["domains"] == {"environment": 1, "music": 1, "speech": 1, "unknown": 1}
    assert meta["audio_template"] == template
    command = shlex.split(meta["command"])
    assert command[command.index("--audio-template") + 1] == template
    # A rerun is a no-op; the audio that was missing turning up changes the inputs.
    assert job(manifest, store, *argv) == 0
    assert "up to date" in capsys.readouterr().out
    sf.write(
        data / "audioset/Ymissing0001.flac", 0.3 * np.ones(RATE) * np.sin(np.arange(RATE)), RATE
    )
    assert job(manifest, store, *argv) == 2
    assert "ingested from other inputs" in capsys.readouterr().err
    assert job(manifest, store, *argv, "--overwrite") == 0
    assert json.loads((corpus / "corpus.json").read_text())["clips"] == 5


def test_no_audio_found_at_all_is_exit_2(
    released: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, data = released
    store = tmp_path / "store"
    assert job(manifest, store, "--audio-template", f"{data}/{{source}}/{{cut_id}}.wav") == 2
    err = capsys.readouterr().err
    assert "none of the 5 cuts' audio files exists" in err and "--audio-template" in err
    assert not (store / "corpora").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--audio-template", "/data/{dataset}/{recording_id}.flac"],
         "unknown placeholder {dataset}; the known ones are {source}, {recording_id}, {cut_id}"),
        (["--audio-template", "/data/{source!r}.flac"], "unknown placeholder {source!r}"),
        (["--audio-template", "/data/{source.flac"], "is malformed"),
        (["--audio-template", "/d/{cut_id}.flac", "--audio-root", "/d"],
         "--audio-root and --audio-template both say where the audio is: give one"),
    ],
)  # fmt: skip
def test_bad_audio_flags_are_refused_at_parse_time(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        job(tmp_path / "cuts.jsonl.gz", tmp_path / "store", *argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_template_needs_the_lhotse_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        ingest.main(["--store", str(tmp_path), "--corpus", "c", "--source", "folder",
                     "--path", str(tmp_path), "--audio-template", "/d/{cut_id}.wav"])  # fmt: skip
    assert "--audio-template is for --source lhotse" in capsys.readouterr().err


def test_manifest_and_audio_on_s3_read_like_local_ones(
    released: tuple[Path, Path], tmp_path: Path, s3_bucket: str
) -> None:
    from uts.store import open_fs

    manifest, data = released
    fs, bucket = open_fs(s3_bucket)
    fs.put(str(data), f"{bucket}/data", recursive=True)
    fs.put(str(manifest), f"{bucket}/{manifest.name}")
    argv = ["--max-reject-fraction", "0.5"]
    remote = f"{s3_bucket}/data/{{source}}/{{recording_id}}.flac"
    assert job(f"{s3_bucket}/{manifest.name}", tmp_path / "s3", "--audio-template", remote, *argv) == 0  # fmt: skip
    assert job(manifest, tmp_path / "local", "--audio-template", f"{data}/{{source}}/{{recording_id}}.flac", *argv) == 0  # fmt: skip

    def table(store: str, name: str) -> Any:
        return pq.read_table(tmp_path / store / "corpora/uts" / name)

    assert table("s3", "shards").column("audio").equals(table("local", "shards").column("audio"))
    reasons = [r.partition(": ")[0] for r in table("s3", "rejects.parquet").column("reason").to_pylist()]  # fmt: skip
    assert reasons == ["audio file not found", "not a single-file recording"]
