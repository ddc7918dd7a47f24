"""The pretrain stage's spec and checks, and the embedded default's plan, without Ray: flags and
spec agree, bad input is refused with the job's messages before anything starts, the plan runs
its steps in order and rebuilds the vocabulary only when it was counted from other tags."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stages import plan, pretrain
from stages.base import StageError, spec_argv
from stages.cli import parser_for
from stages.fixtures import make_tagged_store
from stages.ingest import IngestSpec
from stages.pretrain import PretrainSpec
from stages.vocab import VocabSpec
from uts.store import Store

# The flags of jobs/pretrain.py before the stage existed (argparse dests, --store aside).
JOB_FLAGS = ["preset", "corpus", "tags", "vocab", "k", "objective", "lam", "num_workers", "use_gpu",
             "accelerator_type", "precision", "max_steps", "lr", "seed", "reproducible", "batch_seconds", "tokenizer", "text_model", "name",
             "init_from", "cache", "probe"]  # fmt: skip


def parse(argv: list[str]) -> PretrainSpec:
    parser = parser_for(pretrain, "pretrain.py")
    spec: PretrainSpec = pretrain.spec_from_args(parser.parse_args(argv), parser)
    return spec


def test_spec_fields_are_the_job_flags_and_round_trip() -> None:
    assert [f.name for f in fields(PretrainSpec)] == JOB_FLAGS
    parser = parser_for(pretrain, "pretrain.py")
    dests = [a.dest for a in parser._actions if a.dest not in ("help", "store")]
    assert dests == JOB_FLAGS
    assert parse([]) == PretrainSpec()  # every default None-means-preset stays None
    argv = ["--preset", "smoke", "--corpus", "c", "--vocab", "v", "--k", "6", "--objective", "multitask",
            "--lam", "0.5", "--use-gpu", "--max-steps", "18", "--name", "r1", "--no-probe", "--no-reproducible", "--seed", "2"]  # fmt: skip
    spec = parse(argv)
    assert spec.k == 6 and spec.lam == 0.5 and spec.use_gpu is True and spec.probe is False
    assert spec.reproducible is False and PretrainSpec().config().reproducible  # demo preset: on
    assert parse(spec_argv(spec)) == spec
    config = spec.config()
    assert (config.k, config.max_steps, config.objective, config.lam) == (6, 18, "multitask", 0.5)
    assert config.seed == 2 and PretrainSpec().config().seed == 0
    assert PretrainSpec(corpus="c").run_name(PretrainSpec(corpus="c").config()) == "c-mtc-k300"
    seeded = PretrainSpec(corpus="c", seed=2)  # another seed never resumes seed 0's run
    assert seeded.run_name(seeded.config()) == "c-mtc-k300-seed2"


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(str(make_tagged_store(tmp_path_factory.mktemp("tagged"))))


def smoke(**overrides: Any) -> PretrainSpec:
    return PretrainSpec(**{"preset": "smoke", "corpus": "c", "vocab": "v", "k": 6, **overrides})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (smoke(vocab="nope", k=None), "run jobs/build_vocab.py"),
        (smoke(k=5000), "--k 5000 is larger than vocabulary 'v'"),
        (smoke(objective="ar", tokenizer="/no/such/tokenizer"), "needs the tokenizer"),
        (smoke(corpus="zzz", k=None), "run jobs/ingest.py --corpus zzz first"),
        (smoke(tags="0123456789abcdef"), "no complete tags '0123456789abcdef' for corpus c"),
        (smoke(max_steps=0), "--max-steps must be >= 1, got 0"),
        (smoke(batch_seconds=-1.0), "--batch-seconds must be positive, got -1.0"),
    ],
)
def test_bad_input_is_refused_with_the_jobs_messages(
    tagged: Store, spec: PretrainSpec, message: str
) -> None:
    with pytest.raises(StageError) as raised:
        pretrain.prepare(spec, tagged, spec.config())
    assert raised.value.code == 2 and message in str(raised.value)


def test_prepare_loads_the_vocabulary_once_at_k(tagged: Store) -> None:
    spec = smoke(name="r1")
    prepared = pretrain.prepare(spec, tagged, spec.config())
    vocab_meta = tagged.read_json("vocab", "v", "vocab.json")
    assert len(prepared.vocab) == 6 and prepared.vocab.prior().shape == (6,)
    assert prepared.lineage["vocab"] == {
        "name": "v",
        "fingerprint": vocab_meta["vocab_fingerprint"],
        "k": 6,
    }
    assert (
        prepared.lineage["tags"]["clips_with_tags_at_k"]
        <= prepared.lineage["tags"]["clips_with_tags"]
    )
    assert prepared.lineage["command"] == (
        f"python jobs/pretrain.py --store {tagged.root_uri} --preset smoke --corpus c --vocab v --k 6 --name r1"
    )
    assert len(prepared.shards) >= 1 and all(prepared.tags.values())
    assert pretrain.changed_inputs(tagged, "r1", prepared.lineage) is None  # no such run yet


# -- the embedded default's plan ----------------------------------------------------------------


def demo_store(root: Path, *, tags_fp: str, vocab_from: str | None) -> Store:
    """A store holding complete demo tags `tags_fp` and, when `vocab_from` is given, a complete
    vocabulary demo-uts counted from the tags folder of that fingerprint; and a complete
    demo-audioset of 40 labels counted from the labels folder `llll`."""
    for fp in (tags_fp, "llll"):
        tags = root / "tags" / "demo" / fp
        tags.mkdir(parents=True, exist_ok=True)
        (tags / "stage.json").write_text("{}")
        (tags / "_SUCCESS").write_text("")
    for name, source_fp in (("demo-uts", vocab_from), ("demo-audioset", "llll")):
        if source_fp is None:
            continue
        vocab = root / "vocab" / name
        vocab.mkdir(parents=True)
        source = {"uri": str(root / "tags" / "demo" / source_fp / "part-00000.parquet")}
        (vocab / "vocab.json").write_text(json.dumps({"sources": [source], "size": 40}))
        (vocab / "_SUCCESS").write_text("")
    return Store(str(root))


# What the fake stages' results carry: the folder fingerprints the next step names.
FOLDERS = {("caption", "acoustic"): "cccc", ("tag", "rules"): "aaaa", ("tag", "labels"): "llll"}


def result_for(spec: Any, summary: str) -> Any:
    if isinstance(spec, PretrainSpec):
        name = spec.name or "demo-mtc-k300"
        return pretrain.PretrainResult(run=name, checkpoint=None, summary=f"{summary} {name}")
    key = (getattr(spec, "stage", ""), getattr(spec, "backend", ""))
    return SimpleNamespace(
        summary=summary, exit_code=0, spec=spec, fingerprint=FOLDERS.get(key, "")
    )


def drive(store: Store, **kwargs: Any) -> list[Any]:
    """The demo plan's specs, each step answered as a run would (result_for)."""
    steps = plan.demo_plan(store, cache="C", vocab_name="demo-uts", **kwargs)
    specs, sent = [], None
    while True:
        try:
            spec = steps.send(sent)
        except StopIteration:
            return specs
        specs.append(spec)
        sent = result_for(spec, "done")


@pytest.mark.parametrize(
    ("vocab_from", "overwrite", "skipped"),
    [(None, False, False), ("aaaa", False, True), ("bbbb", True, False)],
    ids=["missing", "same-tags", "other-tags"],
)
def test_every_step_names_the_folder_the_step_before_left(
    tmp_path: Path, vocab_from: str | None, overwrite: bool, skipped: bool
) -> None:
    store = demo_store(tmp_path, tags_fp="aaaa", vocab_from=vocab_from)
    specs = drive(store)
    assert [type(s).__name__ for s in specs] == ["IngestSpec", "TasksSpec", "TagSpec", "VocabSpec", "CaptionSpec",
                                                 "TagSpec", "VocabSpec", "PretrainSpec", "PretrainSpec"]  # fmt: skip
    assert specs[0] == IngestSpec(corpus="demo", source="demo", cache="C")
    labels, labels_vocab, captions, tags, vocab = specs[2:7]
    assert (labels.backend, captions.backend, tags.backend) == ("labels", "acoustic", "rules")
    assert tags.captions == "cccc"  # the acoustic captions' folder, not the newest
    assert labels_vocab.tags == (store.uri("tags", "demo", "llll"),)
    assert labels_vocab.name == "demo-audioset" and plan._counted(store, labels_vocab)
    assert isinstance(vocab, VocabSpec)
    assert vocab.tags == (store.uri("tags", "demo", "aaaa"),) and vocab.name == "demo-uts"
    assert vocab.overwrite is overwrite
    assert plan._counted(store, vocab) is skipped
    # Both trainings at once when run, each on its own tags; the labels at K = its 40 labels.
    assert specs[7] == PretrainSpec(cache="C", vocab="demo-uts", tags="aaaa", probe=False)
    assert specs[8] == PretrainSpec(cache="C", vocab="demo-audioset", tags="llll", k=40, probe=False,
                                    name="demo-labels-mtc-k40")  # fmt: skip
    # Another seed trains both supervisions under names of its own, never seed 0's runs.
    seeded = drive(store, train=PretrainSpec(cache="C", seed=1))[7:]
    assert [s.run_name(s.config()) for s in seeded] == [
        "demo-mtc-k300-seed1",
        "demo-labels-mtc-k40-seed1",
    ]


def test_without_the_labels_baseline_the_plan_trains_once(tmp_path: Path) -> None:
    store = demo_store(tmp_path, tags_fp="aaaa", vocab_from="aaaa")
    specs = drive(store, labels_vocab=None, train=PretrainSpec(cache="C", objective="par"))
    assert [type(s).__name__ for s in specs] == ["IngestSpec", "TasksSpec", "CaptionSpec", "TagSpec",
                                                 "VocabSpec", "PretrainSpec"]  # fmt: skip
    assert specs[-1] == PretrainSpec(cache="C", objective="par", vocab="demo-uts", tags="aaaa")


def fake_stage(script: str, log: list[str], *, fail: str | None = None, code: int = 0) -> Any:
    def run(spec: Any, store: Store) -> Any:
        log.append(script)
        if fail:
            raise StageError(fail, 2)
        result = result_for(spec, f"{script} done")
        if code:
            result.exit_code = code
        return result

    return SimpleNamespace(SCRIPT=script, run=run)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every stage of the plan replaced by one that logs its script and succeeds; and no Ray."""
    log: list[str] = []
    for kind, stage in list(plan.STAGES.items()):
        monkeypatch.setitem(plan.STAGES, kind, fake_stage(stage.SCRIPT, log))
    import cluster.runtime

    monkeypatch.setattr(cluster.runtime, "ensure_ray", lambda *a, **k: None)
    return log


def test_the_main_job_runs_the_plan_and_trains_both_supervisions(
    tmp_path: Path, fakes: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    store = demo_store(tmp_path, tags_fp="aaaa", vocab_from="aaaa")
    compared = []
    monkeypatch.setattr(
        plan, "demo_comparison", lambda store, *runs: compared.append(runs) or "TABLE"
    )
    result = pretrain.run(PretrainSpec(cache="C", max_steps=600), store)
    # Both vocabularies were counted from these tags: skipped, not announced.
    assert fakes == ["jobs/ingest.py", "jobs/tasks.py", "jobs/tag.py", "jobs/caption.py", "jobs/tag.py",
                     "jobs/pretrain.py", "jobs/pretrain.py"]  # fmt: skip
    assert result.run == "demo-mtc-k300"
    assert result.summary.splitlines() == ["jobs/pretrain.py done demo-mtc-k300",
                                           "jobs/pretrain.py done demo-labels-mtc-k40", "TABLE"]  # fmt: skip
    assert [[r.run for r in runs] for runs in compared] == [
        ["demo-mtc-k300", "demo-labels-mtc-k40"]
    ]
    out, err = capsys.readouterr()
    assert out.split() == ["jobs/ingest.py", "done", "jobs/tasks.py", "done", "jobs/tag.py", "done",
                           "jobs/caption.py", "done", "jobs/tag.py", "done"]  # fmt: skip
    announced = [line for line in err.splitlines() if line.startswith("[embedded default]")]
    root = store.root_uri
    assert announced == [
        f"[embedded default] ingest: --store {root} --corpus demo --source demo --cache C",
        f"[embedded default] tasks: --store {root}",
        f"[embedded default] tag: --store {root} --corpus demo --backend labels",
        f"[embedded default] caption: --store {root} --corpus demo --backend acoustic",
        f"[embedded default] tag: --store {root} --corpus demo --captions cccc",
    ]
    assert pretrain.run(PretrainSpec(cache="C", probe=False), store).summary.count("TABLE") == 0


def test_a_failed_step_stops_the_plan(
    tmp_path: Path,
    fakes: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = demo_store(tmp_path, tags_fp="aaaa", vocab_from="bbbb")
    from stages.caption import CaptionSpec
    from stages.tasks import TasksSpec

    monkeypatch.setitem(
        plan.STAGES, CaptionSpec, fake_stage("jobs/caption.py", fakes, fail="no corpus")
    )
    with pytest.raises(StageError) as raised:
        pretrain.run(PretrainSpec(), store)
    assert (
        raised.value.code == 1 and str(raised.value) == "the embedded default's caption step failed"
    )
    assert "error: no corpus" in capsys.readouterr().err
    assert fakes == ["jobs/ingest.py", "jobs/tasks.py", "jobs/tag.py", "jobs/caption.py"]
    fakes.clear()
    monkeypatch.setitem(plan.STAGES, TasksSpec, fake_stage("jobs/tasks.py", fakes, code=1))
    with pytest.raises(StageError, match="tasks step failed"):
        plan.make_demo_inputs(store, vocab_name="demo-uts", cache="C")
    assert fakes == ["jobs/ingest.py", "jobs/tasks.py"]


def test_vocabulary_from_other_tags_is_rebuilt_with_overwrite(
    tmp_path: Path, fakes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    store = demo_store(tmp_path, tags_fp="aaaa", vocab_from="bbbb")
    plan.make_demo_inputs(store, vocab_name="demo-uts", cache="C")
    assert fakes == ["jobs/ingest.py", "jobs/tasks.py", "jobs/caption.py", "jobs/tag.py", "jobs/build_vocab.py"]  # fmt: skip
    tags = store.uri("tags", "demo", "aaaa")
    assert (
        f"[embedded default] build_vocab: --store {store.root_uri} --tags {tags} --name demo-uts --overwrite"
        in capsys.readouterr().err
    )
