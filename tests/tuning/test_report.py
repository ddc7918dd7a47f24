"""The sweep report from synthetic studies: the best command, the plots, the cost table."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from tuning.report import lam_slicer, write_report

DISTS = {
    "k": CategoricalDistribution([800, 1500, 3000]),
    "lam": FloatDistribution(0.1, 10.0, log=True),
}


def attrs(number: int, k: int, lam: float) -> dict[str, object]:
    return {"run": f"abl-t{number}", "command": f"python jobs/pretrain.py --k {k} --lam {lam} --name abl-best",
            "checkpoint": f"/store/runs/abl-t{number}/checkpoint_000300", "wall_s": 100.0 + number,
            "cost": {"train_s": 80.0, "probe_s": 20.0 + number}, "audio_hours": 0.5,
            "segments": {"100": {}, "200": {}, "300": {}}}  # fmt: skip


def add(study: optuna.Study, number: int, k: int, lam: float, values: list[float] | None,
        state: TrialState = TrialState.COMPLETE, **extra: object) -> None:  # fmt: skip
    intermediate = (
        {100: values[0] - 0.02, 200: values[0] - 0.01} if values and len(values) == 1 else None
    )
    study.add_trial(create_trial(state=state, params={"k": k, "lam": lam}, distributions=DISTS,
                                 values=values, user_attrs={**attrs(number, k, lam), **extra},
                                 intermediate_values=intermediate))  # fmt: skip


def test_single_objective_report(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="abl", direction="maximize")
    grid = [(800, 0.1, 0.40), (800, 1.0, 0.42), (1500, 0.1, 0.47), (1500, 1.0, 0.51),
            (3000, 0.1, 0.44), (3000, 1.0, 0.45)]  # fmt: skip
    for i, (k, lam, value) in enumerate(grid):
        add(study, i, k, lam, [value])
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"k": 800, "lam": 10.0}, distributions=DISTS,
                                 intermediate_values={100: 0.2}, user_attrs=attrs(6, 800, 10.0)))  # fmt: skip
    failed = {"state": TrialState.FAIL, "fail_reason": "jobs/pretrain.py exited with 1"}
    add(study, 7, 3000, 10.0, None, **failed)
    # a trial whose driver was killed (#8), and its retry (#9) carrying its cost
    study.add_trial(create_trial(state=TrialState.FAIL, params={"k": 1500, "lam": 10.0}, distributions=DISTS,
                                 user_attrs=attrs(8, 1500, 10.0), system_attrs={"uts:interrupted": 1.0}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.COMPLETE, params={"k": 1500, "lam": 10.0}, distributions=DISTS,
                                 values=[0.49], user_attrs=attrs(8, 1500, 10.0),
                                 system_attrs={"uts:interrupted": 1.0, "retry_history": [8]}))  # fmt: skip
    path = write_report(study, tmp_path / "report", metric=["mean_probe"], total=9,
                        settings={"objective": "multitask", "k": [800, 1500, 3000]},
                        dashboard="optuna-dashboard /store/sweeps/abl/journal.log")  # fmt: skip
    text = path.read_text()
    assert "Trial #3 (best): K = 1500, λ = 1: mean_probe 0.5100" in text
    assert "```sh\npython jobs/pretrain.py --k 1500 --lam 1.0 --name abl-best\n```" in text
    assert "9 finished trial(s) of 9 (complete 7, pruned 1, failed 2, running 0)" in text
    for png in ("value_per_k.png", "importances.png", "curves.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000 and f"]({png})" in text
    assert not (tmp_path / "report" / "pareto.png").exists()
    # the K x lambda table: the mean of the complete trials per cell
    assert re.search(r"\| 1500 \| 0\.4700 \(n=1\) \| 0\.5100 \(n=1\) \| 0\.4900 \(n=1\) \|\n", text)
    pruned_cell = r"\| 800 \| 0\.4000 \(n=1\) \| 0\.4200 \(n=1\) \| - \|\n"
    assert re.search(pruned_cell, text)  # a pruned trial has no value: no mean
    assert "| 6 | abl-t6 | 800 | 10 | pruned | (0.2000 at step 100) |" in text
    assert "jobs/pretrain.py exited with 1" in text
    assert (
        "| 8 | abl-t8 | 1500 | 10 | fail | - | 300 | 108 | 80 | 28 | 0.500 | interrupted (its driver stopped) |"
        in text
    )
    assert (
        "| 9 | abl-t8 | 1500 | 10 | complete | 0.4900 | 300 | 108 | 80 | 28 | 0.500 | retry of #8 |"
        in text
    )
    # counted once: the interrupted attempt's cost is in its retry's
    assert "Total: 936 s of trial wall time, 4.500 audio-hours trained" in text
    assert "optuna-dashboard /store/sweeps/abl/journal.log" in text
    importances = text.split("## Parameter importances")[1]
    assert "- mean_probe: k " in importances  # K matters most here (fANOVA)


def test_multi_objective_report_has_the_pareto_front(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="mo", directions=["maximize", "maximize"])
    points = [(800, 0.1, [0.5, 0.3]), (1500, 1.0, [0.45, 0.45]), (3000, 0.1, [0.3, 0.5]),
              (3000, 1.0, [0.2, 0.2])]  # fmt: skip
    for i, (k, lam, values) in enumerate(points):
        add(study, i, k, lam, values)
    text = write_report(
        study, tmp_path, metric=["speech", "music"], settings={}, total=4
    ).read_text()
    assert "## Pareto front" in text and (tmp_path / "pareto.png").stat().st_size > 1000
    front = text.split("## Pareto front")[1].split("## Value per K")[0]
    assert front.index("Trial #1 (best)") < front.index("Trial #0 (also Pareto-optimal)")
    assert "Trial #3" not in front  # dominated
    assert "python jobs/pretrain.py --k 1500 --lam 1.0" in front
    assert (tmp_path / "value_per_k.png").exists()


def test_an_empty_study_still_reports(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="empty", direction="maximize")
    text = write_report(study, tmp_path, metric=["mean_probe"], settings={}, total=4).read_text()
    assert "No trial has completed yet." in text and "needs at least 2 complete trials" in text


def test_lambda_slices() -> None:
    assert lam_slicer([0.5, 2.0, 0.5])(2.0) == "λ = 2"
    label = lam_slicer([0.1 * i for i in range(1, 21)])
    assert label(0.1) == "λ in [0.1, 0.575]" and label(2.0) == "λ in [1.52, 2]"
    assert len({label(0.1 * i) for i in range(1, 21)}) == 4


@pytest.mark.parametrize("n", [1, 2])
def test_importances_need_two_complete_trials(tmp_path: Path, n: int) -> None:
    study = optuna.create_study(direction="maximize")
    for i in range(n):
        add(study, i, 800 if i == 0 else 1500, 1.0, [0.4 + i / 10])
    text = write_report(study, tmp_path, metric=["mean_probe"], settings={}).read_text()
    assert ("needs at least 2 complete trials" in text) == (n == 1)
