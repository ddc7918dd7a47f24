"""Benchmark: the vectorised vocabulary builder against a plain-Python Counter reference.

    python benchmarks/vocab.py [--clips 1000000] [--distinct 50000] [--tags-per-clip 10]

Generates a tag table (Zipf-distributed tags, some spelling variants), then runs, each in a fresh
child process so peak memory is its own: the builder's counting + ranking, the full build
(plus the coverage pass), the same at a quarter of the clips (memory must not grow with N), and the
reference (rows to Python, a Counter over per-clip sets, as the paper's script does, with the same
normalisation memoised). Asserts both give the same ranking and prints the speed ratio.
Target: at least 5x faster than the reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from uts.train.memory import status_mb


def child(kind: str, path: str, max_k: int) -> dict[str, Any]:
    """Run one measurement in this process; return wall time, memory and the ranking."""
    from uts.tags import resolve_sources
    from uts.tags.build import build_vocabulary, rank_counts
    from uts.tags.counting import count_tags
    from uts.testing import reference_vocabulary

    base = status_mb("VmRSS")
    start = time.perf_counter()
    if kind == "reference":

        def rows() -> Any:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
                yield from batch.to_pylist()

        entries = reference_vocabulary(rows(), max_k=max_k)
    elif kind == "count+rank":
        counts, _ = count_tags(resolve_sources([path]))
        order, scores = rank_counts(counts)
        entries = [
            (counts.display[k], int(counts.df[k]), float(x))
            for k, x in zip(order[:max_k].tolist(), scores[:max_k].tolist(), strict=True)
        ]
    else:  # full build: counting, ranking, coverage pass
        vocab = build_vocabulary(resolve_sources([path]), name="bench", max_k=max_k).vocab
        entries = list(zip(vocab.tags, vocab.df, vocab.score, strict=True))
    wall = time.perf_counter() - start
    peak = status_mb("VmHWM")  # this process's own peak (ru_maxrss would include the parent's)
    return {"kind": kind, "wall_s": wall, "peak_mb_above_start": peak - base, "entries": entries}


def measure(kind: str, path: Path, max_k: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(max_k)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    result["entries"] = [tuple(e) for e in result["entries"]]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=50_000)
    parser.add_argument("--tags-per-clip", type=int, default=10)
    parser.add_argument("--max-k", type=int, default=3000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, max_k = args.child
        print(json.dumps(child(kind, path, int(max_k))))
        return 0

    from uts.testing import zipf_tag_table

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for n in (args.clips // 4, args.clips):
            table = zipf_tag_table(n, n_distinct=args.distinct, tags_per_clip=args.tags_per_clip)
            paths[n] = Path(tmp) / f"tags-{n}.parquet"
            pq.write_table(table, paths[n], row_group_size=65536)
        n_tags = table.column("tags").combine_chunks().values.__len__()
        print(f"input: {args.clips:,} clips, {n_tags:,} tags, {args.distinct:,} distinct strings")
        ours = measure("count+rank", paths[args.clips], args.max_k)
        full = measure("full", paths[args.clips], args.max_k)
        quarter = measure("full", paths[args.clips // 4], args.max_k)
        ref = measure("reference", paths[args.clips], args.max_k)
    assert ours["entries"] == ref["entries"], "builder and reference disagree on the ranking"
    assert full["entries"] == ref["entries"], "full build and reference disagree on the ranking"
    ratio = ref["wall_s"] / ours["wall_s"]
    rows = [
        ("builder: count + rank", ours),
        ("builder: full build (+ coverage pass)", full),
        (f"builder: full build, {args.clips // 4:,} clips", quarter),
        ("reference: Counter over per-clip sets", ref),
    ]
    for label, r in rows:
        print(f"{label:<42} {r['wall_s']:7.2f} s   peak +{r['peak_mb_above_start']:7.1f} MB")
    print(f"same ranking (top {len(ref['entries']):,}): yes")
    print(f"speed-up, count + rank vs reference: {ratio:.1f}x (target >= 5x)")
    print(
        f"memory, full build at {args.clips:,} vs {args.clips // 4:,} clips: "
        f"{full['peak_mb_above_start'] / max(quarter['peak_mb_above_start'], 1e-9):.2f}x"
    )
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
