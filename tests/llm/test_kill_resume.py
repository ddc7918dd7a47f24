"""Kill tag.py with SIGKILL mid-run, rerun it: no clip missing, none twice, finished parts untouched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uts.llm.backends import CAPTION_SCHEMA
from uts.llm.stage import part_name, write_part

ROOT = Path(__file__).resolve().parents[2]
WORDS = "dog bark rain thunder engine car bird chirp piano melody guitar drum crowd cheer wind door".split()


def make_captions(store: Path, parts: int, rows: int) -> None:
    folder = store / "captions" / "c" / "fp0"
    for p in range(parts):
        table = [
            {"clip_id": f"p{p:04d}-{r:03d}", "description": " ".join(WORDS[(p + r + k) % len(WORDS)] for k in range(12)),
             "status": "ok", "error": None, "raw": "", "text_kind": "caption", "domain": "environment"}
            for r in range(rows)
        ]  # fmt: skip
        write_part(pa.Table.from_pylist(table, schema=CAPTION_SCHEMA), str(folder / part_name(p)))
    (folder / "stage.json").write_text(json.dumps({"fingerprint": "fp0"}))
    (folder / "_SUCCESS").write_text("")


def test_sigkill_mid_run_then_rerun(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_captions(store, parts=300, rows=40)
    command = [sys.executable, str(ROOT / "jobs" / "tag.py"), "--store", str(store), "--corpus", "c",
               "--captions", "fp0", "--workers", "0"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    out: Path | None = None
    while time.monotonic() < deadline:
        folders = list((store / "tags" / "c").glob("*")) if (store / "tags" / "c").exists() else []
        if folders and len(list(folders[0].glob("part-*.parquet"))) >= 5:
            out = folders[0]
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert out is not None, "tag.py wrote no parts within 60 s"
    assert not (out / "_SUCCESS").exists(), "the run finished before it could be killed"
    finished = {p.name: p.read_bytes() for p in out.glob("part-*.parquet")}
    assert 5 <= len(finished) < 300
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    assert (out / "_SUCCESS").exists()
    for name, data in finished.items():
        assert (out / name).read_bytes() == data  # committed parts are kept as they were
    ids = (
        pq.read_table(out, columns=["clip_id"], ignore_prefixes=[".", "_", "stage"])
        .column(0)
        .to_pylist()
    )
    assert len(ids) == len(set(ids)) == 300 * 40  # every clip exactly once
    # A write killed midway can leave a hidden .part-*.tmp file: readers never see it (dot prefix).
