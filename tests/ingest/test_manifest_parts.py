"""The parts of the lhotse source: the domain table, templates, file checks, reasons, odd cuts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ingest.test_released_manifest import custom, cut
from uts.data import DOMAINS
from uts.ingest import IngestError
from uts.ingest.manifest import check_template, manifest_items, missing_files
from uts.ingest.run import reason_kind
from uts.ingest.source_domains import SOURCE_DOMAINS, domain_of_source


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("audioset", "environment"),
        ("AudioSet_SL", "environment"),
        ("wavcaps_freesound", "environment"),
        ("Clotho", "environment"),
        ("commonvoice_en", "speech"),
        ("LibriTTS-R", "speech"),
        ("voxceleb2", "speech"),
        ("song_describer", "music"),
        ("MTG-Jamendo", "music"),
        ("fma", "music"),
        ("fmax", None),  # three-letter names match whole only
        ("podcasts", None),
        ("/data/audioset/x.flac", None),  # a path is not a dataset name
        ("audioset.wav", None),
        ("", None),
    ],
)
def test_domain_of_source(name: str, domain: str | None) -> None:
    assert domain_of_source(name) == domain


def test_the_table_names_only_our_domains() -> None:
    assert set(SOURCE_DOMAINS.values()) <= set(DOMAINS)


def test_templates() -> None:
    check_template("/data/{source}/{recording_id}/{cut_id}.flac")
    check_template("/data/{{literal}}/{recording_id}.flac")
    with pytest.raises(IngestError, match=r"unknown placeholder \{0\}"):
        check_template("/data/{0}.flac")
    with pytest.raises(IngestError, match=r"unknown placeholder \{\}"):
        check_template("/data/{}.flac")
    with pytest.raises(IngestError, match="is empty"):
        check_template(" ")


def test_reason_kind() -> None:
    assert reason_kind("audio file not found: /d/x.flac") == "audio file not found"
    assert reason_kind("silent (peak -80 dBFS)") == "silent"
    assert reason_kind("duration 30 s exceeds the limit of 20 s") == (
        "duration N s exceeds the limit of N s"
    )
    assert reason_kind("unreadable: [Errno 2] No such file") == "unreadable"


def test_missing_files_lists_each_folder_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.flac").write_bytes(b"x")
    uris = [f"{tmp_path}/a/x.flac", f"{tmp_path}/a/y.flac", f"{tmp_path}/nope/z.flac"]
    assert missing_files(uris) == {f"{tmp_path}/a/y.flac", f"{tmp_path}/nope/z.flac"}


def test_odd_entries_are_rejects_not_failures(tmp_path: Path) -> None:
    (tmp_path / "audioset").mkdir()
    (tmp_path / "audioset/a.flac").write_bytes(b"audio")
    good = cut("a", "audioset", 2.0, custom(["x"], "c"))
    url = cut("b", "audioset", 2.0, custom([], "c"))
    url["recording"]["sources"][0]["type"] = "url"
    lines = [
        good,
        good,  # the same id again
        url,
        {"id": "r", "sources": [], "sampling_rate": 16000, "num_samples": 1, "duration": 1.0},
        ["not", "an", "object"],
    ]
    manifest = tmp_path / "cuts.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    items, rejects = manifest_items(str(manifest), audio_template=f"{tmp_path}/{{source}}/{{cut_id}}.flac")  # fmt: skip
    assert [i.clip_id for i in items] == ["a"]
    assert [(r.path.rpartition("#")[2], reason_kind(r.reason)) for r in rejects] == [
        ("a", "duplicate cut id"),
        ("b", "not a single-file recording"),
        ("r", "not a lhotse cut"),
        ("line-5", "not a lhotse cut"),
    ]
    assert "'url' source, not a file" in rejects[1].reason


def test_a_manifest_without_cuts_is_an_error(tmp_path: Path) -> None:
    manifest = tmp_path / "recordings.jsonl"
    manifest.write_text(json.dumps({"id": "r", "sources": []}) + "\n")
    with pytest.raises(IngestError, match="has no cuts"):
        manifest_items(str(manifest))
