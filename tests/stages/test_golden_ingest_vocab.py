"""Ingest and vocabulary fingerprints computed by the new specs equal the golden values recorded
with the code before issue 20's move, so a store written by the old jobs is found complete."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from jobs import build_vocab
from jobs import ingest as ingest_job
from stages import ingest, vocab
from stages.base import spec_argv
from stages.cli import parser_for
from uts.data import Reject
from uts.ingest.items import Item
from uts.store import Store
from uts.testing import sample_tags_path

GOLDEN = json.loads((Path(__file__).with_name("golden_fingerprints.json")).read_text())


def golden_items() -> list[Item]:
    """The inputs the golden values were recorded with (/tmp/golden/record.py)."""
    return [
        Item(
            uri=f"/data/a{i}.wav",
            clip_id=f"a{i}",
            stamp=f"{100 + i}:{i}",
            domain="speech",
            text=f"t{i}",
            labels={"x": i},
            group=f"g{i % 2}",
            partition="probe" if i == 2 else "pretrain",
        )
        for i in range(4)
    ]


def ingest_spec(argv: list[str]) -> ingest.IngestSpec:
    parser = parser_for(ingest, "ingest.py")
    base = ["--corpus", "c", "--source", "folder", "--path", "/data"]
    return ingest.spec_from_args(parser.parse_args([*base, *argv]), parser)


@pytest.mark.parametrize("case", GOLDEN["ingest"], ids=lambda c: " ".join(c["argv"]) or "defaults")
def test_ingest_fingerprint_is_golden(case: dict[str, Any]) -> None:
    spec = ingest_spec(case["argv"])
    rejects = [Reject(path="/data/bad.wav", reason="unreadable")]
    assert spec.fingerprint(golden_items(), rejects) == case["fingerprint"]


def test_ingest_spec_renders_the_flags_it_was_parsed_from() -> None:
    argv = ["--min-s", "0.5", "--max-s", "12.0", "--no-trim", "--workers", "0"]
    spec = ingest_spec(argv)
    assert spec_argv(spec) == ["--corpus", "c", "--source", "folder", "--path", "/data", *argv]
    assert ingest_spec(spec_argv(spec)[6:]) == spec


@pytest.mark.parametrize("case", GOLDEN["vocab"], ids=lambda c: " ".join(c["argv"]) or "defaults")
def test_vocab_fingerprint_is_golden(case: dict[str, Any], tmp_path: Path) -> None:
    parser = parser_for(vocab, "build_vocab.py")
    name = f"v{GOLDEN['vocab'].index(case)}"
    args = parser.parse_args(["--tags", str(sample_tags_path()), "--name", name, *case["argv"]])
    spec = vocab.spec_from_args(args, parser)
    with contextlib.redirect_stderr(io.StringIO()):
        result = vocab.run(spec, Store(str(tmp_path)))
    assert result.exit_code == case["rc"] == 0
    assert result.vocab_fingerprint == case["vocab_fingerprint"]
    meta = Store(str(tmp_path)).read_json("vocab", name, "vocab.json")
    assert meta["vocab_fingerprint"] == case["vocab_fingerprint"]
    assert meta.get("fingerprint") == case["fingerprint"]
    # The recorded command rebuilds the same spec.
    command = shlex.split(meta["command"])
    assert command[:4] == ["python", "jobs/build_vocab.py", "--store", str(tmp_path)]
    again = vocab.spec_from_args(parser.parse_args(command[4:]), parser)
    assert again == spec


def test_a_store_written_by_the_job_is_up_to_date_for_the_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", str(tmp_path), "--tags", str(sample_tags_path()), "--name", "u"]
    assert build_vocab.main(argv) == 0
    first = Store(str(tmp_path)).read_json("vocab", "u", "vocab.json")
    capsys.readouterr()
    result = vocab.run(
        vocab.VocabSpec(tags=(str(sample_tags_path()),), name="u"), Store(str(tmp_path))
    )
    assert result.vocab_fingerprint == first["vocab_fingerprint"]
    assert "is up to date" in result.summary
    assert ingest_job.main(["--store", str(tmp_path), "--corpus", "c", "--source", "folder",
                            "--path", str(tmp_path / "missing")]) == 2  # fmt: skip
    assert "error: " in capsys.readouterr().err
