"""jobs/build_vocab.py run in-process: outputs, idempotence, bad input, diff, S3."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import build_vocab
from uts.tags import load_vocab
from uts.testing import reference_vocabulary, sample_tag_rows, sample_tags_path, tag_table

SAMPLE = str(sample_tags_path())


def run(*argv: str) -> int:
    return build_vocab.main(list(argv))


def test_builds_the_sample_with_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert run("--store", str(store), "--tags", SAMPLE, "--name", "demo", "--max-k", "100") == 0
    folder = store / "vocab" / "demo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "_SUCCESS",
        "coverage.png",
        "report.md",
        "score_df.png",
        "vocab.json",
        "vocab.parquet",
    ]
    table = pq.read_table(folder / "vocab.parquet")
    assert table.column_names == [
        "rank",
        "tag",
        "df",
        "score",
        "coverage_speech",
        "coverage_music",
        "coverage_environment",
    ]
    expected = reference_vocabulary(sample_tag_rows(), max_k=100)
    assert table.column("tag").to_pylist() == [e[0] for e in expected]
    assert table.column("rank").to_pylist() == list(range(1, 101))
    meta = json.loads((folder / "vocab.json").read_text())
    usable = [r for r in sample_tag_rows() if r["status"] == "ok"]
    assert meta["n_clips"] == len(usable)
    assert meta["n_skipped_status"] == len(sample_tag_rows()) - len(usable)
    assert meta["domains"] == {
        d: sum(r["domain"] == d for r in usable) for d in ("speech", "music", "environment")
    }
    # Coverage at K: clips with at least one of the top-K tags, checked against the rows.
    top50 = set(load_vocab(str(folder), 50).tags)
    load = load_vocab(str(folder), 50)
    without = sum(1 for r in usable if not load.indices(r["tags"]))
    assert meta["cutoffs"]["50"]["clips_without_tag"] == without
    speech = [r for r in usable if r["domain"] == "speech"]
    kept = sum(1 for r in speech if load.indices(r["tags"]))
    assert meta["cutoffs"]["50"]["coverage"]["speech"] == pytest.approx(kept / len(speech))
    assert len(top50) == 50
    coverage_speech = dict(
        zip(
            table.column("tag").to_pylist(),
            table.column("coverage_speech").to_pylist(),
            strict=True,
        )
    )
    assert coverage_speech["speech"] == pytest.approx(
        sum(1 for r in speech if load.index("speech") in load.indices(r["tags"])) / len(speech)
    )
    report = (folder / "report.md").read_text()
    assert "| 50 |" in report and "score_df.png" in report
    assert "wrote" in capsys.readouterr().out


def test_rerun_is_a_no_op_and_other_input_needs_overwrite(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert run("--store", store, "--tags", SAMPLE, "--name", "v") == 0
    marker = tmp_path / "store" / "vocab" / "v" / "vocab.json"
    before = marker.stat().st_mtime_ns
    assert run("--store", store, "--tags", SAMPLE, "--name", "v") == 0
    assert marker.stat().st_mtime_ns == before
    other = tmp_path / "other.parquet"
    pq.write_table(tag_table([{"clip_id": "x", "tags": ["rain"]}]), other)
    assert run("--store", store, "--tags", str(other), "--name", "v") == 2
    assert load_vocab(str(tmp_path / "store" / "vocab" / "v")).n_clips > 1  # untouched
    assert run("--store", store, "--tags", str(other), "--name", "v", "--overwrite") == 0
    assert load_vocab(str(tmp_path / "store" / "vocab" / "v")).tags == ("rain",)


def bad_table(tmp_path: Path, name: str, table: pa.Table) -> str:
    path = tmp_path / name
    pq.write_table(table, path)
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_tags", "missing column 'tags'"),
        ("string_tags", "column 'tags' must be list<string>, found string"),
        ("int_clip_id", "column 'clip_id' must be string"),
        ("unreadable", "not a readable parquet file"),
        ("empty", "no usable clips"),
        ("missing_file", "no such file or folder"),
        ("empty_folder", "no parquet files found"),
    ],
)
def test_bad_input_exits_2_names_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    if case == "missing_tags":
        path = bad_table(tmp_path, "t.parquet", pa.table({"clip_id": ["a"], "labels": [["x"]]}))
    elif case == "string_tags":
        path = bad_table(tmp_path, "t.parquet", pa.table({"clip_id": ["a"], "tags": ["x, y"]}))
    elif case == "int_clip_id":
        path = bad_table(tmp_path, "t.parquet", pa.table({"clip_id": [1], "tags": [["x"]]}))
    elif case == "unreadable":
        path = str(tmp_path / "t.parquet")
        Path(path).write_text("not parquet")
    elif case == "empty":
        path = bad_table(tmp_path, "t.parquet", tag_table([]))
    elif case == "missing_file":
        path = str(tmp_path / "nope.parquet")
    else:
        (tmp_path / "empty").mkdir()
        path = str(tmp_path / "empty")
    store = tmp_path / "store"
    good = [] if case == "empty" else ["--tags", SAMPLE]  # one empty file among others is fine
    assert run("--store", str(store), *good, "--tags", path, "--name", "v") == 2
    err = capsys.readouterr().err
    assert message in err
    if case not in ("missing_file", "empty_folder"):
        assert "t.parquet" in err
    assert not (store / "vocab").exists()  # nothing half-written


def test_diff_between_two_k_and_against_a_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert run("--store", store, "--tags", SAMPLE, "--name", "demo") == 0
    capsys.readouterr()
    assert run("--store", store, "--diff", "demo@10", "demo@12") == 0
    out = capsys.readouterr().out
    vocab = load_vocab(str(tmp_path / "store" / "vocab" / "demo"))
    assert (
        "added in B (2):" in out
        and f"      11  {vocab.tags[10]}" in out
        and "dropped from A (0):" in out
    )
    paper = tmp_path / "label.json"
    paper.write_text(json.dumps({"0": vocab.tags[0], "1": "Zebra"}))
    assert run("--store", store, "--diff", "demo@3", str(paper)) == 0
    out = capsys.readouterr().out
    assert "exact spelling; 1 shared" in out and "Zebra" in out
    assert run("--store", store, "--diff", "demo@100000", "demo") == 2
    assert run("--store", store, "--diff", "demo@ten", "demo") == 2
    paper.write_text('["a list", "not an index map"]')
    assert run("--store", store, "--diff", "demo", str(paper)) == 2
    assert "expected a JSON object" in capsys.readouterr().err


def test_store_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.put_file(SAMPLE, f"{s3_bucket}/tags/demo/fp/part-00000.parquet")
    fs.put_file(SAMPLE, f"{s3_bucket}/tags/demo/fp/_tmp/ignored.parquet")  # hidden: not an input
    store = f"{s3_bucket}/store"
    assert run("--store", store, "--tags", f"{s3_bucket}/tags/demo/fp", "--name", "demo") == 0
    vocab = load_vocab(f"{store}/vocab/demo")
    assert list(zip(vocab.tags, vocab.df, vocab.score, strict=True)) == reference_vocabulary(
        sample_tag_rows()
    )
    assert fs.exists(f"{store}/vocab/demo/_SUCCESS")
    assert (
        run("--store", store, "--tags", f"{s3_bucket}/tags/demo/fp", "--name", "demo") == 0
    )  # no-op
