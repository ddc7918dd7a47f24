"""Pretrain a Zipformer encoder on a corpus and its UTS vocabulary with Ray Train (the main job).

The spec names the inputs (corpus, tags, vocabulary at K) and the overrides of a preset; `run`
checks every input once (the vocabulary is loaded once, cut at K, and handed to the data pipeline
and the model's tag prior), then trains or resumes run <store>/runs/<name>/. With the embedded
default (corpus demo, no vocabulary named) it runs stages.plan's demo plan first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stages.base import StageError, spec_argv
from uts import __version__
from uts.llm.stage import versions
from uts.objectives import OBJECTIVES
from uts.store import Store, latest_complete
from uts.tags import Vocabulary, load_vocab
from uts.train import checkpoint as checkpoints
from uts.train.config import PRECISIONS, PRESETS, PretrainConfig, preset

__all__ = [
    "DEMO",
    "PROBE_PROTOCOL",
    "SCRIPT",
    "Prepared",
    "PretrainResult",
    "PretrainSpec",
    "add_arguments",
    "changed_inputs",
    "prepare",
    "read_tags",
    "report_probe",
    "report_probes",
    "run",
    "seed_suffix",
    "spec_from_args",
]

SCRIPT = "jobs/pretrain.py"
DEMO = "demo"  # the embedded default's corpus
PROBE_PROTOCOL = "logistic"  # converged, L2 chosen on validation: steady on small tasks


@dataclass(frozen=True, kw_only=True)
class PretrainSpec:
    """One pretraining run. None means "the preset's value" for the config overrides, and the
    derived default for vocab (<corpus>-uts), name (<corpus>-<objective>-k<K>) and probe (on for
    the demo corpus)."""

    preset: str = "demo"  # configuration: one of uts.train.config.PRESETS
    corpus: str = DEMO  # corpus name under <store>/corpora
    tags: str = "latest"  # tags fingerprint of the corpus, or "latest": the newest complete one
    vocab: str | None = None  # vocabulary name under <store>/vocab (None: <corpus>-uts)
    k: int | None = None  # vocabulary size K (tags)
    objective: str | None = None  # one of uts.objectives.OBJECTIVES (preset's: mtc)
    lam: float | None = None  # multitask: L_mtc + lam * L_gen
    num_workers: int | None = None  # training workers (Ray Train)
    use_gpu: bool | None = None  # train on GPUs
    accelerator_type: str | None = None  # Ray accelerator label, e.g. V100
    precision: str | None = None  # auto|fp32|bf16|fp16 (None: the preset's)
    max_steps: int | None = None  # optimiser steps the run reaches
    lr: float | None = None  # peak learning rate
    seed: int | None = None  # weights' initialisation and data order (None: the preset's, 0)
    # The same data order on every run (the preset's: off); needs a preset that caches features.
    reproducible: bool | None = field(default=None, metadata={"off": "--no-reproducible"})
    batch_seconds: float | None = None  # audio seconds per step, all workers, padding included
    tokenizer: str | None = None  # ar/par/multitask tokenizer (hub id or local path)
    text_model: str | None = None  # contrastive text tower (hub id or local path)
    name: str | None = None  # run name: <store>/runs/<name>
    init_from: str | None = None  # warm start from this checkpoint folder URI's weights
    cache: str = "./.uts-cache/demo"  # embedded default: the demo packages' download cache
    # After training, print the probe table (None: on for the demo corpus).
    probe: bool | None = field(default=None, metadata={"off": "--no-probe"})

    @property
    def vocab_name(self) -> str:
        return self.vocab or f"{self.corpus}-uts"

    @property
    def embedded_default(self) -> bool:
        """The demo corpus with no vocabulary named: its inputs are made first when missing."""
        return self.corpus == DEMO and self.vocab is None

    def config(self) -> PretrainConfig:
        """The preset with this spec's overrides (None keeps the preset's value)."""
        return preset(self.preset, k=self.k, objective=self.objective, lam=self.lam, num_workers=self.num_workers,
                      use_gpu=self.use_gpu, max_steps=self.max_steps, batch_seconds=self.batch_seconds,
                      lr=self.lr, tokenizer=self.tokenizer, text_model=self.text_model,
                      precision=self.precision, reproducible=self.reproducible, seed=self.seed)  # fmt: skip

    def run_name(self, config: PretrainConfig) -> str:
        """The run's name: `name`, or <corpus>-<objective>-k<K> when none is given (-seed<N>
        appended for a seed other than 0, so that another seed never resumes or reuses a run)."""
        return self.name or f"{self.corpus}-{config.objective}-k{config.k}{seed_suffix(config)}"

    def command(self, store: Store) -> str:
        """The command line that runs this spec (recorded in the lineage)."""
        return shlex.join(["python", SCRIPT, "--store", store.root_uri, *spec_argv(self)])


@dataclass(frozen=True, kw_only=True)
class PretrainResult:
    run: str  # the run name under <store>/runs
    checkpoint: str | None  # the URI of the checkpoint the run ended at (None: Ray kept none)
    # The last report's metrics; empty when the run was already complete.
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    exit_code: int = 0


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """Everything a run reads, checked before any worker starts."""

    shards: list[str]  # the corpus's shard URIs
    tags: dict[str, list[str]]  # clip id -> tags (rows with status ok)
    vocab: Vocabulary  # cut at K
    lineage: dict[str, Any]  # what every checkpoint records about its inputs


_D = PretrainSpec()


def seed_suffix(config: PretrainConfig) -> str:
    """What a default run name carries for its seed: nothing for 0, else -seed<N>."""
    return f"-seed{config.seed}" if config.seed else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default=_D.preset, help="configuration (default demo)")
    add("--corpus", default=_D.corpus, help="corpus name (default demo)")
    add("--tags", default=_D.tags, help="tags fingerprint of the corpus, or latest")
    add(
        "--vocab",
        default=_D.vocab,
        help="vocabulary name under <store>/vocab (default <corpus>-uts)",
    )
    add("--k", type=int, default=_D.k, help="vocabulary size K (preset's default)")
    add("--objective", choices=OBJECTIVES, default=_D.objective, help="default mtc")
    add("--lam", type=float, default=_D.lam, help="multitask: L_mtc + lam * L_gen")
    add("--num-workers", type=int, default=_D.num_workers, help="training workers")
    add("--use-gpu", action="store_true", default=_D.use_gpu, help="train on GPUs")
    add("--accelerator-type", default=_D.accelerator_type, help="e.g. V100 (Ray accelerator label)")
    add("--precision", choices=PRECISIONS, default=_D.precision,
        help="auto: bf16 on GPUs that have it, fp16 + GradScaler on V100, fp32 on CPU; bf16 on CPU "
             "is CPU autocast (default: the preset's, auto for m, fp32 for demo and smoke)")  # fmt: skip
    add("--max-steps", type=int, default=_D.max_steps, help="training steps")
    add("--lr", type=float, default=_D.lr, help="peak learning rate (preset's default)")
    add("--seed", type=int, default=_D.seed,
        help="seeds the initial weights and the data order; the probe's random-init baseline is "
             "the same seed's untrained encoder (default 0)")  # fmt: skip
    add("--reproducible", action=argparse.BooleanOptionalAction, default=_D.reproducible,
        help="the same data order on every run: each rank takes its share of one seeded shuffle "
             "of the whole featurised train set (needs a preset that caches features: demo, smoke)")  # fmt: skip
    add("--batch-seconds", type=float, default=_D.batch_seconds,
        help="audio seconds per step across all workers, padding included")  # fmt: skip
    add("--tokenizer", default=_D.tokenizer, help="ar/par/multitask tokenizer (id or path)")
    add("--text-model", default=_D.text_model, help="contrastive text tower (id or path)")
    add("--name", default=_D.name, help="run name (default <corpus>-<objective>-k<K>)")
    add("--init-from", default=_D.init_from, help="warm start from a checkpoint folder URI")
    add("--cache", default=_D.cache, help="embedded default: demo package cache")
    add("--probe", action=argparse.BooleanOptionalAction, default=_D.probe,
        help="after training, probe the encoder on the demo tasks (default: on for the demo corpus)")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> PretrainSpec:
    return PretrainSpec(**{f.name: getattr(args, f.name) for f in fields(PretrainSpec)})


def run(spec: PretrainSpec, store: Store) -> PretrainResult:
    """Train (or resume, or find complete) the spec's run; with the embedded default, make its
    inputs first (stages.plan). The summary is the final metrics as JSON (or the line saying the
    run is complete) and, when probing, the probe table.

    Raises:
        StageError: 2 for missing or inconsistent inputs (the message says what to run first),
            1 when training or a step of the embedded default failed.
    """
    config = spec.config()
    from cluster.runtime import ensure_ray

    # Before anything else starts Ray: logical CPUs for the data workers (one per core), one per
    # training worker, and headroom, or the workers would wait for CPUs the data actors hold.
    ensure_ray(num_cpus=(os.cpu_count() or 1) + config.num_workers + 2, log_to_driver=True)
    if spec.embedded_default:
        # The plan ends with this spec, its vocabulary named: run_plan trains it through the
        # branch below, once the inputs exist.
        from stages.plan import demo_comparison, demo_plan, run_plan

        results = run_plan(
            store, demo_plan(store, cache=spec.cache, vocab_name=spec.vocab_name, train=spec)
        )
        uts_run, labels_run = (r for r in results if isinstance(r, PretrainResult))
        lines = [uts_run.summary, labels_run.summary]
        if spec.probe is not False:
            lines.append(demo_comparison(store, uts_run, labels_run))
        return dataclasses.replace(uts_run, summary="\n".join(line for line in lines if line))
    return _train(spec, store, config)


def _train(spec: PretrainSpec, store: Store, config: PretrainConfig) -> PretrainResult:
    from cluster.train import fit, make_datasets

    prepared = prepare(spec, store, config)
    name = spec.run_name(config)
    stale = changed_inputs(store, name, prepared.lineage)
    if stale and spec.name:
        raise StageError(f"run {name} was trained on other inputs ({stale}); resuming would mix them: "
                         "pass a new --name", 2)  # fmt: skip
    if stale:
        name = f"{name}-{prepared.lineage['vocab']['fingerprint']}"
        print(f"note: the inputs changed since the last default run ({stale}); this run is {name}",
              file=sys.stderr)  # fmt: skip
    from uts.models.zipformer import parameter_count
    from uts.models.zipformer import preset as encoder_preset

    encoder = encoder_preset(config.encoder, **config.encoder_overrides)
    print(f"pretraining {name}: {config.objective}, K={config.k}, preset {spec.preset}, encoder {config.encoder} "
          f"({parameter_count(encoder):,} parameters), {config.num_workers} worker(s), {config.max_steps} steps "
          f"-> {store.uri('runs', name)}", file=sys.stderr)  # fmt: skip
    probe = spec.probe if spec.probe is not None else spec.corpus == DEMO
    done = checkpoints.finished(store, name, config.max_steps)
    if done is not None:
        # Checked before the datasets are made: a small corpus is featurised when they are.
        lines = [f"run {name} is complete at step {config.max_steps} ({done}); a larger --max-steps continues it"]  # fmt: skip
        if probe:
            lines.append(report_probe(store, done, name))
        return PretrainResult(run=name, checkpoint=done, summary="\n".join(lines))
    datasets = make_datasets(prepared.shards, prepared.tags, prepared.vocab, config)
    started = time.monotonic()
    try:
        result = fit(config, datasets=datasets, storage=store.uri("runs"), name=name, lineage=prepared.lineage,
                     init_from=spec.init_from, accelerator_type=spec.accelerator_type,
                     tag_prior=prepared.vocab.prior().tolist())  # fmt: skip
    except Exception as exc:  # Ray's TrainingFailedError wraps the worker's error
        raise StageError(f"training failed: {exc}", 1) from exc
    metrics = dict(result.metrics or {})
    checkpoint = result.checkpoint.path if result.checkpoint else None
    lines = [json.dumps({"run": name, "step": metrics.get("step"), "loss": metrics.get("loss"),
                         "val_loss": metrics.get("val_loss"), "val_tag_map": metrics.get("val_tag_map"),
                         "audio_hours": metrics.get("audio_hours"), "checkpoint": checkpoint,
                         "wall_s": round(time.monotonic() - started, 1)}, indent=2)]  # fmt: skip
    if probe and checkpoint:
        lines.append(report_probe(store, checkpoint, name))
    return PretrainResult(
        run=name, checkpoint=checkpoint, metrics=metrics, summary="\n".join(lines)
    )


def changed_inputs(store: Store, name: str, lineage: dict[str, Any]) -> str | None:
    """What differs between an existing run's inputs (its latest checkpoint's lineage) and these:
    corpus, tags or vocabulary fingerprint, or K. None for a new run or the same inputs."""
    found = checkpoints.finished(store, name, 0)
    if found is None:
        return None
    old = checkpoints.read_lineage(found)
    changes = [
        f"{key} {old.get(key, {}).get(part)} -> {lineage[key][part]}"
        for key, part in (("corpus", "fingerprint"), ("tags", "fingerprint"), ("vocab", "fingerprint"),
                          ("vocab", "k"))
        if old.get(key, {}).get(part) != lineage[key][part]
    ]  # fmt: skip
    return ", ".join(changes) or None


def report_probe(store: Store, checkpoint: str, name: str) -> str:
    """The probe table of one checkpoint (see report_probes)."""
    return report_probes(store, [(checkpoint, name)])


def report_probes(store: Store, runs: list[tuple[str, str]]) -> str:
    """One probe table of checkpoints [(uri, run name)] (the paper's linear protocol, beside the
    log-mel and random-init baselines): each read back when its results are stored, else
    evaluated now by the evaluate stage. Errors are printed, not raised: the runs themselves are
    done."""
    from uts.probe.report import comparison_table

    rows: dict[str, Any] = {}
    for checkpoint, name in runs:
        summary = _probe_summary(store, checkpoint, name)
        if isinstance(summary, str):
            return summary
        rows = {**summary["baselines"], **rows, name: summary["results"]}
    return comparison_table(rows)


def _probe_summary(store: Store, checkpoint: str, name: str) -> dict[str, Any] | str:
    """The evaluate stage's summary.json of a checkpoint (evaluated now when missing), or the line
    that says why there is none."""
    from stages import evaluate
    from uts.probe.embeddings import checkpoint_source

    parts = ("evals", name, evaluate.results_folder(PROBE_PROTOCOL))
    if store.is_complete(*parts):
        summary: dict[str, Any] = store.read_json(*parts, "summary.json")
        if summary.get("space") == checkpoint_source(checkpoint).space:
            return summary
    if not store.local or not any(Path(store.path("tasks")).glob("*/task.json")):
        return "(no probe tasks in the store: run jobs/tasks.py, then jobs/evaluate.py)"
    spec = evaluate.EvaluateSpec(checkpoint=checkpoint, name=name, protocol=PROBE_PROTOCOL)
    rerun = shlex.join(["--store", store.root_uri, "--checkpoint", checkpoint, "--name", name,
                        "--protocol", PROBE_PROTOCOL])  # fmt: skip
    failed = f"(the probe failed; rerun: python {evaluate.SCRIPT} {rerun})"
    try:
        result = evaluate.run(spec, store)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return failed
    if result.exit_code != 0 or not store.is_complete(*parts):
        return "\n".join(line for line in (result.summary, failed) if line)
    summary = store.read_json(*parts, "summary.json")
    return summary


def prepare(spec: PretrainSpec, store: Store, config: PretrainConfig) -> Prepared:
    """Every input checked before a worker starts; the vocabulary loaded once and K checked once.

    Raises:
        StageError: (2) an input is missing or inconsistent; the message says what to run first.
    """
    from uts.data import list_shards

    try:
        shards = list_shards(store.uri("corpora", spec.corpus))
    except FileNotFoundError as exc:
        raise StageError(f"{exc}; run jobs/ingest.py --corpus {spec.corpus} first", 2) from exc
    tags_fp = latest_complete(store, "tags", spec.corpus) if spec.tags == "latest" else spec.tags
    if not tags_fp or not store.is_complete("tags", spec.corpus, tags_fp):
        raise StageError(f"no complete tags {spec.tags!r} for corpus {spec.corpus}; run jobs/caption.py "
                         "and jobs/tag.py first", 2)  # fmt: skip
    vocab_name = spec.vocab_name
    if not store.is_complete("vocab", vocab_name):
        raise StageError(f"no vocabulary {vocab_name!r} in {store.uri('vocab')}; run jobs/build_vocab.py --tags "
                         f"{store.uri('tags', spec.corpus, tags_fp)} --name {vocab_name} first", 2)  # fmt: skip
    full = load_vocab(store.uri("vocab", vocab_name))
    if config.k > len(full):
        raise StageError(f"--k {config.k} is larger than vocabulary {vocab_name!r} ({len(full)} tags)", 2)  # fmt: skip
    for option, value in (("num_workers", config.num_workers), ("max_steps", config.max_steps)):
        if value < 1:
            raise StageError(f"--{option.replace('_', '-')} must be >= 1, got {value}", 2)
    if config.batch_seconds <= 0:
        raise StageError(f"--batch-seconds must be positive, got {config.batch_seconds}", 2)
    if config.objective != "mtc":
        source = config.text_model if config.objective == "contrastive" else config.tokenizer
        try:
            from uts.models.text import load_tokenizer

            load_tokenizer(source)
        except (OSError, ValueError) as exc:
            raise StageError(f"objective {config.objective} needs the tokenizer {source!r}, which cannot be "
                             f"loaded ({type(exc).__name__}); pass --tokenizer/--text-model with a local path",
                             2) from exc  # fmt: skip
    vocab = full.at(config.k)
    tags = read_tags(store, spec.corpus, tags_fp)
    usable = sum(1 for clip_tags in tags.values() if vocab.indices(clip_tags))
    if usable == 0:
        raise StageError(
            f"no clip of {spec.corpus} carries a tag of {vocab_name!r} at K={config.k}", 2
        )
    corpus = store.read_json("corpora", spec.corpus, "corpus.json")
    lineage = {
        "corpus": {"name": spec.corpus, "fingerprint": corpus.get("fingerprint")},
        "tags": {"fingerprint": tags_fp, "clips_with_tags": len(tags), "clips_with_tags_at_k": usable},
        "vocab": {"name": vocab_name, "fingerprint": full.meta.get("vocab_fingerprint"), "k": config.k},
        "git_commit": git_commit(), "uts_version": __version__, "versions": versions(),
        "command": spec.command(store),
    }  # fmt: skip
    return Prepared(shards=shards, tags=tags, vocab=vocab, lineage=lineage)


def read_tags(store: Store, corpus: str, fingerprint: str) -> dict[str, list[str]]:
    """clip id -> tags, for the tag rows with status ok."""
    from uts.llm.stage import read_parts

    rows = read_parts(store.uri("tags", corpus, fingerprint), ["clip_id", "tags", "status"])
    return {r["clip_id"]: r["tags"] for r in rows if r["status"] == "ok" and r["tags"]}


def git_commit() -> str | None:
    """The commit of this checkout (lineage), or None outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
