"""Sweep the vocabulary size K and the multitask weight lambda with Optuna (the paper's ablation).

    python jobs/sweep.py --study k-demo --objective mtc --k 100,200,300 --segments 2
    ray job submit -- python jobs/sweep.py --store s3://bucket/uts --study mt-m --objective multitask \\
        --corpus big --vocab big --k 800,1000,1500,2000,3000 --lam-range 0.1,10 --lam-log \\
        --sampler tpe --trials 30 --parallel 4 --preset m --storage postgresql://user@db/optuna

Each trial trains one named run `<study>-t<number>` with jobs/pretrain.py (in this process, in
segments that each end, so the pruner can stop a trial between them with nothing left running),
probes it on the task folders after every segment, and reports the mean probe score (or one score
per domain: a multi-objective study with a Pareto front). Every trial reads the same corpus, tags
and vocabulary (one vocabulary built at the largest K serves every K as a prefix). The study lives
in an Optuna journal under <store>/sweeps/<study>/ (or --storage URL); rerunning the same command
continues it: finished trials are kept, a trial a killed driver left running is retried from its
run's checkpoint, and --trials counts every finished trial. Writes <store>/sweeps/<study>/report/
(report.md, value_per_k.png, importances.png, pareto.png, curves.png) after every trial.
Exit codes: 0 done, 1 no trial completed, 2 bad arguments or inputs (before any trial starts).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from uts.probe.evaluate import DOMAINS
from uts.store import Store
from uts.train.config import PRESETS, preset

DEFAULT_KS = "800,1000,1500,2000,3000"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from tuning.study import PRUNERS, SAMPLERS

    parser = argparse.ArgumentParser(prog="sweep.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--study", required=True, help="study name (letters, digits, . _ -)")
    parser.add_argument("--objective", required=True, choices=("mtc", "multitask"))
    parser.add_argument("--k", default=DEFAULT_KS, help=f"vocabulary sizes (default {DEFAULT_KS})")
    parser.add_argument("--lam-range", default="0.1,10", help="multitask: MIN,MAX (default 0.1,10)")
    parser.add_argument("--lam-log", action="store_true", help="sample lambda on a log scale")
    parser.add_argument("--lam-grid", type=int, default=3,
                        help="--sampler grid: lambda values from MIN to MAX, geometric (default 3)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=None,
                        help="finished trials wanted in the study (default: the grid's size; tpe 20)")  # fmt: skip
    parser.add_argument("--parallel", type=int, default=1, help="trials at once (default 1)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="default demo")
    parser.add_argument("--storage", default="journal",
                        help="journal (a file under <store>/sweeps/<study>/) or an Optuna RDB URL")  # fmt: skip
    parser.add_argument("--sampler", choices=SAMPLERS, default="grid", help="default grid")
    parser.add_argument("--pruner", choices=PRUNERS, default="median", help="default median")
    parser.add_argument("--prune-after", type=int, default=5,
                        help="median: complete trials before any is pruned (default 5)")  # fmt: skip
    parser.add_argument("--segments", type=int, default=3,
                        help="training segments per trial, probed after each (default 3; 1 without pruning)")  # fmt: skip
    parser.add_argument("--metric", default="mean_probe",
                        help="mean_probe (one objective) or domains, e.g. speech,music,environment")  # fmt: skip
    parser.add_argument("--corpus", default="demo", help="corpus name (default demo)")
    parser.add_argument("--vocab", default=None, help="vocabulary name (default <corpus>-uts)")
    parser.add_argument("--tasks", default="all", help="probe tasks: all, or comma-separated names")
    parser.add_argument("--protocol", default="logistic",
                        choices=("linear", "xares", "knn", "mlp", "logistic"), help="default logistic")  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, default=None, help="probe splits per task (default all)"
    )
    parser.add_argument("--max-steps", type=int, default=None, help="steps per trial (preset's)")
    parser.add_argument("--tokenizer", default=None, help="multitask tokenizer (id or local path)")
    parser.add_argument("--num-workers", type=int, default=None, help="training workers per trial")
    parser.add_argument("--use-gpu", action="store_true", help="train on GPUs")
    parser.add_argument("--accelerator-type", default=None, help="e.g. V100")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument("--heartbeat", type=float, default=10.0,
                        help="seconds between trial heartbeats; a trial silent for 6x is retried (default 10)")  # fmt: skip
    parser.add_argument(
        "--cache", default="./.uts-cache/demo", help="embedded default: demo package cache"
    )
    return parser.parse_args(argv)


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


def check_args(args: argparse.Namespace) -> dict[str, Any] | str:
    """Flags alone (no store, no Ray): the plan, or an error message."""
    from tuning.objective import TrialSetup, segment_steps
    from tuning.space import SweepSpace, parse_ks, parse_range

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.study):
        return f"--study {args.study!r}: use letters, digits, '.', '_' and '-' (it names folders and runs)"
    try:
        space = SweepSpace(objective=args.objective, ks=parse_ks(args.k), lam_range=parse_range(args.lam_range),
                           lam_log=args.lam_log, lam_points=args.lam_grid)  # fmt: skip
        metric = parse_metric(args.metric)
    except ValueError as exc:
        return str(exc)
    for flag, value in (("--trials", args.trials), ("--parallel", args.parallel), ("--segments", args.segments),
                        ("--max-steps", args.max_steps), ("--seeds", args.seeds)):  # fmt: skip
        if value is not None and value < 1:
            return f"{flag} must be >= 1, got {value}"
    if args.prune_after < 0 or args.heartbeat <= 0:
        return "--prune-after must be >= 0 and --heartbeat > 0"
    config = preset(args.preset, max_steps=args.max_steps)
    multi = metric != ("mean_probe",)
    pruning = args.pruner != "none" and not multi
    segments = segment_steps(config.max_steps, args.segments if pruning else 1)
    total = args.trials or (space.grid_size() if args.sampler == "grid" else 20)
    notes = []
    if args.sampler == "grid" and total > space.grid_size():
        notes.append(f"--trials {total} is more than the grid's {space.grid_size()} points: "
                     f"running {space.grid_size()}")  # fmt: skip
        total = space.grid_size()
    if multi and args.pruner != "none":
        notes.append("multi-objective: no pruning (Optuna prunes single-objective studies only)")
    vocab = args.vocab or f"{args.corpus}-uts"
    setup = TrialSetup(store=args.store, study=args.study, space=space, segments=segments, metric=metric,
                       preset=args.preset, corpus=args.corpus, vocab=vocab, tasks=args.tasks,
                       protocol=args.protocol, seeds=args.seeds, tokenizer=args.tokenizer,
                       num_workers=args.num_workers, use_gpu=args.use_gpu,
                       accelerator_type=args.accelerator_type)  # fmt: skip
    settings = {"objective": args.objective, "k": list(space.ks), "sampler": args.sampler, "metric": list(metric),
                "preset": args.preset, "max_steps": config.max_steps, "segments": list(segments),
                "corpus": args.corpus, "vocab": vocab, "tasks": args.tasks, "protocol": args.protocol,
                "seeds": args.seeds, "tokenizer": args.tokenizer, "seed": args.seed,
                "pruner": args.pruner if pruning else "none", "prune_after": args.prune_after}  # fmt: skip
    if space.searches_lam:
        settings.update(lam_range=list(space.lam_range), lam_log=space.lam_log)
        if args.sampler == "grid":
            settings["lam_grid"] = space.lam_grid()
    return {"space": space, "metric": metric, "setup": setup, "settings": settings, "total": total,
            "notes": notes, "config": config}  # fmt: skip


def check_inputs(store: Store, plan: dict[str, Any]) -> str | None:
    """Store contents every trial needs: corpus, vocabulary of size >= max K, tasks covering the
    metric's domains (and holding no training clip), the tokenizer. An error message, or None."""
    from jobs.evaluate import find_tasks, leaked
    from uts.data import list_shards
    from uts.tags import VocabularyError, load_vocab

    setup, space = plan["setup"], plan["space"]
    try:
        list_shards(store.uri("corpora", setup.corpus))
    except FileNotFoundError as exc:
        return f"{exc}; run jobs/ingest.py --corpus {setup.corpus} first"
    try:
        size = len(load_vocab(store.uri("vocab", setup.vocab)))
    except VocabularyError as exc:
        return f"{exc}; run jobs/build_vocab.py --name {setup.vocab} first"
    too_big = [k for k in space.ks if k > size]
    if too_big:
        return (f"--k {','.join(map(str, too_big))} above the size of vocabulary {setup.vocab!r} "
                f"({size} tags; {store.uri('vocab', setup.vocab)}); build it at the largest K")  # fmt: skip
    tasks = find_tasks(store, setup.tasks)
    if isinstance(tasks, str):
        return tasks
    domains = {t.domain for t in tasks}
    missing = [d for d in plan["metric"] if d != "mean_probe" and d not in domains]
    if missing:
        return f"--metric {','.join(plan['metric'])}: no probe task of domain {missing} among {[t.name for t in tasks]}"
    problem = leaked(store, tasks, {"corpus": {"name": setup.corpus}})
    if problem:
        return problem
    if space.objective == "multitask":
        tokenizer = setup.tokenizer or plan["config"].tokenizer
        try:
            from uts.models.text import load_tokenizer

            load_tokenizer(tokenizer)
        except (OSError, ValueError) as exc:
            return (f"objective multitask needs the tokenizer {tokenizer!r}, which cannot be loaded "
                    f"({type(exc).__name__}); pass --tokenizer with a local path")  # fmt: skip
    return None


def publish_report(store: Store, study: Any, plan: dict[str, Any], storage: Any) -> str:
    from tuning.report import write_report

    settings = {**plan["settings"], "storage": storage.location, "total": plan["total"]}
    with store.staging() as staged:
        write_report(study, staged, metric=plan["metric"], settings=settings, total=plan["total"],
                     dashboard=storage.dashboard)  # fmt: skip
        return store.publish(staged, "sweeps", plan["setup"].study, "report", overwrite=True)


def print_summary(study: Any, plan: dict[str, Any], report: str) -> int:
    from tuning.report import best_trials, trial_note

    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    print(f"{'#':>4} {'K':>6} {'lambda':>8} {'state':<9} {'value':<24} {'wall s':>8}  note")
    for t in trials:
        lam = f"{t.params['lam']:.4g}" if "lam" in t.params else "-"
        values = ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"
        wall = t.user_attrs.get("wall_s")
        wall = "-" if wall is None else f"{wall:.0f}"
        print(f"{t.number:>4} {t.params.get('k', '-')!s:>6} {lam:>8} {t.state.name.lower():<9} "
              f"{values:<24} {wall:>8}  {trial_note(t)}")  # fmt: skip
    best = best_trials(study)
    if not best:
        print(f"no trial completed; report: {report}")
        return 1
    top = best[0]
    print(
        f"best trial: #{top.number} {top.params} -> {top.values} (run {top.user_attrs.get('run')})"
    )
    print(f"report: {report}/report.md")
    print(f"best config, ready to run:\n  {top.user_attrs.get('command')}")
    return 0


def ray_cpus(plan: dict[str, Any], args: argparse.Namespace) -> int:
    """Logical CPUs of a local Ray: one per core for the data workers, the training workers of
    every parallel trial, and headroom (as jobs/pretrain.py asks for one run)."""
    workers = plan["config"].num_workers if args.num_workers is None else args.num_workers
    return (os.cpu_count() or 1) + args.parallel * workers + 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = check_args(args)
    if isinstance(plan, str):
        print(f"error: {plan}", file=sys.stderr)
        return 2
    for note in plan["notes"]:
        print(f"note: {note}", file=sys.stderr)
    store, setup = Store(args.store), plan["setup"]
    if args.corpus == "demo" and args.vocab is None:  # the embedded default: made once, here
        from cluster.runtime import ensure_ray
        from jobs.pretrain import make_demo_inputs

        ensure_ray(num_cpus=ray_cpus(plan, args), log_to_driver=True)
        make_demo_inputs(store, setup.vocab, args.cache)
    problem = check_inputs(store, plan)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from tuning.storage import StorageError, open_storage
    from tuning.study import StudyMismatch, make_pruner, make_sampler, open_study

    try:
        storage = open_storage(args.storage, store, args.study)
        study, created = open_study(
            args.study, storage.storage, settings=plan["settings"],
            directions=["maximize"] * len(plan["metric"]), sampler=make_sampler(args.sampler, plan["space"], args.seed),
            pruner=make_pruner(args.pruner, multi_objective=setup.multi_objective, prune_after=args.prune_after),
        )  # fmt: skip
    except (StorageError, StudyMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(store, study, created, storage, plan, args)


def run(store: Store, study: Any, created: bool, storage: Any, plan: dict[str, Any],
        args: argparse.Namespace) -> int:  # fmt: skip
    from cluster.runtime import ensure_ray
    from tuning.loop import LoopConfig, counted_trials, run_trials
    from tuning.objective import make_objective

    def log(line: str) -> None:
        print(f"[sweep {args.study}] {line}", file=sys.stderr, flush=True)

    before = len(counted_trials(study.get_trials(deepcopy=False)))
    log(f"{'created' if created else 'continuing'} study in {storage.location}: {before} of "
        f"{plan['total']} trial(s) finished; segments end at steps {list(plan['setup'].segments)}")  # fmt: skip
    ensure_ray(num_cpus=ray_cpus(plan, args), log_to_driver=True)
    started = time.monotonic()

    def finished() -> None:
        storage.sync()
        publish_report(store, study, plan, storage)

    result = run_trials(study, make_objective(plan["setup"], log=log),
                        LoopConfig(total=plan["total"], parallel=args.parallel, heartbeat_s=args.heartbeat,
                                   grace_s=6 * args.heartbeat), on_finished=finished, log=log)  # fmt: skip
    storage.sync()
    report = publish_report(store, study, plan, storage)
    log(f"ran {len(result.ran)} trial(s) here ({len(result.retried)} retried from a stopped sweep) "
        f"in {time.monotonic() - started:.0f} s; {result.counted} of {plan['total']} finished")  # fmt: skip
    return print_summary(study, plan, report)


if __name__ == "__main__":
    sys.exit(main())
