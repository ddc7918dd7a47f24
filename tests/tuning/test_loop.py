"""The trial loop without Ray: a study left with a running trial by a killed driver continues to
exactly N finished trials without re-running completed ones; trials train in segments, report
after each, are pruned between segments, and resume from the segments they finished."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tuning.loop import HEARTBEAT_ATTR, LoopConfig, counted_trials, run_trials
from tuning.objective import Train, TrialSetup, make_objective, segment_steps
from tuning.space import SweepSpace
from tuning.storage import open_storage
from tuning.study import make_pruner, make_sampler
from uts.store import Store
from uts.train import checkpoint

SPACE = SweepSpace(objective="multitask", ks=(6, 12), lam_range=(0.5, 2.0), lam_points=2)
QUIET = {"log": lambda _: None}


def journal_study(root: Path, name: str = "s") -> optuna.Study:
    storage = open_storage("journal", Store(str(root)), name).storage
    return optuna.create_study(study_name=name, storage=storage, direction="maximize",
                               sampler=make_sampler("grid", SPACE, 0), load_if_exists=True)  # fmt: skip


class FakeTrials:
    """A trial function that records its calls: value = K + lambda, run name kept as a user attr."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[tuple[int, str, tuple[int, float]]] = []
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, trial: optuna.Trial) -> float:
        params = SPACE.suggest(trial)
        run = trial.user_attrs.get("run") or f"s-t{trial.number}"
        trial.set_user_attr("run", run)
        with self.lock:
            self.calls.append((trial.number, run, (params["k"], params["lam"])))
        time.sleep(self.seconds)
        return params["k"] + params["lam"]


def leave_running(study: optuna.Study, beat: float) -> optuna.Trial:
    """What a driver killed mid-trial leaves: a RUNNING trial with params and a last heartbeat."""
    trial = study.ask()
    SPACE.suggest(trial)
    trial.set_user_attr("run", f"s-t{trial.number}")
    study._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, beat)
    return trial


def test_a_killed_sweep_continues_to_exactly_n_trials(tmp_path: Path) -> None:
    first = FakeTrials()
    # driver 1: one trial completes, the next is left running when it is killed
    run_trials(
        journal_study(tmp_path), first, LoopConfig(total=1, heartbeat_s=0.1, grace_s=1), **QUIET
    )
    killed = leave_running(journal_study(tmp_path), beat=time.time() - 3600)
    assert [c[0] for c in first.calls] == [0]
    # driver 2, the same command: retries the stale trial under its run name, runs the rest
    second = FakeTrials()
    study = journal_study(tmp_path)
    result = run_trials(study, second, LoopConfig(total=4, heartbeat_s=0.1, grace_s=1), **QUIET)
    assert result.retried == [killed.number] and result.counted == 4
    assert 0 not in [c[0] for c in second.calls]  # the completed trial is not run again
    assert len(second.calls) == 3
    runs = [c[1] for c in second.calls]
    assert f"s-t{killed.number}" in runs  # the retry trains the killed trial's run
    trials = study.get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    done = counted_trials(trials)
    assert len(done) == 4 and all(t.state == TrialState.COMPLETE for t in done)
    assert sorted((t.params["k"], t.params["lam"]) for t in done) == [(6, 0.5), (6, 2.0), (12, 0.5), (12, 2.0)]  # fmt: skip
    # a third run of the same command finds the total reached and runs nothing
    third = FakeTrials()
    assert run_trials(journal_study(tmp_path), third, LoopConfig(total=4), **QUIET).ran == []
    assert third.calls == []


def test_a_live_trial_of_another_driver_is_waited_for_then_retried_when_silent(tmp_path: Path) -> None:  # fmt: skip
    study = journal_study(tmp_path)
    silent = leave_running(study, beat=time.time())  # beating just now: looks alive at first
    fake = FakeTrials()
    started = time.monotonic()
    result = run_trials(journal_study(tmp_path), fake, LoopConfig(total=2, heartbeat_s=0.1, grace_s=1.0), **QUIET)  # fmt: skip
    assert result.retried == [silent.number] and result.counted == 2
    assert time.monotonic() - started >= 0.9  # it waited for the grace period
    assert [c[1] for c in fake.calls].count(f"s-t{silent.number}") == 1


def test_parallel_trials_do_not_overshoot_and_failures_count(tmp_path: Path) -> None:
    fake = FakeTrials(seconds=0.2)
    failing = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            failing["n"] += 1
            raise RuntimeError("out of memory")
        return fake(trial)

    study = journal_study(tmp_path)
    result = run_trials(study, objective, LoopConfig(total=4, parallel=3, heartbeat_s=0.05, grace_s=1), **QUIET)  # fmt: skip
    assert result.counted == 4 and len(study.trials) == 4 and failing["n"] == 1
    failed = study.trials[1]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == "RuntimeError: out of memory"


def fake_train(store: Path, log: list[tuple[str, int]]) -> Train:
    """Writes a checkpoint of run `name` at `max_steps` (weights-only, with its loop counters), as
    a run trained to that step budget would."""

    def train(name: str, params: Mapping[str, Any], max_steps: int) -> None:
        log.append((name, max_steps))
        folder = Path(checkpoint.folder_path(Store(str(store)), name, f"{max_steps:06d}"))
        folder.mkdir(parents=True)
        state = {"step": max_steps, "audio_seconds": 36.0 * max_steps, "k": int(params["k"])}
        checkpoint.save(folder, model_state={}, training_state=None, state=state, lineage={})
        return None

    return train


def probe_summary(uri: str) -> dict[str, Any]:
    """A probe summary whose score grows with K and with the checkpoint's step."""
    found = checkpoint.latest(Store(str(Path(uri).parents[2])), Path(uri).parent.name)
    assert found is not None and found[0] == uri  # the objective probes the step it trained to
    state = found[1]
    value = state["k"] / 100 + state["step"] / 1000  # K=12 beats K=6 at every step
    return {"results": {"vggsound": {"score": {"mean": value}}},
            "domain_means": {"environment": value, "all": value}}  # fmt: skip


def command(params: Mapping[str, Any]) -> str:
    return f"train k={params['k']} lam={params.get('lam')}"


def test_trials_train_in_segments_and_are_pruned_between_them(tmp_path: Path) -> None:
    log: list[tuple[str, int]] = []
    setup = TrialSetup(store=str(tmp_path), study="seg", space=SPACE, segments=segment_steps(12, 3))
    objective = make_objective(
        setup, train=fake_train(tmp_path, log), probe=probe_summary, command=command, **QUIET
    )
    study = optuna.create_study(direction="maximize", sampler=make_sampler("grid", SPACE, 0),
                                pruner=make_pruner("median", multi_objective=False, prune_after=2))  # fmt: skip
    # enqueued (fixed params, in this order): two K=12 trials complete, then K=6 is pruned
    for params in ({"k": 12, "lam": 0.5}, {"k": 12, "lam": 2.0}, {"k": 6, "lam": 0.5}):
        study.enqueue_trial(params)
    run_trials(study, objective, LoopConfig(total=3), **QUIET)
    assert log[:6] == [("seg-t0", 4), ("seg-t0", 8), ("seg-t0", 12), ("seg-t1", 4), ("seg-t1", 8), ("seg-t1", 12)]  # fmt: skip
    assert log[6:] == [("seg-t2", 4)]  # K=6 scored below the median after its first segment
    complete, _, pruned = study.trials
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [4]
    assert complete.intermediate_values == {4: 0.124, 8: 0.128, 12: 0.132}
    assert complete.value == pytest.approx(0.132)
    user = complete.user_attrs
    assert user["run"] == "seg-t0" and user["checkpoint"].endswith("checkpoint_000012")
    assert user["audio_hours"] == pytest.approx(36.0 * 12 / 3600) and user["wall_s"] >= 0
    assert set(user["segments"]) == {"4", "8", "12"} and user["scores"]["all"] == pytest.approx(
        0.132
    )
    assert user["command"] == "train k=12 lam=0.5"  # the config's command, as the sweep renders it


def test_a_retried_trial_skips_the_segments_it_finished(tmp_path: Path) -> None:
    log: list[tuple[str, int]] = []
    setup = TrialSetup(store=str(tmp_path), study="seg", space=SPACE, segments=(4, 8, 12))
    objective = make_objective(
        setup, train=fake_train(tmp_path, log), probe=probe_summary, command=command, **QUIET
    )
    trial = optuna.trial.FixedTrial({"k": 12, "lam": 0.5}, number=7)
    # inherited from the interrupted attempt (tuning.loop copies user attrs): run name, segment 4
    trial.set_user_attr("run", "seg-t3")
    trial.set_user_attr("segments", {"4": {"step": 4, "domain_means": {"all": 0.5}}})
    trial.set_user_attr("cost", {"train_s": 100.0, "probe_s": 10.0})
    assert objective(trial) == pytest.approx(0.132)
    assert log == [("seg-t3", 8), ("seg-t3", 12)]
    assert trial.user_attrs["wall_s"] >= 110.0  # the earlier attempt's cost is kept


def test_multi_objective_trials_return_one_value_per_domain(tmp_path: Path) -> None:
    log: list[tuple[str, int]] = []
    setup = TrialSetup(store=str(tmp_path), study="mo", space=SPACE, segments=(12,), metric=("environment",))  # fmt: skip
    objective = make_objective(
        setup, train=fake_train(tmp_path, log), probe=probe_summary, command=command, **QUIET
    )
    assert objective(optuna.trial.FixedTrial({"k": 6, "lam": 1.0})) == [pytest.approx(0.072)]
    setup_bad = TrialSetup(store=str(tmp_path), study="mo2", space=SPACE, segments=(12,), metric=("speech",))  # fmt: skip
    bad = make_objective(
        setup_bad, train=fake_train(tmp_path, log), probe=probe_summary, command=command, **QUIET
    )
    with pytest.raises(RuntimeError, match="no score for \\['speech'\\]"):
        bad(optuna.trial.FixedTrial({"k": 6, "lam": 1.0}))


def fake_pretrain_run(store: Path, log: list[tuple[str, int]]) -> Any:
    """stages.pretrain.run as a trial calls it: trains (fakes) run spec.name to spec.max_steps."""
    from stages.pretrain import PretrainResult, PretrainSpec

    train = fake_train(store, log)

    def run(spec: PretrainSpec, _: Store) -> PretrainResult:
        assert spec.name is not None and spec.max_steps is not None and spec.k is not None
        train(spec.name, {"k": spec.k}, spec.max_steps)
        return PretrainResult(run=spec.name, checkpoint=None, summary=f"trained {spec.name}")

    return run


def test_the_job_end_to_end_with_fake_training(
    sweep_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """jobs/sweep.py's main with training and probing faked (no Ray): summary, report, rerun."""
    import cluster.runtime
    import stages.evaluate
    import stages.pretrain
    from jobs import sweep

    log: list[tuple[str, int]] = []
    monkeypatch.setattr(cluster.runtime, "ensure_ray", lambda *a, **k: None)
    monkeypatch.setattr(stages.pretrain, "run", fake_pretrain_run(sweep_store, log))
    monkeypatch.setattr(stages.evaluate, "probe_checkpoint", lambda _, uri, **k: probe_summary(uri))
    argv = ["--store", str(sweep_store), "--study", "fake", "--corpus", "c", "--vocab", "v",
            "--objective", "mtc", "--k", "6,12", "--preset", "smoke", "--segments", "2"]  # fmt: skip
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert log == [("fake-t0", 6), ("fake-t0", 12), ("fake-t1", 6), ("fake-t1", 12)]
    assert out.count("trained fake-t") == 4  # every segment's training summary is printed
    assert re.search(r"best trial: #\d \{'k': 12\}", out)
    best = (f"python jobs/pretrain.py --store {sweep_store} --preset smoke --corpus c --vocab v --k 12 "
            "--objective mtc --max-steps 12 --name fake-best")  # fmt: skip
    assert f"best config, ready to run:\n  {best}\n" in out
    report = sweep_store / "sweeps" / "fake" / "report"
    assert f"```sh\n{best}\n```" in (report / "report.md").read_text()
    assert (report / "_SUCCESS").exists() and (report / "value_per_k.png").exists()
    assert sweep.main(argv) == 0  # done: the rerun trains nothing
    assert len(log) == 4
    assert sweep.main([*argv, "--k", "6"]) == 2  # other settings: refused
    assert "exists with other settings" in capsys.readouterr().err
