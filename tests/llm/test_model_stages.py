"""The openai backend end to end on Ray Data against the scripted server: statuses and reasons
for every canned failure, bounded retries, the stricter retry round, resume, tag -> build_vocab."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import uts.llm.model_stage
from jobs import build_vocab, caption, tag
from uts.llm.backends import CAPTION_SCHEMA
from uts.llm.stage import part_name, write_part
from uts.tags import load_vocab
from uts.testing.llm_server import ScriptedServer

pytestmark = pytest.mark.ray

# directive -> (status, reason in the error, requests the server sees)
EXPECTED = {
    "ok": ("ok", None, 1),
    "fenced": ("ok", None, 1),
    "prose": ("ok", None, 1),
    "bare-list": ("ok", None, 1),
    "malformed-then-ok": ("ok", None, 2),  # retried with the stricter prompt
    "http500-once": ("ok", None, 2),
    "429-once": ("ok", None, 2),
    "malformed": ("failed", "no JSON object", 2),
    "empty": ("failed", "empty output", 2),
    "length": ("failed", "truncated at the token limit", 2),
    "http500": ("failed", "HTTP 500", 2),  # --max-retries 1: two attempts, then failed
    "429": ("failed", "HTTP 429", 2),
    "slow": ("failed", "no reply within 1 s", 2),
}


def write_captions(store: Path, descriptions: list[str], per_part: int = 2) -> None:
    """A finished captions stage, fingerprint fp0, `per_part` rows per part."""
    folder = store / "captions" / "c" / "fp0"
    rows = [{"clip_id": f"k{i:02d}", "description": d, "status": "ok" if d else "failed",
             "error": None if d else "empty caption", "raw": d, "text_kind": "caption",
             "domain": "environment"} for i, d in enumerate(descriptions)]  # fmt: skip
    for p in range(0, len(rows), per_part):
        table = pa.Table.from_pylist(rows[p : p + per_part], schema=CAPTION_SCHEMA)
        write_part(table, str(folder / part_name(p // per_part)))
    (folder / "stage.json").write_text(json.dumps({"fingerprint": "fp0"}))
    (folder / "_SUCCESS").write_text("")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(slow_s=3.0) as running:
        yield running


def tag_args(store: Path, server: ScriptedServer, *extra: str) -> list[str]:
    return ["--store", str(store), "--corpus", "c", "--captions", "fp0", "--backend", "openai",
            "--endpoint", server.endpoint, "--model", server.model, "--timeout", "1",
            "--max-retries", "1", "--batch-size", "4", "--concurrency", "2", *extra]  # fmt: skip


def read_stage(folder: Path) -> list[dict[str, Any]]:
    return pq.read_table(folder, ignore_prefixes=[".", "_", "stage.json"]).to_pylist()


def test_every_canned_answer_ends_with_the_right_status(
    ray_session: Any, tmp_path: Path, server: ScriptedServer
) -> None:
    store = tmp_path / "store"
    names = list(EXPECTED)
    write_captions(store, [f"Rain falls on a tin roof. [[script:{n}]]" for n in names] + [""])
    assert tag.main(tag_args(store, server)) == 0
    (folder,) = (store / "tags" / "c").iterdir()
    rows = {r["clip_id"]: r for r in read_stage(folder)}
    assert sorted(rows) == [f"k{i:02d}" for i in range(len(names) + 1)]  # every clip, once
    for i, name in enumerate(names):
        status, reason, _ = EXPECTED[name]
        row = rows[f"k{i:02d}"]
        assert row["status"] == status, (name, row)
        if status == "ok":
            assert row["tags"][:3] == ["rain", "fall", "tin"] and row["error"] is None, name
        else:
            assert row["tags"] == [] and reason in row["error"], (name, row["error"])
    assert "[[script:malformed]]" not in rows["k07"]["raw"] and rows["k07"]["raw"]  # raw kept
    assert rows[f"k{len(names):02d}"]["error"] == "caption is failed: empty caption"
    assert server.requests == sum(n for _, _, n in EXPECTED.values())  # retries are bounded
    stage = json.loads((folder / "stage.json").read_text())
    assert stage["rounds_this_run"] == 2 and stage["retried_rows_this_run"] == 4
    assert stage["statuses"] == {"ok": 7, "failed": 7}
    assert stage["completion_tokens_this_run"] > 0 and stage["tokens_per_s_this_run"] > 0
    inputs = stage["fingerprint_inputs"]
    assert inputs["model"] == server.model and "tagging_v1" in inputs["prompt"]
    assert inputs["sampling"]["structured"] is True and "--endpoint" in stage["command"]
    assert not (folder / "_pending").exists() or not list((folder / "_pending").iterdir())
    # tag -> build_vocab reads this output as it is
    assert build_vocab.main(["--store", str(store), "--tags", str(folder), "--name", "v"]) == 0
    vocab = load_vocab(str(store / "vocab" / "v"))
    assert vocab.n_clips == 7 and vocab.index("rain") is not None
    # complete: a rerun asks nothing
    before = server.requests
    assert tag.main(tag_args(store, server)) == 0 and server.requests == before


def test_a_changed_prompt_or_sampling_gets_a_new_folder(
    ray_session: Any, tmp_path: Path, server: ScriptedServer
) -> None:
    store = tmp_path / "store"
    write_captions(store, ["A dog barks at the gate.", "A car passes."])
    assert tag.main(tag_args(store, server)) == 0
    assert tag.main(tag_args(store, server, "--temperature", "0.7")) == 0
    assert tag.main(tag_args(store, server, "--limit", "1")) == 0
    folders = sorted((store / "tags" / "c").iterdir())
    assert len(folders) == 3
    assert sorted(len(read_stage(f)) for f in folders) == [1, 2, 2]


def test_a_crash_mid_stage_resumes_without_loss_or_duplicates(
    ray_session: Any, tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    descriptions = [f"Bird {i} chirps near water. [[script:{'malformed' if i % 3 == 0 else 'ok'}]]"
                    for i in range(12)]  # fmt: skip
    write_captions(store, descriptions, per_part=2)
    real = uts.llm.model_stage.write_part
    calls = {"n": 0}

    def die_after_three(table: pa.Table, uri: str) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt("killed")  # the driver dies between two commits
        real(table, uri)

    monkeypatch.setattr(uts.llm.model_stage, "write_part", die_after_three)
    with pytest.raises(KeyboardInterrupt):
        tag.main(tag_args(store, server))
    (folder,) = (store / "tags" / "c").iterdir()
    committed = {p.name: p.read_bytes() for p in folder.glob("part-*.parquet")}
    parked = list((folder / "_pending").glob("part-*.parquet"))
    assert len(committed) + len(parked) == 3 and not (folder / "_SUCCESS").exists()
    monkeypatch.setattr(uts.llm.model_stage, "write_part", real)
    assert tag.main(tag_args(store, server)) == 0
    assert {p: (folder / p).read_bytes() for p in committed} == committed  # untouched
    rows = read_stage(folder)
    assert sorted(r["clip_id"] for r in rows) == [f"k{i:02d}" for i in range(12)]
    failed = sorted(r["clip_id"] for r in rows if r["status"] == "failed")
    assert failed == ["k00", "k03", "k06", "k09"]
    assert not list((folder / "_pending").glob("*.parquet"))


def test_caption_with_openai_then_tag(
    ray_session: Any, corpus_store: Path, server: ScriptedServer
) -> None:
    store = str(corpus_store)
    common = ["--backend", "openai", "--endpoint", server.endpoint, "--model", server.model,
              "--batch-size", "4", "--concurrency", "2"]  # fmt: skip
    assert caption.main(["--store", store, "--corpus", "c", *common]) == 0
    (folder,) = (corpus_store / "captions" / "c").iterdir()
    rows = read_stage(folder)
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {r["description"] for r in rows} == {"A 1.0-second recording of a steady tone."}
    assert {r["text_kind"] for r in rows} == {"caption"}
    assert tag.main(["--store", store, "--corpus", "c", *common]) == 0
    (tags,) = (corpus_store / "tags" / "c").iterdir()
    assert {tuple(r["tags"]) for r in read_stage(tags)} == {
        ("second", "recording", "steady", "tone")
    }


def test_bad_endpoint_and_flags_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    write_captions(store, ["A dog barks."])
    with ScriptedServer() as gone:
        endpoint = gone.endpoint
    base = ["--store", str(store), "--corpus", "c", "--backend", "openai", "--timeout", "2"]
    assert tag.main([*base, "--endpoint", endpoint, "--model", "m"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert tag.main(base) == 2
    assert "needs --model" in capsys.readouterr().err
    assert tag.main([*base, "--model", "m", "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
