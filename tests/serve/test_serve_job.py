"""jobs/serve.py and serve.options without Ray: bad inputs exit 2 with a message naming the problem
before Ray starts, a run resolves to its checkpoint with the most steps, and the flags reach the
deployment's options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobs import serve as job
from serve import launch
from serve.options import DeploymentOptions, OptionsError, options_from_args, parse_autoscale
from tests.serve.conftest import save_checkpoint
from uts.store import Store
from uts.train.config import preset


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting Ray fails the test: bad inputs must be refused before."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr("cluster.runtime.ensure_ray", refuse)


@pytest.fixture(scope="module")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store with run `r` holding two checkpoints (steps 5 and 9, the older folder name last)."""
    store = Store(str(tmp_path_factory.mktemp("runs") / "store"))
    config = preset("smoke", seed=1)
    later = save_checkpoint(store, "r", config, "v", "fp", step=5)  # checkpoint_2026-01-01_...
    later.rename(later.with_name("checkpoint_2026-02-01_00-00-00.000000"))
    save_checkpoint(store, "r", config, "v", "fp", step=9)
    return store


def test_bad_inputs_exit_2_before_ray_starts(
    no_ray: None, run_store: Store, mtc_checkpoint: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    store = ["--store", run_store.root_uri]
    empty = tmp_path / "empty-token"
    empty.write_text("  \n")
    cases = [
        ([*store, "--run", "missing"], ("no checkpoint", "missing", "jobs/pretrain.py")),
        ([*store, "--checkpoint", str(tmp_path / "nothing")], ("not a pretraining checkpoint",)),
        ([*store, "--run", "r", "--autoscale", "4,1"], ("autoscale", "MIN <= MAX")),
        ([*store, "--run", "r", "--autoscale", "two"], ("autoscale", "MIN,MAX")),
        ([*store, "--run", "r", "--token-file", str(tmp_path / "none")], ("token file", "none")),
        ([*store, "--run", "r", "--token-file", str(empty)], ("token file", "empty")),
        ([*store, "--run", "r", "--replicas", "0"], ("replicas",)),
        ([*store, "--run", "r", "--max-batch", "0"], ("max_batch",)),
        ([*store, "--run", "r", "--batch-wait-ms", "-1"], ("batch wait",)),
        ([*store, "--run", "r", "--max-items", "0"], ("max_items",)),
        ([*store, "--run", "r", "--min-seconds", "5", "--max-seconds", "1"], ("min_seconds",)),
    ]
    for argv, words in cases:
        assert job.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: "), err
        for word in words:
            assert word in err, (argv, err)
    for argv, words in [
        ([*store, "--run", "r", "--port", "http"], ("--port", "integer")),
        ([*store, "--run", "r", "--port", "70000"], ("--port", "65535")),
        ([*store, "--run", "r", "--num-gpus", "2"], ("--num-gpus",)),
        ([*store, "--run", "r", "--checkpoint", mtc_checkpoint], ("not allowed with",)),
        ([*store, "--run", "r", "--replicas", "2", "--autoscale", "1,2"], ("not allowed with",)),
        (store, ("--run", "--checkpoint")),
    ]:
        with pytest.raises(SystemExit) as exited:
            job.main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        for word in words:
            assert word in err, (argv, err)


def test_a_run_resolves_to_its_latest_checkpoint_and_flags_reach_the_options(
    run_store: Store, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    args = vars(launch.parse_args(["--store", run_store.root_uri, "--run", "r", "--autoscale", "1,3",
                                "--token-file", str(token), "--max-batch", "8", "--batch-wait-ms", "25",
                                "--max-items", "4", "--max-seconds", "3", "--num-cpus", "2"]))  # fmt: skip
    args.pop("host"), args.pop("port")
    options = options_from_args(args)
    assert Path(options.checkpoint).name == "checkpoint_2026-01-01_00-00-00.000000"  # step 9
    assert options.autoscale == (1, 3) and options.replicas == 1
    assert options.max_batch == 8 and options.batch_wait_s == pytest.approx(0.025)
    assert options.max_ongoing_requests == 16 and options.num_cpus == 2.0
    settings = options.settings
    assert settings.token == "s3cret" and settings.store == run_store.root_uri
    assert settings.max_items == 4 and settings.max_seconds == 3.0
    assert settings.min_rate == 8000  # untouched limits keep their defaults


def test_options_from_plain_arguments(mtc_checkpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(mtc_checkpoint).parent)
    relative = options_from_args({"checkpoint": Path(mtc_checkpoint).name, "store": "../.."})
    assert relative.checkpoint == mtc_checkpoint  # made absolute for the replicas
    assert relative.settings.store == str(Path(mtc_checkpoint).parents[2])
    assert (
        relative.max_batch == 32 and relative.batch_wait_s == 0.025 and relative.autoscale is None
    )
    with pytest.raises(OptionsError, match="unknown argument"):
        options_from_args({"checkpoint": mtc_checkpoint, "max_batchsize": 3})
    with pytest.raises(OptionsError, match="exactly one of run"):
        options_from_args({"checkpoint": mtc_checkpoint, "run": "r"})
    with pytest.raises(OptionsError, match="max_items must be an integer"):
        options_from_args({"checkpoint": mtc_checkpoint, "max_items": "many"})
    with pytest.raises(OptionsError, match="replicas or autoscale"):
        options_from_args({"checkpoint": mtc_checkpoint, "replicas": 2, "autoscale": "1,2"})
    assert parse_autoscale([0, 2]) == (0, 2) and parse_autoscale(" 1, 4") == (1, 4)
    with pytest.raises(OptionsError):
        DeploymentOptions(checkpoint="x", num_gpus=2)
