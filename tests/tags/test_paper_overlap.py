"""The vocabulary report's overlap with the paper's released vocabulary (top-100 and top-1k)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import build_vocab
from uts.tags.paper import paper_keys, paper_overlap, paper_overlap_lines, paper_tags
from uts.testing import tag_table

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "paper_uts_vocab"


def test_embedded_vocabulary_is_the_released_one() -> None:
    tags = paper_tags()
    assert len(tags) == 3000
    assert tags[:6] == ("electronic", "studio", "speech", "male", "bass", "reverb")
    assert tags.count("instructional") == 2 and tags.count("unresolved") == 2  # as released
    assert "happy hardcore" in tags and "norteño" in tags
    # drums/drum are one identity under the normaliser, so the top-100 holds 98 distinct tags.
    assert len(paper_keys(100)) == 98
    assert "drum" in paper_keys(100) and "drums" not in paper_keys(100)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared reference folder is not checked out")
def test_embedded_vocabulary_equals_the_reference_files() -> None:
    for name, size in (("label_3k.json", 3000), ("label_1k.json", 1000), ("label_800.json", 800)):
        mapping = json.loads((SHARED / name).read_text(encoding="utf-8"))
        assert [mapping[str(i)] for i in range(len(mapping))] == list(paper_tags()[:size]), name


def test_overlap_by_identity_in_our_order_once_per_identity() -> None:
    ours = ["Drums", "drum", "zzz-not-a-tag", "speech", "bark", "reverb", "8-bit"]
    assert paper_overlap(ours, 100) == ["Drums", "speech", "reverb"]
    # bark is rank 833; the paper's 1k spells 8-bit as 8bit, 8-bit and 8_bit: one identity.
    assert paper_overlap(ours, 1000) == ["Drums", "speech", "bark", "reverb", "8-bit"]
    assert paper_overlap([], 100) == []
    lines = paper_overlap_lines(ours, listed=1)
    assert lines[1] == "- paper top 100 (98 distinct): 3 shared (3.1%): Drums ... 2 more"
    assert lines[2].startswith("- paper top 1,000 (930 distinct): 5 shared (0.5%): Drums ...")


def test_build_vocab_reports_the_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [["speech", "male", "dog"], ["speech", "Drums"], ["dog", "zzz"], ["bark", "male"]]
    rows = [{"clip_id": f"c{i}", "tags": tags, "domain": "environment", "status": "ok",
             "error": None} for i, tags in enumerate(docs)]  # fmt: skip
    (tmp_path / "tags").mkdir()
    pq.write_table(tag_table(rows), tmp_path / "tags" / "part-0.parquet")
    store = tmp_path / "store"
    argv = ["--store", str(store), "--tags", str(tmp_path / "tags" / "part-0.parquet")]
    assert build_vocab.main([*argv, "--name", "v"]) == 0
    out = capsys.readouterr().out
    # speech, male, drum are in the paper's top-100; dog and bark only in its top-1k.
    assert "paper top 100 (98 distinct): 3 shared (3.1%): " in out
    assert "paper top 1,000 (930 distinct): 5 shared (0.5%): " in out
    report = (store / "vocab" / "v" / "report.md").read_text(encoding="utf-8")
    assert "## Overlap with the paper's vocabulary" in report
    top100 = next(line for line in report.splitlines() if line.startswith("- paper top 100 "))
    assert sorted(top100.split(": ", 1)[1].split(": ")[1].split(", ")) == ["drum", "male", "speech"]
