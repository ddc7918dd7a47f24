"""Benchmark: is the data pipeline the bottleneck of pretraining?

    python benchmarks/pretrain.py [--clips 400] [--steps 30] [--encoder s] [--batch-seconds 40]

Two runs of the real job (Ray Train, 2 DDP workers, the same model, batch budget and threads):
1. streaming: corpus shards -> Ray Data (decode + fbank on CPU actors) -> workers, as in production;
2. in memory: each worker first loads one epoch of batches, then steps over them (no data work).
Steady-state throughput (audio-seconds per second over the steps after the first report, so start-up
and pipeline fill are excluded) of 1 divided by 2 is the ratio. Target: >= 0.9. Also prints the
data-wait fraction (share of step time spent waiting for the next batch) of the streaming run.
On a GPU cluster the data workers have their own CPUs; here both share 2 cores, so this is the
harder case.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def run(
    store: Path, name: str, args: argparse.Namespace, *, preload: bool
) -> list[dict[str, float]]:
    from cluster.train import fit, make_datasets
    from stages.pretrain import read_tags
    from uts.data import list_shards
    from uts.store import Store
    from uts.tags import load_vocab
    from uts.train import checkpoint
    from uts.train.config import preset

    every = max(args.steps // 3, 1)
    config = preset("smoke", encoder=args.encoder, k=6, max_steps=args.steps, batch_seconds=args.batch_seconds,
                    checkpoint_every=every, validate_every=every, log_every=every, val_fraction=0.02,
                    cache_features=False, specaug=False)  # fmt: skip
    s = Store(str(store))
    tags_fp = next(iter(sorted(p.name for p in (store / "tags" / "c").iterdir())))
    vocab = load_vocab(s.uri("vocab", "v"), k=config.k)
    datasets = make_datasets(
        list_shards(s.uri("corpora", "c")), read_tags(s, "c", tags_fp), vocab, config
    )
    fit(config, datasets=datasets, storage=s.uri("runs"), name=name, lineage={}, preload=preload)
    found = checkpoint.at_step(s, name, args.steps)
    if found is None or int(found[1]["step"]) != args.steps:
        raise RuntimeError(f"run {name} has no checkpoint at step {args.steps}")
    history: list[dict[str, float]] = found[1]["history"]
    return history


def steady(history: list[dict[str, float]]) -> tuple[float, float]:
    """Mean audio-s/s and data-wait over the reports after the first."""
    later = history[1:] or history
    return (
        sum(h["audio_s_per_s"] for h in later) / len(later),
        sum(h["data_wait"] for h in later) / len(later),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--encoder", default="s", help="Zipformer preset (default s, ~22M parameters)"
    )
    parser.add_argument(
        "--batch-seconds", type=float, default=40.0, help="audio seconds per step, both workers"
    )
    args = parser.parse_args()
    from cluster.runtime import ensure_ray
    from stages.fixtures import make_tagged_store

    ensure_ray(num_cpus=(os.cpu_count() or 1) + 4)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = make_tagged_store(Path(tmp), clips=args.clips, seconds=(2.0, 4.0, 6.0, 8.0, 10.0))
        print(
            f"corpus: {args.clips} clips of 2-10 s in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        streaming, wait = steady(run(store, "streaming", args, preload=False))
        memory, _ = steady(run(store, "memory", args, preload=True))
    ratio = streaming / memory
    print(
        f"pretraining, Zipformer {args.encoder}, 2 DDP workers, {args.batch_seconds:g} audio-s per step, steady state:"
    )
    print(f"  streaming from shards: {streaming:,.1f} audio-s/s, data-wait {wait:.1%}")
    print(f"  batches in memory:     {memory:,.1f} audio-s/s")
    print(f"  ratio {ratio:.2f} (target >= 0.9)")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
