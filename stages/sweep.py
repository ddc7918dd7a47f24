"""Sweep the vocabulary size K and the multitask weight lambda with Optuna (the paper's ablation).

Each trial trains one named run `<study>-t<number>` with the pretrain stage (in this process, in
segments that each end, so the pruner can stop a trial between them with nothing left running),
probes it on the task folders after every segment, and reports the mean probe score (or one score
per domain: a multi-objective study with a Pareto front). Every trial reads the same corpus, tags
and vocabulary (one vocabulary built at the largest K serves every K as a prefix). The study lives
in an Optuna journal under <store>/sweeps/<study>/ (or --storage URL); rerunning the same command
continues it: finished trials are kept, a trial a killed driver left running is retried from its
run's checkpoint, and --trials counts every finished trial. Writes <store>/sweeps/<study>/report/
after every trial. The checks (flags, then store contents) all happen before any trial starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from stages import evaluate, pretrain
from stages.base import StageError
from tuning.loop import LoopConfig, TrialError, counted_trials, run_trials
from tuning.objective import Probe, Train, TrialSetup, make_objective, segment_steps
from tuning.report import summary, write_report
from tuning.space import SweepSpace, parse_ks, parse_range
from tuning.storage import StorageError, SweepStorage, open_storage
from tuning.study import PRUNERS, SAMPLERS, StudyMismatch, make_pruner, make_sampler, open_study
from uts.probe.evaluate import DOMAINS
from uts.store import Store
from uts.train.config import PRESETS, PretrainConfig, preset

__all__ = ["SCRIPT", "SweepPlan", "SweepResult", "SweepSpec", "add_arguments", "best_command", "make_plan",
           "run", "spec_from_args", "trial_spec"]  # fmt: skip

SCRIPT = "jobs/sweep.py"
DEFAULT_KS = "800,1000,1500,2000,3000"


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """One sweep: the flags of jobs/sweep.py (--store aside)."""

    study: str  # study name: letters, digits, . _ - (names folders and runs)
    objective: str  # mtc or multitask
    k: str = DEFAULT_KS  # vocabulary sizes, comma-separated
    lam_range: str = "0.1,10"  # multitask: "MIN,MAX" of lambda
    lam_log: bool = False  # sample lambda on a log scale
    lam_grid: int = 3  # grid sampler: lambda values from MIN to MAX, geometric
    trials: int | None = None  # finished trials wanted; None: the grid's size (tpe: 20)
    parallel: int = 1  # trials at once
    preset: str = "demo"  # training preset of every trial
    storage: str = "journal"  # "journal": a file under <store>/sweeps/<study>/; or an RDB URL
    sampler: str = "grid"
    pruner: str = "median"
    prune_after: int = 5  # median pruner: complete trials before any is pruned
    segments: int = 3  # training segments per trial, probed after each (1 without pruning)
    metric: str = "mean_probe"  # "mean_probe", or comma-separated domains (multi-objective)
    corpus: str = "demo"
    vocab: str | None = None  # vocabulary name; None: <corpus>-uts
    tasks: str = "all"  # probe tasks: all, or comma-separated names
    protocol: str = "logistic"  # probe protocol
    seeds: int | None = None  # probe splits per task; None: all
    max_steps: int | None = None  # training steps per trial; None: the preset's
    tokenizer: str | None = None  # multitask tokenizer (id or local path); None: the preset's
    num_workers: int | None = None  # training workers per trial; None: the preset's
    use_gpu: bool = False  # train on GPUs
    accelerator_type: str | None = None  # Ray accelerator label, e.g. V100
    seed: int = 0  # sampler seed
    heartbeat: float = 10.0  # seconds between trial heartbeats; silent for 6x: retried
    cache: str = "./.uts-cache/demo"  # the embedded default's demo package cache


@dataclass(frozen=True, kw_only=True)
class SweepPlan:
    """What the flags alone decide (no store read): the trials' setup, the pretraining flags they
    share, and the settings a continued study must match."""

    setup: TrialSetup
    pretrain: pretrain.PretrainSpec  # every trial's; a trial sets k, lam, max_steps and name
    config: PretrainConfig  # the preset with --max-steps: a trial's steps, workers, tokenizer
    settings: dict[str, Any]  # recorded with the study: a rerun with other settings is refused
    total: int  # finished trials wanted
    notes: tuple[str, ...]  # what was adjusted, for stderr


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """A sweep that ran: where its report is and which config won."""

    study: str
    report: str  # URI of the report folder (report.md, plots)
    best_run: str | None  # the best trial's run; None when no trial completed (exit code 1)
    best_command: str | None  # the command that trains the best config again
    summary: str  # the trial table and where the report went
    exit_code: int = 0


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SweepSpec)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add, d = parser.add_argument, _DEFAULTS
    add("--study", required=True, help="study name (letters, digits, . _ -)")
    add("--objective", required=True, choices=("mtc", "multitask"))
    add("--k", default=d["k"], help=f"vocabulary sizes (default {DEFAULT_KS})")
    add("--lam-range", default=d["lam_range"], help="multitask: MIN,MAX (default 0.1,10)")
    add("--lam-log", action="store_true", help="sample lambda on a log scale")
    add("--lam-grid", type=int, default=d["lam_grid"],
        help="--sampler grid: lambda values from MIN to MAX, geometric (default 3)")  # fmt: skip
    add("--trials", type=int, default=d["trials"],
        help="finished trials wanted in the study (default: the grid's size; tpe 20)")  # fmt: skip
    add("--parallel", type=int, default=d["parallel"], help="trials at once (default 1)")
    add("--preset", choices=sorted(PRESETS), default=d["preset"], help="default demo")
    add("--storage", default=d["storage"],
        help="journal (a file under <store>/sweeps/<study>/) or an Optuna RDB URL")  # fmt: skip
    add("--sampler", choices=SAMPLERS, default=d["sampler"], help="default grid")
    add("--pruner", choices=PRUNERS, default=d["pruner"], help="default median")
    add("--prune-after", type=int, default=d["prune_after"],
        help="median: complete trials before any is pruned (default 5)")  # fmt: skip
    add("--segments", type=int, default=d["segments"],
        help="training segments per trial, probed after each (default 3; 1 without pruning)")  # fmt: skip
    add("--metric", default=d["metric"],
        help="mean_probe (one objective) or domains, e.g. speech,music,environment")  # fmt: skip
    add("--corpus", default=d["corpus"], help="corpus name (default demo)")
    add("--vocab", default=d["vocab"], help="vocabulary name (default <corpus>-uts)")
    add("--tasks", default=d["tasks"], help="probe tasks: all, or comma-separated names")
    add("--protocol", default=d["protocol"], choices=evaluate.PROTOCOLS, help="default logistic")
    add("--seeds", type=int, default=d["seeds"], help="probe splits per task (default all)")
    add("--max-steps", type=int, default=d["max_steps"], help="steps per trial (preset's)")
    add("--tokenizer", default=d["tokenizer"], help="multitask tokenizer (id or local path)")
    add("--num-workers", type=int, default=d["num_workers"], help="training workers per trial")
    add("--use-gpu", action="store_true", help="train on GPUs")
    add("--accelerator-type", default=d["accelerator_type"], help="e.g. V100")
    add("--seed", type=int, default=d["seed"], help="sampler seed (default 0)")
    add("--heartbeat", type=float, default=d["heartbeat"],
        help="seconds between trial heartbeats; a trial silent for 6x is retried (default 10)")  # fmt: skip
    add("--cache", default=d["cache"], help="embedded default: demo package cache")


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SweepSpec:
    """Flags -> spec. Every check needs no store but is reported as the job always reported it
    (`error: ...`, exit 2, from run), so argparse checks nothing beyond types and choices here."""
    del parser
    return SweepSpec(**{name: getattr(args, name) for name in _DEFAULTS})


def parse_metric(text: str) -> tuple[str, ...]:
    """`mean_probe` or distinct domains. Raises ValueError naming the unknown ones."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names == ("mean_probe",):
        return names
    unknown = [n for n in names if n not in DOMAINS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"--metric {text!r}: give mean_probe, or distinct domains among "
                         f"{', '.join(DOMAINS)} (unknown: {unknown})")  # fmt: skip
    return names


def make_plan(spec: SweepSpec, store_uri: str) -> SweepPlan:
    """The flags alone (no store read, no Ray) turned into a plan.

    Raises:
        StageError: a bad flag value (code 2).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.study):
        raise StageError(f"--study {spec.study!r}: use letters, digits, '.', '_' and '-' (it names folders and runs)")  # fmt: skip
    try:
        space = SweepSpace(objective=spec.objective, ks=parse_ks(spec.k), lam_range=parse_range(spec.lam_range),
                           lam_log=spec.lam_log, lam_points=spec.lam_grid)  # fmt: skip
        metric = parse_metric(spec.metric)
    except ValueError as exc:
        raise StageError(str(exc)) from exc
    for flag, value in (("--trials", spec.trials), ("--parallel", spec.parallel), ("--segments", spec.segments),
                        ("--max-steps", spec.max_steps), ("--seeds", spec.seeds)):  # fmt: skip
        if value is not None and value < 1:
            raise StageError(f"{flag} must be >= 1, got {value}")
    if spec.prune_after < 0 or spec.heartbeat <= 0:
        raise StageError("--prune-after must be >= 0 and --heartbeat > 0")
    config = preset(spec.preset, max_steps=spec.max_steps)
    multi = metric != ("mean_probe",)
    pruning = spec.pruner != "none" and not multi
    segments = segment_steps(config.max_steps, spec.segments if pruning else 1)
    total = spec.trials or (space.grid_size() if spec.sampler == "grid" else 20)
    notes = []
    if spec.sampler == "grid" and total > space.grid_size():
        notes.append(f"--trials {total} is more than the grid's {space.grid_size()} points: "
                     f"running {space.grid_size()}")  # fmt: skip
        total = space.grid_size()
    if multi and spec.pruner != "none":
        notes.append("multi-objective: no pruning (Optuna prunes single-objective studies only)")
    vocab = spec.vocab or f"{spec.corpus}-uts"
    setup = TrialSetup(store=store_uri, study=spec.study, space=space, segments=segments,
                       metric=metric)  # fmt: skip
    # The pretraining flags every trial shares, as the sweep has always passed them: --use-gpu
    # only when asked (the preset decides otherwise), no --probe (the pretrain stage's default).
    shared = pretrain.PretrainSpec(corpus=spec.corpus, vocab=vocab, preset=spec.preset, objective=space.objective,
                                   tokenizer=spec.tokenizer, num_workers=spec.num_workers,
                                   use_gpu=True if spec.use_gpu else None, accelerator_type=spec.accelerator_type)  # fmt: skip
    # The settings a continued study must match: the same keys and values as every earlier
    # version of this job wrote, or a rerun of an old study would be refused.
    settings = {"objective": spec.objective, "k": list(space.ks), "sampler": spec.sampler, "metric": list(metric),
                "preset": spec.preset, "max_steps": config.max_steps, "segments": list(segments),
                "corpus": spec.corpus, "vocab": vocab, "tasks": spec.tasks, "protocol": spec.protocol,
                "seeds": spec.seeds, "tokenizer": spec.tokenizer, "seed": spec.seed,
                "pruner": spec.pruner if pruning else "none", "prune_after": spec.prune_after}  # fmt: skip
    if space.searches_lam:
        settings.update(lam_range=list(space.lam_range), lam_log=space.lam_log)
        if spec.sampler == "grid":
            settings["lam_grid"] = space.lam_grid()
    return SweepPlan(setup=setup, pretrain=shared, config=config, settings=settings, total=total,
                     notes=tuple(notes))  # fmt: skip


def trial_spec(plan: SweepPlan, params: Mapping[str, Any], name: str, max_steps: int) -> pretrain.PretrainSpec:  # fmt: skip
    """The pretrain spec of the config `params` (K, and lambda when searched), trained to
    `max_steps` as run `name`."""
    lam = float(params["lam"]) if "lam" in params else None
    return dataclasses.replace(plan.pretrain, k=int(params["k"]), lam=lam, max_steps=max_steps, name=name)  # fmt: skip


def best_command(plan: SweepPlan, params: Mapping[str, Any], store: Store) -> str:
    """The ready-to-run command line that trains this config again as run `<study>-best`."""
    spec = trial_spec(plan, params, f"{plan.setup.study}-best", plan.setup.segments[-1])
    return spec.command(store)


def check_inputs(store: Store, spec: SweepSpec, plan: SweepPlan) -> None:
    """Store contents every trial needs: corpus, vocabulary of size >= max K, tasks covering the
    metric's domains (and holding no training clip), the tokenizer.

    Raises:
        StageError: what is missing, and what to run first (code 2).
    """
    from uts.data import list_shards
    from uts.probe.task_store import find_tasks, leaked
    from uts.tags import VocabularyError, load_vocab

    setup, space, vocab = plan.setup, plan.setup.space, plan.pretrain.vocab_name
    corpus = plan.pretrain.corpus
    try:
        list_shards(store.uri("corpora", corpus))
    except FileNotFoundError as exc:
        raise StageError(f"{exc}; run jobs/ingest.py --corpus {corpus} first") from exc
    try:
        size = len(load_vocab(store.uri("vocab", vocab)))
    except VocabularyError as exc:
        raise StageError(f"{exc}; run jobs/build_vocab.py --name {vocab} first") from exc
    too_big = [k for k in space.ks if k > size]
    if too_big:
        raise StageError(f"--k {','.join(map(str, too_big))} above the size of vocabulary {vocab!r} "
                         f"({size} tags; {store.uri('vocab', vocab)}); build it at the largest K")  # fmt: skip
    tasks = find_tasks(store, spec.tasks)
    if isinstance(tasks, str):
        raise StageError(tasks)
    domains = {t.domain for t in tasks}
    missing = [d for d in setup.metric if d != "mean_probe" and d not in domains]
    if missing:
        raise StageError(f"--metric {','.join(setup.metric)}: no probe task of domain {missing} among "
                         f"{[t.name for t in tasks]}")  # fmt: skip
    problem = leaked(store, tasks, {"corpus": {"name": corpus}})
    if problem:
        raise StageError(problem)
    if space.objective == "multitask":
        tokenizer = plan.pretrain.tokenizer or plan.config.tokenizer
        try:
            from uts.models.text import load_tokenizer

            load_tokenizer(tokenizer)
        except (OSError, ValueError) as exc:
            raise StageError(f"objective multitask needs the tokenizer {tokenizer!r}, which cannot be loaded "
                             f"({type(exc).__name__}); pass --tokenizer with a local path") from exc  # fmt: skip


def ray_cpus(plan: SweepPlan, spec: SweepSpec) -> int:
    """Logical CPUs of a local Ray: one per core for the data workers, the training workers of
    every parallel trial, and headroom (as the pretrain stage asks for one run)."""
    workers = plan.config.num_workers if spec.num_workers is None else spec.num_workers
    return (os.cpu_count() or 1) + spec.parallel * workers + 2


def run(spec: SweepSpec, store: Store) -> SweepResult:
    """Check everything, open (or continue) the study, run trials up to the total, write the report.

    Raises:
        StageError: bad flags, missing inputs, or a study of the same name with other settings
            (code 2, before any trial starts).
    """
    plan = make_plan(spec, store.root_uri)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if spec.corpus == pretrain.DEMO and spec.vocab is None:  # the embedded default: made once, here
        from cluster.runtime import ensure_ray
        from stages.plan import make_demo_inputs

        ensure_ray(num_cpus=ray_cpus(plan, spec), log_to_driver=True)
        make_demo_inputs(store, vocab_name=plan.pretrain.vocab_name, cache=spec.cache)
    check_inputs(store, spec, plan)
    try:
        storage = open_storage(spec.storage, store, spec.study)
        study, created = open_study(
            spec.study, storage.storage, settings=plan.settings,
            directions=["maximize"] * len(plan.setup.metric), sampler=make_sampler(spec.sampler, plan.setup.space, spec.seed),
            pruner=make_pruner(spec.pruner, multi_objective=plan.setup.multi_objective, prune_after=spec.prune_after),
        )  # fmt: skip
    except (StorageError, StudyMismatch) as exc:
        raise StageError(str(exc)) from exc
    return run_study(spec, store, study, created, storage, plan)


def run_study(spec: SweepSpec, store: Store, study: optuna.Study, created: bool, storage: SweepStorage,
              plan: SweepPlan) -> SweepResult:  # fmt: skip
    """Run the study's remaining trials on Ray, publishing the report after each."""
    from cluster.runtime import ensure_ray

    def log(line: str) -> None:
        print(f"[sweep {spec.study}] {line}", file=sys.stderr, flush=True)

    before = len(counted_trials(study.get_trials(deepcopy=False)))
    log(f"{'created' if created else 'continuing'} study in {storage.location}: {before} of "
        f"{plan.total} trial(s) finished; segments end at steps {list(plan.setup.segments)}")  # fmt: skip
    ensure_ray(num_cpus=ray_cpus(plan, spec), log_to_driver=True)
    started = time.monotonic()

    def finished() -> None:
        storage.sync()
        publish_report(store, study, plan, storage)

    objective = make_objective(plan.setup, train=trainer(plan, store), probe=prober(spec, store),
                               command=lambda params: best_command(plan, params, store), log=log)  # fmt: skip
    result = run_trials(study, objective,
                        LoopConfig(total=plan.total, parallel=spec.parallel, heartbeat_s=spec.heartbeat,
                                   grace_s=6 * spec.heartbeat), on_finished=finished, log=log)  # fmt: skip
    storage.sync()
    report = publish_report(store, study, plan, storage)
    log(f"ran {len(result.ran)} trial(s) here ({len(result.retried)} retried from a stopped sweep) "
        f"in {time.monotonic() - started:.0f} s; {result.counted} of {plan.total} finished")  # fmt: skip
    text, best = summary(study, report)
    if best is None:
        return SweepResult(study=spec.study, report=report, best_run=None, best_command=None, summary=text,
                           exit_code=1)  # fmt: skip
    return SweepResult(study=spec.study, report=report, best_run=best.user_attrs.get("run"),
                       best_command=best.user_attrs.get("command"), summary=text)  # fmt: skip


def publish_report(
    store: Store, study: optuna.Study, plan: SweepPlan, storage: SweepStorage
) -> str:
    """Write <store>/sweeps/<study>/report/ afresh from the study's trials; its URI."""
    settings = {**plan.settings, "storage": storage.location, "total": plan.total}
    with store.staging() as staged:
        write_report(study, staged, metric=plan.setup.metric, settings=settings, total=plan.total,
                     dashboard=storage.dashboard)  # fmt: skip
        return store.publish(staged, "sweeps", plan.setup.study, "report", overwrite=True)


def trainer(plan: SweepPlan, store: Store) -> Train:
    """A trial's training: the pretrain stage run to a step budget, in this process. Its summary
    is printed and its failure recorded as the trial's, as when the sweep called the job."""

    def train(name: str, params: Mapping[str, Any], max_steps: int) -> None:
        # pretrain.run is looked up per call (tests replace it with a fake).
        try:
            result = pretrain.run(trial_spec(plan, params, name, max_steps), store)
        except StageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = exc.code
        else:
            if result.summary:
                print(result.summary)
            code = result.exit_code
        if code != 0:
            raise TrialError(f"jobs/pretrain.py exited with {code} training run {name} to "
                             f"step {max_steps} (its message is above)")  # fmt: skip

    return train


def prober(spec: SweepSpec, store: Store) -> Probe:
    """A trial's probe: the evaluate stage's scoring of one checkpoint (the leak check ran once,
    for the whole sweep, in check_inputs)."""

    def probe(checkpoint: str) -> Mapping[str, Any]:
        return evaluate.probe_checkpoint(store, checkpoint, tasks=spec.tasks, protocol=spec.protocol,
                                         seeds=spec.seeds, check_leak=False)  # fmt: skip

    return probe
