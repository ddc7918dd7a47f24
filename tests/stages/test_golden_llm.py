"""Caption and tag folders keep their names: the specs' fingerprints equal the golden values the
jobs computed before issue 20's move, whether a spec comes from the job's flags or is built in code
(as the study builds it), and a spec's own command line rebuilds it."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stages import caption, tag
from stages.base import content_address, spec_argv
from stages.caption import CaptionSpec
from stages.cli import parser_for
from stages.tag import TagSpec
from uts.llm.stage import fingerprint as llm_fingerprint

GOLDEN = json.loads((Path(__file__).parent / "golden_fingerprints.json").read_text())
# The upstream fingerprints the golden values were recorded with (/tmp/golden/record.py).
CORPUS_FP = "0123456789abcdef"
CAPTIONS_FP = "fedcba9876543210"
STAGES = {"caption": (caption, CORPUS_FP), "tag": (tag, CAPTIONS_FP)}
CASES = [(name, case) for name in STAGES for case in GOLDEN[name]]


def from_flags(stage: ModuleType, argv: list[str]) -> Any:
    parser = parser_for(stage, f"{stage.__name__.rsplit('.', 1)[-1]}.py")
    return stage.spec_from_args(parser.parse_args(["--corpus", "c", *argv]), parser)


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}:{' '.join(c['argv']) or '-'}" for n, c in CASES])  # fmt: skip
def test_flags_give_the_golden_fingerprint(name: str, case: dict[str, Any]) -> None:
    stage, upstream = STAGES[name]
    spec = from_flags(stage, case["argv"])
    assert spec.fingerprint(upstream) == case["fingerprint"]
    assert content_address(spec.inputs(upstream)) == llm_fingerprint(spec.inputs(upstream))


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}:{' '.join(c['argv']) or '-'}" for n, c in CASES])  # fmt: skip
def test_a_specs_command_line_rebuilds_it(name: str, case: dict[str, Any]) -> None:
    stage, _ = STAGES[name]
    spec = from_flags(stage, case["argv"])
    argv = spec_argv(spec)
    assert argv[:2] == ["--corpus", "c"]
    assert from_flags(stage, argv[2:]) == spec


def golden(name: str, argv: list[str]) -> str:
    (found,) = [c["fingerprint"] for c in GOLDEN[name] if c["argv"] == argv]
    return str(found)


def test_specs_built_in_code_give_the_golden_fingerprints() -> None:
    openai = CaptionSpec(corpus="c", backend="openai", model="m1", temperature=0.7, max_tokens=333, seed=3)  # fmt: skip
    assert openai.fingerprint(CORPUS_FP) == golden(
        "caption",
        ["--backend", "openai", "--model", "m1", "--temperature", "0.7", "--max-tokens", "333", "--seed", "3"],
    )  # fmt: skip
    assert CaptionSpec(corpus="c", workers=0).fingerprint(CORPUS_FP) == golden("caption", [])
    tagger = TagSpec(corpus="c", backend="openai", model="m2", structured=False, language="any")
    assert tagger.fingerprint(CAPTIONS_FP) == golden(
        "tag", ["--backend", "openai", "--model", "m2", "--no-structured-output", "--language", "any"]
    )  # fmt: skip
    vllm = TagSpec(corpus="c", backend="vllm", prompt_version=1, limit=7, temperature=0.2, revision="r")  # fmt: skip
    assert vllm.fingerprint(CAPTIONS_FP) == golden(
        "tag",
        ["--backend", "vllm", "--prompt-version", "1", "--limit", "7", "--temperature", "0.2", "--revision", "r"],
    )  # fmt: skip


def test_the_endpoint_default_is_read_when_the_spec_is_made(monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-host:9000/v1")
    assert TagSpec(corpus="c").endpoint == "http://gpu-host:9000/v1"
    assert from_flags(tag, []).endpoint == "http://gpu-host:9000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert CaptionSpec(corpus="c").endpoint == "http://127.0.0.1:8000/v1"
