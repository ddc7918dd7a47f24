"""The study's steps: each stage's spec, the command that reruns it alone, and why it may be
skipped. Specs are built from the study's settings; the free-form extra flags (--caption-args,
--tag-args, --pretrain-args) are parsed by the target stage's own flags, as its job would parse
them. A step's command, run as a job, parses to exactly the spec the step runs."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from stages import caption, evaluate, ingest, pretrain, tag, tasks, vocab
from stages.base import StageError
from stages.cli import parser_for, run_stage
from stages.study_presets import Settings
from uts.store import Store
from uts.train import checkpoint
from uts.train.config import preset

__all__ = ["SMOKE_TASK", "Plan", "Step", "check_extra_flags", "flags", "parsed"]  # fmt: skip

SMOKE_TASK = "smoke_tones"
TEXT_OBJECTIVES = ("ar", "par", "multitask")  # those that tokenize the canonical tag string


@dataclass
class Step:
    """One step of the study: a stage's run with its spec, or a function of the plan."""

    name: str
    command: list[str]  # as a user would type it (study.json, messages)
    run: Callable[[], int]  # the exit code the stage's job would return
    done: Callable[[], str | None] = lambda: None  # why it can be skipped, or None
    status: str = "pending"
    wall_s: float = 0.0
    note: str = ""
    spec: Any = None  # the stage's spec (its command parses to it); None for the study's own steps


def flags(spec: Any, names: Sequence[str]) -> list[str]:
    """The flags of the named fields, in that order and whatever their defaults (the study names
    them even where they equal the job's default; stages.base.spec_argv leaves those out)."""
    found = {f.name: f for f in dataclasses.fields(spec)}
    argv: list[str] = []
    for name in names:
        value, meta = getattr(spec, name), found[name].metadata
        flag = meta.get("flag", "--" + name.replace("_", "-"))
        if isinstance(value, bool):
            argv += [flag] if value else [meta["off"]] if "off" in meta else []
        elif isinstance(value, tuple | list):
            argv += [token for item in value for token in (flag, str(item))]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def parsed(
    stage: ModuleType, option: str, extra: Sequence[str], values: Mapping[str, Any],
    required: Sequence[str] = (),
) -> Any:  # fmt: skip
    """`stage`'s spec from the study's `values`, then the free-form flags `extra` (given to the
    study as `option`) parsed by the stage's own flags: as its job parses the study's command for
    it, a flag in `extra` wins over the study's value before it.

    Raises:
        StageError: (code 2) the stage refuses a flag (or its value), or `extra` sets --store.
    """
    parser = parser_for(stage, stage.SCRIPT.rsplit("/", 1)[-1])

    def refuse(message: str) -> NoReturn:
        raise StageError(f"{option}: {stage.SCRIPT} refuses {shlex.join(extra)!r}: {message}")

    parser.error = refuse  # type: ignore[method-assign]  # a message for the study, not an exit
    # argparse fills only the attributes a namespace lacks; a required flag must be on the line.
    given = [token for name in required for token in flags_of(name, values[name])]
    namespace = argparse.Namespace(**{k: v for k, v in values.items() if k not in required})
    args = parser.parse_args([*given, *extra], namespace=namespace)
    if args.store != parser.get_default("store"):
        refuse("the study's --store is every stage's store; leave --store out")
    return stage.spec_from_args(args, parser)


def flags_of(name: str, value: Any) -> list[str]:
    return ["--" + name.replace("_", "-"), str(value)]


def caption_spec(s: Settings) -> tuple[caption.CaptionSpec, list[str], list[str]]:
    """The captioning spec, its extra flags (as given) and the fields the study sets after them."""
    model_free = s.captioner in ("corpus", "acoustic")  # the preset's flags are for model backends
    extra = [*(s.preset.caption_args if not model_free else ()), *s.caption_args]
    after = {"workers": 0} if model_free and s.source == "smoke" else {}
    spec = parsed(caption, "--caption-args", extra, {"corpus": s.corpus, "backend": s.captioner}, ["corpus"])  # fmt: skip
    return dataclasses.replace(spec, **after), extra, list(after)


def tag_spec(s: Settings, captions: str) -> tuple[tag.TagSpec, list[str], list[str]]:
    model_free = s.tagger in ("rules", "labels")  # the preset's flags are for model backends
    extra = [*(s.preset.tag_args if not model_free else ()), *s.tag_args]
    after = {"workers": 0} if model_free and s.source == "smoke" else {}
    values = {"corpus": s.corpus, "captions": captions, "backend": s.tagger}
    if s.tagger == "labels":  # reads the corpus's metadata, no captions
        del values["captions"]
    spec = parsed(tag, "--tag-args", extra, values, ["corpus"])
    return dataclasses.replace(spec, **after), extra, list(after)


def pretrain_extra(s: Settings) -> list[str]:
    return [*s.preset.pretrain_args, *s.pretrain_args]


def check_extra_flags(s: Settings) -> None:
    """Raises StageError (code 2) when a stage refuses the extra flags the study would give it,
    so a study stops before its first stage, not after hours of captioning."""
    caption_spec(s)
    tag_spec(s, "latest")
    parsed(pretrain, "--pretrain-args", pretrain_extra(s), {})


class Plan:
    """The steps of one study, built as their inputs appear (the tags' fingerprint is known only
    after captioning)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.s = settings
        self.store = store

    def command(self, stage: ModuleType, spec: Any, first: Sequence[str], extra: Sequence[str] = (),
                last: Sequence[str] = ()) -> list[str]:  # fmt: skip
        """The job's command line: the study's fields, the extra flags as given, then the fields
        that the study sets over them (so parsing it gives `spec`: the last flag wins)."""
        return ["python", stage.SCRIPT, "--store", self.store.root_uri, *flags(spec, first),
                *extra, *flags(spec, last)]  # fmt: skip

    def call(self, stage: ModuleType, spec: Any) -> Callable[[], int]:
        """`stage.run(spec)` as its job runs it (stages.cli.run_stage), for later."""
        return lambda: run_stage(stage, spec, self.store)

    def exists(self, *parts: str) -> Callable[[], str | None]:
        def done() -> str | None:
            return f"{self.store.uri(*parts)} exists" if self.store.is_complete(*parts) else None

        return done

    def complete(self, kind: str, fingerprint: Callable[[], str]) -> Callable[[], str | None]:
        def done() -> str | None:
            fp = fingerprint()
            complete = self.store.is_complete(kind, self.s.corpus, fp)
            return f"fingerprint {fp} is complete" if complete else None

        return done

    # -- the steps, in the order the study runs them -------------------------------------------
    def ingest(self) -> Step:
        """Raises StageError (code 2) when there is no corpus and no source to ingest it from."""
        s = self.s
        corpus = ("corpora", s.corpus)
        done = self.exists(*corpus)
        if s.source == "smoke":
            folder = Path(s.cache).resolve().parent / "smoke"
            spec = ingest.IngestSpec(corpus=s.corpus, source="folder", path=str(folder / "audio"),
                                     metadata=str(folder / "meta.jsonl"), workers=0, batch_size=20)  # fmt: skip
            ingest_tones = self.call(ingest, spec)

            def run() -> int:
                from uts.testing.corpus import write_tone_folder

                write_tone_folder(folder, clips=48)
                return ingest_tones()

            first = ["corpus", "source", "path", "metadata", "workers", "batch_size"]
            return Step("ingest", self.command(ingest, spec, first), run, done, spec=spec)
        if s.source is None:
            if self.store.is_complete(*corpus) or s.dry_run:
                return Step("ingest", ["(uses the existing corpus)"], lambda: 0, done)
            raise StageError(f"no corpus {s.corpus!r} in {self.store.uri('corpora')}: pass --source (folder, lhotse) "
                             "and --path to ingest it, or run jobs/ingest.py first")  # fmt: skip
        if s.source == "demo":
            spec = ingest.IngestSpec(corpus=s.corpus, source="demo", cache=s.cache)
            first = ["corpus", "source", "cache"]
        elif s.path is None:
            raise StageError(f"--source {s.source} needs --path")
        else:
            spec = ingest.IngestSpec(corpus=s.corpus, source=s.source, path=s.path, metadata=s.metadata or None)  # fmt: skip
            first = ["corpus", "source", "path", "metadata"]
        return Step(
            "ingest", self.command(ingest, spec, first), self.call(ingest, spec), done, spec=spec
        )

    def tasks(self) -> Step | None:
        """Probe tasks the study can make: the demo corpus's (stages.tasks) or the smoke tones."""
        s = self.s
        if s.source == "demo" or s.corpus == "demo":
            spec = tasks.TasksSpec(corpus=s.corpus)
            return Step(
                "tasks", self.command(tasks, spec, ["corpus"]), self.call(tasks, spec), spec=spec
            )
        if s.source != "smoke":
            return None

        def run() -> int:
            from uts.testing.corpus import make_task_folder

            with tempfile.TemporaryDirectory() as scratch, self.store.staging() as staged:
                folder = make_task_folder(Path(scratch), SMOKE_TASK, "multiclass", "accuracy", "music",
                                          ["low", "mid", "high"], clips=30)  # fmt: skip
                for path in folder.rglob("*"):
                    if path.is_file():
                        target = staged / path.relative_to(folder)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        path.replace(target)
                self.store.publish(staged, "tasks", SMOKE_TASK)
            return 0

        return Step(
            "tasks", ["(writes the smoke tones task)"], run, self.exists("tasks", SMOKE_TASK)
        )

    def caption(self) -> tuple[Step, Callable[[], str]]:
        """The step and its captions' fingerprint (read from the corpus when asked)."""
        spec, extra, last = caption_spec(self.s)

        def fingerprint() -> str:
            corpus = self.store.read_json("corpora", self.s.corpus, "corpus.json")
            return spec.fingerprint(corpus["fingerprint"])

        command = self.command(caption, spec, ["corpus", "backend"], extra, last)
        step = Step(
            "caption",
            command,
            self.call(caption, spec),
            self.complete("captions", fingerprint),
            spec=spec,
        )
        return step, fingerprint

    def tag(self, captions: str) -> tuple[Step, Callable[[], str]]:
        spec, extra, last = tag_spec(self.s, captions)

        def fingerprint() -> str:
            return spec.fingerprint(captions)

        command = self.command(tag, spec, ["corpus", "captions", "backend"], extra, last)
        step = Step(
            "tag", command, self.call(tag, spec), self.complete("tags", fingerprint), spec=spec
        )
        return step, fingerprint

    def vocab(self, tags_fp: str) -> tuple[Step, str]:
        name = f"{self.s.corpus}-{tags_fp}"
        spec = vocab.VocabSpec(tags=(self.store.uri("tags", self.s.corpus, tags_fp),), name=name, max_k=self.s.max_k)  # fmt: skip
        command = self.command(vocab, spec, ["tags", "name", "max_k"])
        return Step(
            "build_vocab", command, self.call(vocab, spec), self.exists("vocab", name), spec=spec
        ), name

    def k(self) -> int:
        return self.s.k or preset(self.s.preset.train).k

    def pretrain(self, objective: str, tags_fp: str, vocab_name: str) -> tuple[Step, str]:
        """One run's step and its name, which carries the vocabulary's fingerprint (changed
        upstream stages make new runs instead of resuming old ones)."""
        s = self.s
        fp = "planned" if s.dry_run else self.store.read_json("vocab", vocab_name, "vocab.json")["vocab_fingerprint"]  # fmt: skip
        lam = f"-lam{s.lam:g}" if objective == "multitask" else ""
        name = f"{s.name}-{objective}-k{self.k()}{lam}-{str(fp)[:8]}"
        first = {"preset": s.preset.train, "corpus": s.corpus, "tags": tags_fp, "vocab": vocab_name,
                 "k": self.k(), "objective": objective, "name": name, "probe": False}  # fmt: skip
        last: dict[str, Any] = {"lam": s.lam} if objective == "multitask" else {}
        if s.max_steps:
            last["max_steps"] = s.max_steps
        if objective in TEXT_OBJECTIVES and s.tokenizer:
            last["tokenizer"] = s.tokenizer
        if objective == "contrastive" and s.text_model:
            last["text_model"] = s.text_model
        extra = pretrain_extra(s)
        spec = dataclasses.replace(parsed(pretrain, "--pretrain-args", extra, first), **last)
        steps = spec.max_steps or preset(spec.preset).max_steps

        def done() -> str | None:
            found = checkpoint.finished(self.store, spec.name, steps)
            return f"run {spec.name} reached step {steps}" if found else None

        command = self.command(pretrain, spec, list(first), extra, list(last))
        return Step(
            f"pretrain {objective}", command, self.call(pretrain, spec), done, spec=spec
        ), spec.name

    def evaluate(self, run: str) -> Step:
        s = self.s
        spec = evaluate.EvaluateSpec(run=run, protocol=s.protocol, tasks=s.tasks, preset=s.preset.train,
                                     layers=s.layers, seeds=s.seeds or None)  # fmt: skip

        def done() -> str | None:
            from uts.probe.embeddings import checkpoint_source

            parts = ("evals", run, evaluate.results_folder(s.protocol, s.layers))
            found = checkpoint.latest(self.store, run)
            if found is None or not self.store.is_complete(*parts):
                return None
            summary = self.store.read_json(*parts, "summary.json")
            space = checkpoint_source(found[0]).with_layers(s.layers).space
            if summary.get("space") != space or not self.task_names() <= set(summary["results"]):
                return None
            return f"{self.store.uri(*parts)} holds this checkpoint's results"

        command = self.command(evaluate, spec, ["run", "protocol", "tasks", "preset", "layers", "seeds"])  # fmt: skip
        return Step(f"evaluate {run}", command, self.call(evaluate, spec), done, spec=spec)

    def task_names(self) -> set[str]:
        if self.s.tasks != "all":
            return {t.strip() for t in self.s.tasks.split(",") if t.strip()}
        from uts.probe.task_store import find_tasks

        found = find_tasks(self.store, "all")
        return set() if isinstance(found, str) else {t.name for t in found}

    def parallelism(self, runs: int) -> int:
        """Runs trained at once: --parallel, or as many as the cluster's GPUs hold (1 on CPU)."""
        if self.s.parallel is not None:
            return min(runs, self.s.parallel)
        train = parsed(pretrain, "--pretrain-args", pretrain_extra(self.s), {})
        config = preset(self.s.preset.train, num_workers=train.num_workers, use_gpu=train.use_gpu)
        if not config.use_gpu or self.s.dry_run:
            return 1
        from cluster.runtime import cluster_gpus

        return max(1, min(runs, cluster_gpus() // max(1, config.num_workers)))
