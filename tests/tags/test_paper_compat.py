"""build_vocab --paper-compat: the paper's released scoring, checked against its script's output."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from jobs import build_vocab
from stages import vocab as vocab_stage
from stages.cli import parser_for
from uts.tags import Vocabulary, load_vocab, resolve_sources
from uts.tags.build import build_vocabulary, vocab_fingerprint
from uts.testing import tag_table

# One list per document (clip). Case variants (drum/Drums, bass/Bass, rain/Rain), a plural
# (drums), separator and punctuation variants (8-bit/8bit, drum.), an empty document, a document
# without tags (null; a jsonl line with no "tags" key), a tag repeated within one document
# (Drums in the first) and ties: six tags with df 2 and six with df 1. No two tags with equal
# scores are first seen in the same document, so the script's output does not depend on the
# order in which Python iterates a set (string hashing is randomised per process).
DOCS: list[list[str] | None] = [
    ["drum", "Drums", "bass", "Drums"],
    ["drums", "Bass"],
    [],
    ["drum", "zither", "8-bit"],
    None,
    ["drums", "accordion", "8bit"],
    ["bass", "zither", "rain"],
    ["drum", "rain", "Rain"],
    ["Drums", "bass", "ambient"],
    ["drum", "accordion", "ambient", "piano"],
    ["drum."],
]

# Produced by the paper's own script, AudenAI/Auden examples/uts/utils/build_labelsys.py at
# commit 2f78687c446a946ff09e2ffd4335125b82baec32, run once by hand (Python 3.11.7) on DOCS
# written as its jsonl input ({"id": "c<i>", "caption": "x", "tags": [...]}, no "tags" key for
# the null document): `python build_labelsys.py --input tags.jsonl --output_dir out
# --vocab_sizes 800`, then out/label_800.txt. It reported 11 documents and 14 unique tags.
GOLDEN = [
    "drum",
    "bass",
    "Drums",
    "drums",
    "zither",
    "accordion",
    "rain",
    "ambient",
    "Bass",
    "8-bit",
    "8bit",
    "Rain",
    "piano",
    "drum.",
]
GOLDEN_DF = [4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]  # its printed df column


def rows_of(docs: list[list[str] | None]) -> list[dict[str, Any]]:
    return [{"clip_id": f"c{i}", "tags": tags} for i, tags in enumerate(docs)]


def write_parts(folder: Path, rows: list[dict[str, Any]], files: int = 1) -> list[str]:
    """Consecutive slices of rows, one parquet file each (sorted names keep the row order)."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // files)
    paths = []
    for i in range(files):
        path = folder / f"part-{i}.parquet"
        pq.write_table(tag_table(rows[i * size : (i + 1) * size]), path, row_group_size=3)
        paths.append(str(path))
    return paths


def build(
    tmp_path: Path,
    rows: list[dict[str, Any]],
    *,
    paper_compat: bool = True,
    normalize: bool = True,
    files: int = 1,
    batch_rows: int = 65536,
) -> Vocabulary:
    paths = write_parts(tmp_path / f"in-{files}-{batch_rows}", rows, files)
    return build_vocabulary(
        resolve_sources(paths),
        name="t",
        normalize=normalize,
        batch_rows=batch_rows,
        paper_compat=paper_compat,
    ).vocab


@pytest.mark.parametrize(("files", "batch_rows"), [(1, 65536), (1, 1), (3, 2), (4, 65536)])
def test_matches_the_paper_script_output(tmp_path: Path, files: int, batch_rows: int) -> None:
    vocab = build(tmp_path, rows_of(DOCS), files=files, batch_rows=batch_rows)
    assert list(vocab.tags) == GOLDEN
    assert list(vocab.df) == GOLDEN_DF
    assert vocab.n_clips == 11  # the empty and the null document count toward N
    assert list(vocab.score) == [d * math.log((11 + 1) / (d + 1)) for d in GOLDEN_DF]
    assert not vocab.normalized


def test_default_mode_merges_what_paper_compat_keeps_apart(tmp_path: Path) -> None:
    built = build(tmp_path, rows_of(DOCS))
    paper = dict(zip(built.tags, built.df, strict=True))
    ours = build(tmp_path, rows_of(DOCS), paper_compat=False)
    df = dict(zip(ours.tags, ours.df, strict=True))
    # drum, Drums, drums and drum. are one tag: 8 documents carry one of them.
    assert [paper[t] for t in ("drum", "Drums", "drums", "drum.")] == [4, 2, 2, 1]
    assert df["drum"] == 8
    assert (paper["bass"], paper["Bass"], df["bass"]) == (3, 1, 4)
    assert (paper["8-bit"], paper["8bit"], df["8-bit"]) == (1, 1, 2)
    assert (paper["rain"], paper["Rain"], df["rain"]) == (2, 1, 2)  # both in document 7
    assert not {"Drums", "drums", "drum.", "Bass", "8bit", "Rain"} & set(ours.tags)
    assert len(ours) == 8 < len(GOLDEN) and ours.normalized


def test_no_normalize_keeps_the_same_tags_but_breaks_ties_alphabetically(tmp_path: Path) -> None:
    plain = build(tmp_path, rows_of(DOCS), paper_compat=False, normalize=False)
    assert sorted(plain.tags) == sorted(GOLDEN)
    assert plain.tags[2:8] == ("Drums", "accordion", "ambient", "drums", "rain", "zither")
    assert list(plain.tags) != GOLDEN


def test_ties_within_a_document_follow_the_written_order(tmp_path: Path) -> None:
    # The script iterates a set here, whose order changes between processes; we take the order
    # the tags are written in (the first time a repeated tag appears).
    vocab = build(tmp_path, rows_of([["zeta", "alpha", "zeta", "mid"], ["other"]]))
    assert vocab.tags == ("zeta", "alpha", "mid", "other")


def test_every_row_counts_whatever_its_status_or_id(tmp_path: Path) -> None:
    rows = rows_of([["a"], ["a", "b"], [], ["b"]])
    rows[2]["status"] = "failed"  # a failed parse: the script still counts the line
    rows[3]["clip_id"] = "c0"  # ids are never looked at
    paper = build(tmp_path, rows)
    assert paper.n_clips == 4
    assert dict(zip(paper.tags, paper.df, strict=True)) == {"a": 2, "b": 2}
    assert paper.tags == ("a", "b")
    rows[3]["clip_id"] = "c3"
    assert build(tmp_path / "ours", rows, paper_compat=False).n_clips == 3


def test_the_job_writes_a_paper_compatible_vocabulary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    (path,) = write_parts(tmp_path / "tags", rows_of(DOCS))
    base = ["--store", str(store), "--tags", path]
    assert build_vocab.main([*base, "--name", "paper", "--paper-compat"]) == 0
    assert build_vocab.main([*base, "--name", "plain", "--no-normalize"]) == 0
    assert build_vocab.main([*base, "--name", "ours"]) == 0
    paper = load_vocab(str(store / "vocab" / "paper"))
    assert list(paper.tags) == GOLDEN
    assert list(paper.df) == GOLDEN_DF
    meta = json.loads((store / "vocab" / "paper" / "vocab.json").read_text())
    assert meta["paper_compat"] is True
    assert meta["normalize"] is False and meta["n_clips"] == 11
    assert meta["vocab_fingerprint"] == vocab_fingerprint(GOLDEN, paper_compat=True)
    others = [
        json.loads((store / "vocab" / n / "vocab.json").read_text()) for n in ("plain", "ours")
    ]
    assert all(m["paper_compat"] is False for m in others)
    for key in ("vocab_fingerprint", "input_fingerprint"):
        assert len({meta[key], *(m[key] for m in others)}) == 3
    assert "first seen first" in (store / "vocab" / "paper" / "report.md").read_text()
    # The recorded command rebuilds the same spec; rerunning it is a no-op.
    parser = parser_for(vocab_stage, "build_vocab.py")
    command = shlex.split(meta["command"])
    assert "--paper-compat" in command
    spec = vocab_stage.spec_from_args(parser.parse_args(command[4:]), parser)
    assert spec.paper_compat and spec.name == "paper"
    capsys.readouterr()
    assert build_vocab.main(command[2:]) == 0
    assert "is up to date" in capsys.readouterr().out
    # The other mode under the same name is other input.
    assert build_vocab.main([*base, "--name", "paper"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_fingerprint_differs_between_modes_for_the_same_tags() -> None:
    tags = ["a", "b"]
    assert vocab_fingerprint(tags) != vocab_fingerprint(tags, paper_compat=True)
