"""Evaluate encoders on probe tasks and compare them (the paper's main table).

One encoder (a run's latest checkpoint, a checkpoint folder, or a baseline) is probed on the store's
task folders under one protocol, beside the log-mel and random-init baselines when it is a
checkpoint, with retrieval or captioning on the run's held-out clips; results go to
<store>/evals/<name>/<protocol>[-<depth>]/ (uts.probe.results). `compare` tabulates stored results.
Task discovery and the leak check are library work (uts.probe.task_store).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from stages.base import StageError
from uts.probe.embeddings import (
    EncoderSource,
    WaveBank,
    checkpoint_source,
    logmel_source,
    random_init_source,
    task_embeddings,
)
from uts.probe.encoder import LAYERS, layer_suffix
from uts.probe.evaluate import TaskSpec, domain_means, evaluate_task
from uts.probe.heldout import heldout_metrics
from uts.probe.report import comparison_table
from uts.probe.results import publish_results, summarize_extra
from uts.probe.task_store import find_tasks, leaked
from uts.store import Store
from uts.train.checkpoint import latest as latest_checkpoint
from uts.train.config import PRESETS, preset

__all__ = [
    "PROTOCOLS",
    "SCRIPT",
    "EvaluateResult",
    "EvaluateSpec",
    "add_arguments",
    "compare",
    "comparison",
    "evaluate_source",
    "probe_checkpoint",
    "results_folder",
    "run",
    "spec_from_args",
]

SCRIPT = "jobs/evaluate.py"
PROTOCOLS = ("linear", "xares", "knn", "mlp", "logistic")
BASELINES = ("logmel", "random-init")
ENGINES = ("local", "ray")


@dataclass(frozen=True, kw_only=True)
class EvaluateSpec:
    """What to evaluate (exactly one of run, checkpoint, baseline, compare) and how."""

    run: str | None = None  # a run under <store>/runs: its latest checkpoint
    checkpoint: str | None = None  # a checkpoint folder URI
    baseline: str | None = None  # one of BASELINES
    compare: tuple[str, ...] | None = None  # stored evaluations to tabulate (run or baseline names)
    tasks: str = "all"  # "all", or comma-separated task names under <store>/tasks
    protocol: str = "linear"  # one of PROTOCOLS
    seeds: int | None = None  # splits per task, >= 1 (None: every split the task folder has)
    layers: str = "final"  # the depth probed: uts.probe.encoder.LAYERS
    preset: str = "demo"  # the architecture of --baseline random-init (uts.train.config.PRESETS)
    name: str | None = None  # the results folder evals/<name> (None: the run, or the baseline)
    engine: str = "local"  # embedding extraction: in this process, or with Ray Data ("ray")
    cache: bool = field(default=True, metadata={"off": "--no-cache"})  # <store>/embeddings
    baselines: bool = field(default=True, metadata={"off": "--no-baselines"})  # beside a checkpoint
    heldout: int = 500  # held-out clips for retrieval or captioning (clips; 0 skips them)

    def __post_init__(self) -> None:
        """The checks the flags' parser makes, for specs built in code (sweep, study, pretrain)."""
        chosen = [n for n in ("run", "checkpoint", "baseline", "compare") if getattr(self, n) is not None]  # fmt: skip
        if len(chosen) != 1:
            raise ValueError(f"EvaluateSpec: set exactly one of run, checkpoint, baseline, compare; got {chosen or 'none'}")  # fmt: skip
        if self.compare is not None and not self.compare:
            raise ValueError("EvaluateSpec: compare needs at least one evaluation name")
        for name, known in (("baseline", BASELINES), ("protocol", PROTOCOLS), ("layers", LAYERS),
                            ("preset", tuple(PRESETS)), ("engine", ENGINES)):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value not in known:
                raise ValueError(f"EvaluateSpec: {name} {value!r} is not one of {list(known)}")


@dataclass(frozen=True, kw_only=True)
class EvaluateResult:
    uri: str | None = None  # the results folder written, evals/<name>/<folder>; None for compare
    name: str | None = None  # evals/<name>
    results: Mapping[str, Any] = field(default_factory=dict)  # task -> the encoder's result
    summary: str = ""
    exit_code: int = 0


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(EvaluateSpec)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a run under <store>/runs: its latest checkpoint")
    what.add_argument("--checkpoint", help="a checkpoint folder URI")
    what.add_argument("--baseline", choices=BASELINES, help="evaluate a baseline")
    # extend, not store: `--compare a --compare b` tabulates both, so spec_argv round-trips
    what.add_argument("--compare", nargs="+", action="extend", metavar="NAME",
                      help="print the table of stored evaluations (run names, logmel, random-init-...)")  # fmt: skip
    parser.add_argument("--tasks", default=d["tasks"], help="all, or comma-separated task names")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=d["protocol"], help="default linear")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=d["seeds"], help="splits per task (default: all)")  # fmt: skip
    parser.add_argument("--layers", choices=LAYERS, default=d["layers"],
                        help="the depth probed: the output (final, default), the stem, one stack, or "
                             "all of them concatenated; results under <protocol>-<suffix>")  # fmt: skip
    parser.add_argument("--preset", choices=sorted(PRESETS), default=d["preset"],
                        help="--baseline random-init without --run: the architecture (default demo)")  # fmt: skip
    parser.add_argument(
        "--name", default=d["name"], help="results folder name (default: run or baseline)"
    )
    parser.add_argument("--engine", choices=ENGINES, default=d["engine"],
                        help="embedding extraction in this process or with Ray Data (corpus tasks)")  # fmt: skip
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=d["cache"],
                        help="reuse and save embeddings in <store>/embeddings (default on)")  # fmt: skip
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=d["baselines"],
                        help="also evaluate log-mel and random-init beside a checkpoint (default on)")  # fmt: skip
    parser.add_argument("--heldout", type=int, default=d["heldout"],
                        help="held-out clips for retrieval (contrastive) and captioning (ar, par, "
                             "multitask) runs; 0 skips them (default 500)")  # fmt: skip


def spec_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> EvaluateSpec:
    values = {f.name: getattr(args, f.name) for f in fields(EvaluateSpec)}
    if values["compare"] is not None:
        values["compare"] = tuple(values["compare"])
    return EvaluateSpec(**values)


def results_folder(protocol: str, layers: str = "final") -> str:
    """evals/<name>/<this>: the protocol, suffixed when another depth than the output was read."""
    return protocol + layer_suffix(layers)


def evaluate_source(
    store: Store, source: EncoderSource, tasks: Sequence[TaskSpec], *, protocol: str,
    seeds: int | None, bank: WaveBank, cache: bool = True, engine: str = "local",
    reuse: bool = False,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:  # fmt: skip
    """Results per task and the embeddings used (clip -> (D,)), extracting or reading cached
    embeddings; a progress line per task on stderr. With `reuse` (the baselines beside a
    checkpoint: every run's evaluation probes the same ones), a task's result is stored under
    its embedding space, keyed by protocol, seeds and the task's definition, and read back next
    time instead of fitting again; its embeddings are then not returned."""
    loaded: list[Any] = []  # the model, loaded on the first cache miss only

    def embedder(waves: Sequence[Any]) -> np.ndarray:
        if not loaded:
            loaded.append(source.embedder())
        return np.asarray(loaded[0](waves))

    # (corpus, clip) -> embedding: a clip of several tasks (the demo's sound_attributes holds every
    # clip of the others) is embedded once per source; an embedding does not depend on its batch.
    memo: dict[tuple[str, str], np.ndarray] = {}

    def local(task: TaskSpec, clips: list[str]) -> tuple[list[str], np.ndarray]:
        corpus = (task.meta.get("audio") or {}).get("corpus")
        if corpus is None:  # a task's own audio folder: its clip keys are paths of that folder
            ids, waves = bank(task, clips)
            return ids, embedder(waves)
        todo = [c for c in clips if (corpus, c) not in memo]
        if todo:
            ids, waves = bank(task, todo)
            memo.update(zip([(corpus, c) for c in ids], embedder(waves), strict=True))
        return list(clips), np.stack([memo[corpus, c] for c in clips])

    compute = local
    if engine == "ray" and source.kind != "logmel":
        from cluster.evaluate import ray_embeddings  # Ray only when asked for

        def compute(task: TaskSpec, clips: list[str]) -> tuple[list[str], np.ndarray]:
            return ray_embeddings(store, task, clips, source)

    results, used = {}, {}
    for task in tasks:
        started = time.monotonic()
        stored = (  # where a baseline's result on this task is kept (reuse only)
            ("embeddings", source.space, f"result-{task.name}-{protocol}-{seeds}-{task.definition_fingerprint()}")
            if reuse and cache
            else None
        )  # fmt: skip
        if stored and store.is_complete(*stored):  # the same vectors, task and fits
            results[task.name] = result = store.read_json(*stored, "result.json")
            how, count = "result reused", len(task.clips())
        else:
            features, hit = task_embeddings(store, task, source, cache=cache, compute=compute)
            result = evaluate_task(task, features, protocol=protocol, seeds=seeds)
            result.update(encoder=source.label, space=source.space, embeddings_cached=hit)
            results[task.name] = result
            used.update(features)
            how, count = ("cached" if hit else "extracted"), len(features)
            if stored:
                with store.staging() as staged:
                    (staged / "result.json").write_text(json.dumps(result), "utf-8")
                    store.publish(staged, *stored, overwrite=True)
        print(f"  {source.label:<24} {task.name:<26} {result['metric']:<9} "
              f"{result['score']['mean']:.3f} +- {result['score']['std']:.3f}  "
              f"({count:,} clips, {how}, {time.monotonic() - started:.1f} s)", file=sys.stderr)  # fmt: skip
    return results, used


def comparison(store: Store, names: Sequence[str], protocol: str, layers: str = "final") -> str:
    """The table of stored evaluations (one row per name).

    Raises:
        StageError (2): a name without a complete evaluation under this protocol and depth.
    """
    rows = {}
    folder = results_folder(protocol, layers)
    for name in names:
        if not store.is_complete("evals", name, folder):
            raise StageError(f"no {folder} evaluation {store.uri('evals', name, folder)}; run "
                             f"jobs/evaluate.py --run {name} --protocol {protocol} --layers {layers} first", 2)  # fmt: skip
        summary = store.read_json("evals", name, folder, "summary.json")
        rows[summary.get("label", name)] = summary["results"]
    return comparison_table(rows)


def compare(store: Store, names: Sequence[str], protocol: str, layers: str = "final") -> int:
    """Print the table of stored evaluations; 0, or 2 with an error on stderr when one is missing."""
    try:
        print(comparison(store, names, protocol, layers))
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return 0


def _source(spec: EvaluateSpec, store: Store) -> tuple[EncoderSource, dict[str, Any] | None]:
    """The encoder the spec names, read at its depth, and the checkpoint's state (a run's).

    Raises:
        StageError (2): the run has no checkpoint, or the checkpoint folder is not one.
    """
    state: dict[str, Any] | None = None
    try:
        if spec.run:
            found = latest_checkpoint(store, spec.run)
            if found is None:
                raise StageError(f"no checkpoint in {store.uri('runs', spec.run)}; run jobs/pretrain.py "
                                 f"--name {spec.run} first", 2)  # fmt: skip
            source, state = checkpoint_source(found[0], label=spec.run), found[1]
        elif spec.checkpoint:
            source = checkpoint_source(spec.checkpoint, label=spec.name)
        elif spec.baseline == "logmel":
            source = logmel_source()
        else:
            source = random_init_source(preset(spec.preset))
    except FileNotFoundError as exc:
        raise StageError(str(exc), 2) from exc
    return source.with_layers(spec.layers), state


def run(spec: EvaluateSpec, store: Store) -> EvaluateResult:
    """Probe the spec's encoder (and, beside a checkpoint, both baselines) on the store's tasks and
    publish the results; or, with `compare`, tabulate stored results. The summary is the table,
    the held-out metrics and where the results went.

    Raises:
        StageError: 2 for bad input (seeds < 1, unknown or no tasks, no checkpoint, a task holding
            the run's training clips, a missing evaluation to compare); 1 when a task failed.
    """
    if spec.compare:
        return EvaluateResult(summary=comparison(store, spec.compare, spec.protocol, spec.layers))
    if spec.seeds is not None and spec.seeds < 1:
        raise StageError(f"--seeds must be >= 1, got {spec.seeds}", 2)
    tasks = find_tasks(store, spec.tasks)
    if isinstance(tasks, str):
        raise StageError(tasks, 2)
    source, state = _source(spec, store)
    problem = leaked(store, tasks, source.lineage)
    if problem:
        raise StageError(problem, 2)
    name = spec.name or spec.run or ("logmel" if source.kind == "logmel" else source.space)
    print(f"evaluating {source.label} ({source.space}) on {len(tasks)} task(s), protocol {spec.protocol}",
          file=sys.stderr)  # fmt: skip
    started = time.monotonic()
    try:
        bank = WaveBank(store)
        for task in tasks:
            bank.want(task)

        def scored(encoder: EncoderSource, reuse: bool = False) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:  # fmt: skip
            return evaluate_source(store, encoder, tasks, protocol=spec.protocol, seeds=spec.seeds,
                                   bank=bank, cache=spec.cache, engine=spec.engine, reuse=reuse)  # fmt: skip

        results, used = scored(source)
        rows: dict[str, Any] = {}
        if source.kind == "checkpoint" and spec.baselines:
            for baseline in (
                logmel_source(),
                random_init_source(source.config).with_layers(spec.layers),
            ):
                rows[baseline.label] = scored(baseline, reuse=True)[0]
        extra = heldout_metrics(store, source, spec.heldout) if source.kind == "checkpoint" else {}
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise StageError(str(exc), 1) from exc
    domains = {
        c: t.domain
        for t in tasks
        for c in t.clips()
        if t.domain in ("speech", "music", "environment")
    }
    ids = sorted(c for c in used if c in domains)
    embeddings = (np.stack([used[c] for c in ids]), [domains[c] for c in ids]) if ids else None
    summary = {"label": source.label, "space": source.space, "kind": source.kind, "protocol": spec.protocol,
               "layers": spec.layers,
               "checkpoint": source.checkpoint, "lineage": source.lineage, "state": state,
               "baselines": rows, **extra, "wall_s": round(time.monotonic() - started, 1)}  # fmt: skip
    notes = [f"{t.name}: {t.meta.get('notes')}" for t in tasks if t.meta.get("notes")]
    uri = publish_results(store, name, results_folder(spec.protocol, spec.layers), results, summary,
                          rows=rows, embeddings=embeddings, notes=notes)  # fmt: skip
    lines = [comparison_table({**rows, source.label: results})]
    lines += [f"{key}: {json.dumps(summarize_extra(value))}" for key, value in extra.items()]
    lines.append(f"wrote {uri} in {time.monotonic() - started:.0f} s")
    return EvaluateResult(uri=uri, name=name, results=results, summary="\n".join(lines))


def probe_checkpoint(store: Store, checkpoint: str, *, tasks: str = "all", protocol: str = "logistic",
                     seeds: int | None = None, cache: bool = True, engine: str = "local",
                     check_leak: bool = True, layers: str = "final") -> dict[str, Any]:  # fmt: skip
    """Probe one checkpoint as the evaluation scores it, for callers that want the numbers (sweeps):
    no baselines, no held-out metrics, nothing published.

    Returns {"space", "results": {task: result}, "domain_means": {speech, music, environment, all}}.

    Raises:
        ValueError: no or unknown task folders, or a task holding the run's training clips.
        FileNotFoundError: `checkpoint` is not a checkpoint folder.
    """
    found = find_tasks(store, tasks)
    if isinstance(found, str):
        raise ValueError(found)
    source = checkpoint_source(checkpoint).with_layers(layers)
    problem = leaked(store, found, source.lineage) if check_leak else None
    if problem:
        raise ValueError(problem)
    bank = WaveBank(store)
    for task in found:
        bank.want(task)
    results, _ = evaluate_source(store, source, found, protocol=protocol, seeds=seeds, bank=bank,
                                 cache=cache, engine=engine)  # fmt: skip
    return {"space": source.space, "results": results, "domain_means": domain_means(results)}
