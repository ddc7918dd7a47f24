"""Pretrain a Zipformer encoder on a corpus and its UTS vocabulary with Ray Train (the main job).

    python jobs/pretrain.py                               # the embedded default, offline, CPU
    python jobs/pretrain.py --preset smoke --corpus c --vocab v --name test
    ray job submit -- python jobs/pretrain.py --preset m --store s3://bucket/uts --corpus big \\
        --vocab big --k 1500 --objective multitask --lam 1.0 --num-workers 8 --use-gpu \\
        --accelerator-type V100 --name mt-1500

With no arguments: if the demo corpus, its captions, tags and vocabulary are missing from the store,
they are made first (ingest demo, caption corpus, tag rules, build_vocab), then the `demo` preset
trains. Rerunning with the same --name resumes from the run's latest checkpoint (Ray Train V2);
--init-from warm-starts a new run from a checkpoint's weights. Writes <store>/runs/<name>/.
Exit codes: 0 done, 1 training failed, 2 bad arguments or missing inputs (the message says what to
run first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.tag import latest_complete
from uts import __version__
from uts.llm.stage import versions
from uts.objectives import OBJECTIVES
from uts.store import Store, join_uri
from uts.tags import load_vocab
from uts.train.config import PRESETS, PretrainConfig, preset

DEMO = "demo"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pretrain.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="demo", help="configuration (default demo)"
    )
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store)")
    parser.add_argument("--corpus", default=DEMO, help="corpus name (default demo)")
    parser.add_argument(
        "--tags", default="latest", help="tags fingerprint of the corpus, or latest"
    )
    parser.add_argument(
        "--vocab", default=None, help="vocabulary name under <store>/vocab (default <corpus>-uts)"
    )
    parser.add_argument("--k", type=int, default=None, help="vocabulary size K (preset's default)")
    parser.add_argument("--objective", choices=OBJECTIVES, default=None, help="default mtc")
    parser.add_argument("--lam", type=float, default=None, help="multitask: L_mtc + lam * L_gen")
    parser.add_argument("--num-workers", type=int, default=None, help="training workers")
    parser.add_argument("--use-gpu", action="store_true", default=None, help="train on GPUs")
    parser.add_argument(
        "--accelerator-type", default=None, help="e.g. V100 (Ray accelerator label)"
    )
    parser.add_argument("--max-steps", type=int, default=None, help="training steps")
    parser.add_argument(
        "--lr", type=float, default=None, help="peak learning rate (preset's default)"
    )
    parser.add_argument("--batch-seconds", type=float, default=None,
                        help="audio seconds per step across all workers, padding included")  # fmt: skip
    parser.add_argument("--tokenizer", default=None, help="ar/par/multitask tokenizer (id or path)")
    parser.add_argument("--text-model", default=None, help="contrastive text tower (id or path)")
    parser.add_argument("--name", default=None, help="run name (default <corpus>-<objective>-k<K>)")
    parser.add_argument("--init-from", default=None, help="warm start from a checkpoint folder URI")
    parser.add_argument(
        "--cache", default="./.uts-cache/demo", help="embedded default: demo package cache"
    )
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="after training, probe the encoder on the demo tasks (default: on for the demo corpus)")  # fmt: skip
    return parser.parse_args(argv)


def make_demo_inputs(store: Store, vocab_name: str, cache: str) -> None:
    """The embedded default's inputs, made in order when missing (each step is a no-op when done)."""
    from jobs import build_vocab, caption, ingest, tag, tasks

    steps: list[tuple[str, Any, list[str]]] = [
        (
            "ingest",
            ingest.main,
            ["--store", store.root_uri, "--corpus", DEMO, "--source", "demo", "--cache", cache],
        ),
        ("tasks", tasks.main, ["--store", store.root_uri, "--corpus", DEMO]),
        (
            "caption",
            caption.main,
            ["--store", store.root_uri, "--corpus", DEMO, "--backend", "corpus"],
        ),
        ("tag", tag.main, ["--store", store.root_uri, "--corpus", DEMO, "--backend", "rules"]),
    ]
    for name, main, argv in steps:
        print(f"[embedded default] {name}: {' '.join(argv)}", file=sys.stderr)
        if main(argv) != 0:
            raise RuntimeError(f"the embedded default's {name} step failed")
    fp = latest_complete(store, "tags", DEMO)
    tags_uri = store.uri("tags", DEMO, str(fp))
    argv = ["--store", store.root_uri, "--tags", tags_uri, "--name", vocab_name]
    if store.is_complete("vocab", vocab_name):
        # Built from these tags? (A newer tagger writes a new tags folder; the vocabulary follows.)
        sources = store.read_json("vocab", vocab_name, "vocab.json").get("sources", [])
        if any(f"/{fp}/" in str(source.get("uri", "")) for source in sources):
            return
        argv.append("--overwrite")
    print(f"[embedded default] build_vocab: {' '.join(argv)}", file=sys.stderr)
    if build_vocab.main(argv) != 0:
        raise RuntimeError("the embedded default's build_vocab step failed")


def read_tags(store: Store, corpus: str, fingerprint: str) -> dict[str, list[str]]:
    """clip id -> tags, for the tag rows with status ok."""
    from uts.llm.stage import read_parts

    rows = read_parts(store.uri("tags", corpus, fingerprint), ["clip_id", "tags", "status"])
    return {r["clip_id"]: r["tags"] for r in rows if r["status"] == "ok" and r["tags"]}


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.store)
    vocab_name = args.vocab or f"{args.corpus}-uts"
    config = preset(args.preset, k=args.k, objective=args.objective, lam=args.lam, num_workers=args.num_workers,
                    use_gpu=args.use_gpu, max_steps=args.max_steps, batch_seconds=args.batch_seconds, lr=args.lr,
                    tokenizer=args.tokenizer, text_model=args.text_model)  # fmt: skip
    from cluster.runtime import ensure_ray
    from cluster.train import fit, make_datasets

    # Before anything else starts Ray: logical CPUs for the data workers (one per core), one per
    # training worker, and headroom, or the workers would wait for CPUs the data actors hold.
    ensure_ray(num_cpus=(os.cpu_count() or 1) + config.num_workers + 2, log_to_driver=True)
    if args.corpus == DEMO and args.vocab is None:
        make_demo_inputs(store, vocab_name, args.cache)
    prepared = prepare(store, args, config, vocab_name)
    if isinstance(prepared, str):
        print(f"error: {prepared}", file=sys.stderr)
        return 2
    shards, tags, lineage = prepared
    name = args.name or f"{args.corpus}-{config.objective}-k{config.k}"
    stale = changed_inputs(store, name, lineage)
    if stale and args.name:
        print(f"error: run {name} was trained on other inputs ({stale}); resuming would mix them: "
              "pass a new --name", file=sys.stderr)  # fmt: skip
        return 2
    if stale:
        name = f"{name}-{lineage['vocab']['fingerprint']}"
        print(f"note: the inputs changed since the last default run ({stale}); this run is {name}",
              file=sys.stderr)  # fmt: skip

    datasets = make_datasets(shards, tags, store.uri("vocab", vocab_name), config)
    print(f"pretraining {name}: {config.objective}, K={config.k}, preset {args.preset}, "
          f"{config.num_workers} worker(s), {config.max_steps} steps -> {store.uri('runs', name)}", file=sys.stderr)  # fmt: skip
    probe = args.probe if args.probe is not None else args.corpus == DEMO
    done = finished_checkpoint(store, name, config.max_steps)
    if done is not None:
        print(
            f"run {name} is complete at step {config.max_steps} ({done}); a larger --max-steps continues it"
        )
        if probe:
            report_probe(store, done, name)
        return 0
    started = time.monotonic()
    try:
        prior = load_vocab(store.uri("vocab", vocab_name), k=config.k).prior().tolist()
        result = fit(config, datasets=datasets, storage=store.uri("runs"), name=name, lineage=lineage,
                     init_from=args.init_from, accelerator_type=args.accelerator_type, tag_prior=prior)  # fmt: skip
    except Exception as exc:  # Ray's TrainingFailedError wraps the worker's error
        print(f"error: training failed: {exc}", file=sys.stderr)
        return 1
    metrics = result.metrics or {}
    checkpoint = result.checkpoint.path if result.checkpoint else None
    print(json.dumps({"run": name, "step": metrics.get("step"), "loss": metrics.get("loss"),
                      "val_loss": metrics.get("val_loss"), "val_tag_map": metrics.get("val_tag_map"),
                      "audio_hours": metrics.get("audio_hours"), "checkpoint": checkpoint,
                      "wall_s": round(time.monotonic() - started, 1)}, indent=2))  # fmt: skip
    if probe and checkpoint:
        report_probe(store, checkpoint, name)
    return 0


def changed_inputs(store: Store, name: str, lineage: dict[str, Any]) -> str | None:
    """What differs between an existing run's inputs (its latest checkpoint's lineage) and these:
    corpus, tags or vocabulary fingerprint, or K. None for a new run or the same inputs."""
    found = finished_checkpoint(store, name, 0)
    if found is None:
        return None
    with store.fs.open(join_uri(found, "lineage.json"), "r", encoding="utf-8") as f:
        old = json.load(f)
    changes = [
        f"{key} {old.get(key, {}).get(field)} -> {lineage[key][field]}"
        for key, field in (("corpus", "fingerprint"), ("tags", "fingerprint"), ("vocab", "fingerprint"),
                           ("vocab", "k"))
        if old.get(key, {}).get(field) != lineage[key][field]
    ]  # fmt: skip
    return ", ".join(changes) or None


def finished_checkpoint(store: Store, name: str, max_steps: int) -> str | None:
    """The checkpoint of run `name` that reached `max_steps`, if the run got that far."""
    from uts.train.model import latest_checkpoint

    found = latest_checkpoint(store, name)
    return found[0] if found is not None and int(found[1]["step"]) >= max_steps else None


PROBE_PROTOCOL = "logistic"  # converged, L2 chosen on validation: steady on small tasks


def report_probe(store: Store, checkpoint: str, name: str) -> None:
    """Print the probe table of a checkpoint (the paper's linear protocol, beside the log-mel and
    random-init baselines): evaluated now by jobs/evaluate.py, or read back when already done."""
    from jobs import evaluate
    from uts.probe.embeddings import checkpoint_source
    from uts.probe.report import comparison_table

    parts = ("evals", name, PROBE_PROTOCOL)
    if store.is_complete(*parts):
        summary = store.read_json(*parts, "summary.json")
        if summary.get("space") == checkpoint_source(checkpoint).space:
            print(comparison_table({**summary["baselines"], name: summary["results"]}))
            return
    if not store.local or not any(Path(store.path("tasks")).glob("*/task.json")):
        print("(no probe tasks in the store: run jobs/tasks.py, then jobs/evaluate.py)")
        return
    argv = [
        "--store",
        store.root_uri,
        "--checkpoint",
        checkpoint,
        "--name",
        name,
        "--protocol",
        PROBE_PROTOCOL,
    ]
    if evaluate.main(argv) != 0:
        print(f"(the probe failed; rerun: python jobs/evaluate.py {' '.join(argv)})")


def prepare(
    store: Store, args: argparse.Namespace, config: PretrainConfig, vocab_name: str
) -> tuple[list[str], dict[str, list[str]], dict[str, Any]] | str:
    """Everything checked before a worker starts; an error message instead when something is
    missing or inconsistent."""
    from uts.data import list_shards

    try:
        shards = list_shards(store.uri("corpora", args.corpus))
    except FileNotFoundError as exc:
        return f"{exc}; run jobs/ingest.py --corpus {args.corpus} first"
    tags_fp = latest_complete(store, "tags", args.corpus) if args.tags == "latest" else args.tags
    if not tags_fp or not store.is_complete("tags", args.corpus, tags_fp):
        return f"no complete tags {args.tags!r} for corpus {args.corpus}; run jobs/caption.py and jobs/tag.py first"
    if not store.is_complete("vocab", vocab_name):
        return (f"no vocabulary {vocab_name!r} in {store.uri('vocab')}; run jobs/build_vocab.py --tags "
                f"{store.uri('tags', args.corpus, tags_fp)} --name {vocab_name} first")  # fmt: skip
    vocab = load_vocab(store.uri("vocab", vocab_name))
    if config.k > len(vocab):
        return f"--k {config.k} is larger than vocabulary {vocab_name!r} ({len(vocab)} tags)"
    for option, value in (("num_workers", config.num_workers), ("max_steps", config.max_steps)):
        if value < 1:
            return f"--{option.replace('_', '-')} must be >= 1, got {value}"
    if config.batch_seconds <= 0:
        return f"--batch-seconds must be positive, got {config.batch_seconds}"
    if config.objective != "mtc":
        source = config.text_model if config.objective == "contrastive" else config.tokenizer
        try:
            from uts.models.text import load_tokenizer

            load_tokenizer(source)
        except (OSError, ValueError) as exc:
            return (f"objective {config.objective} needs the tokenizer {source!r}, which cannot be loaded "
                    f"({type(exc).__name__}); pass --tokenizer/--text-model with a local path")  # fmt: skip
    tags = read_tags(store, args.corpus, tags_fp)
    usable = sum(1 for clip_tags in tags.values() if vocab.at(config.k).indices(clip_tags))
    if usable == 0:
        return f"no clip of {args.corpus} carries a tag of {vocab_name!r} at K={config.k}"
    corpus = store.read_json("corpora", args.corpus, "corpus.json")
    vocab_meta = store.read_json("vocab", vocab_name, "vocab.json")
    lineage = {
        "corpus": {"name": args.corpus, "fingerprint": corpus.get("fingerprint")},
        "tags": {"fingerprint": tags_fp, "clips_with_tags": len(tags), "clips_with_tags_at_k": usable},
        "vocab": {"name": vocab_name, "fingerprint": vocab_meta.get("vocab_fingerprint"), "k": config.k},
        "git_commit": git_commit(), "uts_version": __version__, "versions": versions(),
        "command": " ".join(["python", "jobs/pretrain.py", *(argv_of(args))]),
    }  # fmt: skip
    return shards, tags, lineage


def argv_of(args: argparse.Namespace) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in sorted(vars(args).items()) if v is not None]


if __name__ == "__main__":
    sys.exit(main())
