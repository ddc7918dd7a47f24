"""Outputs appear whole: staged, then published with a _SUCCESS marker; failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import build_vocab
from uts.store import SUCCESS, Store
from uts.tags import VocabularyError, load_vocab
from uts.testing import sample_tags_path


def test_publish_is_whole_and_refuses_to_clobber(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    with store.staging() as staged:
        (staged / "a.txt").write_text("one")
        uri = store.publish(staged, "out", "x")
    assert uri == f"{tmp_path}/s/out/x"
    assert store.is_complete("out", "x")
    assert (tmp_path / "s" / "out" / "x" / "a.txt").read_text() == "one"
    with store.staging() as staged:
        (staged / "a.txt").write_text("two")
        with pytest.raises(FileExistsError):
            store.publish(staged, "out", "x")
        store.publish(staged, "out", "x", overwrite=True)
    assert (tmp_path / "s" / "out" / "x" / "a.txt").read_text() == "two"
    assert [p.name for p in (tmp_path / "s").iterdir()] == [
        "out"
    ]  # no staging or deleted leftovers


def test_an_incomplete_folder_is_not_trusted_and_is_replaced(tmp_path: Path) -> None:
    half = tmp_path / "s" / "vocab" / "demo"
    half.mkdir(parents=True)
    (half / "vocab.parquet").write_bytes(b"half a file")
    with pytest.raises(VocabularyError, match="incomplete"):
        load_vocab(str(half))
    args = ["--store", str(tmp_path / "s"), "--tags", str(sample_tags_path()), "--name", "demo"]
    assert build_vocab.main(args) == 0  # no --overwrite needed: it was never complete
    assert (half / SUCCESS).exists()
    assert len(load_vocab(str(half))) > 0


def test_a_failure_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uts.tags.report

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(uts.tags.report, "write_report", broken)
    args = ["--store", str(tmp_path / "s"), "--tags", str(sample_tags_path()), "--name", "demo"]
    with pytest.raises(RuntimeError, match="disk full"):
        build_vocab.main(args)
    assert list((tmp_path / "s").iterdir()) == []
