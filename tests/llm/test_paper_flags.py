"""Issue 22's model flags: sampling (top-p, top-k, repetition penalty, --sampling paper), the
tagging prompt from a file, raw completions without the chat template, and an endpoint that
refuses requests mid-run (one clear line, finished parts kept, a rerun resumes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.llm import openai_body, vllm_sampling_params
from jobs import caption, tag
from stages import caption as caption_stage
from stages import tag as tag_stage
from stages.cli import parser_for
from tests.llm.test_model_stages import read_stage, tag_args, write_captions
from uts.llm.chat import Sampling, tagging_messages
from uts.llm.prompts import prompt_from_file
from uts.testing.llm_server import Canned, ScriptedServer, default_script

# Auden examples/uts: vllm_qwen/batch_inference_vllm.py (captions), extract_tags.py (tags).
PAPER = {"caption": (0.8, 0.9, 20, 8192), "tag": (0.3, 0.9, None, 512)}


def spec(stage: Any, *argv: str) -> Any:
    parser = parser_for(stage, "x.py")
    return stage.spec_from_args(parser.parse_args(["--corpus", "c", *argv]), parser)


@pytest.mark.parametrize(("name", "stage"), [("caption", caption_stage), ("tag", tag_stage)])
def test_sampling_paper_gives_the_papers_values_and_explicit_flags_win(name: str, stage: Any) -> None:  # fmt: skip
    paper = spec(stage, "--backend", "vllm", "--sampling", "paper")
    assert (paper.temperature, paper.top_p, paper.top_k, paper.max_tokens) == PAPER[name]
    mixed = spec(
        stage, "--backend", "vllm", "--sampling", "paper", "--temperature", "0", "--top-k", "5"
    )
    assert (mixed.temperature, mixed.top_k, mixed.top_p) == (0.0, 5, 0.9)
    plain = spec(stage, "--backend", "vllm")
    assert (plain.temperature, plain.top_p, plain.top_k, plain.repetition_penalty) == (
        0.0,
        1.0,
        None,
        1.0,
    )
    # the paper's sampling is its own folder; a spec's command line rebuilds it
    assert paper.fingerprint("f" * 16) != plain.fingerprint("f" * 16)
    from stages.base import spec_argv

    assert spec(stage, *spec_argv(paper)[2:]) == paper


def test_sampling_reaches_both_backends() -> None:
    chosen = Sampling(max_tokens=9, temperature=0.3, top_p=0.9, top_k=20, repetition_penalty=1.1)
    body = openai_body("m", [{"role": "user", "content": "x"}], chosen)
    assert (body["top_p"], body["top_k"], body["repetition_penalty"]) == (0.9, 20, 1.1)
    assert "top_k" not in openai_body("m", "x", Sampling(max_tokens=9))  # off: not sent
    assert openai_body("m", "raw text", chosen)["prompt"] == "raw text"
    params = vllm_sampling_params(chosen)
    assert (params["top_p"], params["top_k"], params["repetition_penalty"]) == (0.9, 20, 1.1)
    assert vllm_sampling_params(Sampling(max_tokens=9))["top_k"] == -1  # vLLM's "off"


def test_bad_sampling_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--store", str(tmp_path), "--corpus", "c", "--backend", "vllm"]
    for flags, message in ((["--top-p", "0"], "--top-p must be in (0, 1]"),
                           (["--top-k", "0"], "--top-k must be >= 1"),
                           (["--repetition-penalty", "0"], "--repetition-penalty > 0")):  # fmt: skip
        assert caption.main([*base, *flags]) == 2
        assert message in capsys.readouterr().err


def test_a_prompt_file_as_written_by_hand_or_copied_from_python(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text('Labels as JSON like {"labels": ["x"]} for:\n{description}\n')
    rendered = tagging_messages("A dog barks.", prompt_from_file(str(mine)))
    assert rendered == [{"role": "user", "content": 'Labels as JSON like {"labels": ["x"]} for:\nA dog barks.\n'}]  # fmt: skip
    # a TEMPLATE copied from Python source: doubled braces, {caption}; sent raw without the template
    copied = tmp_path / "paper.txt"
    copied.write_text('Expected JSON:\n{{"labels": ["xxx"]}}\nCAPTION:\n{caption}\n')
    raw = tagging_messages("Rain falls.", prompt_from_file(str(copied)), chat_template=False)
    assert raw == 'Expected JSON:\n{"labels": ["xxx"]}\nCAPTION:\nRain falls.\n'
    for text, message in (("no placeholder", "it names none"), ("{description} {speaker}", "{speaker}"),
                          ("{{x}} {caption} {who}", "{who}")):  # fmt: skip
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=r"needs \{description\} or \{caption\}") as error:
            prompt_from_file(str(bad))
        assert message in str(error.value)
    with pytest.raises(FileNotFoundError, match="no prompt file"):
        prompt_from_file(str(tmp_path / "missing.txt"))


def test_prompt_file_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_captions(tmp_path, ["A dog barks."])
    base = ["--store", str(tmp_path), "--corpus", "c", "--captions", "fp0"]
    prompt = tmp_path / "p.txt"
    prompt.write_text("{description}")
    assert tag.main([*base, "--prompt-file", str(prompt)]) == 2  # rules backend
    assert "for the vllm and openai backends" in capsys.readouterr().err
    argv = [*base, "--backend", "vllm", "--prompt-file", str(prompt), "--prompt-version", "2"]
    assert tag.main(argv) == 2
    assert "two prompts" in capsys.readouterr().err
    prompt.write_text("no placeholder here")
    assert tag.main([*base, "--backend", "vllm", "--prompt-file", str(prompt)]) == 2
    assert "needs {description} or {caption}" in capsys.readouterr().err


@pytest.mark.ray
def test_tagging_without_the_chat_template_sends_raw_completions(
    ray_session: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    write_captions(store, ["A dog barks at the gate.", "Rain on a tin roof."])
    prompt = tmp_path / "paper.txt"
    prompt.write_text('Return {{"labels": [...]}} only.\nDescription: {caption}\n')
    with ScriptedServer() as server:
        argv = tag_args(store, server, "--prompt-file", str(prompt), "--no-chat-template",
                        "--sampling", "paper", "--no-structured-output")  # fmt: skip
        assert tag.main(argv) == 0
        assert server.paths == {"/v1/completions": 2}
    (folder,) = (store / "tags" / "c").iterdir()
    rows = {r["clip_id"]: r for r in read_stage(folder)}
    assert rows["k00"]["status"] == "ok" and "dog" in rows["k00"]["tags"]
    stage = json.loads((folder / "stage.json").read_text())
    inputs = stage["fingerprint_inputs"]
    assert inputs["chat_template"] is False and inputs["sampling"]["temperature"] == 0.3
    assert "file:paper.txt_v0" in inputs["prompt"]


@pytest.mark.ray
def test_a_key_revoked_mid_run_stops_with_one_line_and_resumes(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first part's requests are answered, then the server refuses (401): the job exits 1
    naming the endpoint and status, no traceback; the finished part stays; a rerun once the
    server accepts again asks only for the rest."""
    store = tmp_path / "store"
    write_captions(store, [f"Rain number {i} falls on a roof." for i in range(6)], per_part=2)
    refuse = {"on": False}

    def script(request: dict[str, Any], attempt: int) -> Canned:
        if refuse["on"]:
            return Canned(status=401, body='{"error": "invalid api key"}')
        return default_script(request, attempt)

    with ScriptedServer(script) as server:
        argv = tag_args(store, server, "--batch-size", "2", "--concurrency", "1")
        # part 0 first (alone), then the key is revoked
        assert tag.main([*argv, "--limit", "2"]) == 0
        refuse["on"] = True
        capsys.readouterr()
        assert tag.main(argv) == 1
        last = capsys.readouterr().err.strip().splitlines()[-1]  # (Ray logs its own lines above)
        assert last.startswith("error: the endpoint stopped accepting requests mid-run: "
                               f"{server.endpoint}/chat/completions answered HTTP 401")  # fmt: skip
        assert "rerun the same command to resume" in last
        refuse["on"] = False
        before = server.requests
        assert tag.main(argv) == 0
        assert server.requests - before == 6  # nothing was lost: every clip tagged exactly once
    folders = [f for f in (store / "tags" / "c").iterdir() if (f / "_SUCCESS").exists()]
    full = [f for f in folders if len(read_stage(f)) == 6]
    assert len(full) == 1
    assert sorted(r["clip_id"] for r in read_stage(full[0])) == [f"k{i:02d}" for i in range(6)]


def test_a_model_that_cannot_fit_the_gpus_asked_for_is_refused_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--store",
        str(tmp_path),
        "--corpus",
        "c",
        "--backend",
        "vllm",
        "--accelerator-type",
        "L4",
    ]
    assert caption.main(argv) == 2  # the 30B captioner's weights alone exceed one 24 GB L4
    err = capsys.readouterr().err
    assert "does not fit on 1 x L4" in err and "tensor parallel sizes that fit" in err
