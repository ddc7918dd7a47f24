"""Evaluate encoders on probe tasks and compare them (the paper's main table).

    python jobs/evaluate.py --run demo-mtc-k300                     # latest checkpoint of a run
    python jobs/evaluate.py --checkpoint ./uts-store/runs/r/checkpoint_X --protocol knn
    python jobs/evaluate.py --baseline logmel                       # or random-init (--preset / --run)
    python jobs/evaluate.py --compare demo-mtc-k300 logmel          # a table from stored results
    ray job submit -- python jobs/evaluate.py --store s3://bucket/uts --run mt-1500 --engine ray

Embeddings are extracted once per (encoder, task) with the encoder in eval mode and cached under
<store>/embeddings/; results go to <store>/evals/<name>/<protocol>/ (<task>.json, summary.json,
report.md, bars.png, pca.png). A checkpoint is evaluated beside the log-mel baseline and the
random-init encoder of its architecture, under the same protocol. A task whose clips were in the
run's pretraining data is refused. `--layers all` probes the concatenated means of the stem, every
stack and the output instead of the output alone (results under <protocol>-all-layers/); `--layers
stem|stack1..stack6` probes one depth (<protocol>-<depth>/). Exit codes:
0 done, 1 a task failed, 2 bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uts.probe.embeddings import (
    EncoderSource,
    WaveBank,
    checkpoint_source,
    logmel_source,
    random_init_source,
    task_embeddings,
)
from uts.probe.encoder import LAYERS, layer_suffix
from uts.probe.evaluate import TaskSpec, domain_means, evaluate_task, load_task
from uts.probe.report import comparison_table, write_report
from uts.store import Store
from uts.train.config import PRESETS, preset
from uts.train.model import latest_checkpoint

PROTOCOLS = ("linear", "xares", "knn", "mlp", "logistic")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a run under <store>/runs: its latest checkpoint")
    what.add_argument("--checkpoint", help="a checkpoint folder URI")
    what.add_argument("--baseline", choices=("logmel", "random-init"), help="evaluate a baseline")
    what.add_argument("--compare", nargs="+", metavar="NAME",
                      help="print the table of stored evaluations (run names, logmel, random-init-...)")  # fmt: skip
    parser.add_argument("--tasks", default="all", help="all, or comma-separated task names")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="linear", help="default linear")
    parser.add_argument("--seeds", type=int, default=None, help="splits per task (default: all)")
    parser.add_argument("--layers", choices=LAYERS, default="final",
                        help="the depth probed: the output (final, default), the stem, one stack, or "
                             "all of them concatenated; results under <protocol>-<suffix>")  # fmt: skip
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="--baseline random-init without --run: the architecture (default demo)")  # fmt: skip
    parser.add_argument(
        "--name", default=None, help="results folder name (default: run or baseline)"
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="embedding extraction in this process or with Ray Data (corpus tasks)")  # fmt: skip
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                        help="reuse and save embeddings in <store>/embeddings (default on)")  # fmt: skip
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="also evaluate log-mel and random-init beside a checkpoint (default on)")  # fmt: skip
    parser.add_argument("--heldout", type=int, default=500,
                        help="held-out clips for retrieval (contrastive) and captioning (ar, par, "
                             "multitask) runs; 0 skips them (default 500)")  # fmt: skip
    return parser.parse_args(argv)


def find_tasks(store: Store, wanted: str) -> list[TaskSpec] | str:
    root = Path(store.path("tasks"))
    if not store.local:
        return (
            "task folders are read from a local store; copy <store>/tasks locally and pass --store"
        )
    names = (
        sorted(p.name for p in root.iterdir() if (p / "task.json").exists())
        if root.is_dir()
        else []
    )
    if wanted != "all":
        asked = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = [n for n in asked if n not in names]
        if unknown:
            return f"unknown task(s) {unknown}; known in {store.uri('tasks')}: {names}"
        names = asked
    if not names:
        return f"no task folders in {store.uri('tasks')}; run jobs/tasks.py (demo) or write them (README)"
    return [load_task(root / n) for n in names]


def leaked(store: Store, tasks: Sequence[TaskSpec], lineage: dict[str, Any] | None) -> str | None:
    """A message when a task's clips were in the run's pretraining data (clip ids in the pretrain
    partition of the corpus it trained on)."""
    corpus = (lineage or {}).get("corpus", {}).get("name")
    if not corpus or not store.is_complete("corpora", corpus):
        return None
    from uts.data import iter_clip_batches

    clips = {c: t.name for t in tasks for c in t.clips()}
    for batch in iter_clip_batches(store.uri("corpora", corpus), columns=["clip_id", "partition"]):
        for clip, partition in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
        ):
            if partition == "pretrain" and clip in clips:
                return (f"task {clips[clip]} uses clip {clip!r}, which is in the pretraining partition "
                        f"of corpus {corpus!r} the run trained on: probes must not see training clips")  # fmt: skip
    return None


def evaluate_source(
    store: Store, source: EncoderSource, tasks: Sequence[TaskSpec], args: argparse.Namespace,
    bank: WaveBank,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:  # fmt: skip
    """Results per task and the embeddings used, extracting (or reading cached) embeddings."""
    loaded: list[Any] = []  # the model, loaded on the first cache miss only

    def embedder(waves: Sequence[Any]) -> np.ndarray:
        if not loaded:
            loaded.append(source.embedder())
        return np.asarray(loaded[0](waves))

    compute = None
    if args.engine == "ray" and source.kind != "logmel":
        from cluster.evaluate import ray_embeddings

        def compute(task: TaskSpec, clips: list[str]) -> tuple[list[str], np.ndarray]:
            return ray_embeddings(store, task, clips, source)

    results, used = {}, {}
    for task in tasks:
        started = time.monotonic()
        features, hit = task_embeddings(
            store, task, source, cache=args.cache, embedder=embedder, compute=compute, audio=bank
        )
        result = evaluate_task(task, features, protocol=args.protocol, seeds=args.seeds)
        result.update(encoder=source.label, space=source.space, embeddings_cached=hit)
        results[task.name] = result
        used.update(features)
        print(f"  {source.label:<24} {task.name:<26} {result['metric']:<9} "
              f"{result['score']['mean']:.3f} +- {result['score']['std']:.3f}  "
              f"({len(features):,} clips, {'cached' if hit else 'extracted'}, {time.monotonic() - started:.1f} s)",
              file=sys.stderr)  # fmt: skip
    return results, used


def publish(store: Store, name: str, protocol: str, results: dict[str, dict[str, Any]],
            summary: dict[str, Any], report: dict[str, Any]) -> str:  # fmt: skip
    """Write evals/<name>/<protocol>/ whole: earlier tasks' results kept, these replaced."""
    parts = ("evals", name, protocol)
    merged: dict[str, dict[str, Any]] = {}
    if store.is_complete(*parts):  # other tasks' results of the same encoder are kept
        earlier = store.read_json(*parts, "summary.json")
        if earlier.get("space") == summary["space"]:
            merged = earlier.get("results", {})
    merged.update(results)
    summary = {**summary, "results": merged, "domain_means": domain_means(merged)}
    with store.staging() as staged:
        for task, result in merged.items():
            (staged / f"{task}.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        (staged / "summary.json").write_text(
            json.dumps(summary, indent=2, default=str) + "\n", "utf-8"
        )
        rows = {**report["rows"], summary["label"]: merged}
        write_report(staged, title=f"Evaluation of {summary['label']}", rows=rows, lineage=summary.get("lineage"),
                     state=summary.get("state"), protocol=protocol, embeddings=report.get("embeddings"),
                     notes=report.get("notes", ()),
                     extra={k: summarize_extra(summary[k]) for k in ("retrieval", "captioning") if k in summary})  # fmt: skip
        return store.publish(staged, *parts, overwrite=True)


def heldout_metrics(store: Store, source: EncoderSource, limit: int) -> dict[str, Any]:
    """Retrieval (contrastive) or captioning (ar, par, multitask) on the run's held-out clips."""
    from uts.models.text import load_tokenizer
    from uts.probe.heldout import captioning, heldout_clips, retrieval
    from uts.train.model import load_checkpoint

    objective = source.config.objective
    if objective == "mtc" or limit <= 0 or source.checkpoint is None:
        return {}
    held = heldout_clips(store, source.lineage, limit=limit)
    if not held.clip_ids:
        return {"heldout": {"skipped": "the run has no held-out clips with tags at its K"}}
    model = load_checkpoint(source.checkpoint)[0]
    print(
        f"  {source.label}: {objective} on {len(held.clip_ids)} held-out clip(s)", file=sys.stderr
    )
    if objective == "contrastive":
        return {"retrieval": retrieval(model, held, load_tokenizer(source.config.text_model))}
    tokenizer = load_tokenizer(source.config.tokenizer)
    modes = ("ar", "par") if objective == "multitask" else (objective,)
    return {"captioning": {mode: captioning(model, held, tokenizer, mode=mode) for mode in modes}}


def summarize_extra(value: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of retrieval or captioning results (no examples)."""
    out: dict[str, Any] = {}
    for key, part in value.items():
        if isinstance(part, dict):
            out[key] = {k: v for k, v in part.items() if k not in ("examples", "per_clip")}
        else:
            out[key] = part
    return out


def results_folder(protocol: str, layers: str = "final") -> str:
    """evals/<name>/<this>: the protocol, suffixed when another depth than the output was read."""
    return protocol + layer_suffix(layers)


def compare(store: Store, names: Sequence[str], protocol: str, layers: str = "final") -> int:
    rows = {}
    folder = results_folder(protocol, layers)
    for name in names:
        if not store.is_complete("evals", name, folder):
            print(f"error: no {folder} evaluation {store.uri('evals', name, folder)}; run "
                  f"jobs/evaluate.py --run {name} --protocol {protocol} --layers {layers} first",
                  file=sys.stderr)  # fmt: skip
            return 2
        summary = store.read_json("evals", name, folder, "summary.json")
        rows[summary.get("label", name)] = summary["results"]
    print(comparison_table(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.store)
    if args.compare:
        return compare(store, args.compare, args.protocol, args.layers)
    if args.seeds is not None and args.seeds < 1:
        print(f"error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    tasks = find_tasks(store, args.tasks)
    if isinstance(tasks, str):
        print(f"error: {tasks}", file=sys.stderr)
        return 2
    state: dict[str, Any] | None = None
    try:
        if args.run:
            found = latest_checkpoint(store, args.run)
            if found is None:
                print(f"error: no checkpoint in {store.uri('runs', args.run)}; run jobs/pretrain.py "
                      f"--name {args.run} first", file=sys.stderr)  # fmt: skip
                return 2
            source, state = checkpoint_source(found[0], label=args.run), found[1]
        elif args.checkpoint:
            source = checkpoint_source(args.checkpoint, label=args.name)
        elif args.baseline == "logmel":
            source = logmel_source()
        else:
            source = random_init_source(preset(args.preset))
        source = source.with_layers(args.layers)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = leaked(store, tasks, source.lineage)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    name = args.name or args.run or ("logmel" if source.kind == "logmel" else source.space)
    print(f"evaluating {source.label} ({source.space}) on {len(tasks)} task(s), protocol {args.protocol}",
          file=sys.stderr)  # fmt: skip
    started = time.monotonic()
    try:
        bank = WaveBank(store)
        for task in tasks:
            bank.want(task)
        results, used = evaluate_source(store, source, tasks, args, bank)
        rows: dict[str, Any] = {}
        if source.kind == "checkpoint" and args.baselines:
            for baseline in (
                logmel_source(),
                random_init_source(source.config).with_layers(args.layers),
            ):
                rows[baseline.label] = evaluate_source(store, baseline, tasks, args, bank)[0]
        extra = heldout_metrics(store, source, args.heldout) if source.kind == "checkpoint" else {}
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    domains = {
        c: t.domain
        for t in tasks
        for c in t.clips()
        if t.domain in ("speech", "music", "environment")
    }
    ids = sorted(c for c in used if c in domains)
    embeddings = (np.stack([used[c] for c in ids]), [domains[c] for c in ids]) if ids else None
    summary = {"label": source.label, "space": source.space, "kind": source.kind, "protocol": args.protocol,
               "layers": args.layers,
               "checkpoint": source.checkpoint, "lineage": source.lineage, "state": state,
               "baselines": rows, **extra, "wall_s": round(time.monotonic() - started, 1)}  # fmt: skip
    notes = [f"{t.name}: {t.meta.get('notes')}" for t in tasks if t.meta.get("notes")]
    uri = publish(store, name, results_folder(args.protocol, args.layers), results, summary,
                  {"rows": rows, "embeddings": embeddings, "notes": notes})  # fmt: skip
    print(comparison_table({**rows, source.label: results}))
    for key, value in extra.items():
        print(f"{key}: {json.dumps(summarize_extra(value))}")
    print(f"wrote {uri} in {time.monotonic() - started:.0f} s")
    return 0


def probe_checkpoint(store: Store, checkpoint: str, *, tasks: str = "all", protocol: str = "logistic",
                     seeds: int | None = None, cache: bool = True, engine: str = "local",
                     check_leak: bool = True, layers: str = "final") -> dict[str, Any]:  # fmt: skip
    """Probe one checkpoint as this job scores it, for callers that want the numbers (sweeps):
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
    args = argparse.Namespace(engine=engine, cache=cache, protocol=protocol, seeds=seeds)
    results, _ = evaluate_source(store, source, found, args, bank)
    return {"space": source.space, "results": results, "domain_means": domain_means(results)}


if __name__ == "__main__":
    sys.exit(main())
