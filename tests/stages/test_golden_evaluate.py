"""The evaluation stage after issue 20's move: its results folders equal the golden names recorded
with the old jobs/evaluate.py (so stored evaluations are still found), its spec rebuilds the flags
it was parsed from, and a spec built in code is checked as the parser checks flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages import evaluate
from stages.base import spec_argv
from stages.cli import parser_for

GOLDEN = json.loads((Path(__file__).with_name("golden_fingerprints.json")).read_text())


@pytest.mark.parametrize("case", sorted(GOLDEN["evaluate_folders"]))
def test_results_folder_is_golden(case: str) -> None:
    protocol, layers = case.split("/")
    assert evaluate.results_folder(protocol, layers) == GOLDEN["evaluate_folders"][case]


def test_results_folder_defaults_to_the_output() -> None:
    assert evaluate.results_folder("knn") == evaluate.results_folder("knn", "final") == "knn"


def parsed(argv: list[str]) -> evaluate.EvaluateSpec:
    parser = parser_for(evaluate, "evaluate.py")
    return evaluate.spec_from_args(parser.parse_args(argv), parser)


@pytest.mark.parametrize(
    "argv",
    [
        ["--run", "demo-mtc-k300"],
        ["--checkpoint", "/s/runs/r/ck", "--protocol", "knn", "--name", "fake", "--seeds", "1"],
        ["--baseline", "random-init", "--preset", "smoke", "--layers", "all", "--no-cache"],
        ["--run", "r", "--tasks", "a,b", "--engine", "ray", "--no-baselines", "--heldout", "0"],
        ["--compare", "demo-mtc-k300", "logmel", "--layers", "stack3"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_spec_renders_the_flags_it_was_parsed_from(argv: list[str]) -> None:
    spec = parsed(argv)
    assert parsed(spec_argv(spec)) == spec
    if spec.compare is None:  # the same flags (compare's names render one flag each, below)
        assert sorted(spec_argv(spec)) == sorted(argv)


def test_compare_names_are_a_tuple_and_render_back() -> None:
    spec = parsed(["--compare", "a", "b"])
    assert spec.compare == ("a", "b")
    assert spec_argv(spec) == ["--compare", "a", "--compare", "b"]
    assert parsed(spec_argv(spec)).compare == ("a", "b")


def test_fields_are_the_job_flags_with_their_defaults() -> None:
    """Every flag of the job is a field named by its dest, with the parser's default."""
    parser = parser_for(evaluate, "evaluate.py")
    dests = {a.dest: a.default for a in parser._actions if a.dest not in ("help", "store")}
    fields = {f.name: f.default for f in evaluate.EvaluateSpec.__dataclass_fields__.values()}
    assert dests == fields


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"run": "r", "baseline": "logmel"}, "exactly one of"),
        ({"compare": ()}, "at least one"),
        ({"run": "r", "protocol": "svm"}, "protocol 'svm'"),
        ({"run": "r", "layers": "stack9"}, "layers 'stack9'"),
        ({"baseline": "mfcc"}, "baseline 'mfcc'"),
        ({"run": "r", "engine": "spark"}, "engine 'spark'"),
    ],
)
def test_a_spec_built_in_code_is_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate.EvaluateSpec(**kwargs)  # type: ignore[arg-type]
